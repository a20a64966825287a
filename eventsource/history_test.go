package eventsource

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func ids(events []*EncodedEvent) string {
	var b strings.Builder
	for i, e := range events {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(e.ID())
	}
	return b.String()
}

func addN(t *testing.T, h *History, from, to int) {
	t.Helper()
	for i := from; i <= to; i++ {
		if _, err := h.Add(Event{ID: fmt.Sprint(i), Data: "x"}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestHistorySince(t *testing.T) {
	t.Parallel()
	h := NewHistory(nil)
	addN(t, h, 1, 5)
	tests := []struct {
		id   string
		want string
		ok   bool
	}{
		{"1", "2,3,4,5", true},
		{"4", "5", true},
		{"5", "", true}, // up to date
		{"", "", true},  // a new client: nothing to replay
		{"6", "", false},
		{"nope", "", false},
	}
	for _, tc := range tests {
		got, ok := h.Since(tc.id)
		if ids(got) != tc.want || ok != tc.ok {
			t.Errorf("Since(%q) = %q, %v; want %q, %v", tc.id, ids(got), ok, tc.want, tc.ok)
		}
	}
	if got := ids(h.Events()); got != "1,2,3,4,5" || h.Len() != 5 {
		t.Errorf("Events = %q, Len = %d", got, h.Len())
	}
}

func TestHistoryEvictsByCount(t *testing.T) {
	t.Parallel()
	h := NewHistory(&HistoryOptions{MaxHistory: 3})
	addN(t, h, 1, 10)
	if got := ids(h.Events()); got != "8,9,10" {
		t.Errorf("Events = %q", got)
	}
	// An evicted id is as unknown as one never seen: the client missed
	// events that are gone.
	if got, ok := h.Since("7"); ok || got != nil {
		t.Errorf("Since(evicted) = %q, %v", ids(got), ok)
	}
	if got, ok := h.Since("8"); !ok || ids(got) != "9,10" {
		t.Errorf("Since(oldest) = %q, %v", ids(got), ok)
	}
	if len(h.entries) > 2*3+1 {
		t.Errorf("kept %d entries for 3 events", len(h.entries))
	}
}

func TestHistoryEvictsByBytes(t *testing.T) {
	t.Parallel()
	e, _ := Encode(Event{ID: "1", Data: "x"})
	h := NewHistory(&HistoryOptions{MaxHistory: -1, MaxHistoryBytes: int64(3 * e.Len())})
	addN(t, h, 1, 9)
	if got := ids(h.Events()); got != "7,8,9" {
		t.Errorf("Events = %q", got)
	}
	// An event larger than the whole budget is not kept.
	if _, err := h.Add(Event{ID: "big", Data: strings.Repeat("y", 3*e.Len())}); err != nil {
		t.Fatal(err)
	}
	if got, ok := h.Since("big"); ok || h.Len() != 0 {
		t.Errorf("Since(big) = %q, %v; Len %d", ids(got), ok, h.Len())
	}
}

func TestHistoryEvictsByAge(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := NewHistory(&HistoryOptions{MaxHistoryAge: time.Minute})
		addN(t, h, 1, 2)
		time.Sleep(45 * time.Second)
		addN(t, h, 3, 4)
		if got := ids(h.Events()); got != "1,2,3,4" {
			t.Errorf("Events = %q", got)
		}
		time.Sleep(30 * time.Second)
		if got := ids(h.Events()); got != "3,4" {
			t.Errorf("Events after 75s = %q", got)
		}
		if _, ok := h.Since("2"); ok {
			t.Error("Since(expired) ok")
		}
		if got, ok := h.Since("3"); !ok || ids(got) != "4" {
			t.Errorf("Since(3) = %q, %v", ids(got), ok)
		}
		time.Sleep(time.Hour)
		if h.Len() != 0 {
			t.Errorf("Len = %d", h.Len())
		}
	})
}

func TestHistoryDuplicateIDs(t *testing.T) {
	t.Parallel()
	h := NewHistory(&HistoryOptions{MaxHistory: 4})
	for _, id := range []string{"a", "b", "a", "c"} {
		h.Add(Event{ID: id})
	}
	if got, _ := h.Since("a"); ids(got) != "c" {
		t.Errorf("Since(a) = %q: the newest a counts", ids(got))
	}
	h.Add(Event{ID: "d"}) // evicts the first a, not the index of the second
	if got, ok := h.Since("a"); !ok || ids(got) != "c,d" {
		t.Errorf("Since(a) = %q, %v", ids(got), ok)
	}
}

func TestHistoryRefuses(t *testing.T) {
	t.Parallel()
	h := NewHistory(nil)
	if _, err := h.Add(Event{Data: "no id"}); !errors.Is(err, ErrInvalidField) {
		t.Errorf("no id: %v", err)
	}
	if _, err := h.Add(Event{ID: "1\n"}); !errors.Is(err, ErrInvalidField) {
		t.Errorf("bad id: %v", err)
	}
	e, _ := Encode(Event{Data: "x"})
	if err := h.AddEncoded(e); !errors.Is(err, ErrInvalidField) {
		t.Errorf("AddEncoded without id: %v", err)
	}
	e, _ = Encode(Event{ID: "z", Data: "x"})
	if err := h.AddEncoded(e); err != nil || h.Len() != 1 {
		t.Errorf("AddEncoded: %v", err)
	}
}

func TestHistoryConcurrent(t *testing.T) {
	t.Parallel()
	h := NewHistory(&HistoryOptions{MaxHistory: 50})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				id := fmt.Sprintf("%d-%d", g, i)
				h.Add(Event{ID: id, Data: id})
				if got, ok := h.Since(id); ok && len(got) > 50 {
					t.Errorf("Since returned %d events", len(got))
				}
				h.Events()
			}
		})
	}
	wg.Wait()
	if h.Len() != 50 {
		t.Errorf("Len = %d", h.Len())
	}
}

func TestReplay(t *testing.T) {
	h := NewHistory(nil)
	for i := 1; i <= 3; i++ {
		h.Add(Event{Type: "n", ID: fmt.Sprint(i), Data: fmt.Sprint("event ", i)})
	}
	type result struct {
		ok  bool
		err error
	}
	results := make(chan result, 1)
	srv := startServer(t, "HTTP/1.1", nil, func(s *Stream) {
		ok, err := Replay(context.Background(), s, h)
		results <- result{ok, err}
		s.SendData(context.Background(), "live")
		s.Close()
	})
	for _, tc := range []struct {
		lastID string
		want   string // data of the events received
		ok     bool
	}{
		{"1", "event 2|event 3|live", true},
		{"3", "live", true},
		{"", "live", true},
		{"gone", "live", false},
	} {
		hdr := http.Header{}
		if tc.lastID != "" {
			hdr.Set("Last-Event-ID", tc.lastID)
		}
		resp := open(t, context.Background(), srv, "HTTP/1.1", "/", hdr)
		events, _, _, _ := decodeAll(resp.Body, DecoderOptions{LastEventID: tc.lastID})
		resp.Body.Close()
		var data []string
		for _, ev := range events {
			data = append(data, ev.Data)
		}
		r := <-results
		if strings.Join(data, "|") != tc.want || r.ok != tc.ok || r.err != nil {
			t.Errorf("Last-Event-ID %q: got %q, ok %v, err %v; want %q, ok %v", tc.lastID, data, r.ok, r.err, tc.want, tc.ok)
		}
	}
}
