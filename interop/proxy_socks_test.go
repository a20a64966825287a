package interop

import (
	"errors"
	"testing"

	"github.com/realtime-go/realtime/client"
	"github.com/realtime-go/realtime/proxy"
)

// checkSOCKSAuthRefused expects a dial with the given userinfo to fail as
// an authentication failure of the SOCKS5 exchange.
func checkSOCKSAuthRefused(t *testing.T, addr, userinfo string, tg *proxyTargets) {
	t.Helper()
	d := viaProxy(t, withCreds("socks5h://"+addr, userinfo), tg)
	_, resp, err := d.Dial(testCtx(t), "ws://127.0.0.1:"+tg.Plain.Port+"/echo")
	if resp != nil {
		t.Fatalf("handshake response %d", resp.StatusCode)
	}
	var de *client.DialError
	var pe *proxy.Error
	if !errors.As(err, &de) || !errors.As(err, &pe) || pe.Op != "socks5" || !errors.Is(err, proxy.ErrAuth) {
		t.Fatalf("error %v, want a socks5 *proxy.Error matching proxy.ErrAuth", err)
	}
}

func TestProxyDante(t *testing.T) {
	none := startDante(t, false)
	tg := startProxyTargets(t)

	t.Run("socks5h", func(t *testing.T) { checkThroughProxy(t, viaProxy(t, "socks5h://"+none, tg), tg, "127.0.0.1") })
	t.Run("socks5-resolves-locally", func(t *testing.T) {
		// localhost is resolved by the client (to 127.0.0.1, IPv4
		// first), which dante's rules allow.
		checkWSEcho(t, viaProxy(t, "socks5://"+none, tg), "ws://localhost:"+tg.Plain.Port+"/echo", tg.Plain, "")
	})
	t.Run("username", func(t *testing.T) {
		user := startDante(t, true) // creates the system user, as root
		checkThroughProxy(t, viaProxy(t, "socks5h://"+socksSysUser+":"+socksSysPass+"@"+user, tg), tg, "127.0.0.1")
		t.Run("wrong-password", func(t *testing.T) { checkSOCKSAuthRefused(t, user, socksSysUser+":wrong", tg) })
		t.Run("no-credentials", func(t *testing.T) { checkSOCKSAuthRefused(t, user, "", tg) })
	})
}

func TestProxyMicrosocks(t *testing.T) {
	none := startMicrosocks(t, false)
	auth := startMicrosocks(t, true)
	tg := startProxyTargets(t)

	t.Run("socks5h", func(t *testing.T) { checkThroughProxy(t, viaProxy(t, "socks5h://"+none, tg), tg, "127.0.0.1") })
	t.Run("socks5-resolves-locally", func(t *testing.T) {
		checkWSEcho(t, viaProxy(t, "socks5://"+none, tg), "ws://localhost:"+tg.Plain.Port+"/echo", tg.Plain, "")
	})
	t.Run("user-password", func(t *testing.T) {
		checkThroughProxy(t, viaProxy(t, "socks5h://"+proxyUser+":"+proxyPass+"@"+auth, tg), tg, "127.0.0.1")
	})
	t.Run("wrong-password", func(t *testing.T) { checkSOCKSAuthRefused(t, auth, proxyUser+":wrong", tg) })
	t.Run("no-credentials", func(t *testing.T) { checkSOCKSAuthRefused(t, auth, "", tg) })
}
