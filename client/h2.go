//lint:file-ignore SA1019 net/http's Transport cannot send an extended CONNECT (Go 1.26); x/net/http2.Transport can.

package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"sync"
	"time"
	"weak"

	"github.com/realtime-go/realtime/websocket"
	"golang.org/x/net/http2"
)

// h2Pool holds the HTTP/2 connections of a Dialer (Dialer.HTTP2), by
// route, and the routes whose server has no WebSocket over HTTP/2.
type h2Pool struct {
	t http2.Transport // settings of the connections; it dials none itself

	mu      sync.Mutex
	conns   map[string][]*h2Conn
	dialing map[string]chan struct{} // routes being dialed -> closed once done
	noH2    map[string]time.Time     // route -> when it stops being trusted
	order   []string                 // the keys of noH2, oldest first
}

// h2Conn is an HTTP/2 connection of a pool.
type h2Conn struct {
	cc    *http2.ClientConn
	route string
	users int // handshakes under way and WebSockets open on it; guarded by the pool's mu
}

const (
	// maxNoH2 bounds how many servers a Dialer remembers as having no
	// WebSocket over HTTP/2.
	maxNoH2 = 256
	// noH2Memory is how long it remembers one, after which it tries
	// HTTP/2 again, in case the server has been upgraded.
	noH2Memory = time.Hour
)

// h2pools holds the pools of the Dialers the callers made, by the
// Dialer's address, weakly, so that a pool goes with its Dialer. A
// Dialer's fields may not change while it is in use, so the pool cannot
// be stored in it.
var h2pools sync.Map // weak.Pointer[Dialer] -> *h2Pool

// h2Pool returns d's pool of HTTP/2 connections.
func (d *Dialer) h2Pool() *h2Pool {
	if d.h2 != nil {
		return d.h2
	}
	k := weak.Make(d)
	if p, ok := h2pools.Load(k); ok {
		return p.(*h2Pool)
	}
	p, loaded := h2pools.LoadOrStore(k, &h2Pool{conns: map[string][]*h2Conn{}, dialing: map[string]chan struct{}{}, noH2: map[string]time.Time{}})
	if !loaded {
		runtime.AddCleanup(d, func(k weak.Pointer[Dialer]) { h2pools.Delete(k) }, k)
	}
	return p.(*h2Pool)
}

// dialHTTP2 makes a WebSocket handshake with u over HTTP/2. done is
// false when the server has no WebSocket over HTTP/2: the caller then
// makes the handshake over HTTP/1.1, on h1 when it is not nil, a TLS
// connection on which ALPN chose HTTP/1.1.
func (d *Dialer) dialHTTP2(ctx context.Context, u *url.URL, opts *websocket.ClientOptions) (c *websocket.Conn, resp *http.Response, h1 net.Conn, done bool, err error) {
	pu, err := d.chooseProxy(u)
	if err != nil {
		return nil, nil, nil, true, err
	}
	route := hostPort(u)
	if pu != nil {
		route = pu.String() + " " + route
	}
	for attempt := 0; ; attempt++ {
		var retry bool
		c, resp, h1, done, retry, err = d.dialHTTP2Once(ctx, u, pu, route, opts)
		// A shared connection may be going away (GOAWAY) as the request
		// goes out, which the server then never saw: one more try, on
		// another connection, as x/net/http2.Transport does.
		if !retry || attempt == 1 {
			return c, resp, h1, done, err
		}
	}
}

// dialHTTP2Once is one attempt of dialHTTP2 on route, the connection to
// u through the proxy pu. retry reports that the request never reached
// the server.
func (d *Dialer) dialHTTP2Once(ctx context.Context, u, pu *url.URL, route string, opts *websocket.ClientOptions) (c *websocket.Conn, resp *http.Response, h1 net.Conn, done, retry bool, err error) {
	p := d.h2Pool()
	hc, noH2, err := p.take(ctx, route)
	switch {
	case err != nil:
		return nil, nil, nil, true, false, &DialError{URL: u.Redacted(), Err: err}
	case noH2:
		return nil, nil, nil, false, false, nil
	case hc == nil:
		// Others wait until this handshake is over: then the server's
		// SETTINGS, its limit of concurrent streams among them, are in,
		// which a reservation made before would overrun.
		defer p.dialed(route)
		if hc, h1, err = d.openHTTP2(ctx, u, pu, p, route); err != nil || h1 != nil {
			return nil, nil, h1, err != nil, false, err
		}
	}
	rt := &h2Stream{p: p, c: hc}
	c, resp, err = websocket.NewClientHTTP2(ctx, rt, u, opts)
	if rt.unsupported {
		p.remember(route)
		return nil, nil, nil, false, false, nil
	}
	if c == nil && resp == nil {
		// NewClientHTTP2 failed before RoundTrip could release the
		// connection.
		rt.release()
	}
	return c, resp, nil, true, rt.retry, err
}

// openHTTP2 opens route's connection to u through the proxy pu and adds
// it to p, for one handshake. h1 is the connection instead when ALPN
// chose HTTP/1.1.
func (d *Dialer) openHTTP2(ctx context.Context, u, pu *url.URL, p *h2Pool, route string) (hc *h2Conn, h1 net.Conn, err error) {
	nc, _, err := d.connectVia(ctx, u, true, pu, alpnHTTP2)
	if err != nil {
		return nil, nil, err
	}
	if tc, ok := nc.(*tls.Conn); !ok || tc.ConnectionState().NegotiatedProtocol != http2.NextProtoTLS {
		p.remember(route)
		return nil, nc, nil
	}
	cc, err := p.t.NewClientConn(nc)
	if err != nil {
		nc.Close()
		return nil, nil, &DialError{URL: u.Redacted(), Err: fmt.Errorf("HTTP/2: %w", err)}
	}
	return p.add(route, cc), nil, nil
}

// take returns an open connection of route with room for another
// stream, reserved for it. When the route has none, it waits for the
// Dial that is opening one, if any, else returns nil: the caller then
// opens one, and calls dialed when done. noH2 reports that the route's
// server has no WebSocket over HTTP/2; err is ctx's end.
func (p *h2Pool) take(ctx context.Context, route string) (hc *h2Conn, noH2 bool, err error) {
	p.mu.Lock()
	for {
		if until, ok := p.noH2[route]; ok && time.Now().Before(until) {
			p.mu.Unlock()
			return nil, true, nil
		}
		for _, hc := range p.conns[route] {
			if hc.cc.ReserveNewRequest() {
				hc.users++
				p.mu.Unlock()
				return hc, false, nil
			}
		}
		wait, ok := p.dialing[route]
		if !ok {
			p.dialing[route] = make(chan struct{})
			p.mu.Unlock()
			return nil, false, nil
		}
		p.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
		p.mu.Lock()
	}
}

// dialed ends the opening of route's connection, successful or not.
func (p *h2Pool) dialed(route string) {
	p.mu.Lock()
	close(p.dialing[route])
	delete(p.dialing, route)
	p.mu.Unlock()
}

// add makes cc a connection of route, for one handshake.
func (p *h2Pool) add(route string, cc *http2.ClientConn) *h2Conn {
	// Reserved like any other, so that the count of streams that take
	// checks against the server's limit holds: a RoundTrip without a
	// reservation would use up another's.
	cc.ReserveNewRequest()
	hc := &h2Conn{cc: cc, route: route, users: 1}
	p.mu.Lock()
	p.conns[route] = append(p.conns[route], hc)
	p.mu.Unlock()
	return hc
}

// release ends a use of hc, and closes it after the last.
func (p *h2Pool) release(hc *h2Conn) {
	p.mu.Lock()
	hc.users--
	last := hc.users == 0
	if last {
		list := p.conns[hc.route]
		for i, x := range list {
			if x == hc {
				list = append(list[:i], list[i+1:]...)
				break
			}
		}
		if len(list) == 0 {
			delete(p.conns, hc.route)
		} else {
			p.conns[hc.route] = list
		}
	}
	p.mu.Unlock()
	if last {
		// Not Shutdown: its GOAWAY would wait for streams that are
		// over for us, with a goroutine of its own.
		hc.cc.Close()
	}
}

// remember notes that route's server has no WebSocket over HTTP/2,
// forgetting the oldest server noted when there are too many.
func (p *h2Pool) remember(route string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.noH2[route]; !ok {
		if len(p.order) == maxNoH2 {
			delete(p.noH2, p.order[0])
			p.order = append(p.order[:0], p.order[1:]...)
		}
		p.order = append(p.order, route)
	}
	p.noH2[route] = time.Now().Add(noH2Memory)
}

// h2Stream is the http.RoundTripper of one WebSocket handshake over an
// HTTP/2 connection of a pool: it releases the connection when the
// handshake fails, or when the WebSocket, which closes the response's
// body as it closes, is over.
type h2Stream struct {
	p           *h2Pool
	c           *h2Conn
	once        sync.Once
	unsupported bool // the server does not allow extended CONNECT
	retry       bool // the request never reached the server
}

func (s *h2Stream) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := s.c.cc.RoundTrip(req)
	if err != nil {
		s.unsupported, s.retry = h2Refusal(err)
		s.release()
		return nil, err
	}
	resp.Body = &releasingBody{ReadCloser: resp.Body, release: s.release}
	return resp, nil
}

// h2Refusal reports whether err, from RoundTrip on an HTTP/2 connection,
// says that the server does not allow extended CONNECT, or that it did
// not see the request, which may be made again on another connection:
// the errors x/net/http2.Transport retries itself. x/net/http2 exports
// no value for the errors but StreamError.
func h2Refusal(err error) (unsupported, retry bool) {
	var se http2.StreamError
	if errors.As(err, &se) {
		return false, se.Code == http2.ErrCodeRefusedStream
	}
	switch err.Error() {
	case "net/http: extended connect not supported by peer":
		return true, false
	case "http2: client conn not usable", "http2: Transport received Server's graceful shutdown GOAWAY":
		return false, true
	}
	return false, false
}

func (s *h2Stream) release() { s.once.Do(func() { s.p.release(s.c) }) }

// releasingBody is a response body that calls release once closed.
type releasingBody struct {
	io.ReadCloser
	release func()
}

func (b *releasingBody) Close() error {
	err := b.ReadCloser.Close()
	b.release()
	return err
}
