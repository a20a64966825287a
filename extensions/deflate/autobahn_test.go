package deflate_test

import (
	"bytes"
	"cmp"
	stdflate "compress/flate"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/realtime-go/realtime/extensions"
	"github.com/realtime-go/realtime/extensions/deflate"
)

// A model of the permessage-deflate side of the Autobahn|Testsuite
// (autobahntestsuite 0.8 on autobahn 0.10): the offers its fuzzingclient
// makes in cases 12.* and 13.*, the answers its fuzzingserver gives, and
// the checks it applies to ours, as its case definitions
// (case/case12_x_x.py) and its extension classes
// (websocket/compress_deflate.py) describe them. The cases then pass
// messages of the cases' sizes both ways, with a zlib-like peer
// (compress/flate) configured as the testsuite's would be.

// abOffer is the testsuite's PerMessageDeflateOffer.
type abOffer struct {
	acceptNoContextTakeover  bool
	acceptMaxWindowBits      bool
	requestNoContextTakeover bool
	requestMaxWindowBits     int
}

// abDefault is PerMessageDeflateOffer() with its defaults.
func abDefault() abOffer { return abOffer{acceptNoContextTakeover: true, acceptMaxWindowBits: true} }

// String is getExtensionString.
func (o abOffer) String() string {
	s := "permessage-deflate"
	if o.acceptNoContextTakeover {
		s += "; client_no_context_takeover"
	}
	if o.acceptMaxWindowBits {
		s += "; client_max_window_bits"
	}
	if o.requestNoContextTakeover {
		s += "; server_no_context_takeover"
	}
	if o.requestMaxWindowBits != 0 {
		s += fmt.Sprintf("; server_max_window_bits=%d", o.requestMaxWindowBits)
	}
	return s
}

// abParams is the testsuite's _parseExtensionsHeader for one extension:
// names lowercased, values unquoted, a parameter without a value true
// (here "").
func abParams(t *testing.T, o extensions.Offer) map[string][]string {
	t.Helper()
	m := map[string][]string{}
	for _, p := range o.Params {
		k := strings.ToLower(p.Name)
		m[k] = append(m[k], p.Value)
	}
	return m
}

func abBits(v string) (int, bool) {
	n, err := strconv.Atoi(v)
	return n, err == nil && n >= 8 && n <= 15
}

// abParseOffer is PerMessageDeflateOffer.parse, which the fuzzingserver
// applies to our client's offer: any error fails the handshake.
func abParseOffer(t *testing.T, o extensions.Offer) (abOffer, error) {
	offer := abOffer{acceptNoContextTakeover: true} // the parser's default
	for k, vs := range abParams(t, o) {
		if len(vs) > 1 {
			return offer, fmt.Errorf("multiple occurrence of %s", k)
		}
		v := vs[0]
		switch k {
		case "client_max_window_bits":
			if v != "" {
				return offer, fmt.Errorf("illegal value %q for %s", v, k)
			}
			offer.acceptMaxWindowBits = true
		case "client_no_context_takeover":
			if v != "" {
				return offer, fmt.Errorf("illegal value %q for %s", v, k)
			}
			offer.acceptNoContextTakeover = true
		case "server_max_window_bits":
			n, ok := abBits(v)
			if !ok {
				return offer, fmt.Errorf("illegal value %q for %s", v, k)
			}
			offer.requestMaxWindowBits = n
		case "server_no_context_takeover":
			if v != "" {
				return offer, fmt.Errorf("illegal value %q for %s", v, k)
			}
			offer.requestNoContextTakeover = true
		default:
			return offer, fmt.Errorf("illegal parameter %s", k)
		}
	}
	return offer, nil
}

// abResponse is PerMessageDeflateResponse: the parameters of an answer.
type abResponse struct {
	clientMaxWindowBits     int
	clientNoContextTakeover bool
	serverMaxWindowBits     int
	serverNoContextTakeover bool
}

// abParseResponse is PerMessageDeflateResponse.parse, which the
// fuzzingclient applies to our server's answer: any error fails the
// handshake.
func abParseResponse(t *testing.T, o extensions.Offer) (abResponse, error) {
	var r abResponse
	for k, vs := range abParams(t, o) {
		if len(vs) > 1 {
			return r, fmt.Errorf("multiple occurrence of %s", k)
		}
		v := vs[0]
		switch k {
		case "client_max_window_bits", "server_max_window_bits":
			n, ok := abBits(v) // a parameter without a value is int(True), 1: refused
			if !ok {
				return r, fmt.Errorf("illegal value %q for %s", v, k)
			}
			if k == "client_max_window_bits" {
				r.clientMaxWindowBits = n
			} else {
				r.serverMaxWindowBits = n
			}
		case "client_no_context_takeover", "server_no_context_takeover":
			if v != "" {
				return r, fmt.Errorf("illegal value %q for %s", v, k)
			}
			if k == "client_no_context_takeover" {
				r.clientNoContextTakeover = true
			} else {
				r.serverNoContextTakeover = true
			}
		default:
			return r, fmt.Errorf("illegal parameter %s", k)
		}
	}
	return r, nil
}

// abAccept is one of the fuzzingserver's accept functions of case 13
// (accept1 … accept7; 12.* use accept1): the answer it gives to the
// offers, or ok == false when it accepts none, which makes the case
// UNIMPLEMENTED.
func abAccept(k int, offers []abOffer) (resp string, ok bool) {
	answer := func(o abOffer, reqNoCtx bool, reqBits int) string {
		s := "permessage-deflate"
		if o.requestNoContextTakeover {
			s += "; server_no_context_takeover"
		}
		if o.requestMaxWindowBits != 0 {
			s += fmt.Sprintf("; server_max_window_bits=%d", o.requestMaxWindowBits)
		}
		if reqNoCtx {
			s += "; client_no_context_takeover"
		}
		if reqBits != 0 {
			s += fmt.Sprintf("; client_max_window_bits=%d", reqBits)
		}
		return s
	}
	if k == 7 {
		for _, j := range []int{5, 2, 1} {
			if r, ok := abAccept(j, offers); ok {
				return r, true
			}
		}
		return "", false
	}
	for _, o := range offers {
		switch k {
		case 1:
			return answer(o, false, 0), true
		case 2:
			if o.acceptNoContextTakeover {
				return answer(o, true, 0), true
			}
		case 3, 4:
			if o.acceptMaxWindowBits {
				return answer(o, false, map[int]int{3: 8, 4: 15}[k]), true
			}
		case 5, 6:
			if o.acceptNoContextTakeover && o.acceptMaxWindowBits {
				return answer(o, true, map[int]int{5: 8, 6: 15}[k]), true
			}
		}
	}
	return "", false
}

// abCaseOffers are the client offers of 12.* and 13.1 … 13.7.
func abCaseOffers() map[string][]abOffer {
	d := abDefault()
	with := func(noCtx bool, bits int) abOffer {
		o := abDefault()
		o.requestNoContextTakeover, o.requestMaxWindowBits = noCtx, bits
		return o
	}
	return map[string][]abOffer{
		"12":   {d},
		"13.1": {d},
		"13.2": {with(true, 0)},
		"13.3": {with(false, 8)},
		"13.4": {with(false, 15)},
		"13.5": {with(true, 8)},
		"13.6": {with(true, 15)},
		"13.7": {with(true, 8), with(true, 0), d},
	}
}

// abPeer is the testsuite's PerMessageDeflate processor, on
// compress/flate as zlib stands in.
type abPeer struct {
	compressNoCtx, decompressNoCtx bool
	compressBits                   int // only 15 occurs in these cases
	fw                             *stdflate.Writer
	out                            bytes.Buffer
	hist                           []byte
}

func (p *abPeer) compress(t *testing.T, m []byte) []byte {
	t.Helper()
	if p.compressBits != 15 {
		t.Fatalf("the model compresses with 15-bit windows only, not %d", p.compressBits)
	}
	p.out.Reset()
	if p.fw == nil || p.compressNoCtx {
		p.fw, _ = stdflate.NewWriter(&p.out, stdflate.DefaultCompression)
	}
	p.fw.Write(m)
	p.fw.Flush()
	b := p.out.Bytes()
	if !bytes.HasSuffix(b, []byte{0, 0, 0xff, 0xff}) {
		t.Fatal("no sync flush")
	}
	return append([]byte(nil), b[:len(b)-4]...)
}

func (p *abPeer) decompress(t *testing.T, wire []byte) []byte {
	t.Helper()
	if p.decompressNoCtx {
		p.hist = nil
	}
	r := stdflate.NewReaderDict(io.MultiReader(bytes.NewReader(wire), bytes.NewReader([]byte{0, 0, 0xff, 0xff, 1, 0, 0, 0xff, 0xff})), p.hist)
	m, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("the peer cannot decompress our message: %v", err)
	}
	p.hist = append(p.hist, m...)
	if len(p.hist) > 1<<15 {
		p.hist = p.hist[len(p.hist)-1<<15:]
	}
	return m
}

// abSizes are the payload sizes of the cases (MSG_SIZES), fewer of each.
var abSizes = []int{16, 64, 256, 1024, 4096, 8192, 16384, 32768, 65536, 131072}

// abExchange echoes a few messages of every size through our session s
// and the peer, as the cases do: the testsuite sends, we decompress and
// compress the echo, it decompresses and compares.
func abExchange(t *testing.T, s extensions.Session, peer *abPeer) {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 0, 1<<18)
	for i := 0; len(data) < 1<<18; i++ {
		data = fmt.Appendf(data, `{"id":%d,"name":"item %d","price":%d.%02d,"tags":["json","data"],"active":%v},`, i, rng.IntN(1000), rng.IntN(100), rng.IntN(100), i%3 == 0)
	}
	off := 0
	for _, size := range abSizes {
		for range 3 {
			m := make([]byte, size)
			for i := range m {
				m[i] = data[(off+i)%len(data)]
			}
			off = (off + size) % len(data)
			wire := peer.compress(t, m)
			r, err := s.Decode(bytes.NewReader(wire), extensions.RSV1)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(r)
			if err != nil || !bytes.Equal(got, m) {
				t.Fatalf("%d-byte message from the peer: %v", size, err)
			}
			var echo bytes.Buffer
			w, rsv, err := s.Encode(&echo, extensions.Message{Binary: true, Size: int64(size)})
			if err != nil {
				t.Fatal(err)
			}
			if w == nil {
				echo.Write(got)
			} else {
				w.Write(got)
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
			}
			back := echo.Bytes()
			if rsv&extensions.RSV1 != 0 {
				back = peer.decompress(t, back)
			}
			if !bytes.Equal(back, m) {
				t.Fatalf("%d-byte echo differs", size)
			}
		}
	}
}

// The Autobahn server testee's extension (interop/cmd/autobahn-server
// -deflate) and the client testee's.
var abTestee = &deflate.Options{Threshold: -1}

// TestAutobahnServerCases replays the fuzzingclient's offers of cases
// 12.* and 13.* against our server: every offer set is accepted, the
// answer passes the testsuite's parser, and messages of every case size
// go both ways with the parameters each side derives from the answer.
func TestAutobahnServerCases(t *testing.T) {
	for name, offers := range abCaseOffers() {
		t.Run(name, func(t *testing.T) {
			var strs []string
			for _, o := range offers {
				strs = append(strs, o.String())
			}
			header := strings.Join(strs, ", ")
			n, err := extensions.ServerNegotiate([]extensions.Extension{deflate.New(abTestee)}, []string{header})
			if err != nil {
				t.Fatalf("ServerNegotiate(%q): %v", header, err)
			}
			defer n.Close()
			if len(n.Accepted) != 1 {
				t.Fatalf("offers %q declined: the case would be UNIMPLEMENTED", header)
			}
			resp, err := abParseResponse(t, n.Accepted[0])
			if err != nil {
				t.Fatalf("answer %q to %q: the testsuite fails the handshake: %v", n.Accepted[0], header, err)
			}
			// The first offer is accepted; the answer honours it.
			first := offers[0]
			if first.requestNoContextTakeover && !resp.serverNoContextTakeover {
				t.Fatalf("answer %q ignores server_no_context_takeover", n.Accepted[0])
			}
			if first.requestMaxWindowBits != 0 && (resp.serverMaxWindowBits == 0 || resp.serverMaxWindowBits > first.requestMaxWindowBits) {
				t.Fatalf("answer %q ignores server_max_window_bits=%d", n.Accepted[0], first.requestMaxWindowBits)
			}
			t.Logf("%s: %q → %q", name, header, n.Accepted[0])
			// createFromResponseAccept: the client compresses with
			// client_max_window_bits (0 is 15) and resets unless the
			// answer has client_no_context_takeover; it decompresses with
			// server_max_window_bits.
			peer := &abPeer{
				compressNoCtx:   resp.clientNoContextTakeover,
				decompressNoCtx: resp.serverNoContextTakeover,
				compressBits:    cmp.Or(resp.clientMaxWindowBits, 15),
			}
			abExchange(t, n.Sessions[0], peer)
		})
	}
}

// TestAutobahnClientCases replays the fuzzingserver's answers of cases
// 12.* and 13.* to our client's offer: the testsuite parses our offer,
// every accept function accepts it, our client takes every answer, and
// messages go both ways.
func TestAutobahnClientCases(t *testing.T) {
	client := deflate.New(abTestee)
	offerStr := extensions.Format(extensions.ClientOffers([]extensions.Extension{client}))
	parsed, err := extensions.Parse(offerStr)
	if err != nil || len(parsed) != 1 {
		t.Fatalf("our offer %q: %v", offerStr, err)
	}
	offer, err := abParseOffer(t, parsed[0])
	if err != nil {
		t.Fatalf("our offer %q: the testsuite fails the handshake: %v", offerStr, err)
	}
	cases := map[string]int{"12": 1}
	for k := 1; k <= 7; k++ {
		cases[fmt.Sprintf("13.%d", k)] = k
	}
	for name, k := range cases {
		t.Run(name, func(t *testing.T) {
			resp, ok := abAccept(k, []abOffer{offer})
			if !ok {
				t.Fatalf("accept%d refuses our offer %q: the case would be UNIMPLEMENTED", k, offerStr)
			}
			n, err := extensions.ClientActivate([]extensions.Extension{client}, []string{resp})
			if err != nil {
				t.Fatalf("our client refuses %q: %v", resp, err)
			}
			defer n.Close()
			t.Logf("%s: %q → %q", name, offerStr, resp)
			// createFromOfferAccept: the server compresses with the
			// window and context the offer asked of it, and decompresses
			// with what it asked of us.
			peer := &abPeer{
				compressNoCtx:   offer.requestNoContextTakeover,
				decompressNoCtx: strings.Contains(resp, "client_no_context_takeover"),
				compressBits:    cmp.Or(offer.requestMaxWindowBits, 15),
			}
			abExchange(t, n.Sessions[0], peer)
		})
	}
}
