package interop

// Real proxies (squid, tinyproxy, dante, microsocks) started by the tests
// on loopback with temporary configurations, and the targets reached
// through them: a plain and a TLS httptest server with a WebSocket echo
// (our websocket package) and an EventSource stream (our eventsource
// package).

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/realtime-go/realtime/client"
	"github.com/realtime-go/realtime/eventsource"
	"github.com/realtime-go/realtime/internal/testcert"
	"github.com/realtime-go/realtime/websocket"
)

// Credentials the proxies are configured with. dante checks system
// accounts, so its user is created by the test (as root).
const (
	proxyUser     = "alice"
	proxyPass     = "s3cret"
	socksSysUser  = "rtsocks"
	socksSysPass  = "rtpw123"
	daemonStartup = 60 * time.Second // squid under load on 2 shared cores
)

// ---------------------------------------------------------------------------
// Daemons
// ---------------------------------------------------------------------------

type daemon struct {
	name string
	cmd  *exec.Cmd
	out  *syncBuffer
	dir  string
	exit chan struct{} // closed when the process has exited
}

// peerDir returns a fresh directory that the proxies, which drop
// privileges (squid to "proxy", tinyproxy to "nobody"), can write.
func peerDir(t *testing.T, name string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "rt-"+name+"-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startDaemon runs a server in the foreground until the test ends: then
// SIGTERM, and SIGKILL if it lingers. Its output is logged if the test
// fails.
func startDaemon(t *testing.T, name, dir, exe string, args ...string) *daemon {
	t.Helper()
	d := &daemon{name: name, out: &syncBuffer{}, dir: dir, exit: make(chan struct{})}
	d.cmd = exec.Command(exe, args...)
	d.cmd.Dir = dir
	d.cmd.Stdout = d.out
	d.cmd.Stderr = d.out
	d.cmd.WaitDelay = 5 * time.Second
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	var waitErr error
	go func() {
		waitErr = d.cmd.Wait()
		close(d.exit)
	}()
	t.Cleanup(func() {
		d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.exit:
		case <-time.After(10 * time.Second):
			d.cmd.Process.Kill()
			<-d.exit
		}
		if t.Failed() {
			t.Logf("%s output (exit: %v):\n%s%s", name, waitErr, d.out.String(), d.logs())
		}
	})
	return d
}

// logs returns the log files the daemon wrote in its directory.
func (d *daemon) logs() string {
	var b strings.Builder
	files, _ := filepath.Glob(filepath.Join(d.dir, "*.log"))
	for _, f := range files {
		data, _ := os.ReadFile(f)
		if len(data) > 8000 {
			data = data[len(data)-8000:]
		}
		fmt.Fprintf(&b, "--- %s\n%s", filepath.Base(f), data)
	}
	return b.String()
}

// waitListening waits until the daemon accepts connections at each of
// addrs.
func (d *daemon) waitListening(t *testing.T, addrs ...string) {
	t.Helper()
	deadline := time.Now().Add(daemonStartup)
	for _, addr := range addrs {
		for {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-d.exit:
				t.Fatalf("%s exited before listening on %s:\n%s%s", d.name, addr, d.out.String(), d.logs())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not listening on %s after %v:\n%s%s", d.name, addr, daemonStartup, d.out.String(), d.logs())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// ---------------------------------------------------------------------------
// Certificates
// ---------------------------------------------------------------------------

// selfSigned returns a certificate for 127.0.0.1 and localhost, the
// PEM forms of it and its key, and a pool that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, []byte, []byte, *x509.CertPool) {
	t.Helper()
	c, err := testcert.New()
	if err != nil {
		t.Fatal(err)
	}
	return c.TLS, c.CertPEM, c.KeyPEM, c.Pool
}

// ---------------------------------------------------------------------------
// squid: one process, one port per variant
// ---------------------------------------------------------------------------

type squidPeer struct {
	*daemon
	Plain     string // http://127.0.0.1:P: CONNECT and forward mode, no auth
	Auth      string // http://127.0.0.1:P: basic auth required (407)
	NoConnect string // http://127.0.0.1:P: CONNECT denied (403), forward mode allowed
	Upgrade   string // http://127.0.0.1:P: forward mode passes Upgrade: websocket
	TLS       string // https://127.0.0.1:P: TLS to the proxy, basic auth required
	TLSCAs    *x509.CertPool
}

// startSquid starts squid with every variant the tests need on its own
// port. Its hosts file maps example.com, the name on the httptest
// certificate, to 127.0.0.1, so TLS through squid can be checked against
// a name.
func startSquid(t *testing.T) *squidPeer {
	t.Helper()
	exe := needExec(t, "squid")
	auth := "/usr/lib/squid/basic_ncsa_auth"
	if _, err := os.Stat(auth); err != nil {
		missingPeer(t, "squid's basic_ncsa_auth helper: %v", err)
	}
	openssl := needExec(t, "openssl")
	dir := peerDir(t, "squid")
	hash, err := exec.Command(openssl, "passwd", "-apr1", proxyPass).Output()
	if err != nil {
		t.Fatalf("openssl passwd: %v", err)
	}
	writeFile(t, filepath.Join(dir, "htpasswd"), proxyUser+":"+strings.TrimSpace(string(hash))+"\n")
	writeFile(t, filepath.Join(dir, "hosts"), "127.0.0.1 example.com\n")
	_, certPEM, keyPEM, pool := selfSigned(t)
	writeFile(t, filepath.Join(dir, "proxy.pem"), string(certPEM))
	writeFile(t, filepath.Join(dir, "proxy.key"), string(keyPEM))

	ports := map[string]int{}
	for _, n := range []string{"plain", "auth", "noconnect", "upgrade", "tls"} {
		ports[n] = freePort(t)
	}
	conf := fmt.Sprintf(`http_port 127.0.0.1:%[2]d name=plain
http_port 127.0.0.1:%[3]d name=auth
http_port 127.0.0.1:%[4]d name=noconnect
http_port 127.0.0.1:%[5]d name=upgrade
https_port 127.0.0.1:%[6]d name=tls tls-cert=%[1]s/proxy.pem tls-key=%[1]s/proxy.key
visible_hostname rt-squid
pid_filename none
cache_log %[1]s/cache.log
access_log stdio:%[1]s/access.log
netdb_filename none
cache deny all
shutdown_lifetime 0 seconds
coredump_dir %[1]s
hosts_file %[1]s/hosts
auth_param basic program %[7]s %[1]s/htpasswd
auth_param basic children 2 startup=1 idle=1
auth_param basic realm realtime
acl p_plain myportname plain
acl p_auth myportname auth tls
acl p_noconnect myportname noconnect
acl p_upgrade myportname upgrade
acl CONNECT method CONNECT
acl authed proxy_auth REQUIRED
http_upgrade_request_protocols websocket allow p_upgrade
http_upgrade_request_protocols websocket deny all
http_access deny p_noconnect CONNECT
http_access allow localhost p_plain
http_access allow localhost p_noconnect
http_access allow localhost p_upgrade
http_access allow localhost p_auth authed
http_access deny all
`, dir, ports["plain"], ports["auth"], ports["noconnect"], ports["upgrade"], ports["tls"], auth)
	writeFile(t, filepath.Join(dir, "squid.conf"), conf)
	d := startDaemon(t, "squid", dir, exe, "-N", "-f", filepath.Join(dir, "squid.conf"))
	addr := func(n string) string { return "127.0.0.1:" + strconv.Itoa(ports[n]) }
	d.waitListening(t, addr("plain"), addr("auth"), addr("noconnect"), addr("upgrade"), addr("tls"))
	return &squidPeer{
		daemon:    d,
		Plain:     "http://" + addr("plain"),
		Auth:      "http://" + addr("auth"),
		NoConnect: "http://" + addr("noconnect"),
		Upgrade:   "http://" + addr("upgrade"),
		TLS:       "https://" + addr("tls"),
		TLSCAs:    pool,
	}
}

// accessLog waits until squid's access log has a line containing all of
// parts, and fails the test if none comes.
func (s *squidPeer) accessLog(t *testing.T, parts ...string) {
	t.Helper()
	deadline := time.Now().Add(opTimeout)
	for {
		data, _ := os.ReadFile(filepath.Join(s.dir, "access.log"))
		for _, line := range strings.Split(string(data), "\n") {
			ok := true
			for _, p := range parts {
				ok = ok && strings.Contains(line, p)
			}
			if ok {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("squid access.log has no line with %q:\n%s", parts, data)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ---------------------------------------------------------------------------
// tinyproxy, dante, microsocks: one process per variant (each starts in
// milliseconds)
// ---------------------------------------------------------------------------

type tinyproxyMode int

const (
	tinyPlain      tinyproxyMode = iota
	tinyAuth                     // BasicAuth alice s3cret
	tinyConnect443               // ConnectPort 443: CONNECT to our ports is refused (403)
)

// startTinyproxy returns the proxy's URL, without credentials.
func startTinyproxy(t *testing.T, mode tinyproxyMode) string {
	t.Helper()
	exe := needExec(t, "tinyproxy")
	dir := peerDir(t, "tinyproxy")
	port := freePort(t)
	var b strings.Builder
	if os.Geteuid() == 0 {
		b.WriteString("User nobody\nGroup nogroup\n")
	}
	fmt.Fprintf(&b, "Port %d\nListen 127.0.0.1\nTimeout 600\nLogLevel Info\nLogFile \"%s/tinyproxy.log\"\n", port, dir)
	b.WriteString("MaxClients 100\nAllow 127.0.0.1\nDisableViaHeader Yes\n")
	switch mode {
	case tinyAuth:
		fmt.Fprintf(&b, "BasicAuth %s %s\n", proxyUser, proxyPass)
	case tinyConnect443:
		b.WriteString("ConnectPort 443\n")
	}
	conf := filepath.Join(dir, "tinyproxy.conf")
	writeFile(t, conf, b.String())
	d := startDaemon(t, "tinyproxy", dir, exe, "-d", "-c", conf)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	d.waitListening(t, addr)
	return "http://" + addr
}

// ensureSocksUser creates (or resets) the system account dante
// authenticates against; an account it creates is removed when the test
// ends, after dante, which starts later, has stopped.
func ensureSocksUser(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		missingPeer(t, "dante username auth needs root to create the system user %s", socksSysUser)
	}
	if err := exec.Command("id", socksSysUser).Run(); err != nil {
		useradd := needExec(t, "useradd")
		userdel := needExec(t, "userdel")
		if out, err := exec.Command(useradd, "-M", "-s", "/usr/sbin/nologin", socksSysUser).CombinedOutput(); err != nil {
			t.Fatalf("useradd %s: %v: %s", socksSysUser, err, out)
		}
		t.Cleanup(func() {
			if out, err := exec.Command(userdel, socksSysUser).CombinedOutput(); err != nil {
				t.Errorf("userdel %s: %v: %s", socksSysUser, err, out)
			}
		})
	}
	cmd := exec.Command(needExec(t, "chpasswd"))
	cmd.Stdin = strings.NewReader(socksSysUser + ":" + socksSysPass + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chpasswd: %v: %s", err, out)
	}
}

// startDante returns the proxy's host:port.
func startDante(t *testing.T, username bool) string {
	t.Helper()
	exe := needExec(t, "danted")
	method := "none"
	if username {
		ensureSocksUser(t)
		method = "username"
	}
	dir := peerDir(t, "dante")
	port := freePort(t)
	// "command:" takes a list, so it needs a line of its own.
	conf := fmt.Sprintf(`logoutput: stderr
internal: 127.0.0.1 port = %d
external: 127.0.0.1
clientmethod: none
socksmethod: %s
user.privileged: root
user.unprivileged: nobody
client pass { from: 127.0.0.0/8 to: 0.0.0.0/0 log: error }
socks pass {
	from: 127.0.0.0/8 to: 127.0.0.0/8
	command: connect
	log: error
}
socks block { from: 0.0.0.0/0 to: 0.0.0.0/0 log: connect error }
`, port, method)
	writeFile(t, filepath.Join(dir, "danted.conf"), conf)
	d := startDaemon(t, "danted", dir, exe, "-f", filepath.Join(dir, "danted.conf"), "-p", filepath.Join(dir, "danted.pid"), "-N", "1")
	addr := "127.0.0.1:" + strconv.Itoa(port)
	d.waitListening(t, addr)
	return addr
}

// startMicrosocks returns the proxy's host:port.
func startMicrosocks(t *testing.T, auth bool) string {
	t.Helper()
	exe := needExec(t, "microsocks")
	port := freePort(t)
	args := []string{"-i", "127.0.0.1", "-p", strconv.Itoa(port)}
	if auth {
		args = append(args, "-u", proxyUser, "-P", proxyPass)
	}
	d := startDaemon(t, "microsocks", peerDir(t, "microsocks"), exe, args...)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	d.waitListening(t, addr)
	return addr
}

// ---------------------------------------------------------------------------
// Targets
// ---------------------------------------------------------------------------

// proxyTarget is an httptest server (plain or TLS) with /echo, a
// WebSocket echo, and /sse, three events per connection numbered after
// Last-Event-ID, then the end of the stream.
type proxyTarget struct {
	srv  *httptest.Server
	Port string
	reqs chan seenReq
}

type seenReq struct {
	path, host, sni, lastEventID string
	upgrade                      string
}

// proxyTargets are the two servers every proxy is checked against.
type proxyTargets struct {
	Plain, TLS *proxyTarget
	CAs        *x509.CertPool // trusts TLS's certificate (127.0.0.1, example.com)
}

func startProxyTargets(t *testing.T) *proxyTargets {
	t.Helper()
	pt := &proxyTargets{Plain: startProxyTarget(t, false), TLS: startProxyTarget(t, true)}
	pt.CAs = x509.NewCertPool()
	pt.CAs.AddCert(pt.TLS.srv.Certificate())
	return pt
}

func startProxyTarget(t *testing.T, secure bool) *proxyTarget {
	t.Helper()
	pt := &proxyTarget{reqs: make(chan seenReq, 256)}
	done := make(chan struct{})
	mux := http.NewServeMux()
	record := func(r *http.Request) {
		s := seenReq{path: r.URL.Path, host: r.Host, lastEventID: r.Header.Get("Last-Event-ID"), upgrade: r.Header.Get("Upgrade")}
		if r.TLS != nil {
			s.sni = r.TLS.ServerName
		}
		select {
		case pt.reqs <- s:
		default:
		}
	}
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		record(r)
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		stop := context.AfterFunc(doneCtx(done), func() { c.CloseNow() })
		defer stop()
		ctx := context.Background()
		for {
			typ, p, err := c.Read(ctx)
			if err != nil {
				return
			}
			if err := c.Write(ctx, typ, p); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("/sse", func(w http.ResponseWriter, r *http.Request) {
		record(r)
		s, err := eventsource.Accept(w, r, &eventsource.Options{Retry: 20 * time.Millisecond})
		if err != nil {
			return
		}
		defer s.Close()
		n, _ := strconv.Atoi(s.LastEventID())
		for i := n + 1; i <= n+3; i++ {
			if err := s.Send(r.Context(), eventsource.Event{ID: strconv.Itoa(i), Type: "tick", Data: fmt.Sprintf("event %d\nvia proxy", i)}); err != nil {
				return
			}
		}
	})
	if secure {
		pt.srv = httptest.NewTLSServer(mux)
	} else {
		pt.srv = httptest.NewServer(mux)
	}
	t.Cleanup(pt.srv.Close)
	t.Cleanup(func() { close(done) }) // runs first: ends the echo loops
	_, pt.Port, _ = net.SplitHostPort(pt.srv.Listener.Addr().String())
	return pt
}

// doneCtx is a context that ends when done is closed.
func doneCtx(done <-chan struct{}) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-done
		cancel()
	}()
	return ctx
}

func (pt *proxyTarget) next(t *testing.T) seenReq {
	t.Helper()
	select {
	case s := <-pt.reqs:
		return s
	case <-time.After(opTimeout):
		t.Fatal("target saw no request")
		return seenReq{}
	}
}

func (pt *proxyTarget) drain() {
	for {
		select {
		case <-pt.reqs:
		default:
			return
		}
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// viaProxy returns a Dialer that sends everything through proxyURL and
// trusts the targets' TLS certificate.
func viaProxy(t *testing.T, proxyURL string, tg *proxyTargets) *client.Dialer {
	t.Helper()
	return &client.Dialer{
		Proxy:     http.ProxyURL(mustURL(t, proxyURL)),
		TLSConfig: &tls.Config{RootCAs: tg.CAs},
	}
}

// checkThroughProxy runs the full set through d: WebSocket echo to ws://
// and wss:// targets, and EventSource to http:// (across a reconnection)
// and https:// targets. host names the targets (127.0.0.1, or a name the
// proxy resolves).
func checkThroughProxy(t *testing.T, d *client.Dialer, tg *proxyTargets, host string) {
	t.Helper()
	t.Run("ws", func(t *testing.T) { checkWSEcho(t, d, "ws://"+host+":"+tg.Plain.Port+"/echo", tg.Plain, "") })
	t.Run("wss", func(t *testing.T) {
		sni := ""
		if net.ParseIP(host) == nil {
			sni = host
		}
		checkWSEcho(t, d, "wss://"+host+":"+tg.TLS.Port+"/echo", tg.TLS, sni)
	})
	t.Run("eventsource-http", func(t *testing.T) { checkES(t, d, "http://"+host+":"+tg.Plain.Port+"/sse", tg.Plain, 5) })
	t.Run("eventsource-https", func(t *testing.T) { checkES(t, d, "https://"+host+":"+tg.TLS.Port+"/sse", tg.TLS, 2) })
}

func checkWSEcho(t *testing.T, d *client.Dialer, u string, tg *proxyTarget, wantSNI string) {
	t.Helper()
	tg.drain()
	ctx := testCtx(t)
	c, resp, err := d.Dial(ctx, u)
	if err != nil {
		t.Fatalf("Dial %s: %v", u, err)
	}
	defer c.CloseNow()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d", resp.StatusCode)
	}
	s := tg.next(t)
	if s.sni != wantSNI {
		t.Fatalf("target saw SNI %q, want %q", s.sni, wantSNI)
	}
	for _, m := range []msg{
		textMsg("text", "héllo through the proxy ✓"),
		binMsg("bytes-0-255", allBytes()),
		genMsg("binary-1MiB", 1<<20, 21, false),
	} {
		if err := c.Write(ctx, m.typ, m.data); err != nil {
			t.Fatalf("write %s: %v", m.name, err)
		}
		typ, p, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("read echo of %s: %v", m.name, err)
		}
		checkMsg(t, "client", m, typ, p)
	}
	if err := c.Close(websocket.StatusNormalClosure, "done"); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// checkES reads n events, which takes a reconnection with Last-Event-ID
// when n > 3.
func checkES(t *testing.T, d *client.Dialer, u string, tg *proxyTarget, n int) {
	t.Helper()
	tg.drain()
	es, err := d.EventSource(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer es.Close()
	ctx := testCtx(t)
	for i := 1; i <= n; i++ {
		ev, err := es.Next(ctx)
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if ev.ID != strconv.Itoa(i) || ev.Type != "tick" || ev.Data != fmt.Sprintf("event %d\nvia proxy", i) {
			t.Fatalf("event %d: %+v", i, ev)
		}
	}
	var ids []string
	for range (n + 2) / 3 {
		ids = append(ids, tg.next(t).lastEventID)
	}
	if n > 3 && ids[1] != "3" {
		t.Fatalf("Last-Event-ID sent on reconnection: %q", ids)
	}
}
