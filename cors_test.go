package realtime

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/realtime-go/realtime/websocket"
)

// corsRequest makes a request of method with Origin origin (none when
// "") and returns the response, its body read.
func corsRequest(t *testing.T, ts *testServer, method, origin string, h http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+"?"+ProtocolParam+"="+SubprotocolV2, strings.NewReader("message\nx"))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	if method == http.MethodGet && req.Header.Get("Upgrade") == "" {
		req.Header.Set("Accept", "text/event-stream")
	}
	tr := &http.Transport{DisableKeepAlives: true}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, resp.Body)
	}
	resp.Body.Close()
	return resp
}

func hasCORS(h http.Header) bool {
	for k := range h {
		if strings.HasPrefix(k, "Access-Control-") {
			return true
		}
	}
	return false
}

// Options.OriginPatterns applies to every transport: a foreign origin
// not allowed gets 403 without CORS headers on the EventSource GET (200
// before), the POST and the preflight; an allowed one gets the CORS
// headers and a preflight answer (405 before). Same-origin requests and
// requests without Origin pass without CORS headers.
func TestCORS(t *testing.T) {
	ts := newTestServer(t, &Options{OriginPatterns: []string{"app.example", "https://*.trusted.example"}}, nil)
	ec := dialES(t, ts, esDial{v2: true})
	ts.next(t)
	token := http.Header{TokenHeader: {ec.token}}
	host := strings.TrimPrefix(ts.URL, "http://")

	for _, origin := range []string{"http://evil.example", "http://app.example.evil", "http://a.trusted.example", "null"} {
		for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodOptions} {
			resp := corsRequest(t, ts, method, origin, token)
			if resp.StatusCode != http.StatusForbidden || hasCORS(resp.Header) {
				t.Errorf("%s from %s: %d %v, want 403 without CORS headers", method, origin, resp.StatusCode, resp.Header)
			}
		}
	}

	for _, origin := range []string{"http://app.example", "https://a.trusted.example"} {
		resp := corsRequest(t, ts, http.MethodOptions, origin, http.Header{
			"Access-Control-Request-Method":  {"POST"},
			"Access-Control-Request-Headers": {"realtime-token, realtime-seq, content-type"},
		})
		want := http.Header{
			"Access-Control-Allow-Origin":  {origin},
			"Access-Control-Allow-Methods": {"POST"},
			"Access-Control-Allow-Headers": {"Realtime-Token, Realtime-Seq, Content-Type"},
			"Access-Control-Max-Age":       {"600"},
			"Vary":                         {"Origin"},
		}
		if resp.StatusCode != http.StatusNoContent {
			t.Errorf("preflight from %s: %d, want 204", origin, resp.StatusCode)
		}
		for k, v := range want {
			if got := resp.Header.Values(k); len(got) != 1 || got[0] != v[0] {
				t.Errorf("preflight from %s: %s %q, want %q", origin, k, got, v)
			}
		}
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			h := token
			if method == http.MethodPost {
				h = http.Header{TokenHeader: {ec.token}, SeqHeader: nil}
			}
			resp := corsRequest(t, ts, method, origin, h)
			if resp.StatusCode != map[string]int{http.MethodGet: 200, http.MethodPost: 204}[method] {
				t.Errorf("%s from %s: %d", method, origin, resp.StatusCode)
			}
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != origin || resp.Header.Get("Vary") != "Origin" {
				t.Errorf("%s from %s: Access-Control-Allow-Origin %q, Vary %q", method, origin, got, resp.Header.Get("Vary"))
			}
			if resp.Header.Get("Access-Control-Allow-Credentials") != "" {
				t.Errorf("%s from %s allows credentials", method, origin)
			}
			if method == http.MethodGet {
				ts.next(t)
			}
		}
	}

	for _, origin := range []string{"", "http://" + host} {
		resp := corsRequest(t, ts, http.MethodOptions, origin, nil)
		if resp.StatusCode != http.StatusNoContent || hasCORS(resp.Header) || resp.Header.Get("Allow") != "GET, POST, OPTIONS" {
			t.Errorf("OPTIONS from %q: %d %v", origin, resp.StatusCode, resp.Header)
		}
		resp = corsRequest(t, ts, http.MethodGet, origin, nil)
		if resp.StatusCode != http.StatusOK || hasCORS(resp.Header) {
			t.Errorf("GET from %q: %d %v", origin, resp.StatusCode, resp.Header)
		}
		ts.next(t)
	}
	if resp := corsRequest(t, ts, http.MethodPut, "", nil); resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, POST, OPTIONS" {
		t.Errorf("PUT: %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

// The WebSocket upgrade obeys Options.OriginPatterns too, and a refused
// origin never reaches OnConnect.
func TestCORSWebSocket(t *testing.T) {
	var connects atomic.Int32
	ts := newTestServer(t, &Options{
		OriginPatterns: []string{"app.example"},
		WebSocket:      websocket.AcceptOptions{OriginPatterns: []string{"other.example"}},
		OnConnect:      func(_ context.Context, _ *Socket) error { connects.Add(1); return nil },
	}, nil)
	u, _ := url.Parse(ts.URL)
	u.Scheme = "ws"
	for _, tc := range []struct {
		origin string
		ok     bool
	}{{"http://app.example", true}, {"http://other.example", true}, {"http://evil.example", false}} {
		d := wsDial{v2: true, opts: websocket.ClientOptions{Origin: tc.origin}}
		if tc.ok {
			dialWS(t, ts, d)
			ts.next(t)
			continue
		}
		resp := corsRequest(t, ts, http.MethodGet, tc.origin, http.Header{
			"Upgrade":               {"websocket"},
			"Connection":            {"Upgrade"},
			"Sec-Websocket-Version": {"13"},
			"Sec-Websocket-Key":     {"dGhlIHNhbXBsZSBub25jZQ=="},
		})
		if resp.StatusCode != http.StatusForbidden || hasCORS(resp.Header) {
			t.Errorf("upgrade from %s: %d %v", tc.origin, resp.StatusCode, resp.Header)
		}
	}
	if connects.Load() != 2 {
		t.Errorf("OnConnect ran %d times, want 2", connects.Load())
	}
}

// The browser client is served to any page: a script tag loads it.
func TestCORSClientJS(t *testing.T) {
	ts := newTestServer(t, &Options{}, nil)
	req, _ := http.NewRequest(http.MethodGet, ts.URL+"?client.js", nil)
	req.Header.Set("Origin", "http://elsewhere.example")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("client.js for another origin: %d", resp.StatusCode)
	}
}
