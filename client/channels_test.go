package client

import (
	"errors"
	"fmt"
	"net"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/realtime-go/realtime"
	"github.com/realtime-go/realtime/websocket"
)

func TestParseFrame(t *testing.T) {
	entry := PresenceEntry{Socket: "n1.abc", User: "ann", Info: `{"x":1}`}
	for _, c := range []struct {
		id, frame string
		want      Message
		list      []PresenceEntry
	}{
		{"C1", "message chat\nhello\nworld", Message{ID: "C1", Kind: KindMessage, Channel: "chat", Data: "hello\nworld"}, nil},
		{"C1", "message chat\n", Message{ID: "C1", Kind: KindMessage, Channel: "chat"}, nil},
		{"C1", "message chat", Message{ID: "C1", Kind: KindMessage, Channel: "chat"}, nil},
		{"", "message\njust for you", Message{Kind: KindMessage, Data: "just for you"}, nil},
		{"C2", "subscribed chat\nfresh", Message{ID: "C2", Kind: KindSubscribed, Channel: "chat", Data: "fresh", Status: SubscribeFresh}, nil},
		{"C2", "subscribed chat\nresumed", Message{ID: "C2", Kind: KindSubscribed, Channel: "chat", Data: "resumed", Status: SubscribeResumed}, nil},
		{"C2", "subscribed é/Ω\nfailed", Message{ID: "C2", Kind: KindSubscribed, Channel: "é/Ω", Data: "failed", Status: SubscribeFailed}, nil},
		{"C3", "unsubscribed chat\nrefused", Message{ID: "C3", Kind: KindUnsubscribed, Channel: "chat", Data: "refused"}, nil},
		{"C3", "unsubscribed chat", Message{ID: "C3", Kind: KindUnsubscribed, Channel: "chat"}, nil},
		{"C4", "lost chat", Message{ID: "C4", Kind: KindLost, Channel: "chat"}, nil},
		{"", `join chat` + "\n" + `{"socket":"n1.abc","user":"ann","info":"{\"x\":1}"}`,
			Message{Kind: KindJoin, Channel: "chat", Data: `{"socket":"n1.abc","user":"ann","info":"{\"x\":1}"}`, Entry: entry}, nil},
		{"", `leave chat` + "\n" + `{"socket":"n1.abc"}`,
			Message{Kind: KindLeave, Channel: "chat", Data: `{"socket":"n1.abc"}`, Entry: PresenceEntry{Socket: "n1.abc"}}, nil},
		{"", "presence chat\n[]", Message{Kind: KindPresence, Channel: "chat", Data: "[]"}, []PresenceEntry{}},
		{"", `presence chat` + "\n" + `[{"socket":"n1.abc","user":"ann","info":"{\"x\":1}"},{"socket":"n2.d"}]`,
			Message{Kind: KindPresence, Channel: "chat", Data: `[{"socket":"n1.abc","user":"ann","info":"{\"x\":1}"},{"socket":"n2.d"}]`}, []PresenceEntry{entry, {Socket: "n2.d"}}},
		{"", "error\nbad request", Message{Kind: KindError, Data: "bad request"}, nil},
		{"", "heartbeat\n15000", Message{Kind: kindHeartbeat, Data: "15000"}, nil},
		// Kinds this client does not know are ignored: servers may add some.
		{"", "hello", Message{Kind: kindUnknown}, nil},
		{"C5", "future chat\nx", Message{Kind: kindUnknown}, nil},
		{"", "Message chat\nx", Message{Kind: kindUnknown}, nil},
		{"", "publish chat\nx", Message{Kind: kindUnknown}, nil},
	} {
		got, list, err := parseFrame(c.id, c.frame)
		if err != nil {
			t.Errorf("parseFrame(%q): %v", c.frame, err)
			continue
		}
		if got != c.want || !reflect.DeepEqual(list, c.list) {
			t.Errorf("parseFrame(%q)\n got %+v %v\nwant %+v %v", c.frame, got, list, c.want, c.list)
		}
	}
}

// A hostile server's frames are refused with a *FrameError saying why;
// none panics.
func TestParseFrameMalformed(t *testing.T) {
	for _, c := range []struct{ frame, reason string }{
		{"", "malformed kind"},
		{"\nhello", "malformed kind"},
		{" chat\nx", "malformed kind"},
		{"mess\x00age\nx", "malformed kind"},
		{"méssage chat\nx", "malformed kind"},
		{strings.Repeat("k", 65), "malformed kind"},
		{"future a b\nx", "invalid channel name"},
		{"heartbeat chat\n15000", "heartbeat with a channel or an id"},
		{"heartbeat", "heartbeat interval is not a number of milliseconds"},
		{"heartbeat\n", "heartbeat interval is not a number of milliseconds"},
		{"heartbeat\n0", "heartbeat interval is not a number of milliseconds"},
		{"heartbeat\n-5", "heartbeat interval is not a number of milliseconds"},
		{"heartbeat\n1e3", "heartbeat interval is not a number of milliseconds"},
		{"heartbeat\n1234567890", "heartbeat interval is not a number of milliseconds"},
		{"message \nx", "invalid channel name"},
		{"message a b\nx", "invalid channel name"},
		{"message a\tb\nx", "invalid channel name"},
		{"message a\x7fb\nx", "invalid channel name"},
		{"message a\u0085b\nx", "invalid channel name"},
		{"message \xff\nx", "invalid channel name"},
		{"message " + strings.Repeat("c", 201) + "\nx", "invalid channel name"},
		{"subscribed\nfresh", "subscribed without a channel"},
		{"subscribed chat\nFresh", "unknown subscription status"},
		{"subscribed chat", "unknown subscription status"},
		{"unsubscribed", "unsubscribed without a channel"},
		{"lost", "lost without a channel"},
		{"join chat\n", "presence entry is not a JSON object"},
		{"join chat\nnull", "presence entry is not a JSON object"},
		{"join chat\n{\"socket\":", "presence entry is not a JSON object"},
		{"leave chat\n[]", "presence entry is not a JSON object"},
		{"join chat\n{\"socket\":1}", "presence entry is not a JSON object"},
		{"presence chat\nnull", "presence list is not a JSON array"},
		{"presence chat\n[1]", "presence list is not a JSON array"},
		{"presence chat\n{}", "presence list is not a JSON array"},
		{"presence\n[]", "presence without a channel"},
	} {
		_, _, err := parseFrame("id", c.frame)
		var fe *FrameError
		if !errors.As(err, &fe) {
			t.Errorf("parseFrame(%q): %v, want a *FrameError", c.frame, err)
			continue
		}
		if fe.Reason != c.reason {
			t.Errorf("parseFrame(%q): reason %q, want %q", c.frame, fe.Reason, c.reason)
		}
		if !strings.Contains(err.Error(), c.reason) {
			t.Errorf("parseFrame(%q): %q does not say %q", c.frame, err, c.reason)
		}
	}
}

// FuzzParseFrame checks that no frame makes the parser panic, and that
// what it accepts is consistent: a known kind, a valid channel where
// one is named, the header and data given back as they came.
func FuzzParseFrame(f *testing.F) {
	for _, s := range []string{
		"message chat\nhello", "message\nhi", "subscribed c\nresumed", "unsubscribed c\nno",
		"lost c", "join c\n{\"socket\":\"a\"}", "leave c\n{}", "presence c\n[{\"socket\":\"a\"}]",
		"error\nwhat", "message a b\n", "presence c\n[", "\n\n",
		"heartbeat\n15000", "heartbeat c\n1", "future c\nx", "future\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, frame string) {
		m, list, err := parseFrame("id", frame)
		if err != nil {
			var fe *FrameError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a *FrameError", err)
			}
			return
		}
		switch {
		case m.Kind == kindUnknown:
			if m != (Message{Kind: kindUnknown}) || list != nil {
				t.Fatalf("unknown kind parsed as %+v %v", m, list)
			}
			return
		case m.Kind == kindHeartbeat:
			if d, ok := parseHeartbeat(m.Data); !ok || d <= 0 || frame != "heartbeat\n"+m.Data {
				t.Fatalf("heartbeat %q parsed as %+v", frame, m)
			}
			return
		case int(m.Kind) >= len(kindNames):
			t.Fatalf("kind %d", m.Kind)
		}
		header := m.Kind.String()
		if m.Channel != "" {
			if !validChannel(m.Channel) {
				t.Fatalf("invalid channel %q accepted", m.Channel)
			}
			header += " " + m.Channel
		}
		if frame != header && frame != header+"\n"+m.Data {
			t.Fatalf("frame %q parsed as %+v", frame, m)
		}
		if (m.Kind == KindPresence) != (list != nil) {
			t.Fatalf("%v with list %v", m.Kind, list)
		}
		switch m.Kind {
		case KindSubscribed:
			if string(m.Status) != m.Data {
				t.Fatalf("status %q, data %q", m.Status, m.Data)
			}
		}
	})
}

func TestKindString(t *testing.T) {
	for k, want := range kindNames {
		if got := Kind(k).String(); got != want {
			t.Errorf("Kind(%d) = %q, want %q", k, got, want)
		}
	}
	if got := Kind(42).String(); got != "Kind(42)" {
		t.Errorf("Kind(42) = %q", got)
	}
}

// The client's copy of the presence entry encodes as the server's.
func TestPresenceEntryMatchesServer(t *testing.T) {
	ct, st := reflect.TypeOf(PresenceEntry{}), reflect.TypeOf(realtime.PresenceEntry{})
	if ct.NumField() != st.NumField() {
		t.Fatalf("client has %d fields, server %d", ct.NumField(), st.NumField())
	}
	for i := range ct.NumField() {
		cf, sf := ct.Field(i), st.Field(i)
		if cf.Name != sf.Name || cf.Type != sf.Type || cf.Tag != sf.Tag {
			t.Errorf("field %d: client %s %s %s, server %s %s %s", i, cf.Name, cf.Type, cf.Tag, sf.Name, sf.Type, sf.Tag)
		}
	}
}

func TestCheckChannel(t *testing.T) {
	for _, name := range []string{"chat", "a/b:c", strings.Repeat("x", 200), "é"} {
		if err := checkChannel(name); err != nil {
			t.Errorf("checkChannel(%q): %v", name, err)
		}
	}
	for _, name := range []string{"", "a b", "a\nb", "$presence:chat", strings.Repeat("x", 201), "\xff"} {
		if checkChannel(name) == nil {
			t.Errorf("checkChannel(%q) accepted", name)
		}
	}
}

// Every kind of frame reaches Next with its fields, on both transports;
// the cursor carried by ids becomes the last event id, frames without
// one leave it alone, and a presence answer goes to the Presence call.
func TestSocketV2Frames(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.String(), func(t *testing.T) {
			fs := startFake(t, []string{socketSubprotocolV2, socketSubprotocol}, socketSubprotocolV2)
			s, rec := newSocket(t, nil, fs.URL, &SocketOptions{Transport: tr})
			c := fs.next(t)
			if tr == TransportEventSource && !strings.Contains(c.query, "protocol=realtime.v2") {
				t.Errorf("event stream query %q does not ask for realtime.v2", c.query)
			}
			c.send("P0")
			info := rec.open(t)
			if info.Protocol != "realtime.v2" || info.Position != "P0" {
				t.Fatalf("open: %+v", info)
			}
			frames := []struct {
				frame string
				want  Message
			}{
				{"C1\nsubscribed chat\nfresh", Message{ID: "C1", Kind: KindSubscribed, Channel: "chat", Data: "fresh", Status: SubscribeFresh}},
				{"C2\nmessage chat\nhi\nthere", Message{ID: "C2", Kind: KindMessage, Channel: "chat", Data: "hi\nthere"}},
				{"\nmessage\ndirect", Message{Kind: KindMessage, Data: "direct"}},
				{"\njoin chat\n{\"socket\":\"n.1\",\"user\":\"bo\"}", Message{Kind: KindJoin, Channel: "chat", Data: "{\"socket\":\"n.1\",\"user\":\"bo\"}", Entry: PresenceEntry{Socket: "n.1", User: "bo"}}},
				{"\nleave chat\n{\"socket\":\"n.1\"}", Message{Kind: KindLeave, Channel: "chat", Data: "{\"socket\":\"n.1\"}", Entry: PresenceEntry{Socket: "n.1"}}},
				{"C3\nlost chat", Message{ID: "C3", Kind: KindLost, Channel: "chat"}},
				{"\nerror\nwhat?", Message{Kind: KindError, Data: "what?"}},
				{"\npresence chat\n[]", Message{Kind: KindPresence, Channel: "chat", Data: "[]"}},
				{"C4\nunsubscribed chat\nkicked", Message{ID: "C4", Kind: KindUnsubscribed, Channel: "chat", Data: "kicked"}},
			}
			for _, f := range frames {
				c.send(f.frame)
			}
			last := "P0"
			for _, f := range frames {
				m := nextAny(t, s)
				if m != f.want {
					t.Fatalf("frame %q:\n got %+v\nwant %+v", f.frame, m, f.want)
				}
				if m.ID != "" {
					last = m.ID
				}
				if got := s.LastEventID(); got != last {
					t.Fatalf("after %q: last event id %q, want %q", f.frame, got, last)
				}
			}

			// A presence answer goes to the call waiting for it, not to
			// Next.
			type answer struct {
				e   []PresenceEntry
				err error
			}
			ans := make(chan answer, 1)
			go func() {
				e, err := s.Presence(testCtx(t), "room")
				ans <- answer{e, err}
			}()
			if r := c.req(t); r != "presence room" {
				t.Fatalf("request %q", r)
			}
			c.send("\npresence room\n[{\"socket\":\"n.2\",\"user\":\"cy\"}]")
			c.send("C5\nmessage room\nafter")
			a := <-ans
			if a.err != nil || !reflect.DeepEqual(a.e, []PresenceEntry{{Socket: "n.2", User: "cy"}}) {
				t.Fatalf("Presence: %v, %v", a.e, a.err)
			}
			if m := nextAny(t, s); m.Data != "after" || m.Channel != "room" {
				t.Fatalf("after the presence answer: %+v", m)
			}
		})
	}
}

// A malformed frame stops the Socket with a *FrameError, on both
// transports; the first message of a WebSocket is checked as well.
func TestSocketV2Hostile(t *testing.T) {
	for _, tr := range transports {
		for _, frame := range []string{"C1\n bogus chat\nx", "C1\nsubscribed chat\nmaybe", "\njoin chat\nnot json", "C1\nmessage a b\nx"} {
			t.Run(tr.String()+"/"+strings.Fields(frame)[0], func(t *testing.T) {
				_, s, _, c := openFake(t, tr)
				c.send("C0\nmessage chat\nfine")
				c.send(frame)
				if m := nextAny(t, s); m.Data != "fine" {
					t.Fatalf("first message %+v", m)
				}
				err := waitStopped(t, s)
				var fe *FrameError
				if !errors.As(err, &fe) {
					t.Fatalf("stopped with %v, want a *FrameError", err)
				}
				if _, err := s.Next(testCtx(t)); !errors.As(err, &fe) {
					t.Fatalf("Next after: %v", err)
				}
			})
		}
	}
	t.Run("first", func(t *testing.T) {
		fs := startFake(t, []string{socketSubprotocolV2}, socketSubprotocolV2)
		s, _ := newSocket(t, nil, fs.URL, &SocketOptions{Transport: TransportWebSocket})
		fs.next(t).send("P0\n\nnonsense")
		var fe *FrameError
		if err := waitStopped(t, s); !errors.As(err, &fe) {
			t.Fatalf("stopped with %v, want a *FrameError", err)
		}
	})
}

// Heartbeats, and messages of kinds the client does not know, are not
// handed to Next and do not stop the Socket: servers may add kinds.
// Before, an unknown kind stopped it with a *FrameError.
func TestSocketV2IgnoresUnknownKinds(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.String(), func(t *testing.T) {
			_, s, _, c := openFake(t, tr)
			c.send("\nheartbeat\n15000")
			c.send("\nfuture\nsomething")
			c.send("C1\nfuture chat\nx")
			c.send("C2\nmessage chat\nafter")
			if m := nextAny(t, s); m.Data != "after" || m.Channel != "chat" {
				t.Fatalf("first message %+v, want the one after the ignored ones", m)
			}
		})
	}
}

// Requests go in the order of the calls, in the wire format of
// realtime.v2, on both transports.
func TestSocketV2RequestOrder(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.String(), func(t *testing.T) {
			_, s, _, c := openFake(t, tr)
			ctx := testCtx(t)
			steps := []struct {
				call func() error
				wire string
			}{
				{func() error { return s.Subscribe(ctx, "a") }, "subscribe a"},
				{func() error { return s.Publish(ctx, "a", "one\ntwo") }, "publish a\none\ntwo"},
				{func() error { return s.Send(ctx, "direct") }, "message\ndirect"},
				{func() error { return s.Send(ctx, "") }, "message\n"},
				{func() error { return s.Subscribe(ctx, "b") }, "subscribe b"},
				{func() error { return s.Unsubscribe(ctx, "a") }, "unsubscribe a"},
				{func() error { return s.Publish(ctx, "c", "") }, "publish c\n"},
			}
			for _, st := range steps {
				if err := st.call(); err != nil {
					t.Fatalf("%q: %v", st.wire, err)
				}
			}
			for _, st := range steps {
				if r := c.req(t); r != st.wire {
					t.Fatalf("request %q, want %q", r, st.wire)
				}
			}
			if got := s.Subscriptions(); !slices.Equal(got, []string{"b"}) {
				t.Fatalf("subscriptions %q", got)
			}
			for _, name := range []string{"", "a b", "$presence:x"} {
				if s.Subscribe(ctx, name) == nil || s.Publish(ctx, name, "x") == nil {
					t.Errorf("channel %q accepted", name)
				}
			}
			if !errors.Is(s.Publish(ctx, "a", "\xff"), websocket.ErrInvalidUTF8) {
				t.Error("invalid UTF-8 published")
			}
		})
	}
}

// After every reconnection the subscriptions are asked for again, in
// order, before anything else the program sends; a channel the server
// took the socket out of is not.
func TestSocketV2Resubscribe(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.String(), func(t *testing.T) {
			fs, s, rec, c := openFake(t, tr)
			ctx := testCtx(t)
			for _, ch := range []string{"a", "b", "gone"} {
				if err := s.Subscribe(ctx, ch); err != nil {
					t.Fatal(err)
				}
				if r := c.req(t); r != "subscribe "+ch {
					t.Fatalf("request %q", r)
				}
			}
			c.send("C1\nunsubscribed gone\nrefused")
			if m := nextAny(t, s); m.Kind != KindUnsubscribed || m.Channel != "gone" || m.Data != "refused" {
				t.Fatalf("refusal: %+v", m)
			}
			if got := s.Subscriptions(); !slices.Equal(got, []string{"a", "b"}) {
				t.Fatalf("subscriptions %q", got)
			}
			rec.open(t)

			// The server drops the connection; the client presents its
			// cursor and asks for a and b again, on its own.
			c.close()
			c2 := fs.next(t)
			if c2.lastID != "C1" {
				t.Errorf("presented %q, want C1", c2.lastID)
			}
			c2.send("P1")
			rec.open(t)
			for _, ch := range []string{"a", "b"} {
				if r := c2.req(t); r != "subscribe "+ch {
					t.Fatalf("after reconnecting: request %q, want subscribe %s", r, ch)
				}
			}

			// A Send made while the connection is down goes after them.
			c2.close()
			c3 := fs.next(t)
			sent := make(chan error, 1)
			go func() { sent <- s.Send(ctx, "queued") }()
			c3.send("P2")
			for _, want := range []string{"subscribe a", "subscribe b", "message\nqueued"} {
				if r := c3.req(t); r != want {
					t.Fatalf("request %q, want %q", r, want)
				}
			}
			if err := <-sent; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A Presence call whose connection ends before the answer gets
// ErrConnectionLost; after Close, calls fail with net.ErrClosed.
func TestSocketV2PresenceLost(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.String(), func(t *testing.T) {
			fs, s, _, c := openFake(t, tr)
			errc := make(chan error, 1)
			go func() {
				_, err := s.Presence(testCtx(t), "room")
				errc <- err
			}()
			if r := c.req(t); r != "presence room" {
				t.Fatalf("request %q", r)
			}
			c.close()
			if err := <-errc; !errors.Is(err, ErrConnectionLost) {
				t.Fatalf("Presence: %v, want ErrConnectionLost", err)
			}
			fs.next(t).send("P1")
			s.Close()
			if _, err := s.Presence(testCtx(t), "room"); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("Presence after Close: %v", err)
			}
			if err := s.Subscribe(testCtx(t), "room"); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("Subscribe after Close: %v", err)
			}
		})
	}
}

// A server that speaks realtime.v1 (or, on WebSocket, no subprotocol)
// keeps working as before; channel calls fail with ErrNoChannels. The
// real server speaks realtime.v1 to a Socket that asks for it only.
func TestSocketV1ServerNoChannels(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.String(), func(t *testing.T) {
			rs := startRT(t, rtConfig{})
			s, rec := newSocket(t, nil, rs.URL, &SocketOptions{Transport: tr, Protocol: socketSubprotocol})
			if info := rec.open(t); info.Protocol != "realtime.v1" {
				t.Fatalf("protocol %q", info.Protocol)
			}
			ctx := testCtx(t)
			if err := s.Subscribe(ctx, "chat"); !errors.Is(err, ErrNoChannels) {
				t.Fatalf("Subscribe: %v", err)
			}
			if err := s.Publish(ctx, "chat", "x"); !errors.Is(err, ErrNoChannels) {
				t.Fatalf("Publish: %v", err)
			}
			if err := s.Unsubscribe(ctx, "chat"); !errors.Is(err, ErrNoChannels) {
				t.Fatalf("Unsubscribe: %v", err)
			}
			if _, err := s.Presence(ctx, "chat"); !errors.Is(err, ErrNoChannels) {
				t.Fatalf("Presence: %v", err)
			}
			if len(s.Subscriptions()) != 0 {
				t.Fatalf("subscriptions %q", s.Subscriptions())
			}
			send(t, s, "hi")
			if got := rs.received(t); got != tr.String()+":hi" {
				t.Fatalf("server got %q", got)
			}
			if m := nextAny(t, s); m.Data != tr.String()+" said hi" || m.Kind != KindMessage || m.Channel != "" {
				t.Fatalf("message %+v", m)
			}
		})
	}
	// A server of realtime.v1 that ignores the protocol query: on
	// EventSource the Socket sees no Realtime-Protocol header; or a
	// Socket that asks for realtime.v1 only, of a server with both.
	for _, v1 := range []struct {
		name, says, ask string
	}{{"server", "", ""}, {"option", socketSubprotocolV2, socketSubprotocol}} {
		t.Run("fake-v1-"+v1.name, func(t *testing.T) { testFakeV1(t, v1.says, v1.ask) })
	}
	t.Run("plain", func(t *testing.T) {
		fs := startFake(t, nil, "")
		s, rec := newSocket(t, nil, fs.URL, &SocketOptions{Transport: TransportWebSocket})
		c := fs.next(t)
		if info := rec.open(t); info.Protocol != "" {
			t.Fatalf("protocol %q", info.Protocol)
		}
		if err := s.Subscribe(testCtx(t), "chat"); !errors.Is(err, ErrNoChannels) {
			t.Fatalf("Subscribe: %v", err)
		}
		c.send("a\nb")
		if m := nextAny(t, s); m != (Message{Data: "a\nb"}) {
			t.Fatalf("plain message %+v", m)
		}
	})
}

func testFakeV1(t *testing.T, says, ask string) {
	protos := []string{socketSubprotocol}
	if says != "" {
		protos = []string{socketSubprotocolV2, socketSubprotocol}
	}
	fs := startFake(t, protos, says)
	for _, tr := range transports {
		s, rec := newSocket(t, nil, fs.URL, &SocketOptions{Transport: tr, Protocol: ask})
		c := fs.next(t)
		if tr == TransportEventSource && strings.Contains(c.query, "protocol=") != (ask == "") {
			t.Errorf("query %q asking for %q", c.query, ask)
		}
		c.send("P0")
		if info := rec.open(t); info.Protocol != "realtime.v1" {
			t.Fatalf("%v: protocol %q", tr, info.Protocol)
		}
		c.send("C1\nsubscribe chat")
		if m := nextAny(t, s); m != (Message{ID: "C1", Data: "subscribe chat"}) {
			t.Fatalf("%v: v1 message %+v", tr, m)
		}
		send(t, s, "raw")
		if r := c.req(t); r != "raw" {
			t.Fatalf("%v: v1 request %q", tr, r)
		}
		if err := s.Subscribe(testCtx(t), "chat"); !errors.Is(err, ErrNoChannels) {
			t.Fatalf("%v: Subscribe: %v", tr, err)
		}
		s.Close()
	}
}

// nextAny returns the next message, whatever its kind.
func nextAny(t *testing.T, s *Socket) Message {
	t.Helper()
	m, err := s.Next(testCtx(t))
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return m
}

// openFake starts a fake server of realtime.v2 and a Socket on tr, and
// opens the connection at position P0.
func openFake(t *testing.T, tr Transport) (*fakeServer, *Socket, *sockRec, *fakeConn) {
	t.Helper()
	fs := startFake(t, []string{socketSubprotocolV2, socketSubprotocol}, socketSubprotocolV2)
	s, rec := newSocket(t, nil, fs.URL, &SocketOptions{Transport: tr})
	c := fs.next(t)
	c.send("P0")
	return fs, s, rec, c
}

// A realtime.position event (a realtime.v1 stream's new cursor, after a
// join that no message carried) moves the last event id, which the next
// connection presents.
func TestSocketPositionEvent(t *testing.T) {
	fs := startFake(t, []string{socketSubprotocol}, "")
	s, rec := newSocket(t, nil, fs.URL, &SocketOptions{Transport: TransportEventSource})
	c := fs.next(t)
	c.send("P0")
	rec.open(t)
	c.send("event: " + positionEvent + "\nid: P1\ndata:\n\n")
	c.send("\nunnumbered")
	if m := nextAny(t, s); m != (Message{Data: "unnumbered"}) {
		t.Fatalf("got %+v", m)
	}
	if got := s.LastEventID(); got != "P1" {
		t.Fatalf("last event id %q, want P1", got)
	}
	c.close()
	if c2 := fs.next(t); c2.lastID != "P1" {
		t.Fatalf("presented %q, want P1", c2.lastID)
	}
}

// A refused presence request fails its call with a *RequestError; an
// error about another request goes to Next; answers stay matched to
// their calls.
func TestSocketV2PresenceRefused(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.String(), func(t *testing.T) {
			_, s, _, c := openFake(t, tr)
			presence := func(channel string) chan error {
				errc := make(chan error, 1)
				go func() {
					es, err := s.Presence(testCtx(t), channel)
					if err == nil && len(es) != 1 {
						err = fmt.Errorf("entries %v", es)
					}
					errc <- err
				}()
				if r := c.req(t); r != "presence "+channel {
					t.Fatalf("request %q", r)
				}
				return errc
			}
			errc := presence("x")
			c.send("\nerror\npresence \"x\": not subscribed")
			var re *RequestError
			if err := <-errc; !errors.As(err, &re) || re.Text != `presence "x": not subscribed` {
				t.Fatalf("refused Presence: %v", err)
			}
			errc = presence("y")
			c.send("\nerror\npublish \"z\": refused")
			c.send("\npresence y\n[{\"socket\":\"n.1\"}]")
			if m := nextAny(t, s); m != (Message{Kind: KindError, Data: `publish "z": refused`}) {
				t.Fatalf("Next: %+v", m)
			}
			if err := <-errc; err != nil {
				t.Fatalf("Presence after the other error: %v", err)
			}
		})
	}
}

// BenchmarkParseFrame parses a channel message, the common frame.
func BenchmarkParseFrame(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := parseFrame("AQxyz", "message chat\nhello, world"); err != nil {
			b.Fatal(err)
		}
	}
}

// With IdleTimeout 0 the watchdog follows the heartbeat the server
// announces: a link that goes silent after announcing 100 ms is dropped
// after 2×100 ms + 1 s, and the Socket reconnects. Before, the watchdog
// waited DefaultIdleTimeout (60 s) whatever the server announced.
func TestSocketIdleTimeoutFromHeartbeat(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.String(), func(t *testing.T) {
			fs, _, rec, c := openFake(t, tr)
			rec.open(t)
			c.send("\nheartbeat\n100")
			err := rec.retry(t)
			if !errors.Is(err, ErrIdleTimeout) {
				t.Fatalf("retry after %v, want the idle timeout", err)
			}
			if want := (2*100*time.Millisecond + time.Second).String(); !strings.Contains(err.Error(), want) {
				t.Errorf("%v does not name the derived timeout %s", err, want)
			}
			fs.next(t).send("P0")
			rec.open(t)
		})
	}
}

// An explicit IdleTimeout wins over the announced heartbeat. Both
// transports keep their idle watchdog in link.wd.
func TestSocketIdleTimeoutExplicit(t *testing.T) {
	s := &Socket{opts: SocketOptions{IdleTimeout: time.Hour}}
	l := &link{wd: &watchdog{idle: time.Hour}}
	s.heartbeat(l, "100")
	if l.wd.idle != time.Hour {
		t.Fatalf("watchdog %v, want the explicit hour", l.wd.idle)
	}
	s.opts.IdleTimeout = 0
	s.heartbeat(l, "15000")
	if want := 31 * time.Second; l.wd.idle != want || s.idleTimeout() != DefaultIdleTimeout {
		t.Fatalf("watchdog %v, want %v; before an announcement %v", l.wd.idle, want, s.idleTimeout())
	}
}
