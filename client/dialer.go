package client

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/realtime-go/realtime/extensions"
	"github.com/realtime-go/realtime/proxy"
	"github.com/realtime-go/realtime/websocket"
)

// DefaultHandshakeTimeout is the Dialer.HandshakeTimeout used when it is
// zero.
const DefaultHandshakeTimeout = 30 * time.Second

// Dialer opens WebSocket connections and EventSource streams, directly
// or through HTTP, HTTPS and SOCKS5 proxies. The zero value is usable:
// it takes proxies from the environment, verifies TLS certificates
// against the system roots and speaks WebSocket version 13.
//
// A Dialer is safe for concurrent use as long as its fields are not
// changed. It never modifies what its fields point to: TLS
// configurations are cloned before ServerName is set, and headers and
// slices are copied. Dialer.EventSource and Dialer.Socket keep a deep
// copy of the Dialer (headers, slices and TLS configurations cloned), so
// later changes to it, or to what it points to, do not affect them;
// Proxy, NetDial, Jar, HTTPClient, the extensions and the ConnOptions
// hooks are kept as they are, and are called concurrently. The copy
// shares the Dialer's HTTP/2 connections (see HTTP2).
type Dialer struct {
	// Proxy selects the proxy for each connection, as
	// net/http.Transport.Proxy does: it is called with a GET request for
	// the URL, whose scheme is http for ws:// URLs and https for wss://
	// ones, and returns the proxy's URL, or nil to connect directly. Nil
	// means proxy.FromEnvironment (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY,
	// NO_PROXY); proxy.Direct never uses one; net/http.ProxyURL always
	// uses the same one. See package proxy for the URL schemes.
	// EventSource requests share connections, each opened for a scheme
	// and a host:port, so for them Proxy may see a URL of those alone.
	Proxy func(*http.Request) (*url.URL, error)

	// ProxyTLSConfig configures TLS to an https:// proxy; TLSConfig
	// configures TLS to the origin. Each is cloned, and the clone's
	// ServerName is set to the proxy's or the origin's host when empty,
	// so the origin sees its own name in SNI also through a tunnel. A
	// WebSocket connection offers only "http/1.1" by ALPN whatever
	// NextProtos says, or "h2" and "http/1.1" when HTTP2 is set;
	// EventSource requests offer NextProtos, or "h2" and "http/1.1" when
	// it is empty, so they speak HTTP/2 with origins that do. The proxy
	// connection offers no protocol: the client speaks HTTP/1.1 with
	// proxies. Nil means the zero tls.Config.
	ProxyTLSConfig *tls.Config
	TLSConfig      *tls.Config

	// ProxyConnectHeader holds extra header fields for the proxy: sent
	// with CONNECT, or with requests in forward mode (those of
	// EventSource included: net/http would send them with CONNECT only).
	ProxyConnectHeader http.Header

	// ForwardProxy makes plain ws:// and http:// URLs that go through an
	// HTTP or HTTPS proxy use forward mode: the request goes to the
	// proxy in absolute form ("GET http://host/path HTTP/1.1"), as
	// net/http does for http:// URLs, instead of through a CONNECT
	// tunnel. Proxies that refuse CONNECT to ports other than 443 often
	// pass EventSource streams in this mode; most strip the Upgrade
	// header from WebSocket handshakes in it (squid unless
	// http_upgrade_request_protocols allows "websocket", tinyproxy
	// always), so Dial then fails with ErrBadHandshake and the answer
	// the origin gave to a plain GET. Secure URLs and SOCKS5 proxies
	// always tunnel. By default every proxied connection tunnels with
	// CONNECT, as browsers do for WebSockets; a Socket switches to
	// forward mode by itself when the proxy refuses CONNECT (see
	// Socket).
	ForwardProxy bool

	// NetDial, when set, opens TCP connections: to the origin, or to the
	// proxy. Nil means a net.Dialer.
	NetDial func(ctx context.Context, network, addr string) (net.Conn, error)

	// HandshakeTimeout bounds one connection attempt: resolving, dialing,
	// the proxy exchange, TLS, and the opening handshake or the response
	// header of an EventSource request (its redirects included) or of a
	// Socket's POST. It adds to the ctx given to Dial.
	// 0 means DefaultHandshakeTimeout; a negative value sets no bound
	// besides ctx.
	HandshakeTimeout time.Duration

	// Header holds extra request header fields, such as Authorization
	// or User-Agent. Fields the WebSocket handshake sets itself cannot
	// be overridden. When a URL has userinfo and Header has no
	// Authorization, the userinfo is sent as Authorization: Basic.
	Header http.Header

	// Jar, when set, supplies cookies for each request and stores the
	// cookies of each response, refused handshakes included.
	Jar http.CookieJar

	// HTTPClient, when set, makes the HTTP requests of EventSource and of
	// a Socket's EventSource transport (its GETs and POSTs), with its
	// own Transport and Jar (Jar when it has none): Proxy,
	// ProxyTLSConfig, TLSConfig, ProxyConnectHeader, ForwardProxy and
	// NetDial then apply to WebSocket connections only. Its
	// CheckRedirect, if any, is asked after the rules of MaxRedirects'
	// doc for EventSource requests. Its Timeout would bound whole streams:
	// leave it 0 (HandshakeTimeout applies). Nil means a client of the
	// Dialer's own, with one http.Transport for each EventSource and each
	// Socket, so that their requests reuse connections, and speak HTTP/2
	// with origins that offer it.
	HTTPClient *http.Client

	// Origin, when set, is sent as Origin (as Sec-WebSocket-Origin for
	// version 8) with WebSocket handshakes.
	Origin string

	// Subprotocols are offered in order of preference; the server's
	// choice must be one of them (Conn.Subprotocol reports it).
	Subprotocols []string

	// Extensions are offered in order, permessage-deflate from package
	// extensions/deflate for example.
	Extensions []extensions.Extension

	// Version is the WebSocket protocol version: 13 (0 means 13) or 8.
	Version int

	// MaxRedirects is how many redirects Dial follows: answers 301, 302,
	// 303, 307 and 308 to the handshake whose Location is an http, https,
	// ws or wss URL, absolute or relative (http becomes ws and https
	// wss). 0 means none, an exception to the module's rule that 0 is a
	// default: a browser's WebSocket never follows a redirect, and Node's
	// ws follows none unless asked, so by default a redirect is a refused
	// handshake, as it would be for them, and whoever follows one chose
	// to (10 is what browsers and net/http allow for other requests).
	// Negative: no limit on the count; ctx and HandshakeTimeout still
	// bound the whole chain, and a loop still fails.
	//
	// Each hop is a new connection, through the proxy Proxy selects for
	// it, with cookies from Jar for its URL. Credentials go only to the
	// origin of the URL given to Dial (the same scheme, ws and http
	// counting as one, host and port, as ws compares): on a hop to
	// another origin the Authorization, Proxy-Authorization, Cookie and
	// Cookie2 fields of Header and the userinfo of both URLs are not
	// sent. Other fields of Header go to every hop. Too many redirects,
	// or one back to a URL already visited, fail with a *RedirectError.
	// The response Dial returns is the last one, and its Request.URL is
	// the final URL, without userinfo when it is another origin.
	//
	// A Socket's WebSocket attempts follow redirects by these rules, each
	// from the Socket's URL again, as a browser reconnects to the URL it
	// was given, and OpenInfo.Response.Request.URL says where one ended.
	// Its EventSource requests (the stream's GETs and the POSTs) start
	// from the Socket's URL as well, each on its own, rather than from
	// the WebSocket's final URL, which would send them, when it is
	// another origin, without the credentials the Socket's URL is given.
	//
	// EventSource requests, those of Dialer.EventSource and of a Socket,
	// follow up to 10 redirects whatever MaxRedirects says, as a
	// browser's EventSource and fetch do, by the same rule of
	// credentials (a server that moved its realtime URL redirects the
	// stream's GET and the POSTs as it does the handshake). net/http
	// makes them: 301, 302 and 303 turn a POST into a GET without body,
	// 307 and 308 send it again with its body. Too many redirects, or
	// one to a URL that is not http:// or https://, stop an EventSource
	// with a *ResponseError.
	MaxRedirects int

	// HTTP2 makes Dial carry wss:// WebSockets over HTTP/2 (RFC 8441)
	// when the server allows it, so that WebSockets to one server share
	// one TCP and TLS connection, as a browser's do. TLS to the origin
	// then offers "h2" before "http/1.1" by ALPN; a WebSocket goes over
	// HTTP/2 when the server chose h2 and advertises extended CONNECT
	// (SETTINGS_ENABLE_CONNECT_PROTOCOL), and over HTTP/1.1 otherwise:
	// on the same connection when ALPN chose http/1.1, on a new one when
	// extended CONNECT is missing. Either way the Dialer remembers, for
	// a while and for a bounded number of servers, that the server has
	// no WebSocket over HTTP/2, and goes to HTTP/1.1 at once next time.
	// The response Dial returns tells which it took: ProtoMajor is 2 or 1.
	//
	// The HTTP/2 connections are the Dialer's: every Dial of the same
	// *Dialer, and every Socket made from it (which keeps a copy of the
	// Dialer, see Dialer.Socket), uses an open one to the same server
	// through the same proxy when it has room for another stream, and
	// a connection closes as soon as its last WebSocket has closed, so
	// none is left idle. A copy of the Dialer made otherwise (d2 := *d)
	// has connections of its own. ws:// URLs, version 8, and forward
	// mode always use HTTP/1.1. Redirects are followed as on HTTP/1.1,
	// each hop taking HTTP/2 when its server allows it. false: HTTP/1.1
	// only, as before; the default may change once servers commonly
	// offer extended CONNECT.
	HTTP2 bool

	// ConnOptions tunes the WebSocket connections Dial returns.
	websocket.ConnOptions

	// h2 is the pool of HTTP/2 connections of the Dialer this one was
	// cloned from; nil for a Dialer the caller made, whose pool is found
	// by its address (see h2Pool).
	h2 *h2Pool
}

// Dial opens a WebSocket connection to rawURL with d, or with a zero
// Dialer when d is nil. See Dialer.Dial.
func Dial(ctx context.Context, rawURL string, d *Dialer) (*websocket.Conn, *http.Response, error) {
	if d == nil {
		d = &Dialer{}
	}
	return d.Dial(ctx, rawURL)
}

// Dial opens a WebSocket connection to rawURL, a ws:// or wss:// URL
// (http:// and https:// are taken to mean the same), through the proxy
// Proxy selects. ctx, and HandshakeTimeout, bound dialing and the opening
// handshake; once Dial has returned they have no effect on the
// connection.
//
// The response is returned whenever the server answered. When it
// refused the handshake, the error wraps websocket.ErrBadHandshake (and
// is a *websocket.HandshakeError), and the response carries the status,
// the header and the first 1 KiB of the body. Redirects are followed up
// to MaxRedirects, none by default; a 3xx not followed is such a
// refusal, with Location in the response. A failure to reach the origin
// through a proxy wraps a *proxy.Error.
func (d *Dialer) Dial(ctx context.Context, rawURL string) (*websocket.Conn, *http.Response, error) {
	c, resp, _, err := d.dial(ctx, rawURL)
	return c, resp, err
}

// dial is Dial, and reports whether the handshake went to the proxy in
// forward mode.
func (d *Dialer) dial(ctx context.Context, rawURL string) (_ *websocket.Conn, _ *http.Response, forward bool, _ error) {
	u, err := parseURL(rawURL, "ws", "wss", "http", "https")
	if err != nil {
		return nil, nil, false, err
	}
	ctx, cancel := d.attemptContext(ctx)
	defer cancel()
	header := cloneHeader(d.Header)
	if u.User != nil && header.Get("Authorization") == "" {
		// As a header field, so that it follows the rules of credentials
		// on redirects.
		header.Set("Authorization", basicAuth(u.User))
	}
	first := u
	var visited []string
	for redirects := 0; ; redirects++ {
		h := header
		if !sameOrigin(first, u) {
			h = header.Clone()
			for _, k := range credentialFields {
				h.Del(k)
			}
		}
		c, resp, fwd, err := d.dialOnce(ctx, u, h)
		if err == nil || resp == nil || d.MaxRedirects == 0 || !isRedirect(resp.StatusCode) {
			return c, resp, fwd, err
		}
		next, ok := redirectTarget(u, resp.Header.Get("Location"))
		if !ok {
			return nil, resp, fwd, err
		}
		if !sameOrigin(first, next) {
			next.User = nil
		}
		visited = append(visited, withoutUser(u))
		rerr := &RedirectError{URLs: visited, Response: resp, refusal: err}
		if slices.Contains(visited, withoutUser(next)) {
			rerr.URLs = append(visited, withoutUser(next))
			rerr.Err = ErrRedirectLoop
			return nil, resp, fwd, rerr
		}
		if redirects == d.MaxRedirects {
			rerr.Err = ErrTooManyRedirects
			return nil, resp, fwd, rerr
		}
		u = next
	}
}

// credentialFields are the header fields that go to the first origin
// only, those net/http drops on a redirect to another domain and ws on
// one to another host.
var credentialFields = []string{"Authorization", "Proxy-Authorization", "Cookie", "Cookie2"}

// dialOnce makes one handshake with u, with header (which it does not
// modify) and the jar's cookies; the response's Request.URL is u. forward
// reports that the handshake went to the proxy in forward mode.
func (d *Dialer) dialOnce(ctx context.Context, u *url.URL, header http.Header) (_ *websocket.Conn, _ *http.Response, forward bool, _ error) {
	secure := u.Scheme == "wss" || u.Scheme == "https"
	opts := websocket.ClientOptions{
		ConnOptions:  d.ConnOptions,
		Version:      d.Version,
		Header:       header.Clone(),
		Origin:       d.Origin,
		Subprotocols: slices.Clone(d.Subprotocols),
		Extensions:   slices.Clone(d.Extensions),
	}
	hu := httpURL(u)
	d.addCookies(opts.Header, hu)
	var nc net.Conn
	if secure && d.HTTP2 && (d.Version == 0 || d.Version == 13) {
		c, resp, h1, done, err := d.dialHTTP2(ctx, u, &opts)
		if done {
			d.keepCookies(resp, hu)
			if resp != nil {
				resp.Request.URL = u
			}
			return c, resp, false, err
		}
		nc = h1
	}
	var fwd http.Header
	if nc == nil {
		var err error
		if nc, fwd, err = d.connect(ctx, u, secure); err != nil {
			return nil, nil, false, err
		}
	}
	target := u
	if fwd != nil {
		for k, v := range fwd {
			opts.Header[k] = v
		}
		target = absoluteForm(u)
		opts.Host = u.Host
	}
	c, resp, err := websocket.NewClient(ctx, nc, target, &opts)
	d.keepCookies(resp, hu)
	if resp != nil {
		resp.Request.URL = u
	}
	if err != nil {
		return nil, resp, fwd != nil, err
	}
	return c, resp, fwd != nil, nil
}

// redirectTarget resolves a Location against u, as a ws or wss URL; ok
// is false when it is none.
func redirectTarget(u *url.URL, location string) (next *url.URL, ok bool) {
	if location == "" {
		return nil, false
	}
	next, err := u.Parse(location)
	if err != nil || next.Hostname() == "" {
		return nil, false
	}
	switch next.Scheme {
	case "http", "ws":
		next.Scheme = "ws"
	case "https", "wss":
		next.Scheme = "wss"
	default:
		return nil, false
	}
	next.Fragment, next.RawFragment = "", ""
	return next, true
}

// isRedirect reports whether status is a redirect that Location says
// where to.
func isRedirect(status int) bool {
	switch status {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

// sameOrigin reports whether a and b have the same scheme (ws and http
// being one, wss and https another), host and port.
func sameOrigin(a, b *url.URL) bool {
	return httpURL(a).Scheme == httpURL(b).Scheme && strings.EqualFold(hostPort(a), hostPort(b))
}

// withoutUser returns u as a string without its userinfo.
func withoutUser(u *url.URL) string {
	c := *u
	c.User = nil
	return c.String()
}

// basicAuth returns the Authorization field of userinfo.
func basicAuth(user *url.Userinfo) string {
	pass, _ := user.Password()
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user.Username()+":"+pass))
}

// absoluteForm returns a URL whose RequestURI is u in absolute form
// ("http://host/path?query"), the request-target of forward mode. It
// keeps u's userinfo, from which the handshake takes Authorization.
func absoluteForm(u *url.URL) *url.URL {
	p := u.EscapedPath()
	if p == "" {
		p = "/"
	}
	return &url.URL{Scheme: "http", Opaque: "//" + u.Host + p, RawQuery: u.RawQuery, User: u.User}
}

// attemptContext bounds one connection attempt by HandshakeTimeout.
func (d *Dialer) attemptContext(ctx context.Context) (context.Context, context.CancelFunc) {
	t := d.HandshakeTimeout
	if t == 0 {
		t = DefaultHandshakeTimeout
	}
	return timeoutContext(ctx, t)
}

// timeoutContext bounds ctx by t, unless t is negative: no bound.
func timeoutContext(ctx context.Context, t time.Duration) (context.Context, context.CancelFunc) {
	if t < 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, t)
}

// connect opens a connection for u: to its origin, through a tunnel when
// Proxy selects a proxy, with TLS to the origin when secure; or, in
// forward mode, to the proxy itself, in which case fwd holds the header
// fields the request must carry.
func (d *Dialer) connect(ctx context.Context, u *url.URL, secure bool) (nc net.Conn, fwd http.Header, err error) {
	pu, err := d.chooseProxy(u)
	if err != nil {
		return nil, nil, err
	}
	return d.connectVia(ctx, u, secure, pu, alpnHTTP1)
}

// ALPN protocol lists: HTTP/1.1 only, or HTTP/2 first.
var (
	alpnHTTP1 = []string{"http/1.1"}
	alpnHTTP2 = []string{"h2", "http/1.1"}
)

// connectVia is connect through the proxy pu (nil: none), offering the
// ALPN protocols alpn to a secure origin.
func (d *Dialer) connectVia(ctx context.Context, u *url.URL, secure bool, pu *url.URL, alpn []string) (nc net.Conn, fwd http.Header, err error) {
	addr := hostPort(u)
	switch {
	case pu == nil:
		nc, err = d.netDial(ctx, "tcp", addr)
	default:
		pd := d.proxyDialer(pu)
		if d.ForwardProxy && !secure && (pu.Scheme == "http" || pu.Scheme == "https") {
			nc, fwd, err = pd.DialForward(ctx)
		} else {
			nc, err = pd.DialContext(ctx, "tcp", addr)
		}
	}
	if err != nil {
		return nil, nil, &DialError{URL: u.Redacted(), Err: err}
	}
	if !secure {
		return nc, fwd, nil
	}
	var cfg *tls.Config
	if d.TLSConfig != nil {
		cfg = d.TLSConfig.Clone()
	} else {
		cfg = &tls.Config{}
	}
	cfg.NextProtos = slices.Clone(alpn)
	tc, err := handshakeTLS(ctx, nc, u, cfg)
	return tc, nil, err
}

// chooseProxy returns the proxy Proxy selects for u, or nil for none.
func (d *Dialer) chooseProxy(u *url.URL) (*url.URL, error) {
	hu := httpURL(u)
	choose := d.Proxy
	if choose == nil {
		choose = proxy.FromEnvironment
	}
	pu, err := choose(&http.Request{Method: http.MethodGet, URL: hu, Header: http.Header{}, Host: hu.Host})
	if err != nil {
		return nil, &DialError{URL: u.Redacted(), Err: fmt.Errorf("select proxy: %w", err), final: true}
	}
	return pu, nil
}

// proxyDialer returns the dialer of the proxy at pu.
func (d *Dialer) proxyDialer(pu *url.URL) *proxy.Dialer {
	return &proxy.Dialer{URL: pu, TLSConfig: d.ProxyTLSConfig, ConnectHeader: d.ProxyConnectHeader, NetDial: d.NetDial}
}

// handshakeTLS runs TLS with u's origin over nc with cfg, its ServerName
// set to u's host when empty; it closes nc when that fails.
func handshakeTLS(ctx context.Context, nc net.Conn, u *url.URL, cfg *tls.Config) (net.Conn, error) {
	if cfg.ServerName == "" {
		cfg.ServerName = u.Hostname()
	}
	tc := tls.Client(nc, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		nc.Close()
		return nil, &DialError{URL: u.Redacted(), Err: fmt.Errorf("TLS handshake with the origin: %w", withCtxCause(ctx, err))}
	}
	return tc, nil
}

func (d *Dialer) netDial(ctx context.Context, network, addr string) (net.Conn, error) {
	if d.NetDial != nil {
		return d.NetDial(ctx, network, addr)
	}
	var nd net.Dialer
	return nd.DialContext(ctx, network, addr)
}

// clone returns a copy of d that shares nothing the caller may change:
// headers, slices and TLS configurations are copied. Functions, the
// cookie jar and the extensions themselves are kept, and so are d's
// HTTP/2 connections.
func (d *Dialer) clone() Dialer {
	c := *d
	c.Header = cloneHeader(d.Header)
	c.ProxyConnectHeader = cloneHeader(d.ProxyConnectHeader)
	c.Subprotocols = slices.Clone(d.Subprotocols)
	c.Extensions = slices.Clone(d.Extensions)
	c.TLSConfig = cloneTLS(d.TLSConfig)
	c.ProxyTLSConfig = cloneTLS(d.ProxyTLSConfig)
	if d.HTTP2 {
		// The copy shares d's HTTP/2 connections, which are bound to
		// settings the copy has too.
		c.h2 = d.h2Pool()
	}
	return c
}

// cloneTLS copies cfg deeply enough that the caller's later changes do
// not reach the copy: tls.Config.Clone shares the backing arrays of its
// slices, so those are copied too. Certificates, pools and functions
// are shared, as values the caller hands over.
func cloneTLS(cfg *tls.Config) *tls.Config {
	if cfg == nil {
		return nil
	}
	c := cfg.Clone()
	c.NextProtos = slices.Clone(cfg.NextProtos)
	c.CipherSuites = slices.Clone(cfg.CipherSuites)
	c.CurvePreferences = slices.Clone(cfg.CurvePreferences)
	c.Certificates = slices.Clone(cfg.Certificates)
	c.EncryptedClientHelloConfigList = slices.Clone(cfg.EncryptedClientHelloConfigList)
	return c
}

// keepCookies stores the cookies of resp, which may be nil, in the jar.
func (d *Dialer) keepCookies(resp *http.Response, u *url.URL) {
	if resp == nil || d.Jar == nil {
		return
	}
	if cs := resp.Cookies(); len(cs) > 0 {
		d.Jar.SetCookies(u, cs)
	}
}

// addCookies adds the jar's cookies for u to h's Cookie field.
func (d *Dialer) addCookies(h http.Header, u *url.URL) {
	if d.Jar == nil {
		return
	}
	cs := d.Jar.Cookies(u)
	if len(cs) == 0 {
		return
	}
	parts := make([]string, 0, len(cs)+1)
	if v := h.Get("Cookie"); v != "" {
		parts = append(parts, v)
	}
	for _, c := range cs {
		parts = append(parts, c.Name+"="+c.Value)
	}
	// One field: RFC 6265 §5.4 allows a single Cookie header.
	h.Set("Cookie", strings.Join(parts, "; "))
}

func cloneHeader(h http.Header) http.Header {
	if h == nil {
		return http.Header{}
	}
	return h.Clone()
}

// parseURL parses rawURL and checks its scheme.
func parseURL(rawURL string, schemes ...string) (*url.URL, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // ue's text repeats the URL, password and all
		}
		return nil, fmt.Errorf("client: invalid URL: %w", err)
	}
	u.Scheme = strings.ToLower(u.Scheme)
	if !slices.Contains(schemes, u.Scheme) {
		return nil, fmt.Errorf("client: unsupported URL scheme %q in %s", u.Scheme, u.Redacted())
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("client: no host in URL %s", u.Redacted())
	}
	return u, nil
}

// httpURL returns u with its scheme as HTTP names it: http for ws and
// https for wss. Proxy functions and cookie jars expect these.
func httpURL(u *url.URL) *url.URL {
	hu := *u
	switch u.Scheme {
	case "ws":
		hu.Scheme = "http"
	case "wss":
		hu.Scheme = "https"
	}
	return &hu
}

// hostPort returns u's host:port, with the scheme's default port.
func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	port := "80"
	if u.Scheme == "wss" || u.Scheme == "https" {
		port = "443"
	}
	return net.JoinHostPort(u.Hostname(), port)
}
