package realtime

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/url"
	"strings"
)

// requestCopy is what a WebSocket socket keeps of the request that
// opened it, for Request. The *http.Request itself would keep net/http's
// parse of it (the map of its headers, the request itself) for the
// socket's life, for a method most sockets never call after they open.
type requestCopy struct {
	method, proto, host, remoteAddr, uri, pattern string

	protoMajor, protoMinor int
	url                    *url.URL
	tls                    *tls.ConnectionState
	pairs                  []string // the headers' name, value pairs, then the path values'
	nHeader                int      // of pairs, the headers'
}

// copyRequest keeps what Request returns of r.
func copyRequest(r *http.Request) *requestCopy {
	c := &requestCopy{
		method: r.Method, proto: r.Proto, host: r.Host, remoteAddr: r.RemoteAddr,
		uri: r.RequestURI, pattern: r.Pattern,
		protoMajor: r.ProtoMajor, protoMinor: r.ProtoMinor,
		url: r.URL, tls: r.TLS,
	}
	n := 0
	for _, vs := range r.Header {
		n += 2 * len(vs)
	}
	names := wildcards(r.Pattern)
	c.pairs = make([]string, 0, n+2*len(names))
	for k, vs := range r.Header {
		for _, v := range vs {
			c.pairs = append(c.pairs, k, v)
		}
	}
	c.nHeader = len(c.pairs)
	for _, name := range names {
		c.pairs = append(c.pairs, name, r.PathValue(name))
	}
	return c
}

// request makes a new *http.Request of c.
func (c *requestCopy) request() *http.Request {
	r := (&http.Request{
		Method: c.method, Proto: c.proto, ProtoMajor: c.protoMajor, ProtoMinor: c.protoMinor,
		Host: c.host, RemoteAddr: c.remoteAddr, RequestURI: c.uri, Pattern: c.pattern,
		TLS: c.tls, Header: make(http.Header, c.nHeader/2), Body: http.NoBody,
	}).WithContext(context.Background())
	if c.url != nil {
		u := *c.url // the caller may change it
		r.URL = &u
	}
	for i := 0; i < c.nHeader; i += 2 {
		r.Header[c.pairs[i]] = append(r.Header[c.pairs[i]], c.pairs[i+1])
	}
	for i := c.nHeader; i < len(c.pairs); i += 2 {
		r.SetPathValue(c.pairs[i], c.pairs[i+1])
	}
	return r
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
