package interop

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/realtime-go/realtime/websocket"
)

// rawUpgrade sends a hand-written upgrade request and returns the response,
// the connection and its reader (positioned after the response head).
func rawUpgrade(t *testing.T, addr string, headers ...string) (*http.Response, net.Conn, *bufio.Reader) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, opTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(opTimeout))
	req := "GET /ws HTTP/1.1\r\nHost: " + addr + "\r\n" + strings.Join(headers, "\r\n") + "\r\n\r\n"
	if _, err := io.WriteString(nc, req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
	if err != nil {
		t.Fatalf("reading the handshake response: %v", err)
	}
	return resp, nc, br
}

const (
	sampleKey    = "dGhlIHNhbXBsZSBub25jZQ==" // RFC 6455 §1.3
	sampleAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
)

func TestHybi8Handshake(t *testing.T) {
	srv := startOurServer(t, nil, nil)
	origin := "http://" + srv.Addr

	t.Run("v8-accepted", func(t *testing.T) {
		resp, nc, br := rawUpgrade(t, srv.Addr,
			"Upgrade: websocket", "Connection: Upgrade",
			"Sec-WebSocket-Key: "+sampleKey,
			"Sec-WebSocket-Origin: "+origin,
			"Sec-WebSocket-Version: 8")
		if resp.StatusCode != http.StatusSwitchingProtocols {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			t.Fatalf("status %d (%q), want 101", resp.StatusCode, body)
		}
		if got := resp.Header.Get("Sec-WebSocket-Accept"); got != sampleAccept {
			t.Fatalf("Sec-WebSocket-Accept %q, want %q", got, sampleAccept)
		}
		if !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") || !strings.Contains(strings.ToLower(resp.Header.Get("Connection")), "upgrade") {
			t.Fatalf("Upgrade %q Connection %q", resp.Header.Get("Upgrade"), resp.Header.Get("Connection"))
		}
		c, r := srv.next(t)
		if c.Version() != 8 {
			t.Fatalf("server: Version() = %d, want 8", c.Version())
		}
		if got := r.Header.Get("Sec-WebSocket-Origin"); got != origin {
			t.Fatalf("server saw Sec-WebSocket-Origin %q", got)
		}
		// Hybi-8 framing is RFC 6455 framing: a masked text frame "hi"...
		mask := []byte{1, 2, 3, 4}
		frame := []byte{0x81, 0x82, mask[0], mask[1], mask[2], mask[3], 'h' ^ mask[0], 'i' ^ mask[1]}
		if _, err := nc.Write(frame); err != nil {
			t.Fatal(err)
		}
		ctx := testCtx(t)
		typ, p, err := c.Read(ctx)
		if err != nil || typ != websocket.MessageText || string(p) != "hi" {
			t.Fatalf("server: read %d %q %v, want text \"hi\"", typ, p, err)
		}
		// ...and the answer is an unmasked frame.
		if err := c.Write(ctx, websocket.MessageBinary, []byte("yo")); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 4)
		if _, err := io.ReadFull(br, got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, []byte{0x82, 0x02, 'y', 'o'}) {
			t.Fatalf("server frame % x, want 82 02 79 6f", got)
		}
	})

	t.Run("v8-foreign-origin-rejected", func(t *testing.T) {
		resp, _, _ := rawUpgrade(t, srv.Addr,
			"Upgrade: websocket", "Connection: Upgrade",
			"Sec-WebSocket-Key: "+sampleKey,
			"Sec-WebSocket-Origin: http://evil.example",
			"Sec-WebSocket-Version: 8")
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("status %d for a foreign Sec-WebSocket-Origin, want 403", resp.StatusCode)
		}
		select {
		case a := <-srv.conns:
			if a.err == nil {
				t.Fatal("server: Accept succeeded for a foreign Sec-WebSocket-Origin")
			}
		case <-time.After(opTimeout):
			t.Fatal("handler did not return from Accept")
		}
	})

	for _, v := range []string{"7", "12", "14"} {
		t.Run("v"+v+"-rejected", func(t *testing.T) {
			resp, _, _ := rawUpgrade(t, srv.Addr,
				"Upgrade: websocket", "Connection: Upgrade",
				"Sec-WebSocket-Key: "+sampleKey,
				"Sec-WebSocket-Version: "+v)
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d for version %s, want 400", resp.StatusCode, v)
			}
			var got []string
			for _, h := range resp.Header.Values("Sec-WebSocket-Version") {
				for _, f := range strings.Split(h, ",") {
					got = append(got, strings.TrimSpace(f))
				}
			}
			if strings.Join(got, ",") != "13,8" {
				t.Fatalf("Sec-WebSocket-Version %q, want \"13, 8\"", resp.Header.Values("Sec-WebSocket-Version"))
			}
			select {
			case a := <-srv.conns:
				if a.err == nil {
					t.Fatalf("server: Accept succeeded for version %s", v)
				}
			case <-time.After(opTimeout):
				t.Fatal("handler did not return from Accept")
			}
		})
	}
}

// TestAcceptConnNodeClient runs the server handshake on a raw net.Conn
// (AcceptConn) against the node ws client.
func TestAcceptConnNodeClient(t *testing.T) {
	node := startNode(t, "client")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		c   *websocket.Conn
		r   *http.Request
		err error
	}
	results := make(chan result, 1)
	ctx, cancel := context.WithCancel(context.Background())
	acceptDone := make(chan struct{})
	go func() {
		defer close(acceptDone)
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			c, r, err := websocket.AcceptConn(ctx, nc, nil)
			if err != nil {
				nc.Close()
			}
			select {
			case results <- result{c, r, err}:
			case <-ctx.Done():
				if c != nil {
					c.CloseNow()
				}
				return
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		ln.Close()
		<-acceptDone
	})

	for _, v := range []int{13, 8} {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			url := fmt.Sprintf("ws://%s/raw?v=%d", ln.Addr(), v)
			id := node.start(t, "connect", map[string]any{"url": url, "version": v})
			var res result
			select {
			case res = <-results:
			case <-time.After(opTimeout):
				t.Fatal("AcceptConn did not return")
			}
			if res.err != nil {
				t.Fatalf("AcceptConn: %v", res.err)
			}
			c := res.c
			t.Cleanup(func() { c.CloseNow() })
			node.result(t, id)
			if res.r.URL.RequestURI() != fmt.Sprintf("/raw?v=%d", v) || c.Version() != v {
				t.Fatalf("AcceptConn: request URI %q version %d", res.r.URL.RequestURI(), c.Version())
			}
			ctx := testCtx(t)
			m := genMsg("text-70000", 70000, 20, true)
			id = node.start(t, "send", map[string]any{"data": m.spec})
			typ, p, err := c.Read(ctx)
			if err != nil {
				t.Fatal(err)
			}
			node.result(t, id)
			checkMsg(t, "server", m, typ, p)
			if err := c.Write(ctx, m.typ, m.data); err != nil {
				t.Fatal(err)
			}
			checkNodeMsg(t, m, node.do(t, "recv", nil))
			id = node.start(t, "awaitClose", nil)
			if err := c.Close(websocket.StatusGoingAway, "raw bye"); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if r := node.result(t, id); r.Code != 1001 || r.Reason != "raw bye" {
				t.Fatalf("node saw close %d %q, want 1001 \"raw bye\"", r.Code, r.Reason)
			}
		})
	}
}
