package interop

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/realtime-go/realtime/client"
	"github.com/realtime-go/realtime/websocket"
)

// TestRedirectNginx: nginx answers the WebSocket handshake with 301 (a
// relative Location, to a path it proxies) and 307 (an absolute http://
// Location on another origin, the server itself); our client follows
// both, keeps Authorization on the first origin only, ends up connected
// and reports the final URL. A 301 back to itself is a loop.
func TestRedirectNginx(t *testing.T) {
	auths := make(chan string, 8)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auths <- r.Header.Get("Authorization")
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		// One echo is all the test needs; then wait for the close.
		ctx := context.Background()
		if typ, p, err := c.Read(ctx); err == nil && c.Write(ctx, typ, p) == nil {
			c.Read(ctx)
		}
	}))
	defer srv.Close()
	backend := srv.Listener.Addr().String()
	ng := rtRunNginx(t, `
  map $http_upgrade $connection_upgrade { default upgrade; '' ''; }
  server {
    listen ADDR;
    absolute_redirect off;
    location = /old { return 301 /proxied/ws; }
    location = /cross { return 307 http://`+backend+`/ws; }
    location = /loop { return 301 /loop; }
    location /proxied/ {
      proxy_pass http://`+backend+`;
      proxy_http_version 1.1;
      proxy_set_header Host $http_host;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
    }
  }
`)
	d := &client.Dialer{Proxy: func(*http.Request) (*url.URL, error) { return nil, nil }, MaxRedirects: 3, Header: http.Header{"Authorization": {"Bearer t"}}}
	for _, tc := range []struct {
		path, final, auth string
	}{
		{"/old", "ws://" + ng + "/proxied/ws", "Bearer t"}, // same origin: kept
		{"/cross", "ws://" + backend + "/ws", ""},          // another origin: dropped
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, resp, err := d.Dial(ctx, "ws://"+ng+tc.path)
		if err != nil {
			cancel()
			t.Fatalf("%s: %v", tc.path, err)
		}
		if got := resp.Request.URL.String(); got != tc.final {
			t.Errorf("%s: final URL %s, want %s", tc.path, got, tc.final)
		}
		if got := <-auths; got != tc.auth {
			t.Errorf("%s: the server got Authorization %q, want %q", tc.path, got, tc.auth)
		}
		if err := c.Write(ctx, websocket.MessageText, []byte("hi")); err != nil {
			t.Fatal(err)
		}
		if _, p, err := c.Read(ctx); err != nil || string(p) != "hi" {
			t.Fatalf("%s: echo %q, %v", tc.path, p, err)
		}
		c.Close(websocket.StatusNormalClosure, "")
		cancel()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, resp, err := d.Dial(ctx, "ws://"+ng+"/loop")
	if !errors.Is(err, client.ErrRedirectLoop) || resp == nil || resp.StatusCode != 301 || !strings.HasSuffix(resp.Header.Get("Location"), "/loop") {
		t.Fatalf("loop: error %v, response %v", err, resp)
	}
}
