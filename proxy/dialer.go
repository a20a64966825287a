package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/realtime-go/realtime/internal/ctxio"
	xproxy "golang.org/x/net/proxy"
)

// Dialer opens connections through one proxy. It implements
// golang.org/x/net/proxy.ContextDialer and fits
// net/http.Transport.DialContext.
//
// A Dialer is safe for concurrent use as long as its fields are not
// changed. It keeps no state between dials and never modifies what its
// fields point to.
type Dialer struct {
	// URL is the proxy: http://host:port and https://host:port for an
	// HTTP proxy reached in plain text or over TLS, which tunnels with
	// CONNECT; socks5://host:port, for which the destination's name is
	// resolved here (its first IPv4 address is used, or else its first
	// address), and socks5h://host:port, for which the proxy resolves
	// it. Ports default to 80, 443 and 1080. The URL's userinfo, if
	// any, is the username and password for the proxy: sent as
	// Proxy-Authorization: Basic to an HTTP proxy, used for
	// username/password authentication (RFC 1929) with SOCKS5.
	URL *url.URL

	// TLSConfig configures the TLS connection to an https:// proxy. It
	// is cloned, and ServerName is set on the clone to the proxy's host
	// when empty. It has nothing to do with TLS to the destination,
	// which runs inside the tunnel. Nil means the zero tls.Config.
	TLSConfig *tls.Config

	// ConnectHeader holds extra fields for the CONNECT request (and for
	// requests sent in forward mode, see DialForward), for example a
	// Proxy-Authorization with another scheme than Basic; the URL's
	// userinfo wins over it. Host, Connection and the framing fields
	// are the dialer's own and are ignored here.
	ConnectHeader http.Header

	// NetDial, when set, opens the TCP connection to the proxy. Nil
	// means a net.Dialer.
	NetDial func(ctx context.Context, network, addr string) (net.Conn, error)
}

var _ xproxy.ContextDialer = (*Dialer)(nil)

// DialContext connects to addr (host:port) through the proxy. network
// must be "tcp", "tcp4" or "tcp6". ctx bounds reaching the proxy, the TLS
// handshake with it and the CONNECT or SOCKS5 exchange; it is not used
// after DialContext returns, so it never bounds the connection's life.
//
// Errors are *Error values; a refused CONNECT carries the proxy's status
// and response, and a refusal of the credentials matches ErrAuth. An
// error caused by ctx also matches ctx.Err() with errors.Is.
func (d *Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, d.fail("dial", addr, fmt.Errorf("network %q not supported", network))
	}
	if d.URL == nil {
		return nil, &Error{Op: "dial", Addr: addr, Err: errors.New("no proxy URL")}
	}
	switch d.URL.Scheme {
	case "http", "https":
		return d.dialConnect(ctx, addr)
	case "socks5", "socks5h":
		return d.dialSOCKS5(ctx, network, addr)
	}
	return nil, d.fail("dial", addr, fmt.Errorf("unsupported proxy scheme %q", d.URL.Scheme))
}

// DialForward connects to an HTTP or HTTPS proxy itself, for a request
// to send it in absolute form ("GET http://host/path HTTP/1.1", forward
// mode) instead of through a CONNECT tunnel. It returns the connection
// and the fields such a request must carry: ConnectHeader and
// Proxy-Authorization from the URL's userinfo. ctx bounds the dial and
// the TLS handshake only. SOCKS5 proxies have no forward mode.
func (d *Dialer) DialForward(ctx context.Context) (net.Conn, http.Header, error) {
	if d.URL == nil {
		return nil, nil, &Error{Op: "dial", Err: errors.New("no proxy URL")}
	}
	if d.URL.Scheme != "http" && d.URL.Scheme != "https" {
		return nil, nil, d.fail("dial", "", fmt.Errorf("no forward mode for a %s proxy", d.URL.Scheme))
	}
	nc, err := d.dialProxy(ctx, "")
	if err != nil {
		return nil, nil, err
	}
	return nc, connectHeader(d.URL, d.ConnectHeader), nil
}

// dialProxy reaches the proxy and, for https://, completes TLS with it.
func (d *Dialer) dialProxy(ctx context.Context, addr string) (net.Conn, error) {
	nc, err := d.netDial(ctx, "tcp", hostPort(d.URL))
	if err != nil {
		return nil, d.fail("dial", addr, err)
	}
	if d.URL.Scheme != "https" {
		return nc, nil
	}
	var cfg *tls.Config
	if d.TLSConfig != nil {
		cfg = d.TLSConfig.Clone()
	} else {
		cfg = &tls.Config{}
	}
	if cfg.ServerName == "" {
		cfg.ServerName = d.URL.Hostname()
	}
	// The dialer speaks HTTP/1.1 to the proxy; offering h2 would let the
	// proxy pick a protocol that cannot carry a CONNECT written by hand.
	cfg.NextProtos = nil
	tc := tls.Client(nc, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		nc.Close()
		return nil, d.fail("tls", addr, ctxCause(ctx, err))
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

func (d *Dialer) dialConnect(ctx context.Context, addr string) (net.Conn, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, d.fail("connect", addr, err)
	}
	nc, err := d.dialProxy(ctx, addr)
	if err != nil {
		return nil, err
	}
	stop := ctxio.Interrupt(ctx, nc)
	req := appendConnect(nil, addr, connectHeader(d.URL, d.ConnectHeader))
	if _, err := nc.Write(req); err != nil {
		stop()
		nc.Close()
		return nil, d.fail("connect", addr, ctxCause(ctx, err))
	}
	resp, tunnel, err := readConnectResponse(nc)
	if err != nil {
		stop()
		nc.Close()
		return nil, d.fail("connect", addr, ctxCause(ctx, err))
	}
	if resp.StatusCode/100 != 2 {
		stop()
		nc.Close()
		e := d.fail("connect", addr, nil)
		e.Status = resp.StatusCode
		e.Response = resp
		return nil, e
	}
	if !stop() {
		nc.Close()
		return nil, d.fail("connect", addr, ctx.Err())
	}
	if len(tunnel) > 0 {
		return &prefixConn{Conn: nc, prefix: tunnel}, nil
	}
	return nc, nil
}

// socksDialer is the part of x/net's SOCKS5 dialer that runs the SOCKS
// exchange over a connection the caller dialed, which leaves that
// connection (a *net.TCPConn, usually) in the caller's hands unwrapped.
type socksDialer interface {
	DialWithConn(ctx context.Context, c net.Conn, network, address string) (net.Addr, error)
}

func (d *Dialer) dialSOCKS5(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, d.fail("socks5", addr, err)
	}
	target := addr
	if d.URL.Scheme == "socks5" && net.ParseIP(host) == nil {
		// socks5:// means the client resolves names (curl's and
		// ALL_PROXY's convention); x/net would always send the name.
		ips, err := net.DefaultResolver.LookupNetIP(ctx, ipNetwork(network), host)
		if err != nil {
			return nil, d.fail("socks5", addr, err)
		}
		if len(ips) == 0 {
			return nil, d.fail("socks5", addr, fmt.Errorf("no address for %s", host))
		}
		ip := ips[0].Unmap()
		for _, a := range ips {
			// IPv4 first: proxies reach it more often than IPv6.
			if a.Unmap().Is4() {
				ip = a.Unmap()
				break
			}
		}
		target = net.JoinHostPort(ip.String(), port)
	}
	var auth *xproxy.Auth
	if d.URL.User != nil {
		pass, _ := d.URL.User.Password()
		auth = &xproxy.Auth{User: d.URL.User.Username(), Password: pass}
	}
	xd, err := xproxy.SOCKS5("tcp", hostPort(d.URL), auth, nil)
	if err != nil {
		return nil, d.fail("socks5", addr, err)
	}
	sd, ok := xd.(socksDialer)
	if !ok {
		// Not expected from x/net; DialContext still does the job, with
		// the connection wrapped.
		cd, ok := xd.(xproxy.ContextDialer)
		if !ok {
			return nil, d.fail("socks5", addr, errors.New("x/net/proxy SOCKS5 dialer lacks DialContext"))
		}
		nc, err := cd.DialContext(ctx, "tcp", target)
		if err != nil {
			return nil, d.socksFail(ctx, addr, err)
		}
		return nc, nil
	}
	nc, err := d.netDial(ctx, "tcp", hostPort(d.URL))
	if err != nil {
		return nil, d.fail("dial", addr, err)
	}
	if _, err := sd.DialWithConn(ctx, nc, "tcp", target); err != nil {
		nc.Close()
		return nil, d.socksFail(ctx, addr, err)
	}
	return nc, nil
}

func (d *Dialer) socksFail(ctx context.Context, addr string, err error) *Error {
	e := d.fail("socks5", addr, ctxCause(ctx, err))
	// x/net reports these as plain errors; their text is all there is.
	msg := err.Error()
	e.auth = strings.Contains(msg, "authentication failed") ||
		strings.Contains(msg, "no acceptable authentication methods") ||
		strings.Contains(msg, "invalid username/password")
	return e
}

func (d *Dialer) fail(op, addr string, err error) *Error {
	e := &Error{Op: op, Addr: addr, Err: err}
	if d.URL != nil {
		e.Proxy = d.URL.Redacted()
	}
	return e
}

// ctxCause puts ctx's error next to err when ctx is why err happened: the
// dial interrupted a read or write by moving the deadline.
func ctxCause(ctx context.Context, err error) error {
	cerr := ctx.Err()
	if cerr == nil && errors.Is(err, os.ErrDeadlineExceeded) {
		// x/net sets the connection's deadline to ctx's, which may pass
		// a moment before ctx reports it.
		if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
			cerr = context.DeadlineExceeded
		}
	}
	if cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%w (%v)", cerr, err)
	}
	return err
}

// hostPort returns u's host:port with the scheme's default port.
func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	port := "80"
	switch u.Scheme {
	case "https":
		port = "443"
	case "socks5", "socks5h":
		port = "1080"
	}
	return net.JoinHostPort(u.Hostname(), port)
}

func ipNetwork(network string) string {
	switch network {
	case "tcp4":
		return "ip4"
	case "tcp6":
		return "ip6"
	}
	return "ip"
}
