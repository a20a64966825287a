package realtime

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// seqServer records the messages its sockets receive.
func seqServer(t *testing.T, hub *Hub) (*testServer, chan string) {
	got := make(chan string, 16)
	return newTestServer(t, &Options{Hub: hub, OnMessage: func(_ context.Context, _ *Socket, text string) {
		got <- text
	}}, nil), got
}

// expectNone fails if a message was delivered.
func expectNone(t *testing.T, got chan string) {
	t.Helper()
	select {
	case m := <-got:
		t.Fatalf("delivered %q, want nothing", m)
	default:
	}
}

// A POST retried with the same Realtime-Seq (its answer was lost) is
// answered 204 and not delivered again, while the socket lives and for a
// while after it ended; a gap or a malformed number is a broken client.
// Before Realtime-Seq the retry was delivered twice.
func TestPostSeq(t *testing.T) {
	ts, got := seqServer(t, nil)
	ec := dialES(t, ts, esDial{v2: true})
	s := ts.next(t)
	post := func(seq, text string, want int) {
		t.Helper()
		if status := postSeq(t, ts.URL, ec.token, seq, text); status != want {
			t.Fatalf("POST %s %q: %d, want %d", seq, text, status, want)
		}
	}
	post("1", "message\none", http.StatusNoContent)
	post("1", "message\none", http.StatusNoContent) // the retry
	post("2", "message\ntwo", http.StatusNoContent)
	for _, want := range []string{"one", "two"} {
		if m := <-got; m != want {
			t.Fatalf("delivered %q, want %q", m, want)
		}
	}
	expectNone(t, got)
	for _, bad := range []string{"4", "0", "-3", "+3", "3.0", "x", "9007199254740992", "99999999999999999999"} {
		post(bad, "message\nbad", http.StatusBadRequest)
	}
	post(strconv.Itoa(1), "message\nold", http.StatusNoContent)
	expectNone(t, got)

	// A socket that ended: retries of what it delivered are answered 204,
	// the next message 410 (not delivered: the client sends it again on
	// its next connection).
	s.abort()
	waitDone(t, s)
	post("2", "message\ntwo", http.StatusNoContent)
	post("3", "message\nthree", http.StatusGone)
	post("", "message\nv1", http.StatusGone)
	expectNone(t, got)
}

// A POST without Realtime-Seq (a v1 client) is delivered as before, each
// time.
func TestPostWithoutSeq(t *testing.T) {
	ts, got := seqServer(t, nil)
	ec := dialES(t, ts, esDial{})
	ts.next(t)
	for range 2 {
		if status := ec.post(t, "same"); status != http.StatusNoContent {
			t.Fatalf("POST: %d", status)
		}
	}
	for range 2 {
		if m := <-got; m != "same" {
			t.Fatalf("delivered %q", m)
		}
	}
}

// A POST through another node carries Realtime-Seq along: its retry is
// not delivered twice, there or after the socket ended.
func TestPostSeqAcrossNodes(t *testing.T) {
	broker := NewMemoryBroker(nil)
	defer broker.Close()
	hub1 := newHub(t, &HubOptions{Broker: broker, Node: "n1"})
	hub2 := newHub(t, &HubOptions{Broker: broker, Node: "n2"})
	ts1, got := seqServer(t, hub1)
	ts2, _ := seqServer(t, hub2)
	ec := dialES(t, ts1, esDial{v2: true})
	s := ts1.next(t)
	for range 2 {
		if status := postSeq(t, ts2.URL, ec.token, "1", "message\nvia n2"); status != http.StatusNoContent {
			t.Fatalf("POST through n2: %d", status)
		}
	}
	if m := <-got; m != "via n2" {
		t.Fatalf("delivered %q", m)
	}
	if status := postSeq(t, ts2.URL, ec.token, "3", "message\ngap"); status != http.StatusBadRequest {
		t.Fatalf("POST with a gap through n2: %d, want 400", status)
	}
	s.abort()
	waitDone(t, s)
	if status := postSeq(t, ts2.URL, ec.token, "1", "message\nvia n2"); status != http.StatusNoContent {
		t.Fatalf("retry through n2 after the end: %d, want 204", status)
	}
	if status := postSeq(t, ts2.URL, ec.token, "2", "message\nlate"); status != http.StatusGone {
		t.Fatalf("POST through n2 after the end: %d, want 410", status)
	}
	expectNone(t, got)
}

// The record of ended sessions is bounded in count and in time.
func TestEndedSessionsBounded(t *testing.T) {
	now := time.Unix(1000, 0)
	e := endedSessions{ttl: time.Minute, max: 3, now: func() time.Time { return now }}
	for i := range 5000 {
		e.add(strconv.Itoa(i), uint64(i+1))
		if len(e.seqs) > 3 || len(e.fifo)-e.head > 3 {
			t.Fatalf("after %d: %d sessions, %d in the queue", i+1, len(e.seqs), len(e.fifo)-e.head)
		}
	}
	if cap(e.fifo) > 2048 {
		t.Fatalf("queue array of %d", cap(e.fifo))
	}
	if e.seq("4998") != 4999 || e.seq("4996") != 0 {
		t.Fatalf("seq of the newest %d, of a dropped one %d", e.seq("4998"), e.seq("4996"))
	}
	now = now.Add(time.Minute)
	if e.seq("4999") != 0 || len(e.seqs) != 0 {
		t.Fatalf("after the ttl: seq %d, %d sessions", e.seq("4999"), len(e.seqs))
	}
}

// FuzzParseSeq: a Realtime-Seq is accepted exactly when it is 1 to 2^53-1
// in decimal digits, and then parsed to its value.
func FuzzParseSeq(f *testing.F) {
	for _, s := range []string{"1", "42", "007", "9007199254740991", "9007199254740992", "0", "", "-1", "+1", " 1", "1.0", "0x10", "99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		seq, ok := parseSeq([]string{v})
		digits := v != "" && strings.Trim(v, "0123456789") == ""
		n, err := strconv.ParseUint(v, 10, 64)
		want := digits && err == nil && n >= 1 && n <= maxSeq
		if ok != want || ok && seq != n {
			t.Fatalf("parseSeq(%q) = %d, %v; want %v", v, seq, ok, want)
		}
	})
}
