package interop

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	coder "github.com/coder/websocket"
	gorilla "github.com/gorilla/websocket"

	"github.com/realtime-go/realtime/websocket"
)

// foreignConn is a connection of another Go WebSocket library.
type foreignConn interface {
	write(ctx context.Context, typ websocket.MessageType, p []byte) error
	read(ctx context.Context) (websocket.MessageType, []byte, error)
	// closeWith runs the closing handshake from this side and returns the
	// code of the answering close frame, or -1 when the library does not
	// report it.
	closeWith(ctx context.Context, code int, reason string) (int, error)
	// closeFrame returns the close frame that a read error reports.
	closeFrame(err error) (code int, reason string, ok bool)
	closeNow()
}

// gorilla/websocket

type gorillaConn struct{ c *gorilla.Conn }

func deadline(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

func (g gorillaConn) write(ctx context.Context, typ websocket.MessageType, p []byte) error {
	g.c.SetWriteDeadline(deadline(ctx))
	return g.c.WriteMessage(int(typ), p)
}

func (g gorillaConn) read(ctx context.Context) (websocket.MessageType, []byte, error) {
	g.c.SetReadDeadline(deadline(ctx))
	typ, p, err := g.c.ReadMessage()
	return websocket.MessageType(typ), p, err
}

func (g gorillaConn) closeWith(ctx context.Context, code int, reason string) (int, error) {
	if err := g.c.WriteControl(gorilla.CloseMessage, gorilla.FormatCloseMessage(code, reason), deadline(ctx)); err != nil {
		return -1, err
	}
	// Read up to the answering close frame, then close the TCP connection
	// as an application would when ReadMessage fails; a client of ours
	// waits for that (RFC 6455 §7.1.1).
	defer g.c.Close()
	for {
		if _, _, err := g.read(ctx); err != nil {
			if c, _, ok := g.closeFrame(err); ok {
				return c, nil
			}
			return -1, err
		}
	}
}

func (g gorillaConn) closeFrame(err error) (int, string, bool) {
	var ce *gorilla.CloseError
	if errors.As(err, &ce) {
		return ce.Code, ce.Text, true
	}
	return 0, "", false
}

func (g gorillaConn) closeNow() { g.c.Close() }

// coder/websocket

type coderConn struct{ c *coder.Conn }

func (k coderConn) write(ctx context.Context, typ websocket.MessageType, p []byte) error {
	return k.c.Write(ctx, coder.MessageType(typ), p)
}

func (k coderConn) read(ctx context.Context) (websocket.MessageType, []byte, error) {
	typ, p, err := k.c.Read(ctx)
	return websocket.MessageType(typ), p, err
}

func (k coderConn) closeWith(ctx context.Context, code int, reason string) (int, error) {
	return -1, k.c.Close(coder.StatusCode(code), reason)
}

func (k coderConn) closeFrame(err error) (int, string, bool) {
	var ce coder.CloseError
	if errors.As(err, &ce) {
		return int(ce.Code), ce.Reason, true
	}
	return 0, "", false
}

func (k coderConn) closeNow() { k.c.CloseNow() }

// pairFunc opens one connection between our package and a foreign library.
type pairFunc func(t *testing.T) (ours *websocket.Conn, them foreignConn)

// gorillaCodes leaves out 1014: gorilla/websocket v1.5.3 fails a received
// close frame with 1014 (Bad Gateway, registered by IANA) as "bad close code".
var gorillaCodes = func() []websocket.StatusCode {
	var codes []websocket.StatusCode
	for _, c := range closeCodes {
		if c != websocket.StatusBadGateway {
			codes = append(codes, c)
		}
	}
	return codes
}()

func TestGoLibraries(t *testing.T) {
	pairs := []struct {
		name  string
		codes []websocket.StatusCode
		open  func(t *testing.T) pairFunc
	}{
		{"gorilla-client/our-server", gorillaCodes, func(t *testing.T) pairFunc {
			srv := startOurServer(t, nil, nil)
			return func(t *testing.T) (*websocket.Conn, foreignConn) {
				d := gorilla.Dialer{HandshakeTimeout: opTimeout}
				gc, resp, err := d.DialContext(testCtx(t), srv.WSURL, nil)
				if err != nil {
					t.Fatalf("gorilla: dial: %v", err)
				}
				resp.Body.Close()
				gc.SetReadLimit(64 << 20)
				t.Cleanup(func() { gc.Close() })
				ours, _ := srv.next(t)
				return ours, gorillaConn{gc}
			}
		}},
		{"coder-client/our-server", closeCodes, func(t *testing.T) pairFunc {
			srv := startOurServer(t, nil, nil)
			return func(t *testing.T) (*websocket.Conn, foreignConn) {
				kc, _, err := coder.Dial(testCtx(t), srv.WSURL, nil)
				if err != nil {
					t.Fatalf("coder: dial: %v", err)
				}
				kc.SetReadLimit(64 << 20)
				t.Cleanup(func() { kc.CloseNow() })
				ours, _ := srv.next(t)
				return ours, coderConn{kc}
			}
		}},
		{"our-client/gorilla-server", gorillaCodes, func(t *testing.T) pairFunc {
			conns := make(chan *gorilla.Conn, 1)
			release := make(chan struct{})
			up := gorilla.Upgrader{}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				gc, err := up.Upgrade(w, r, nil)
				if err != nil {
					return
				}
				gc.SetReadLimit(64 << 20)
				select {
				case conns <- gc:
				case <-release:
				}
				<-release
				gc.Close()
			}))
			t.Cleanup(srv.Close)
			t.Cleanup(func() { close(release) })
			return func(t *testing.T) (*websocket.Conn, foreignConn) {
				ours, _ := dialOurs(t, "ws"+strings.TrimPrefix(srv.URL, "http")+"/", nil)
				select {
				case gc := <-conns:
					t.Cleanup(func() { gc.Close() })
					return ours, gorillaConn{gc}
				case <-time.After(opTimeout):
					t.Fatal("gorilla server: no connection")
					return nil, nil
				}
			}
		}},
		{"our-client/coder-server", closeCodes, func(t *testing.T) pairFunc {
			conns := make(chan *coder.Conn, 1)
			release := make(chan struct{})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				kc, err := coder.Accept(w, r, nil)
				if err != nil {
					return
				}
				kc.SetReadLimit(64 << 20)
				select {
				case conns <- kc:
				case <-release:
				}
				<-release
				kc.CloseNow()
			}))
			t.Cleanup(srv.Close)
			t.Cleanup(func() { close(release) })
			return func(t *testing.T) (*websocket.Conn, foreignConn) {
				ours, _ := dialOurs(t, "ws"+strings.TrimPrefix(srv.URL, "http")+"/", nil)
				select {
				case kc := <-conns:
					t.Cleanup(func() { kc.CloseNow() })
					return ours, coderConn{kc}
				case <-time.After(opTimeout):
					t.Fatal("coder server: no connection")
					return nil, nil
				}
			}
		}},
	}
	for _, p := range pairs {
		t.Run(p.name, func(t *testing.T) {
			open := p.open(t)
			t.Run("echo", func(t *testing.T) { testForeignExchange(t, open) })
			t.Run("close-by-them", func(t *testing.T) { testForeignCloseByThem(t, open, p.codes) })
			t.Run("close-by-us", func(t *testing.T) { testForeignCloseByUs(t, open, p.codes) })
		})
	}
}

func testForeignExchange(t *testing.T, open pairFunc) {
	ours, them := open(t)
	ctx := testCtx(t)
	for _, m := range exchangeMsgs(false) {
		// them -> ours; written on a goroutine, since a large write may need
		// the reader to make progress first.
		errc := make(chan error, 1)
		go func() { errc <- them.write(ctx, m.typ, m.data) }()
		typ, p, err := ours.Read(ctx)
		if err != nil {
			t.Fatalf("ours: read %s: %v", m.name, err)
		}
		if err := <-errc; err != nil {
			t.Fatalf("them: write %s: %v", m.name, err)
		}
		checkMsg(t, "ours", m, typ, p)

		// ours -> them
		go func() { errc <- ours.Write(ctx, m.typ, m.data) }()
		typ, p, err = them.read(ctx)
		if err != nil {
			t.Fatalf("them: read %s: %v", m.name, err)
		}
		if err := <-errc; err != nil {
			t.Fatalf("ours: write %s: %v", m.name, err)
		}
		checkMsg(t, "them", m, typ, p)
	}
	f := genMsg("writer-fragments", 200000, 19, true)
	errc := make(chan error, 1)
	go func() { errc <- writeFragmented(ctx, ours, f.typ, f.data, 1, 3, 70000) }()
	typ, p, err := them.read(ctx)
	if err != nil {
		t.Fatalf("them: read %s: %v", f.name, err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("ours: Writer: %v", err)
	}
	checkMsg(t, "them", f, typ, p)
}

func testForeignCloseByThem(t *testing.T, open pairFunc, codes []websocket.StatusCode) {
	for _, code := range codes {
		ours, them := open(t)
		ctx := testCtx(t)
		type res struct {
			code int
			err  error
		}
		done := make(chan res, 1)
		go func() {
			c, err := them.closeWith(ctx, int(code), closeReason(code))
			done <- res{c, err}
		}()
		_, _, err := ours.Read(ctx)
		checkCloseErr(t, fmt.Sprintf("ours (peer closed with %d)", code), err, code, closeReason(code))
		r := <-done
		if r.err != nil {
			t.Fatalf("them: close %d: %v", code, r.err)
		}
		if r.code != -1 && r.code != int(code) {
			t.Fatalf("them: closed with %d, our answer carried %d; want the code echoed", code, r.code)
		}
	}
}

func testForeignCloseByUs(t *testing.T, open pairFunc, codes []websocket.StatusCode) {
	for _, code := range codes {
		ours, them := open(t)
		ctx := testCtx(t)
		type res struct {
			code   int
			reason string
			ok     bool
			err    error
		}
		done := make(chan res, 1)
		go func() {
			for {
				if _, _, err := them.read(ctx); err != nil {
					// Like an application whose read failed, close the TCP
					// connection, which a client of ours waits for.
					them.closeNow()
					c, r, ok := them.closeFrame(err)
					done <- res{c, r, ok, err}
					return
				}
			}
		}()
		if err := ours.Close(code, closeReason(code)); err != nil {
			t.Fatalf("ours: Close(%d): %v", code, err)
		}
		r := <-done
		if !r.ok || r.code != int(code) || r.reason != closeReason(code) {
			t.Fatalf("them: read ended with %v (close frame %v: %d %q), want %d %q", r.err, r.ok, r.code, r.reason, code, closeReason(code))
		}
	}
}
