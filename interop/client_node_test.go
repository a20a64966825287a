package interop

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/realtime-go/realtime/client"
	"github.com/realtime-go/realtime/proxy"
	"github.com/realtime-go/realtime/websocket"
)

// Our client package against the npm ws server, versions 13 and 8.
func TestClientNodeWS(t *testing.T) {
	node := startNode(t, "server")
	for _, v := range []int{13, 8} {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			d := &client.Dialer{Proxy: proxy.Direct, Version: v, Header: http.Header{"X-Client": {"realtime"}}}
			path := fmt.Sprintf("/client?v=%d", v)
			id := node.start(t, "accept", nil)
			c, resp, err := d.Dial(testCtx(t), fmt.Sprintf("ws://127.0.0.1:%d%s", node.Port, path))
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			defer c.CloseNow()
			acc := node.result(t, id)
			if resp.StatusCode != http.StatusSwitchingProtocols || acc.Version != strconv.Itoa(v) || acc.Path != path || c.Version() != v {
				t.Fatalf("status %d; node saw version %q path %q; client version %d", resp.StatusCode, acc.Version, acc.Path, c.Version())
			}
			echoID := node.start(t, "echo", nil)
			ctx := testCtx(t)
			msgs := exchangeMsgs(false)
			for _, m := range msgs {
				if err := c.Write(ctx, m.typ, m.data); err != nil {
					t.Fatalf("write %s: %v", m.name, err)
				}
				typ, p, err := c.Read(ctx)
				if err != nil {
					t.Fatalf("read echo of %s: %v", m.name, err)
				}
				checkMsg(t, "client", m, typ, p)
			}
			if err := c.Close(websocket.StatusNormalClosure, "bye"); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if r := node.result(t, echoID); r.Echoed != len(msgs) || r.Code != 1000 {
				t.Fatalf("node echoed %d messages and saw close %d, want %d and 1000", r.Echoed, r.Code, len(msgs))
			}
		})
	}
}

// startFaye starts node/faye-server.mjs and returns its port.
func startFaye(t *testing.T) int {
	t.Helper()
	node := needNodeWS(t)
	if _, err := os.Stat(filepath.Join(nodeDir(t), "node_modules", "faye-websocket", "package.json")); err != nil {
		missingPeer(t, "npm package faye-websocket in interop/node (npm ci): %v", err)
	}
	p := startLinePeer(t, "faye", nodeDir(t), node, "faye-server.mjs")
	line := p.readLine(t, "the port line")
	var hello struct {
		Port int `json:"port"`
	}
	if err := json.Unmarshal([]byte(line), &hello); err != nil || hello.Port == 0 {
		t.Fatalf("faye server: first line %q is not {\"port\":N} (%v)", line, err)
	}
	return hello.Port
}

// Our client package against a faye-websocket server: WebSocket echo with
// a subprotocol, version 8 refused with 400, and faye's EventSource
// across a reconnection, directly and through tinyproxy (tunnel and
// forward mode).
func TestClientFaye(t *testing.T) {
	port := startFaye(t)
	base := fmt.Sprintf("127.0.0.1:%d", port)

	t.Run("websocket", func(t *testing.T) {
		d := &client.Dialer{Proxy: proxy.Direct, Subprotocols: []string{"chat.v2", "chat.v1"}}
		c, _, err := d.Dial(testCtx(t), "ws://"+base+"/echo")
		if err != nil {
			t.Fatalf("Dial: %v", err)
		}
		defer c.CloseNow()
		if c.Subprotocol() != "chat.v1" {
			t.Fatalf("subprotocol %q, want chat.v1", c.Subprotocol())
		}
		ctx := testCtx(t)
		for _, m := range exchangeMsgs(false) {
			if err := c.Write(ctx, m.typ, m.data); err != nil {
				t.Fatalf("write %s: %v", m.name, err)
			}
			typ, p, err := c.Read(ctx)
			if err != nil {
				t.Fatalf("read echo of %s: %v", m.name, err)
			}
			checkMsg(t, "client", m, typ, p)
		}
		if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
			t.Fatalf("Close: %v", err)
		}
	})

	t.Run("version-8-refused", func(t *testing.T) {
		// websocket-driver speaks hybi-13 only.
		_, resp, err := (&client.Dialer{Proxy: proxy.Direct, Version: 8}).Dial(testCtx(t), "ws://"+base+"/echo")
		if !errors.Is(err, websocket.ErrBadHandshake) || resp == nil || resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("error %v, response %v; want ErrBadHandshake with faye's 400", err, resp)
		}
	})

	readFaye := func(t *testing.T, d *client.Dialer) {
		t.Helper()
		es, err := d.EventSource("http://"+base+"/sse", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer es.Close()
		ctx := testCtx(t)
		for i := 1; i <= 5; i++ {
			ev, err := es.Next(ctx)
			if err != nil {
				t.Fatalf("event %d: %v", i, err)
			}
			if ev.ID != strconv.Itoa(i) || ev.Type != "tick" || ev.Data != fmt.Sprintf("faye event %d\nsecond line", i) {
				t.Fatalf("event %d: %+v", i, ev)
			}
		}
	}
	t.Run("eventsource", func(t *testing.T) { readFaye(t, &client.Dialer{Proxy: proxy.Direct}) })
	t.Run("eventsource-via-tinyproxy", func(t *testing.T) {
		tp := withCreds(startTinyproxy(t, tinyAuth), proxyUser+":"+proxyPass)
		readFaye(t, &client.Dialer{Proxy: http.ProxyURL(mustURL(t, tp))})
		readFaye(t, &client.Dialer{Proxy: http.ProxyURL(mustURL(t, tp)), ForwardProxy: true})
	})
}
