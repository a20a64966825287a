package websocket

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/realtime-go/realtime/extensions"
	"github.com/realtime-go/realtime/extensions/deflate"
)

// maxRefusal bounds what a refusal's body and error text may be, whatever
// the request held: the reason, and a quoted prefix of the input.
const maxRefusal = 512

// TestRefusalDoesNotEchoInput sends 1 MB hostile header values and checks
// that the 4xx response and the error Accept returns quote only a short
// prefix of them.
func TestRefusalDoesNotEchoInput(t *testing.T) {
	huge := strings.Repeat("\xff", 1<<20)
	cases := []struct {
		name   string
		header string
		value  string
		status int
	}{
		{"extensions", "Sec-WebSocket-Extensions", huge, http.StatusBadRequest},
		{"extension token", "Sec-WebSocket-Extensions", "permessage-deflate" + strings.Repeat("x", 1<<20) + "\xff", http.StatusBadRequest},
		{"quoted value", "Sec-WebSocket-Extensions", `permessage-deflate; p="` + strings.Repeat("\\\xff", 1<<19) + `"`, http.StatusBadRequest},
		{"origin", "Origin", "http://" + strings.Repeat("\xff", 1<<20) + ".example", http.StatusForbidden},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.Header.Set("Upgrade", "websocket")
			r.Header.Set("Connection", "Upgrade")
			r.Header.Set("Sec-WebSocket-Version", "13")
			r.Header.Set("Sec-WebSocket-Key", testKey)
			r.Header.Set(tc.header, tc.value)
			w := httptest.NewRecorder()
			_, err := Accept(w, r, &AcceptOptions{Extensions: []extensions.Extension{deflate.New(nil)}})
			if !errors.Is(err, ErrBadHandshake) {
				t.Fatalf("Accept: %v, want ErrBadHandshake", err)
			}
			if w.Code != tc.status {
				t.Errorf("status %d, want %d", w.Code, tc.status)
			}
			t.Logf("%d-byte %s: %d-byte body", len(tc.value), tc.header, w.Body.Len())
			if n := w.Body.Len(); n > maxRefusal {
				t.Errorf("response body is %d bytes, want at most %d: %.100q", n, maxRefusal, w.Body.String())
			}
			if n := len(err.Error()); n > maxRefusal {
				t.Errorf("error text is %d bytes, want at most %d: %.100q", n, maxRefusal, err.Error())
			}
		})
	}
}

// TestClientRefusalDoesNotEchoResponse checks the client side: a server
// answering with a long status line or subprotocol, as long as the
// response's bound allows, gets an error quoting only a prefix of it.
func TestClientRefusalDoesNotEchoResponse(t *testing.T) {
	huge := strings.Repeat("\xff", maxRequestSize/2)
	for _, tc := range []struct {
		name string
		resp func(key string) string
	}{
		{"status", func(string) string { return "HTTP/1.1 400 " + huge + "\r\nContent-Length: 0\r\n\r\n" }},
		{"subprotocol", func(key string) string {
			return strings.TrimSuffix(testResponse(key), "\r\n") + "Sec-WebSocket-Protocol: " + huge + "\r\n\r\n"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := netPair(t, overTCP)
			defer a.Close()
			defer b.Close()
			go func() {
				req, err := http.ReadRequest(bufio.NewReader(b))
				if err != nil {
					return
				}
				io.WriteString(b, tc.resp(req.Header.Get("Sec-WebSocket-Key")))
			}()
			u, _ := url.Parse("ws://server.example.com/chat")
			_, _, err := NewClient(context.Background(), a, u, &ClientOptions{Subprotocols: []string{"chat"}})
			if !errors.Is(err, ErrBadHandshake) {
				t.Fatalf("NewClient: %v, want ErrBadHandshake", err)
			}
			if n := len(err.Error()); n > maxRefusal {
				t.Errorf("error text is %d bytes, want at most %d: %.100q", n, maxRefusal, err.Error())
			}
		})
	}
}
