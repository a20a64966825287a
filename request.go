package realtime

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// requestCopy is what a WebSocket socket keeps of the request that
// opened it, for Request. The *http.Request itself would keep net/http's
// parse of it (the request, the map of its headers, a string per value,
// the URL, its context chain) for the socket's life, for a method most
// sockets never call after they open: about 1 KiB. This is one string,
// which Request parses back.
type requestCopy struct {
	blob string               // the fields, each a uvarint length and its bytes; see copyRequest
	url  *url.URL             // nil unless the URL does not survive its String and Parse
	tls  *tls.ConnectionState // as the request's
}

// copyRequest keeps what Request returns of r: in blob, its method,
// proto, host, remote address, request URI, pattern, URL (unless url
// keeps it) and the number of header values, then the name and value of
// each, then the name and value of each path value.
func copyRequest(r *http.Request) *requestCopy {
	c := &requestCopy{tls: r.TLS}
	var us string
	if r.URL != nil {
		us = r.URL.String()
		if u, err := url.Parse(us); err != nil || *u != *r.URL {
			c.url, us = r.URL, ""
		}
	}
	n := 0
	for _, vs := range r.Header {
		n += len(vs)
	}
	names := wildcards(r.Pattern)
	size := len(r.Method) + len(r.Proto) + len(r.Host) + len(r.RemoteAddr) + len(r.RequestURI) + len(r.Pattern) + len(us) + 8*binary.MaxVarintLen16
	for k, vs := range r.Header {
		for _, v := range vs {
			size += len(k) + len(v) + 2*binary.MaxVarintLen16
		}
	}
	b := make([]byte, 0, size)
	field := func(s string) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	for _, s := range [...]string{r.Method, r.Proto, r.Host, r.RemoteAddr, r.RequestURI, r.Pattern, us} {
		field(s)
	}
	b = binary.AppendUvarint(b, uint64(n))
	for k, vs := range r.Header {
		for _, v := range vs {
			field(k)
			field(v)
		}
	}
	for _, name := range names {
		field(name)
		field(r.PathValue(name))
	}
	c.blob = string(b)
	return c
}

// request makes a new *http.Request of c.
func (c *requestCopy) request() *http.Request {
	b := c.blob
	uvarint := func() int {
		n, k := binary.Uvarint([]byte(b[:min(len(b), binary.MaxVarintLen64)]))
		b = b[k:]
		return int(n)
	}
	field := func() string {
		n := uvarint()
		s := b[:n]
		b = b[n:]
		return s
	}
	r := &http.Request{Method: field(), Proto: field(), Host: field(), RemoteAddr: field(), RequestURI: field(), Pattern: field(), TLS: c.tls, Body: http.NoBody}
	r.ProtoMajor, r.ProtoMinor, _ = http.ParseHTTPVersion(r.Proto)
	if us := field(); c.url != nil {
		u := *c.url // the caller may change it
		r.URL = &u
	} else if us != "" {
		r.URL, _ = url.Parse(us) // it did parse, into the same URL
	}
	n := uvarint()
	r.Header = make(http.Header, n)
	for range n {
		k := field()
		r.Header[k] = append(r.Header[k], field())
	}
	for b != "" {
		k := field()
		r.SetPathValue(k, field())
	}
	return r.WithContext(context.Background())
}

// wildcards returns the names of the wildcards of a ServeMux pattern,
// such as "room" of "GET /rooms/{room}/rt".
func wildcards(pattern string) []string {
	var names []string
	for {
		i := strings.IndexByte(pattern, '{')
		if i < 0 {
			return names
		}
		pattern = pattern[i+1:]
		j := strings.IndexByte(pattern, '}')
		if j < 0 {
			return names
		}
		name := strings.TrimSuffix(pattern[:j], "...")
		if name != "$" && name != "" {
			names = append(names, name)
		}
		pattern = pattern[j+1:]
	}
}

// requestValues returns a context with the values of ctx, a request's
// context, and not its lifetime: what a socket keeps for its own
// context. When those values are net/http's alone, as with a handler
// that net/http calls directly, it is a context of their own, shared by
// the handler's sockets: keeping ctx would keep net/http's chain of
// contexts for the connection and the request (two cancelCtx, a Done
// channel, a value each), about 0.4 KiB of every idle socket.
func (h *handler) requestValues(ctx context.Context) context.Context {
	if v := h.netHTTPValues(ctx); v != nil {
		return v
	}
	return context.WithoutCancel(ctx)
}

// httpValues is a context holding net/http's values for a server and
// a local address, and nothing else.
type httpValues struct {
	srv  *http.Server
	addr string // the local address: its network and String
	ctx  context.Context
}

// netHTTPValues returns a context with the values of ctx if those are
// the two net/http gives a request (http.ServerContextKey and
// http.LocalAddrContextKey) and no others, or nil. A context does not
// list its values, but the ones of package context describe their
// chain, values included, in their String: net/http's is
// "context.Background.WithValue(<server key>, *http.Server).WithValue(<addr
// key>, ADDR).WithCancel.WithCancel", and any value added by a
// BaseContext, a ConnContext or middleware, or a context of another
// kind, makes it another.
//
// The handler keeps the last such context and gives it to every socket
// of the same server and local address. Its address value is then equal
// to the socket's own, by String and network, though maybe not the same
// *net.TCPAddr.
func (h *handler) netHTTPValues(ctx context.Context) context.Context {
	srv, ok := ctx.Value(http.ServerContextKey).(*http.Server)
	if !ok {
		return nil
	}
	addr, ok := ctx.Value(http.LocalAddrContextKey).(net.Addr)
	if !ok || addr == nil {
		return nil
	}
	as := addr.String()
	if fmt.Sprint(ctx) != "context.Background.WithValue("+httpServerKey+", *http.Server).WithValue("+httpAddrKey+", "+as+").WithCancel.WithCancel" {
		return nil
	}
	key := addr.Network() + " " + as
	if v := h.httpValues.Load(); v != nil && v.srv == srv && v.addr == key {
		return v.ctx
	}
	v := &httpValues{srv: srv, addr: key}
	v.ctx = context.WithValue(context.WithValue(context.Background(), http.ServerContextKey, srv), http.LocalAddrContextKey, addr)
	h.httpValues.Store(v)
	return v.ctx
}

// httpServerKey and httpAddrKey are net/http's context keys as a
// context's String shows them.
var (
	httpServerKey = fmt.Sprint(http.ServerContextKey)
	httpAddrKey   = fmt.Sprint(http.LocalAddrContextKey)
)
