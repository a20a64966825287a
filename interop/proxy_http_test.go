package interop

import (
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/realtime-go/realtime/client"
	"github.com/realtime-go/realtime/proxy"
	"github.com/realtime-go/realtime/websocket"
)

// withCreds puts the test credentials (or userinfo "u:p") into a proxy
// URL.
func withCreds(proxyURL, userinfo string) string {
	if userinfo == "" {
		return proxyURL
	}
	i := strings.Index(proxyURL, "://") + 3
	return proxyURL[:i] + userinfo + "@" + proxyURL[i:]
}

// wantProxyRefusal checks that err is a refusal by the proxy with status,
// matching ErrAuth or not, and not a handshake failure.
func wantProxyRefusal(t *testing.T, err error, status int, auth bool) *proxy.Error {
	t.Helper()
	var de *client.DialError
	var pe *proxy.Error
	if !errors.As(err, &de) || !errors.As(err, &pe) {
		t.Fatalf("error %v (%T), want a *client.DialError wrapping a *proxy.Error", err, err)
	}
	if pe.Status != status || pe.Response == nil || pe.Response.StatusCode != status {
		t.Fatalf("proxy status %d (response %v), want %d: %v", pe.Status, pe.Response, status, err)
	}
	if errors.Is(err, proxy.ErrAuth) != auth {
		t.Fatalf("errors.Is(%v, proxy.ErrAuth) = %v, want %v", err, !auth, auth)
	}
	if errors.Is(err, websocket.ErrBadHandshake) {
		t.Fatalf("a proxy refusal reads as a bad handshake: %v", err)
	}
	return pe
}

// checkAuthRefused dials ws:// and opens an EventSource through proxyURL
// with the given userinfo, and expects both to fail with status as an
// authentication failure.
func checkAuthRefused(t *testing.T, proxyURL, userinfo string, status int, tg *proxyTargets) {
	t.Helper()
	d := viaProxy(t, withCreds(proxyURL, userinfo), tg)
	_, resp, err := d.Dial(testCtx(t), "ws://127.0.0.1:"+tg.Plain.Port+"/echo")
	if resp != nil {
		t.Fatalf("handshake response %d from a refused tunnel", resp.StatusCode)
	}
	wantProxyRefusal(t, err, status, true)

	// An EventSource stops for good rather than retry credentials that
	// were refused.
	es, err := d.EventSource("http://127.0.0.1:"+tg.Plain.Port+"/sse", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer es.Close()
	_, err = es.Next(testCtx(t))
	wantProxyRefusal(t, err, status, true)
}

// checkForwardStripsUpgrade dials ws:// in forward mode through a proxy
// that drops Upgrade: the origin sees a plain GET and answers 426, which
// the client reports as ErrBadHandshake with the response.
func checkForwardStripsUpgrade(t *testing.T, proxyURL string, tg *proxyTargets) *http.Response {
	t.Helper()
	d := viaProxy(t, proxyURL, tg)
	d.ForwardProxy = true
	tg.Plain.drain()
	_, resp, err := d.Dial(testCtx(t), "ws://127.0.0.1:"+tg.Plain.Port+"/echo")
	if !errors.Is(err, websocket.ErrBadHandshake) {
		t.Fatalf("error %v, want ErrBadHandshake", err)
	}
	var he *websocket.HandshakeError
	if !errors.As(err, &he) || he.Status != http.StatusUpgradeRequired {
		t.Fatalf("error %v, want a *websocket.HandshakeError with 426", err)
	}
	if resp == nil || resp.StatusCode != http.StatusUpgradeRequired {
		t.Fatalf("response %v, want the origin's 426", resp)
	}
	if body, _ := io.ReadAll(resp.Body); len(body) == 0 {
		t.Fatal("426 response body not kept")
	}
	if s := tg.Plain.next(t); s.upgrade != "" || s.path != "/echo" {
		t.Fatalf("origin saw Upgrade %q on %s: the proxy passed it", s.upgrade, s.path)
	}
	return resp
}

func TestProxySquid(t *testing.T) {
	sq := startSquid(t)
	tg := startProxyTargets(t)
	creds := proxyUser + ":" + proxyPass

	t.Run("connect", func(t *testing.T) {
		checkThroughProxy(t, viaProxy(t, sq.Plain, tg), tg, "127.0.0.1")
		sq.accessLog(t, "CONNECT", "127.0.0.1:"+tg.TLS.Port)
	})
	t.Run("connect-by-name", func(t *testing.T) {
		// squid resolves example.com from its hosts file; TLS inside the
		// tunnel carries the name in SNI and is checked against it.
		checkThroughProxy(t, viaProxy(t, sq.Plain, tg), tg, "example.com")
		sq.accessLog(t, "CONNECT", "example.com:"+tg.TLS.Port)
	})
	t.Run("basic-auth", func(t *testing.T) {
		checkThroughProxy(t, viaProxy(t, withCreds(sq.Auth, creds), tg), tg, "127.0.0.1")
		sq.accessLog(t, "CONNECT", proxyUser)
	})
	t.Run("auth-missing", func(t *testing.T) { checkAuthRefused(t, sq.Auth, "", http.StatusProxyAuthRequired, tg) })
	t.Run("auth-wrong", func(t *testing.T) {
		checkAuthRefused(t, sq.Auth, proxyUser+":wrong", http.StatusProxyAuthRequired, tg)
	})
	t.Run("https-proxy", func(t *testing.T) {
		d := viaProxy(t, withCreds(sq.TLS, creds), tg)
		d.ProxyTLSConfig = &tls.Config{RootCAs: sq.TLSCAs}
		checkThroughProxy(t, d, tg, "example.com")

		// The proxy's certificate is checked with ProxyTLSConfig, not
		// with the origin's TLSConfig.
		d.ProxyTLSConfig = nil
		_, _, err := d.Dial(testCtx(t), "wss://example.com:"+tg.TLS.Port+"/echo")
		var pe *proxy.Error
		var cve *tls.CertificateVerificationError
		if !errors.As(err, &pe) || pe.Op != "tls" || !errors.As(err, &cve) {
			t.Fatalf("https proxy with an untrusted certificate: %v", err)
		}
	})
	t.Run("https-proxy-auth-missing", func(t *testing.T) {
		d := viaProxy(t, sq.TLS, tg)
		d.ProxyTLSConfig = &tls.Config{RootCAs: sq.TLSCAs}
		_, _, err := d.Dial(testCtx(t), "wss://127.0.0.1:"+tg.TLS.Port+"/echo")
		wantProxyRefusal(t, err, http.StatusProxyAuthRequired, true)
	})
	t.Run("connect-denied", func(t *testing.T) {
		d := viaProxy(t, sq.NoConnect, tg)
		_, resp, err := d.Dial(testCtx(t), "ws://127.0.0.1:"+tg.Plain.Port+"/echo")
		if resp != nil {
			t.Fatalf("handshake response %d", resp.StatusCode)
		}
		pe := wantProxyRefusal(t, err, http.StatusForbidden, false)
		if !strings.Contains(pe.Response.Header.Get("Server"), "squid") {
			t.Fatalf("refusal not from squid: %v", pe.Response.Header)
		}
		es, err := d.EventSource("https://127.0.0.1:"+tg.TLS.Port+"/sse", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer es.Close()
		_, err = es.Next(testCtx(t))
		wantProxyRefusal(t, err, http.StatusForbidden, false)
	})
	t.Run("forward-strips-upgrade", func(t *testing.T) {
		resp := checkForwardStripsUpgrade(t, sq.Plain, tg)
		if !strings.Contains(resp.Header.Get("Via"), "squid") {
			t.Fatalf("426 did not come through squid: Via %q", resp.Header.Get("Via"))
		}
	})
	t.Run("forward-eventsource-where-connect-denied", func(t *testing.T) {
		// The fallback path: the proxy refuses tunnels but forwards a
		// plain GET, so server-sent events still flow, reconnection
		// included.
		d := viaProxy(t, sq.NoConnect, tg)
		d.ForwardProxy = true
		checkES(t, d, "http://127.0.0.1:"+tg.Plain.Port+"/sse", tg.Plain, 5)
		sq.accessLog(t, "GET", "http://127.0.0.1:"+tg.Plain.Port+"/sse")
	})
	t.Run("forward-upgrade-allowed", func(t *testing.T) {
		// http_upgrade_request_protocols lets WebSockets through in
		// forward mode; the client needs no tunnel.
		d := viaProxy(t, sq.Upgrade, tg)
		d.ForwardProxy = true
		checkWSEcho(t, d, "ws://127.0.0.1:"+tg.Plain.Port+"/echo", tg.Plain, "")
		sq.accessLog(t, "GET", "http://127.0.0.1:"+tg.Plain.Port+"/echo")
	})
}

func TestProxyTinyproxy(t *testing.T) {
	plain := startTinyproxy(t, tinyPlain)
	auth := startTinyproxy(t, tinyAuth)
	tg := startProxyTargets(t)

	t.Run("connect", func(t *testing.T) { checkThroughProxy(t, viaProxy(t, plain, tg), tg, "127.0.0.1") })
	t.Run("basic-auth", func(t *testing.T) {
		checkThroughProxy(t, viaProxy(t, withCreds(auth, proxyUser+":"+proxyPass), tg), tg, "127.0.0.1")
	})
	t.Run("auth-missing", func(t *testing.T) { checkAuthRefused(t, auth, "", http.StatusProxyAuthRequired, tg) })
	// tinyproxy answers a wrong password with 401, not 407.
	t.Run("auth-wrong", func(t *testing.T) { checkAuthRefused(t, auth, proxyUser+":wrong", http.StatusUnauthorized, tg) })
	t.Run("forward-strips-upgrade", func(t *testing.T) { checkForwardStripsUpgrade(t, plain, tg) })
	t.Run("forward-eventsource", func(t *testing.T) {
		d := viaProxy(t, withCreds(auth, proxyUser+":"+proxyPass), tg)
		d.ForwardProxy = true
		checkES(t, d, "http://127.0.0.1:"+tg.Plain.Port+"/sse", tg.Plain, 5)
	})
}
