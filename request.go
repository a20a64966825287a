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
// each, then the name and value of each path value. A field that is one
// of commonFields is kept as its index (see appendField).
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
	field := func(s string) { b = appendField(b, s) }
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
		if n < len(commonFields) {
			return commonFields[n]
		}
		n -= len(commonFields)
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

// appendField appends s to a requestCopy's blob: the index of s in
// commonFields when it is one of them, else len(commonFields) plus its
// length, and its bytes, the length and the index as a uvarint. The
// names of the headers a browser sends, and of a WebSocket handshake's,
// were most of the blob.
func appendField(b []byte, s string) []byte {
	if i, ok := commonIndex[s]; ok {
		return binary.AppendUvarint(b, uint64(i))
	}
	b = binary.AppendUvarint(b, uint64(len(commonFields)+len(s)))
	return append(b, s...)
}

// commonFields are what a request's fields often are: methods, protos,
// the names of the headers browsers and proxies send (as net/http
// canonicalizes them), and the values of a WebSocket handshake. At most
// 128, so that each is kept in a byte.
var commonFields = [...]string{
	"GET", "POST", "HTTP/1.1", "HTTP/2.0",
	"Accept", "Accept-Encoding", "Accept-Language", "Authorization", "Cache-Control",
	"Connection", "Content-Length", "Content-Type", "Cookie", "Last-Event-Id", "Origin",
	"Pragma", "Priority", "Referer", "User-Agent", "Upgrade", "Via",
	"Sec-Ch-Ua", "Sec-Ch-Ua-Mobile", "Sec-Ch-Ua-Platform",
	"Sec-Fetch-Dest", "Sec-Fetch-Mode", "Sec-Fetch-Site", "Sec-Fetch-Storage-Access",
	"Sec-Websocket-Extensions", "Sec-Websocket-Key", "Sec-Websocket-Protocol", "Sec-Websocket-Version",
	"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Real-Ip", "X-Request-Id",
	"Forwarded", "Traceparent", "Tracestate", "Baggage",
	"websocket", "13", "no-cache", "*/*", "text/event-stream",
	"gzip, deflate", "gzip, deflate, br", "gzip, deflate, br, zstd",
	"permessage-deflate; client_max_window_bits", "keep-alive",
	"empty", "cors", "same-origin", "same-site", "cross-site",
	"realtime.v1", "realtime.v2",
}

// commonIndex is the index of each of commonFields.
var commonIndex = func() map[string]int {
	m := make(map[string]int, len(commonFields))
	for i, s := range commonFields {
		m[s] = i
	}
	return m
}()

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

// httpValues is the context netHTTPValues made last, holding net/http's
// values for a server and a local address and nothing else, with what
// it was made for.
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
