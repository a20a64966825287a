package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/realtime-go/realtime/internal/quote"
)

// The HTTP requests of an EventSource and of a Socket's EventSource
// transport (its GETs and POSTs) go through net/http: an http.Client
// with Dialer.HTTPClient's settings, or one made of the Dialer's.
//
// A Dialer's own client has one http.Transport, so that the requests of
// an EventSource, or of a Socket, reuse connections and speak HTTP/2
// when the origin offers it by ALPN. net/http picks and speaks the
// protocol; what it does not do the Dialer's way is reaching the origin:
// net/http tunnels only https:// URLs through an HTTP proxy and sends
// http:// ones in forward mode, where a Dialer tunnels both by default,
// as browsers do for WebSocket; it knows no TLS configuration for the
// proxy apart from the origin's; and a refusal by the proxy comes out of
// it as a bare status text, where the Socket's switch to forward mode and
// the errors.Is(err, proxy.ErrAuth) rule need the *proxy.Error. So the
// transport's dial hooks open connections with Dialer.connect, the code
// WebSocket dials use, and net/http's own proxy support serves only
// forward mode, which it does as a Dialer would: the request in absolute
// form, with Proxy-Authorization.

// httpTransport is the http.RoundTripper of a Dialer's own client.
type httpTransport struct {
	d Dialer // a copy: the EventSource may switch its own to forward mode
	t *http.Transport

	// forward holds the proxies that requests went to in forward mode,
	// by host:port, so that the dial hooks, which get an address only,
	// tell a connection to such a proxy from one to an origin.
	forward sync.Map // string -> *url.URL
}

// newHTTPClient returns the client of d's EventSource requests, and
// whether it is the Dialer's own, whose idle connections its owner
// closes when done.
func (d *Dialer) newHTTPClient() (_ *http.Client, own bool) {
	if d.HTTPClient != nil {
		c := *d.HTTPClient
		if c.Jar == nil {
			c.Jar = d.Jar
		}
		c.CheckRedirect = checkRedirect(c.CheckRedirect)
		return &c, false
	}
	tr := &httpTransport{d: *d}
	tr.t = &http.Transport{
		Proxy:                  tr.proxy,
		DialContext:            tr.dial,
		DialTLSContext:         tr.dialTLS,
		ForceAttemptHTTP2:      true,
		MaxResponseHeaderBytes: maxResponseHeader,
		IdleConnTimeout:        90 * time.Second,
	}
	return &http.Client{Transport: tr, Jar: d.Jar, CheckRedirect: checkRedirect(nil)}, true
}

// RoundTrip adds ProxyConnectHeader to a request in forward mode, which
// net/http sends only with CONNECT.
func (tr *httpTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	pu, err := tr.d.forwardProxy(req.URL)
	if err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	if pu != nil && len(tr.d.ProxyConnectHeader) > 0 {
		req = req.Clone(req.Context())
		for k, v := range tr.d.ProxyConnectHeader {
			k = http.CanonicalHeaderKey(k)
			if k == "Proxy-Authorization" && pu.User != nil {
				continue // the URL's userinfo wins, as with CONNECT
			}
			req.Header[k] = v
		}
	}
	return tr.t.RoundTrip(req)
}

// CloseIdleConnections closes the transport's idle connections, and
// stops its dials in progress.
func (tr *httpTransport) CloseIdleConnections() { tr.t.CloseIdleConnections() }

// proxy is the transport's Proxy: the proxy of a request in forward
// mode, none otherwise (the dial hooks tunnel).
func (tr *httpTransport) proxy(req *http.Request) (*url.URL, error) {
	pu, err := tr.d.forwardProxy(req.URL)
	if pu != nil {
		tr.forward.Store(strings.ToLower(hostPort(pu)), pu)
	}
	return pu, err
}

// forwardProxy returns the proxy that a request for u goes to in forward
// mode, or nil when it tunnels or goes direct.
func (d *Dialer) forwardProxy(u *url.URL) (*url.URL, error) {
	if !d.ForwardProxy || u.Scheme != "http" {
		return nil, nil
	}
	pu, err := d.chooseProxy(u)
	if err != nil || pu == nil || (pu.Scheme != "http" && pu.Scheme != "https") {
		return nil, err
	}
	return pu, nil
}

// dial is the transport's DialContext: a plain connection to an origin,
// or to a proxy in forward mode.
func (tr *httpTransport) dial(ctx context.Context, _, addr string) (net.Conn, error) {
	return tr.open(ctx, "http", addr)
}

// dialTLS is the transport's DialTLSContext: a TLS connection to an
// origin, or to an https:// proxy in forward mode.
func (tr *httpTransport) dialTLS(ctx context.Context, _, addr string) (net.Conn, error) {
	return tr.open(ctx, "https", addr)
}

func (tr *httpTransport) open(ctx context.Context, scheme, addr string) (net.Conn, error) {
	// net/http lets a dial go on after its request gave up, for a later
	// request to use; it must end all the same.
	ctx, cancel := tr.d.attemptContext(ctx)
	defer cancel()
	if v, ok := tr.forward.Load(strings.ToLower(addr)); ok {
		pu := v.(*url.URL)
		nc, _, err := tr.d.proxyDialer(pu).DialForward(ctx)
		if err != nil {
			return nil, &DialError{URL: pu.Redacted(), Err: err}
		}
		return nc, nil
	}
	u := &url.URL{Scheme: scheme, Host: addr}
	// A request in forward mode went to the proxy above: anything else
	// tunnels.
	td := tr.d
	td.ForwardProxy = false
	pu, err := td.chooseProxy(u)
	if err != nil {
		return nil, err
	}
	alpn := alpnHTTP2
	if td.TLSConfig != nil && len(td.TLSConfig.NextProtos) > 0 {
		alpn = td.TLSConfig.NextProtos
	}
	nc, _, err := td.connectVia(ctx, u, scheme == "https", pu, alpn)
	return nc, err
}

// maxRedirects bounds the redirects followed by one request, as
// browsers and net/http do.
const maxRedirects = 10

// checkRedirect returns the redirect policy of EventSource requests and
// a Socket's POSTs: up to maxRedirects redirects to http:// and https://
// URLs, with credentials (the credentialFields of the header and the
// URL's userinfo) sent to the first origin only, then next's policy.
// net/http makes the requests: it turns a POST into a GET on 301, 302
// and 303 and sends the body again on 307 and 308.
func checkRedirect(next func(*http.Request, []*http.Request) error) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		refuse := func(reason string) error {
			r := *req.Response
			r.Body = http.NoBody // net/http closes it
			return &ResponseError{StatusCode: r.StatusCode, Response: &r, Reason: reason}
		}
		if len(via) > maxRedirects {
			return refuse(fmt.Sprintf("stopped after %d redirects", maxRedirects))
		}
		if (req.URL.Scheme != "http" && req.URL.Scheme != "https") || req.URL.Hostname() == "" {
			return refuse("bad redirect to " + quote.Prefix(req.Response.Header.Get("Location")))
		}
		first := via[0]
		if sameOrigin(first.URL, req.URL) {
			// net/http may have dropped them on the way.
			for _, k := range credentialFields {
				if v, ok := first.Header[k]; ok {
					req.Header[k] = v
				}
			}
		} else {
			for _, k := range credentialFields {
				req.Header.Del(k)
			}
			req.URL.User = nil
		}
		if next != nil {
			return next(req, via)
		}
		return nil
	}
}

// withUserinfo sets Authorization from u's userinfo when h has none, as
// a header field, so that it follows the rule of credentials on
// redirects.
func withUserinfo(h http.Header, u *url.URL) {
	if u.User != nil && h.Get("Authorization") == "" {
		h.Set("Authorization", basicAuth(u.User))
	}
}

// roundTrip sends req with c, its context bounded until the response
// header has come by bound and the Dialer's HandshakeTimeout. It returns
// the response, and the cancel of its context, which ends the request
// (the stream) when called. Errors are unwrapped from net/http's: a
// *DialError as it is, anything else named after what, with net/http's
// text bounded.
func (d *Dialer) roundTrip(c *http.Client, req *http.Request, bound context.Context, what string) (*http.Response, context.CancelFunc, error) {
	bound, cancelBound := d.attemptContext(bound)
	defer cancelBound()
	ctx, cancel := context.WithCancel(req.Context())
	stop := context.AfterFunc(bound, cancel)
	resp, err := c.Do(req.WithContext(ctx))
	if !stop() && err == nil {
		// The bound ended as the response came.
		resp.Body.Close()
		err = bound.Err()
	}
	if err != nil {
		cancel()
		return nil, nil, requestError(bound, req.URL, what, err)
	}
	return resp, cancel, nil
}

// requestError makes the error of a request to u that net/http failed.
func requestError(ctx context.Context, u *url.URL, what string, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // ue's text repeats the URL
	}
	var de *DialError
	var re *ResponseError
	switch {
	case errors.As(err, &de):
		// The dial hooks know the address only: name the request's URL.
		if ue != nil {
			if hop, perr := url.Parse(ue.URL); perr == nil {
				c := *de
				c.URL = hop.Redacted()
				return &c
			}
		}
		return de
	case errors.As(err, &re):
		return re
	case strings.Contains(err.Error(), "server response headers exceeded"):
		// net/http's error for a header above MaxResponseHeaderBytes,
		// which it does not export: a server that sends one would again.
		err = finalError{err}
	case len(err.Error()) > 2*quote.MaxBytes && ctx.Err() == nil:
		// net/http quotes a malformed response whole.
		err = boundedError{err}
	}
	return fmt.Errorf("%s to %s: %w", what, u.Redacted(), withCtxCause(ctx, err))
}

// boundedError is an error from net/http whose text, which may quote
// what the peer sent, is cut short.
type boundedError struct{ err error }

func (e boundedError) Error() string { return quote.Error(e.err) }
func (e boundedError) Unwrap() error { return e.err }

// readError reads at most maxErrorBody bytes of resp's body, which it
// closes, and puts them back as the body.
func readError(resp *http.Response) []byte {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	resp.Body.Close()
	resp.Body = io.NopCloser(strings.NewReader(string(b)))
	return b
}
