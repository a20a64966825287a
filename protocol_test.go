package realtime

import (
	"context"
	"strings"
	"testing"
)

// Any request of a v2 client is answered without a panic: a malformed
// one with an "error" frame.
func FuzzV2Request(f *testing.F) {
	for _, seed := range []string{
		"message\nhi", "message", "publish a\nx", "publish $presence:a\nx", "subscribe a",
		"subscribe $a", "unsubscribe a", "presence a", "bogus", "", "\n", "subscribe a b\n",
		"subscribe " + strings.Repeat("x", 300), "publish \xff\nx",
	} {
		f.Add(seed)
	}
	hub := NewHub(nil)
	defer hub.Close()
	allow := func(context.Context, *Socket, string) error { return nil }
	f.Fuzz(func(t *testing.T, text string) {
		s := fakeSocket(hub, nil)
		defer s.discard()
		s.proto = protoV2
		s.cfg().onSubscribe = allow
		s.cfg().onPublish = func(context.Context, *Socket, string, string) error { return nil }
		s.receive(text)
		head, _, _ := strings.Cut(text, "\n")
		word, _, _ := strings.Cut(head, " ")
		switch word {
		case "message", "publish", "subscribe", "unsubscribe", "presence":
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if len(s.queue) != 1 || s.queue[0].m.kind != kindError {
			t.Fatalf("request %q: %d frames queued, want one error", text, len(s.queue))
		}
	})
}
