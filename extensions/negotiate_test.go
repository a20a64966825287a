package extensions_test

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/realtime-go/realtime/extensions"
)

// fakeExt accepts every offer of its name unless its params contain
// "reject", answering with the offer itself; its sessions record Close.
type fakeExt struct {
	name      string
	rsv       byte
	params    []param
	seen      [][]offer // offers passed to ServerNegotiate
	activated []offer
	sessions  []*fakeSession
	failWith  error
}

type fakeSession struct {
	name   string
	closed int
}

func (s *fakeSession) Decode(src io.Reader, rsv byte) (io.Reader, error) { return src, nil }
func (s *fakeSession) Encode(dst io.Writer, m extensions.Message) (io.WriteCloser, byte, error) {
	return nil, 0, nil
}
func (s *fakeSession) Close() error { s.closed++; return nil }

func (e *fakeExt) Name() string { return e.name }
func (e *fakeExt) RSV() byte    { return e.rsv }
func (e *fakeExt) ClientOffer() offer {
	return offer{Name: e.name, Params: e.params}
}
func (e *fakeExt) newSession() *fakeSession {
	s := &fakeSession{name: e.name}
	e.sessions = append(e.sessions, s)
	return s
}
func (e *fakeExt) ClientActivate(r offer) (extensions.Session, error) {
	e.activated = append(e.activated, r)
	if e.failWith != nil {
		return nil, e.failWith
	}
	return e.newSession(), nil
}
func (e *fakeExt) ServerNegotiate(offers []offer) (offer, extensions.Session, bool) {
	e.seen = append(e.seen, offers)
	for _, o := range offers {
		if _, reject := o.Get("reject"); !reject {
			return o, e.newSession(), true
		}
	}
	return offer{}, nil, false
}

func names(ss []extensions.Session) []string {
	var n []string
	for _, s := range ss {
		n = append(n, s.(*fakeSession).name)
	}
	return n
}

func TestClientOffers(t *testing.T) {
	a := &fakeExt{name: "a", rsv: extensions.RSV1, params: []param{{"x", "1"}}}
	b := &fakeExt{name: "b", rsv: extensions.RSV2}
	got := extensions.Format(extensions.ClientOffers([]extensions.Extension{a, b}))
	if got != "a; x=1, b" {
		t.Fatalf("ClientOffers = %q", got)
	}
	if len(extensions.ClientOffers(nil)) != 0 {
		t.Fatal("ClientOffers(nil) not empty")
	}
}

func TestServerNegotiate(t *testing.T) {
	a := func() *fakeExt { return &fakeExt{name: "a", rsv: extensions.RSV1} }
	b := func() *fakeExt { return &fakeExt{name: "b", rsv: extensions.RSV2} }

	t.Run("server order", func(t *testing.T) {
		ea, eb := a(), b()
		n, err := extensions.ServerNegotiate([]extensions.Extension{eb, ea}, []string{"a; p=1, c", "b"})
		if err != nil {
			t.Fatal(err)
		}
		if got := extensions.Format(n.Accepted); got != "b, a; p=1" {
			t.Fatalf("accepted %q", got)
		}
		if got := names(n.Sessions); !reflect.DeepEqual(got, []string{"b", "a"}) {
			t.Fatalf("sessions %q", got)
		}
		if n.RSV != extensions.RSV1|extensions.RSV2 {
			t.Fatalf("RSV %#x", n.RSV)
		}
	})
	t.Run("all offers of a name, in order", func(t *testing.T) {
		ea := a()
		n, err := extensions.ServerNegotiate([]extensions.Extension{ea}, []string{"a; reject; i=1, b, a; i=2", "a; i=3"})
		if err != nil {
			t.Fatal(err)
		}
		if len(ea.seen) != 1 || extensions.Format(ea.seen[0]) != "a; reject; i=1, a; i=2, a; i=3" {
			t.Fatalf("ServerNegotiate saw %v", ea.seen)
		}
		if got := extensions.Format(n.Accepted); got != "a; i=2" {
			t.Fatalf("accepted %q", got)
		}
	})
	t.Run("declined", func(t *testing.T) {
		ea := a()
		n, err := extensions.ServerNegotiate([]extensions.Extension{ea}, []string{"a; reject"})
		if err != nil || len(n.Accepted) != 0 || len(n.Sessions) != 0 || n.RSV != 0 {
			t.Fatalf("got %+v, %v", n, err)
		}
	})
	t.Run("not offered", func(t *testing.T) {
		ea := a()
		n, err := extensions.ServerNegotiate([]extensions.Extension{ea}, []string{"b, c"})
		if err != nil || len(n.Accepted) != 0 || len(ea.seen) != 0 {
			t.Fatalf("got %+v, %v; seen %v", n, err, ea.seen)
		}
	})
	t.Run("no request or no extensions", func(t *testing.T) {
		if n, err := extensions.ServerNegotiate([]extensions.Extension{a()}, nil); err != nil || len(n.Accepted) != 0 {
			t.Fatalf("got %+v, %v", n, err)
		}
		if n, err := extensions.ServerNegotiate(nil, []string{"a"}); err != nil || len(n.Accepted) != 0 {
			t.Fatalf("got %+v, %v", n, err)
		}
		// Without extensions, a malformed header does not matter.
		if _, err := extensions.ServerNegotiate(nil, []string{"a;"}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("malformed", func(t *testing.T) {
		_, err := extensions.ServerNegotiate([]extensions.Extension{a()}, []string{"a; x="})
		if !errors.Is(err, extensions.ErrSyntax) {
			t.Fatalf("err %v, want ErrSyntax", err)
		}
	})
	t.Run("RSV conflict", func(t *testing.T) {
		c := &fakeExt{name: "c", rsv: extensions.RSV1 | extensions.RSV3}
		_, err := extensions.ServerNegotiate([]extensions.Extension{a(), c}, []string{"a"})
		if !errors.Is(err, extensions.ErrNegotiation) {
			t.Fatalf("err %v, want ErrNegotiation", err)
		}
	})
}

func TestClientActivate(t *testing.T) {
	mk := func() (*fakeExt, *fakeExt, []extensions.Extension) {
		a := &fakeExt{name: "a", rsv: extensions.RSV1}
		b := &fakeExt{name: "b", rsv: extensions.RSV2}
		return a, b, []extensions.Extension{a, b}
	}

	t.Run("response order", func(t *testing.T) {
		a, b, exts := mk()
		n, err := extensions.ClientActivate(exts, []string{"b; q", "a; p=1"})
		if err != nil {
			t.Fatal(err)
		}
		if got := names(n.Sessions); !reflect.DeepEqual(got, []string{"b", "a"}) {
			t.Fatalf("sessions %q", got)
		}
		if extensions.Format(a.activated) != "a; p=1" || extensions.Format(b.activated) != "b; q" {
			t.Fatalf("activated with %v and %v", a.activated, b.activated)
		}
		if n.RSV != extensions.RSV1|extensions.RSV2 || extensions.Format(n.Accepted) != "b; q, a; p=1" {
			t.Fatalf("got %+v", n)
		}
		n.Close()
		for _, s := range append(a.sessions, b.sessions...) {
			if s.closed != 1 {
				t.Fatalf("session %s closed %d times", s.name, s.closed)
			}
		}
	})
	t.Run("none accepted", func(t *testing.T) {
		_, _, exts := mk()
		n, err := extensions.ClientActivate(exts, nil)
		if err != nil || len(n.Sessions) != 0 || n.RSV != 0 {
			t.Fatalf("got %+v, %v", n, err)
		}
	})
	for _, tt := range []struct {
		name, resp, want string
	}{
		{"not offered", "a, c", "not offered"},
		{"twice", "a, b, a", "twice"},
		{"malformed", "a; =", "malformed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a, b, exts := mk()
			_, err := extensions.ClientActivate(exts, []string{tt.resp})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want one mentioning %q", err, tt.want)
			}
			// Sessions activated before the failure are closed.
			for _, s := range append(a.sessions, b.sessions...) {
				if s.closed != 1 {
					t.Fatalf("session %s closed %d times", s.name, s.closed)
				}
			}
		})
	}
	t.Run("RSV collision", func(t *testing.T) {
		a := &fakeExt{name: "a", rsv: extensions.RSV1}
		c := &fakeExt{name: "c", rsv: extensions.RSV1}
		_, err := extensions.ClientActivate([]extensions.Extension{a, c}, []string{"a, c"})
		if !errors.Is(err, extensions.ErrNegotiation) {
			t.Fatalf("err %v, want ErrNegotiation", err)
		}
		if len(a.sessions) != 1 || a.sessions[0].closed != 1 {
			t.Fatal("the first session was not closed")
		}
	})
	t.Run("session refuses", func(t *testing.T) {
		a, b, exts := mk()
		cause := errors.New("bad params")
		b.failWith = cause
		_, err := extensions.ClientActivate(exts, []string{"a, b"})
		if !errors.Is(err, extensions.ErrNegotiation) || !errors.Is(err, cause) {
			t.Fatalf("err %v, want ErrNegotiation wrapping the cause", err)
		}
		if a.sessions[0].closed != 1 {
			t.Fatal("the first session was not closed")
		}
	})
}

// FuzzNegotiate runs arbitrary request and response headers through both
// sides with extensions that accept everything: nothing panics, a server
// answers only what was offered, and a client accepts the server's own
// answer.
func FuzzNegotiate(f *testing.F) {
	f.Add("a; x=1, b", "a")
	f.Add("b, a; reject, a; y", "b, a; y")
	f.Add("a;", "a, a")
	f.Add(`a; x="1", c`, "c")
	f.Fuzz(func(t *testing.T, request, response string) {
		server := []extensions.Extension{&fakeExt{name: "a", rsv: extensions.RSV1}, &fakeExt{name: "b", rsv: extensions.RSV2}}
		n, err := extensions.ServerNegotiate(server, []string{request})
		if err != nil {
			if !errors.Is(err, extensions.ErrSyntax) {
				t.Fatalf("ServerNegotiate(%q): %v", request, err)
			}
		} else {
			offered, _ := extensions.Parse(request)
			for _, acc := range n.Accepted {
				found := false
				for _, o := range offered {
					found = found || reflect.DeepEqual(o, acc)
				}
				if !found {
					t.Fatalf("server accepted %v, which %q does not offer", acc, request)
				}
			}
			client := []extensions.Extension{&fakeExt{name: "a", rsv: extensions.RSV1}, &fakeExt{name: "b", rsv: extensions.RSV2}}
			cn, err := extensions.ClientActivate(client, []string{extensions.Format(n.Accepted)})
			if err != nil {
				t.Fatalf("client refused the server's answer %q to %q: %v", extensions.Format(n.Accepted), request, err)
			}
			cn.Close()
			n.Close()
		}
		client := []extensions.Extension{&fakeExt{name: "a", rsv: extensions.RSV1}, &fakeExt{name: "b", rsv: extensions.RSV1}}
		if cn, err := extensions.ClientActivate(client, []string{response}); err == nil {
			if cn.RSV&^extensions.RSV1 != 0 || len(cn.Sessions) > 1 {
				t.Fatalf("client accepted %q: %+v", response, cn)
			}
			cn.Close()
		}
	})
}
