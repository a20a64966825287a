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

	"github.com/realtime-go/realtime"
	"github.com/realtime-go/realtime/client"
	"github.com/realtime-go/realtime/proxy"
	"github.com/realtime-go/realtime/websocket"
)

// Behind squid configured as corporate proxies usually are, the default
// client.Socket (no ForwardProxy) gets through as a browser does: squid
// refuses its CONNECT to a port other than 443, the Socket switches to
// forward mode, its WebSocket handshake loses Upgrade there, and it
// opens over EventSource with POSTs through squid, messages going both
// ways with a realtime.Handler on loopback.
func TestProxyFallbackSquid(t *testing.T) {
	const connect443 = `
acl SSL_ports port 443
acl CONNECT method CONNECT
http_access deny CONNECT !SSL_ports
`
	for _, tc := range []struct {
		name, rules string
	}{
		// squid's default strips Upgrade from forwarded requests
		// (http_upgrade_request_protocols allows none).
		{"connect443", connect443},
		// Some configurations strip the hop-by-hop fields outright.
		{"strip-upgrade", connect443 + `
request_header_access Upgrade deny all
request_header_access Connection deny all
`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			squid, accessLog := rtStartSquidWith(t, tc.rules)
			hub := realtime.NewHub(nil)
			t.Cleanup(func() { hub.Close() })
			srv := httptest.NewServer(realtime.Handler(&realtime.Options{
				Hub:      hub,
				Channels: []string{"chat"},
				OnMessage: func(ctx context.Context, s *realtime.Socket, text string) {
					hub.Publish(ctx, "chat", s.Transport().String()+" said "+text)
				},
			}, nil))
			t.Cleanup(srv.Close)

			opened := make(chan client.OpenInfo, 4)
			d := &client.Dialer{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: squid})}
			s, err := d.Socket(srv.URL, &client.SocketOptions{
				ConnectTimeout: 20 * time.Second, // squid on 2 shared cores
				OnOpen:         func(info client.OpenInfo) { opened <- info },
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()

			var info client.OpenInfo
			select {
			case info = <-opened:
			case <-s.Done():
				t.Fatalf("the Socket stopped: %v", s.Err())
			case <-ctx.Done():
				t.Fatal("the Socket did not open")
			}
			var pe *proxy.Error
			var he *websocket.HandshakeError
			switch {
			case info.Transport != client.TransportEventSource || !info.ForwardProxy:
				t.Fatalf("open: %+v, want EventSource in forward mode", info)
			case !errors.As(info.TunnelErr, &pe) || pe.Status != http.StatusForbidden:
				t.Fatalf("TunnelErr = %v, want squid's 403", info.TunnelErr)
			case !errors.As(info.WebSocketErr, &he):
				t.Fatalf("WebSocketErr = %v, want a refused handshake", info.WebSocketErr)
			case !strings.Contains(info.Response.Header.Get("Via"), "squid"):
				t.Fatalf("the event stream did not come through squid: Via %q", info.Response.Header.Get("Via"))
			}
			t.Logf("opened over %v in forward mode after %v; the WebSocket: %v", info.Transport, info.TunnelErr, info.WebSocketErr)

			// The channel's news (KindSubscribed) comes first.
			next := func(want string) {
				t.Helper()
				for {
					m, err := s.Next(ctx)
					if err != nil {
						t.Fatalf("waiting for %q: %v", want, err)
					}
					if m.Kind == client.KindMessage {
						if m.Data != want {
							t.Fatalf("got %+v, want %q", m, want)
						}
						return
					}
				}
			}
			if err := s.Send(ctx, "hello"); err != nil {
				t.Fatal(err)
			}
			next("eventsource said hello")
			if _, err := hub.Publish(ctx, "chat", "from the server"); err != nil {
				t.Fatal(err)
			}
			next("from the server")
			host := strings.TrimPrefix(srv.URL, "http://")
			rtWaitLog(t, accessLog, "TCP_DENIED/403", "CONNECT "+host, "GET "+srv.URL+"/", "POST "+srv.URL+"/")
		})
	}
}
