package deflate_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/realtime-go/realtime/extensions"
	"github.com/realtime-go/realtime/extensions/deflate"
)

func serverAnswer(t *testing.T, opts *deflate.Options, request string) (string, extensions.Negotiated) {
	t.Helper()
	n, err := extensions.ServerNegotiate([]extensions.Extension{deflate.New(opts)}, []string{request})
	if err != nil {
		t.Fatalf("ServerNegotiate(%q): %v", request, err)
	}
	t.Cleanup(n.Close)
	return extensions.Format(n.Accepted), n
}

func TestServerNegotiate(t *testing.T) {
	const pmd = "permessage-deflate"
	type tc struct {
		opts    *deflate.Options
		request string
		want    string // "" when declined
	}
	tests := []tc{
		{nil, pmd, pmd},
		{nil, pmd + "; client_max_window_bits", pmd},
		{nil, pmd + "; server_no_context_takeover", pmd + "; server_no_context_takeover"},
		{nil, pmd + "; client_no_context_takeover", pmd + "; client_no_context_takeover"},
		{nil, pmd + "; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits",
			pmd + "; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10"},
		{nil, pmd + `; server_max_window_bits="12"`, pmd + "; server_max_window_bits=12"},
		{nil, "x-webkit-deflate-frame, " + pmd, pmd},

		// Our own side.
		{&deflate.Options{NoContextTakeover: true}, pmd, pmd + "; server_no_context_takeover"},
		{&deflate.Options{MaxWindowBits: 12}, pmd, pmd + "; server_max_window_bits=12"},
		{&deflate.Options{MaxWindowBits: 12}, pmd + "; server_max_window_bits=14", pmd + "; server_max_window_bits=12"},
		{&deflate.Options{MaxWindowBits: 12}, pmd + "; server_max_window_bits=9", pmd + "; server_max_window_bits=9"},
		{&deflate.Options{MaxWindowBits: 15}, pmd, pmd},
		{&deflate.Options{MaxWindowBits: 16}, pmd, pmd}, // out of range: 15

		// What we ask of the client.
		{&deflate.Options{RequestNoContextTakeover: true}, pmd, pmd + "; client_no_context_takeover"},
		{&deflate.Options{RequestMaxWindowBits: 10}, pmd + "; client_max_window_bits", pmd + "; client_max_window_bits=10"},
		{&deflate.Options{RequestMaxWindowBits: 10}, pmd + "; client_max_window_bits=12", pmd + "; client_max_window_bits=10"},
		{&deflate.Options{RequestMaxWindowBits: 10}, pmd + "; client_max_window_bits=9", pmd}, // already smaller
		{&deflate.Options{RequestMaxWindowBits: 10}, pmd, pmd},                                // cannot ask
		{&deflate.Options{RequestMaxWindowBits: 15}, pmd + "; client_max_window_bits", pmd},   // nothing to ask

		// The first acceptable offer wins.
		{nil, pmd + "; server_no_context_takeover, " + pmd, pmd + "; server_no_context_takeover"},
		{nil, pmd + "; foo, " + pmd + "; server_max_window_bits=7, " + pmd + "; server_max_window_bits=11", pmd + "; server_max_window_bits=11"},
		{nil, pmd + "; server_max_window_bits, " + pmd, pmd},
	}
	for bits := 8; bits <= 15; bits++ {
		tests = append(tests,
			tc{nil, fmt.Sprintf("%s; server_max_window_bits=%d", pmd, bits), fmt.Sprintf("%s; server_max_window_bits=%d", pmd, bits)},
			tc{nil, fmt.Sprintf("%s; client_max_window_bits=%d", pmd, bits), pmd},
			tc{&deflate.Options{MaxWindowBits: bits}, pmd + "; server_max_window_bits=15", fmt.Sprintf("%s; server_max_window_bits=%d", pmd, bits)},
		)
		if bits < 15 {
			tests = append(tests, tc{&deflate.Options{RequestMaxWindowBits: bits}, pmd + "; client_max_window_bits",
				fmt.Sprintf("%s; client_max_window_bits=%d", pmd, bits)})
		}
	}
	// Offers the server must decline (RFC 7692 §7).
	for _, p := range []string{
		"server_max_window_bits", "server_max_window_bits=7", "server_max_window_bits=16", "server_max_window_bits=x",
		"server_max_window_bits=08", "server_max_window_bits=015", "server_max_window_bits=+9", "server_max_window_bits=-9",
		"server_max_window_bits=9.0", "server_max_window_bits=0", "server_max_window_bits=1", "server_max_window_bits=150",
		"client_max_window_bits=7", "client_max_window_bits=16", "client_max_window_bits=x", "client_max_window_bits=08",
		"client_max_window_bits=0", `client_max_window_bits="015"`,
		"server_no_context_takeover=1", "server_no_context_takeover=true", "client_no_context_takeover=1",
		"server_no_context_takeover; server_no_context_takeover",
		"client_no_context_takeover; client_no_context_takeover",
		"server_max_window_bits=10; server_max_window_bits=10",
		"client_max_window_bits; client_max_window_bits",
		"client_max_window_bits=10; client_max_window_bits",
		"foo", "foo=bar", "Server_No_Context_Takeover", "server_no_context_takeover; x",
	} {
		tests = append(tests, tc{nil, pmd + "; " + p, ""})
	}
	for _, tt := range tests {
		got, n := serverAnswer(t, tt.opts, tt.request)
		if got != tt.want {
			t.Errorf("%+v: answer to %q = %q, want %q", tt.opts, tt.request, got, tt.want)
		}
		if tt.want != "" && (len(n.Sessions) != 1 || n.RSV != extensions.RSV1) {
			t.Errorf("answer to %q: %d sessions, RSV %#x", tt.request, len(n.Sessions), n.RSV)
		}
	}
}

// Sessions that compress without context takeover share prepared
// messages, keyed by what changes the output.
func TestSharedEncoderKey(t *testing.T) {
	key := func(opts *deflate.Options, request string) string {
		_, n := serverAnswer(t, opts, request)
		if se, ok := n.Sessions[0].(extensions.SharedEncoder); ok {
			return se.EncodingKey()
		}
		return ""
	}
	const pmd = "permessage-deflate"
	if k := key(nil, pmd); k != "" {
		t.Fatalf("context takeover session has encoding key %q", k)
	}
	a := key(&deflate.Options{NoContextTakeover: true}, pmd)
	b := key(nil, pmd+"; server_no_context_takeover")
	if a == "" || a != b {
		t.Fatalf("keys %q and %q, want equal and non-empty", a, b)
	}
	c := key(nil, pmd+"; server_no_context_takeover; server_max_window_bits=10")
	d := key(&deflate.Options{Level: 9}, pmd+"; server_no_context_takeover")
	e := key(&deflate.Options{Threshold: -1}, pmd+"; server_no_context_takeover")
	if c == a || d == a || e == a || c == d {
		t.Fatalf("keys do not tell parameters apart: %q %q %q %q", a, c, d, e)
	}
	// What only changes decoding does not change the key.
	if f := key(nil, pmd+"; server_no_context_takeover; client_no_context_takeover; client_max_window_bits=9"); f != a {
		t.Fatalf("key %q, want %q", f, a)
	}
}

func TestClientOffer(t *testing.T) {
	for _, tt := range []struct {
		opts *deflate.Options
		want string
	}{
		{nil, "permessage-deflate; client_max_window_bits"},
		{&deflate.Options{NoContextTakeover: true}, "permessage-deflate; client_no_context_takeover; client_max_window_bits"},
		{&deflate.Options{RequestNoContextTakeover: true}, "permessage-deflate; server_no_context_takeover; client_max_window_bits"},
		{&deflate.Options{RequestMaxWindowBits: 10}, "permessage-deflate; server_max_window_bits=10; client_max_window_bits"},
		{&deflate.Options{RequestMaxWindowBits: 8}, "permessage-deflate; server_max_window_bits=8; client_max_window_bits"},
		{&deflate.Options{RequestMaxWindowBits: 15}, "permessage-deflate; client_max_window_bits"},
		{&deflate.Options{RequestMaxWindowBits: 7}, "permessage-deflate; client_max_window_bits"},
		{&deflate.Options{MaxWindowBits: 12}, "permessage-deflate; client_max_window_bits=12"},
		{&deflate.Options{MaxWindowBits: 8}, "permessage-deflate; client_max_window_bits=8"},
		{&deflate.Options{MaxWindowBits: 7}, "permessage-deflate; client_max_window_bits"},
		{&deflate.Options{NoContextTakeover: true, RequestNoContextTakeover: true, MaxWindowBits: 9, RequestMaxWindowBits: 11},
			"permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=11; client_max_window_bits=9"},
	} {
		e := deflate.New(tt.opts)
		if e.Name() != "permessage-deflate" || e.RSV() != extensions.RSV1 {
			t.Fatalf("Name %q RSV %#x", e.Name(), e.RSV())
		}
		if got := extensions.Format(extensions.ClientOffers([]extensions.Extension{e})); got != tt.want {
			t.Errorf("%+v: offer %q, want %q", tt.opts, got, tt.want)
		}
	}
}

func TestClientActivate(t *testing.T) {
	const pmd = "permessage-deflate"
	type tc struct {
		opts     *deflate.Options
		response string
		ok       bool
	}
	tests := []tc{
		{nil, pmd, true},
		{nil, pmd + "; server_no_context_takeover", true},
		{nil, pmd + "; client_no_context_takeover", true},
		{nil, pmd + "; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=9; client_max_window_bits=9", true},
		{nil, pmd + `; client_max_window_bits="10"`, true},

		{nil, pmd + "; client_max_window_bits", false}, // a response must give a value
		{nil, pmd + "; server_max_window_bits", false},
		{nil, pmd + "; foo", false},
		{nil, pmd + "; server_no_context_takeover=1", false},
		{nil, pmd + "; client_no_context_takeover=x", false},
		{nil, pmd + "; server_no_context_takeover; server_no_context_takeover", false},
		{nil, pmd + "; client_max_window_bits=10; client_max_window_bits=10", false},
		{nil, pmd + "; server_max_window_bits=10; server_max_window_bits=11", false},
		{nil, pmd + ", " + pmd, false},
		{nil, "x-foo", false},
		{nil, pmd + "; x=", false},

		// Limits we offered.
		{&deflate.Options{MaxWindowBits: 10}, pmd + "; client_max_window_bits=10", true},
		{&deflate.Options{MaxWindowBits: 10}, pmd + "; client_max_window_bits=8", true},
		{&deflate.Options{MaxWindowBits: 10}, pmd + "; client_max_window_bits=11", false},
		{&deflate.Options{MaxWindowBits: 10}, pmd, true},
		// What we required.
		{&deflate.Options{RequestMaxWindowBits: 10}, pmd + "; server_max_window_bits=10", true},
		{&deflate.Options{RequestMaxWindowBits: 10}, pmd + "; server_max_window_bits=9", true},
		{&deflate.Options{RequestMaxWindowBits: 10}, pmd + "; server_max_window_bits=11", false},
		{&deflate.Options{RequestMaxWindowBits: 10}, pmd, false},
		{&deflate.Options{RequestNoContextTakeover: true}, pmd + "; server_no_context_takeover", true},
		{&deflate.Options{RequestNoContextTakeover: true}, pmd, false},
		{&deflate.Options{NoContextTakeover: true}, pmd, true},
	}
	for bits := 8; bits <= 15; bits++ {
		tests = append(tests,
			tc{nil, fmt.Sprintf("%s; server_max_window_bits=%d", pmd, bits), true},
			tc{nil, fmt.Sprintf("%s; client_max_window_bits=%d", pmd, bits), true},
		)
	}
	for _, v := range []string{"7", "16", "x", "08", "0", "015", "+9", "150"} {
		tests = append(tests,
			tc{nil, pmd + "; server_max_window_bits=" + v, false},
			tc{nil, pmd + "; client_max_window_bits=" + v, false},
		)
	}
	for _, tt := range tests {
		n, err := extensions.ClientActivate([]extensions.Extension{deflate.New(tt.opts)}, []string{tt.response})
		if (err == nil) != tt.ok {
			t.Errorf("%+v: response %q: err %v, want ok=%v", tt.opts, tt.response, err, tt.ok)
		}
		if err == nil {
			if len(n.Sessions) != 1 || n.RSV != extensions.RSV1 {
				t.Errorf("response %q: %d sessions, RSV %#x", tt.response, len(n.Sessions), n.RSV)
			}
			n.Close()
		}
	}
}

// FuzzNegotiate runs arbitrary offers through a server and its answer
// through a client that made the same offer: nothing panics, the server
// answers only what RFC 7692 allows, and the client accepts every answer
// the server gives.
func FuzzNegotiate(f *testing.F) {
	f.Add("permessage-deflate; client_max_window_bits", 0, 0, false, false)
	f.Add("permessage-deflate; server_max_window_bits=10; client_max_window_bits=9", 12, 11, true, false)
	f.Add("permessage-deflate; server_no_context_takeover; client_no_context_takeover", 0, 0, false, true)
	f.Add("permessage-deflate; foo, permessage-deflate; server_max_window_bits=8", 9, 8, true, true)
	f.Fuzz(func(t *testing.T, request string, maxBits, reqBits int, noCtx, reqNoCtx bool) {
		opts := &deflate.Options{MaxWindowBits: maxBits, RequestMaxWindowBits: reqBits, NoContextTakeover: noCtx, RequestNoContextTakeover: reqNoCtx}
		n, err := extensions.ServerNegotiate([]extensions.Extension{deflate.New(opts)}, []string{request})
		if err != nil {
			return // malformed
		}
		defer n.Close()
		if len(n.Accepted) == 0 {
			return
		}
		offers, _ := extensions.Parse(request)
		resp := n.Accepted[0]
		// The offer that was accepted is the first one the client would
		// accept this answer to.
		for _, o := range offers {
			if o.Name != deflate.Name {
				continue
			}
			client := offerClient{o}
			cn, err := extensions.ClientActivate([]extensions.Extension{client}, []string{extensions.Format(n.Accepted)})
			if err == nil {
				cn.Close()
				checkAnswer(t, o, resp)
				return
			}
		}
		t.Fatalf("server answered %q to %q, which answers none of the offers", resp, request)
	})
}

// offerClient is a client extension that made a given offer and checks
// answers to it by RFC 7692 §7.
type offerClient struct{ offer extensions.Offer }

func (c offerClient) Name() string                  { return deflate.Name }
func (c offerClient) RSV() byte                     { return extensions.RSV1 }
func (c offerClient) ClientOffer() extensions.Offer { return c.offer }
func (c offerClient) ServerNegotiate([]extensions.Offer) (extensions.Offer, extensions.Session, bool) {
	return extensions.Offer{}, nil, false
}
func (c offerClient) ClientActivate(resp extensions.Offer) (extensions.Session, error) {
	if err := answers(c.offer, resp); err != nil {
		return nil, err
	}
	// A real client with default options must accept it too.
	return deflate.New(nil).ClientActivate(resp)
}

func answers(o, r extensions.Offer) error {
	seen := map[string]bool{}
	for _, p := range o.Params {
		if seen[p.Name] {
			return fmt.Errorf("offer repeats %s", p.Name)
		}
		seen[p.Name] = true
	}
	if _, ok := o.Get("server_no_context_takeover"); ok {
		if _, ok := r.Get("server_no_context_takeover"); !ok {
			return fmt.Errorf("server_no_context_takeover not accepted")
		}
	}
	if v, ok := o.Get("server_max_window_bits"); ok {
		rv, rok := r.Get("server_max_window_bits")
		if !rok || len(rv) > len(v) || len(rv) == len(v) && rv > v {
			return fmt.Errorf("server_max_window_bits=%s answered with %q", v, rv)
		}
	}
	if rv, ok := r.Get("client_max_window_bits"); ok {
		v, ok := o.Get("client_max_window_bits")
		if !ok {
			return fmt.Errorf("client_max_window_bits answered but not offered")
		}
		if v != "" && (len(rv) > len(v) || len(rv) == len(v) && rv > v) {
			return fmt.Errorf("client_max_window_bits=%s answered with %s", v, rv)
		}
	}
	return nil
}

func checkAnswer(t *testing.T, o, r extensions.Offer) {
	t.Helper()
	if err := answers(o, r); err != nil {
		t.Fatalf("answer %q to %q: %v", r, o, err)
	}
	if strings.Contains(r.String(), "=0") {
		t.Fatalf("answer %q", r)
	}
}
