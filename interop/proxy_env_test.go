package interop

import (
	"crypto/tls"
	"errors"
	"net/http"
	"testing"

	"github.com/realtime-go/realtime/client"
	"github.com/realtime-go/realtime/proxy"
)

// Proxy selection from HTTP_PROXY, HTTPS_PROXY, ALL_PROXY and NO_PROXY,
// with real proxies: tinyproxy with "ConnectPort 443" refuses tunnels to
// our ports with 403, which shows that a dial went through it; microsocks
// with credentials shows that ALL_PROXY was used.
func TestProxyEnvironment(t *testing.T) {
	refusing := startTinyproxy(t, tinyConnect443)
	passing := startTinyproxy(t, tinyPlain)
	socks := startMicrosocks(t, true)
	tg := startProxyTargets(t)
	for _, k := range []string{"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy", "REQUEST_METHOD"} {
		t.Setenv(k, "")
	}
	d := &client.Dialer{TLSConfig: &tls.Config{RootCAs: tg.CAs}} // Proxy nil: the environment
	wsURL := "ws://127.0.0.1:" + tg.Plain.Port + "/echo"
	wssURL := "wss://127.0.0.1:" + tg.TLS.Port + "/echo"
	sseURL := "http://127.0.0.1:" + tg.Plain.Port + "/sse"

	dialOK := func(t *testing.T, u string) {
		t.Helper()
		c, _, err := d.Dial(testCtx(t), u)
		if err != nil {
			t.Fatalf("Dial %s: %v", u, err)
		}
		c.CloseNow()
	}
	dialRefused := func(t *testing.T, u string) {
		t.Helper()
		_, _, err := d.Dial(testCtx(t), u)
		wantProxyRefusal(t, err, http.StatusForbidden, false)
	}

	t.Run("HTTP_PROXY", func(t *testing.T) {
		t.Setenv("HTTP_PROXY", refusing)
		dialRefused(t, wsURL)
		dialOK(t, wssURL) // wss:// does not use HTTP_PROXY
	})
	t.Run("http_proxy", func(t *testing.T) {
		t.Setenv("http_proxy", refusing)
		dialRefused(t, wsURL)
	})
	t.Run("NO_PROXY", func(t *testing.T) {
		t.Setenv("HTTP_PROXY", refusing)
		for _, np := range []string{"127.0.0.1", "127.0.0.0/8", "127.0.0.1:" + tg.Plain.Port, "example.com, 127.0.0.1", "*"} {
			t.Setenv("NO_PROXY", np)
			dialOK(t, wsURL)
		}
		for _, np := range []string{"127.0.0.1:1", "10.0.0.0/8", "localhost", "example.com"} {
			t.Setenv("NO_PROXY", np)
			dialRefused(t, wsURL)
		}
		t.Setenv("NO_PROXY", "")
		t.Setenv("no_proxy", "127.0.0.1")
		dialOK(t, wsURL)
	})
	t.Run("ALL_PROXY", func(t *testing.T) {
		t.Setenv("ALL_PROXY", "socks5h://"+proxyUser+":wrong@"+socks)
		_, _, err := d.Dial(testCtx(t), wssURL)
		if !errors.Is(err, proxy.ErrAuth) {
			t.Fatalf("wss with ALL_PROXY (wrong password): %v, want proxy.ErrAuth", err)
		}
		t.Setenv("ALL_PROXY", "socks5h://"+proxyUser+":"+proxyPass+"@"+socks)
		dialOK(t, wssURL)
		dialOK(t, wsURL)
		// HTTPS_PROXY wins over ALL_PROXY for wss://.
		t.Setenv("ALL_PROXY", "socks5h://"+proxyUser+":wrong@"+socks)
		t.Setenv("HTTPS_PROXY", passing)
		dialOK(t, wssURL)
	})
	t.Run("eventsource", func(t *testing.T) {
		// The proxy refuses the tunnel (CONNECT to 443 only): the
		// EventSource gets through it in forward mode, as browsers do
		// (TestProxyFallbackSquid checks the path in squid's log).
		t.Setenv("HTTP_PROXY", refusing)
		checkES(t, d, sseURL, tg.Plain, 4)

		t.Setenv("NO_PROXY", "127.0.0.1")
		checkES(t, d, sseURL, tg.Plain, 4)
	})
}
