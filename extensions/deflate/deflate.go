// Package deflate implements permessage-deflate (RFC 7692), the WebSocket
// extension that compresses each message with DEFLATE. Enable it by
// listing [New] in websocket.AcceptOptions.Extensions (servers never
// compress unless told to) or websocket.ClientOptions.Extensions (the
// client then offers it).
//
// # Parameters
//
// All four parameters of RFC 7692 §7.1 are supported on both sides. A
// server accepts the first of a client's offers that is valid: an offer
// with an unknown parameter, a parameter given twice, or an invalid value
// is declined, as §7 requires, and the next one is tried. A client fails
// the handshake on such a response, on a response that grants a larger
// window than it offered, and on one that ignores what it required.
//
// Window sizes. Our compressor honours every window size from 8 to 15 bits
// exactly (at levels other than the default, through klauspost/compress's
// windowed encoder). zlib, which
// most peers use, cannot compress with an 8-bit window and silently uses 9
// bits when told 8; so when the peer is limited to 8 bits the
// decompressor still keeps a 9-bit (512-byte) history, and such peers
// interoperate. We only ever claim what we do: a server answers
// server_max_window_bits with a value no larger than the client asked.
//
// # Memory
//
// At the default level the package compresses and decompresses with its
// own DEFLATE code, built so that what a connection keeps between
// messages is small and everything else is borrowed from pools for the
// length of one message.
//
// Reading: the decompressor writes into a ring of exactly 2^bits bytes
// (at least 512) that is both the history the peer's matches refer to
// and the buffer the reader is served from. When the peer keeps its
// context between messages, that ring is all the connection keeps: 32 KiB
// for 15 bits, 4 KiB for 12, allocated as it fills (a connection that has
// received 5 KiB holds 8 KiB). Asking the peer for no context takeover or
// a smaller window (Options.RequestNoContextTakeover,
// Options.RequestMaxWindowBits) shrinks it to nothing or 2^bits.
//
// Writing with context takeover: the connection keeps the last 2^bits
// bytes it sent, the only ones the window lets a match refer to, plus 4
// KiB of input buffered beyond them, and an 8 KiB hash table of 16-bit
// positions: 44 KiB for 15 bits at most, allocated as it fills. Without
// context takeover (Options.NoContextTakeover, or when the peer asks for
// it) the connection keeps nothing. The rest (token buffer, Huffman and
// decoding tables, input buffer, and the windows of streams without
// context takeover: under 200 KiB for a message read and one written) is
// pooled and held only while a message is read or written.
//
// Levels 2 to 9 and HuffmanOnly use klauspost/compress's compressors
// instead: pooled without context takeover; with it each connection holds
// its own compressor from its first compressed message to its close, about
// 0.8 MiB at level 2, 1 MiB at level 5 or with a window below 15 bits, 1.4
// MiB at level 9.
//
// # Broadcast
//
// Sessions that compress without context takeover implement
// extensions.SharedEncoder, so a websocket.PreparedMessage is compressed
// once for all connections that negotiated the same level, window and
// threshold.
//
// # Limits
//
// Decompressed bytes count against the connection's MaxMessageSize, which
// the websocket driver checks after every read from the decompressor, so a
// small message that inflates to gigabytes fails with close code 1009
// after bounded work, and the decompressor itself never holds more than
// its window. Conn.Read holds at most MaxMessageSize bytes of such a
// message before it fails; Conn.Reader holds none. Corrupt compressed
// data fails the connection with 1007.
package deflate

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/klauspost/compress/flate"

	"github.com/realtime-go/realtime/extensions"

	"github.com/realtime-go/realtime/internal/quote"
)

// Name is the extension token.
const Name = "permessage-deflate"

// Defaults for Options fields left zero.
const (
	// DefaultLevel selects the package's own compressor: a greedy
	// matcher over the whole window with dynamic Huffman codes, fast,
	// compressing JSON-like text about as well as zlib's fastest level,
	// and with small per-connection state (see Memory).
	DefaultLevel = flate.BestSpeed

	// DefaultThreshold is the size under which a message is sent
	// uncompressed: below it the saving rarely pays for the CPU.
	DefaultThreshold = 128
)

// The four parameters of RFC 7692 §7.1.
const (
	serverNoContextTakeover = "server_no_context_takeover"
	clientNoContextTakeover = "client_no_context_takeover"
	serverMaxWindowBits     = "server_max_window_bits"
	clientMaxWindowBits     = "client_max_window_bits"
)

// Options configures the extension. The zero value gives the documented
// defaults; New copies it.
type Options struct {
	// Level is the compression level: 1 (DefaultLevel: the package's
	// own compressor) or klauspost/compress's 2 to 9 (smaller output,
	// more CPU, far more memory with context takeover: see Memory),
	// flate.DefaultCompression (-1, which is 5), or flate.HuffmanOnly
	// (-2). 0 and values out of range mean DefaultLevel. Levels 2 to 9
	// apply when our window is 15 bits; a smaller window uses
	// klauspost/compress's windowed encoder, which has a single level
	// (similar to level 5). Decompression is the same at every level.
	Level int

	// Threshold is the size below which a message whose size is known
	// (Conn.Write, WritePrepared) is sent uncompressed. Streamed messages
	// (Conn.Writer) are always compressed. 0 means DefaultThreshold; a
	// negative value compresses every message, even empty ones.
	Threshold int

	// NoContextTakeover makes our side compress every message on its
	// own: a server answers with server_no_context_takeover, a client
	// offers client_no_context_takeover. Compression is then a little
	// worse for streams of similar messages, but the connection holds no
	// compressor between messages, and a server shares the compressed form
	// of prepared messages among connections.
	NoContextTakeover bool

	// MaxWindowBits bounds the window of our compressor to 2^MaxWindowBits
	// bytes, 8 to 15; 0 means 15. A client offers client_max_window_bits
	// with this value (without a value when 15); a server answers
	// server_max_window_bits when it is below 15 or the client asked.
	// A smaller window compresses a little worse; with context takeover
	// at the default level it shrinks what a connection keeps.
	MaxWindowBits int

	// RequestNoContextTakeover asks the peer to compress every message on
	// its own, so the connection keeps no history of what the peer sent:
	// a client offers server_no_context_takeover and fails the handshake
	// if the server does not accept it; a server answers
	// client_no_context_takeover.
	RequestNoContextTakeover bool

	// RequestMaxWindowBits, 8 to 14, asks the peer to compress with a
	// window of at most 2^RequestMaxWindowBits bytes, which bounds the
	// history the connection keeps: a client offers
	// server_max_window_bits and fails the handshake if the server grants
	// a larger window or none; a server answers client_max_window_bits
	// when the client's offer allows it. 0 (or 15) asks for nothing.
	RequestMaxWindowBits int
}

// normalize applies the defaults and clamps invalid values.
func (o Options) normalize() Options {
	switch {
	case o.Level == flate.DefaultCompression:
		o.Level = 5 // what klauspost/compress uses for DefaultCompression
	case o.Level == 0, o.Level < flate.HuffmanOnly, o.Level > flate.BestCompression:
		o.Level = DefaultLevel
	}
	if o.Threshold == 0 {
		o.Threshold = DefaultThreshold
	}
	if o.MaxWindowBits < 8 || o.MaxWindowBits > 15 {
		o.MaxWindowBits = 15
	}
	if o.RequestMaxWindowBits < 8 || o.RequestMaxWindowBits > 14 {
		o.RequestMaxWindowBits = 0
	}
	return o
}

// New returns the permessage-deflate extension configured by opts; nil
// means the zero Options.
func New(opts *Options) extensions.Extension {
	var o Options
	if opts != nil {
		o = *opts
	}
	return &extension{o: o.normalize()}
}

type extension struct{ o Options }

func (e *extension) Name() string { return Name }
func (e *extension) RSV() byte    { return extensions.RSV1 }

// ClientOffer returns the client's single offer. It always includes
// client_max_window_bits, so that a server may limit our window.
func (e *extension) ClientOffer() extensions.Offer {
	o := extensions.Offer{Name: Name}
	if e.o.RequestNoContextTakeover {
		o.Params = append(o.Params, extensions.Param{Name: serverNoContextTakeover})
	}
	if e.o.NoContextTakeover {
		o.Params = append(o.Params, extensions.Param{Name: clientNoContextTakeover})
	}
	if e.o.RequestMaxWindowBits != 0 {
		o.Params = append(o.Params, extensions.Param{Name: serverMaxWindowBits, Value: strconv.Itoa(e.o.RequestMaxWindowBits)})
	}
	p := extensions.Param{Name: clientMaxWindowBits}
	if e.o.MaxWindowBits < 15 {
		p.Value = strconv.Itoa(e.o.MaxWindowBits)
	}
	o.Params = append(o.Params, p)
	return o
}

// ClientActivate checks the server's response against our offer (RFC 7692
// §7 and §7.1).
func (e *extension) ClientActivate(response extensions.Offer) (extensions.Session, error) {
	p, err := parseParams(response.Params, true)
	if err != nil {
		return nil, err
	}
	cfg := config{
		level:     e.o.Level,
		threshold: e.o.Threshold,
		ownNoCtx:  e.o.NoContextTakeover || p.clientNoCtx,
		ownBits:   e.o.MaxWindowBits,
		peerNoCtx: p.serverNoCtx,
		peerBits:  15,
	}
	if e.o.RequestNoContextTakeover && !p.serverNoCtx {
		return nil, errors.New("server did not accept server_no_context_takeover")
	}
	if p.serverBits != 0 {
		if e.o.RequestMaxWindowBits != 0 && p.serverBits > e.o.RequestMaxWindowBits {
			return nil, fmt.Errorf("server_max_window_bits=%d exceeds the %d offered", p.serverBits, e.o.RequestMaxWindowBits)
		}
		cfg.peerBits = p.serverBits
	} else if e.o.RequestMaxWindowBits != 0 {
		return nil, errors.New("server did not accept server_max_window_bits")
	}
	if p.clientBits != 0 {
		if p.clientBits > e.o.MaxWindowBits {
			return nil, fmt.Errorf("client_max_window_bits=%d exceeds the %d offered", p.clientBits, e.o.MaxWindowBits)
		}
		cfg.ownBits = p.clientBits
	}
	return newSession(cfg), nil
}

// ServerNegotiate accepts the first valid offer; no configuration a valid
// offer can ask for is unsupported.
func (e *extension) ServerNegotiate(offers []extensions.Offer) (extensions.Offer, extensions.Session, bool) {
	for _, offer := range offers {
		p, err := parseParams(offer.Params, false)
		if err != nil {
			continue
		}
		cfg := config{
			level:     e.o.Level,
			threshold: e.o.Threshold,
			ownNoCtx:  e.o.NoContextTakeover || p.serverNoCtx,
			ownBits:   e.o.MaxWindowBits,
			peerNoCtx: e.o.RequestNoContextTakeover || p.clientNoCtx,
			peerBits:  15,
		}
		if p.serverBits != 0 {
			cfg.ownBits = min(cfg.ownBits, p.serverBits)
		}
		if p.clientBits != 0 {
			cfg.peerBits = p.clientBits // the client's own promise
		}
		askClientBits := p.clientBitsOK && e.o.RequestMaxWindowBits != 0 && e.o.RequestMaxWindowBits < cfg.peerBits
		if askClientBits {
			cfg.peerBits = e.o.RequestMaxWindowBits
		}

		resp := extensions.Offer{Name: Name}
		if cfg.ownNoCtx {
			resp.Params = append(resp.Params, extensions.Param{Name: serverNoContextTakeover})
		}
		if cfg.peerNoCtx {
			resp.Params = append(resp.Params, extensions.Param{Name: clientNoContextTakeover})
		}
		if p.serverBits != 0 || cfg.ownBits < 15 {
			resp.Params = append(resp.Params, extensions.Param{Name: serverMaxWindowBits, Value: strconv.Itoa(cfg.ownBits)})
		}
		if askClientBits {
			resp.Params = append(resp.Params, extensions.Param{Name: clientMaxWindowBits, Value: strconv.Itoa(cfg.peerBits)})
		}
		return resp, newSession(cfg), true
	}
	return extensions.Offer{}, nil, false
}

// params are the parameters of one offer or response.
type params struct {
	serverNoCtx  bool
	clientNoCtx  bool
	serverBits   int  // 0 when absent
	clientBits   int  // 0 when absent or without a value
	clientBitsOK bool // client_max_window_bits present, with or without a value
}

// parseParams validates the parameters of an offer or, when response is
// set, of a response (RFC 7692 §7): every name known, none repeated, the
// no-context-takeover flags without a value, window bits a decimal 8 to
// 15 without leading zeros, which a response's client_max_window_bits and
// every server_max_window_bits must carry.
func parseParams(ps []extensions.Param, response bool) (params, error) {
	var p params
	seen := map[string]bool{}
	for _, x := range ps {
		if seen[x.Name] {
			return p, fmt.Errorf("parameter %s given twice", quote.Prefix(x.Name))
		}
		seen[x.Name] = true
		switch x.Name {
		case serverNoContextTakeover, clientNoContextTakeover:
			if x.Value != "" {
				return p, fmt.Errorf("parameter %s takes no value", quote.Prefix(x.Name))
			}
			if x.Name == serverNoContextTakeover {
				p.serverNoCtx = true
			} else {
				p.clientNoCtx = true
			}
		case serverMaxWindowBits:
			bits, ok := parseBits(x.Value)
			if !ok {
				return p, fmt.Errorf("invalid %s value %s", x.Name, quote.Prefix(x.Value))
			}
			p.serverBits = bits
		case clientMaxWindowBits:
			p.clientBitsOK = true
			if x.Value == "" && !response {
				continue
			}
			bits, ok := parseBits(x.Value)
			if !ok {
				return p, fmt.Errorf("invalid %s value %s", x.Name, quote.Prefix(x.Value))
			}
			p.clientBits = bits
		default:
			return p, fmt.Errorf("unknown parameter %s", quote.Prefix(x.Name))
		}
	}
	return p, nil
}

// parseBits parses a window size: 8 to 15, in decimal without leading
// zeros or sign.
func parseBits(s string) (int, bool) {
	switch len(s) {
	case 1:
		if s[0] == '8' || s[0] == '9' {
			return int(s[0] - '0'), true
		}
	case 2:
		if s[0] == '1' && s[1] >= '0' && s[1] <= '5' {
			return 10 + int(s[1]-'0'), true
		}
	}
	return 0, false
}
