package main

import (
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestPayloadRoundTrip(t *testing.T) {
	for _, size := range []int{48, 64, 200} {
		b := appendPayload([]byte("publish c7\n"), 1765000000123456789, 7, 42, size)
		msg := b[len("publish c7\n"):]
		if len(msg) != size {
			t.Errorf("size %d: message of %d bytes: %s", size, len(msg), msg)
		}
		if msg[0] != '"' || msg[len(msg)-1] != '"' || strings.ContainsAny(string(msg[1:len(msg)-1]), `"\`) {
			t.Errorf("not a plain JSON string: %s", msg)
		}
		// As centrifuge frames it, twice in one WebSocket frame.
		frame := `{"push":{"channel":"c7","pub":{"data":` + string(msg) + `}}}` + "\n" +
			`{"push":{"channel":"c7","pub":{"data":` + string(msg) + `,"offset":3}}}`
		var n int
		for p := frame; ; n++ {
			ts, ch, seq, rest, found, ok := parsePayload(p)
			if !found {
				break
			}
			if !ok || ts != 1765000000123456789 || ch != 7 || seq != 42 {
				t.Fatalf("parsePayload(%q) = %d %d %d %v", p, ts, ch, seq, ok)
			}
			p = rest
		}
		if n != 2 {
			t.Errorf("found %d messages in %q, want 2", n, frame)
		}
	}
}

func TestParsePayloadRejects(t *testing.T) {
	for _, p := range []string{"@", "@1-2", "@1-2-3", "@-1-2-", "@1--2-", "@a-1-1-", "@1-2-99999999999-", "@99999999999999999999-1-1-"} {
		if _, _, _, _, found, ok := parsePayload(p); !found || ok {
			t.Errorf("parsePayload(%q): found %v ok %v, want a malformed marker", p, found, ok)
		}
	}
	if _, _, _, _, found, _ := parsePayload("no marker"); found {
		t.Error("found a marker where there is none")
	}
}

func FuzzParsePayload(f *testing.F) {
	f.Add([]byte(`{"push":{"channel":"c1","pub":{"data":"@1765000000123456789-1-1-xxxx"}}}`))
	f.Add([]byte("message c3\n\"@5-3-9-xx\"@6-3-10-"))
	f.Fuzz(func(t *testing.T, p []byte) {
		for range len(p) + 1 { // each call consumes at least the '@'
			_, _, _, rest, found, _ := parsePayload(p)
			if !found {
				return
			}
			if len(rest) >= len(p) {
				t.Fatalf("parsePayload(%q) did not advance: rest %q", p, rest)
			}
			p = rest
		}
		t.Fatalf("parsePayload never ran out of %q", p)
	})
}

func TestParseCommandstats(t *testing.T) {
	info := "# Commandstats\r\ncmdstat_evalsha:calls=10,usec=88,usec_per_call=8.80,rejected_calls=0,failed_calls=0\r\n" +
		"cmdstat_xadd:calls=10,usec=30,usec_per_call=3.00\r\ncmdstat_info:calls=2,usec=1\r\n"
	m := parseCommandstats(info)
	if len(m) != 3 || m["evalsha"] != 10 || m["xadd"] != 10 || m["info"] != 2 {
		t.Errorf("parseCommandstats = %v", m)
	}
	a := map[string]int64{"evalsha": 10, "xadd": 10}
	b := map[string]int64{"evalsha": 20, "xadd": 30, "publish": 10}
	if got := opsDelta(a, b, "redis"); got != 40 {
		t.Errorf("opsDelta = %v, want 40", got)
	}
	if got := opsTop(a, b, 10); got != "xadd 2.00, evalsha 1.00, publish 1.00" {
		t.Errorf("opsTop = %q", got)
	}
}

func TestChannelsOf(t *testing.T) {
	subs := make([]int, 100)
	for i := range 10000 {
		chans := channelsOf(i, 100, 3)
		if chans[0] == chans[1] || chans[1] == chans[2] || chans[0] == chans[2] {
			t.Fatalf("socket %d: channels %v repeat", i, chans)
		}
		for _, c := range chans {
			subs[c]++
		}
	}
	for c, n := range subs {
		if n != 300 {
			t.Errorf("channel %d has %d subscribers, want 300", c, n)
		}
	}
}
