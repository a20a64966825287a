//lint:file-ignore SA1019 net/http's Transport cannot send an extended CONNECT (Go 1.26); x/net/http2.Transport can.

// Package h2test serves tests of WebSocket over HTTP/2 (RFC 8441): Go's
// net/http server accepts extended CONNECT only with
// GODEBUG=http2xconnect=1 in the environment, read once at start-up, so
// a test binary runs itself again with it.
package h2test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"

	"golang.org/x/net/http2"
)

// setting is the GODEBUG setting that enables extended CONNECT.
const setting = "http2xconnect=1"

// Enabled reports whether this process's HTTP/2 server accepts extended
// CONNECT.
func Enabled() bool {
	return strings.Contains(os.Getenv("GODEBUG"), setting)
}

// Reexec runs the test binary again, with its arguments, standard
// streams and environment, with the setting added to GODEBUG, and
// returns its exit code; ran is false, and nothing is done, when this
// process has the setting already. A TestMain calls it first:
//
//	if code, ran := h2test.Reexec(); ran {
//		os.Exit(code)
//	}
func Reexec() (code int, ran bool) {
	if Enabled() {
		return 0, false
	}
	godebug := setting
	if v := os.Getenv("GODEBUG"); v != "" {
		godebug = v + "," + setting
	}
	cmd := exec.Command(os.Args[0], os.Args[1:]...)
	cmd.Env = append(os.Environ(), "GODEBUG="+godebug)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, true
	case errors.As(err, &exit):
		return exit.ExitCode(), true
	}
	os.Stderr.WriteString("h2test: " + err.Error() + "\n")
	return 2, true
}

// NewServer starts a TLS server of h with HTTP/2 and returns it with an
// HTTP/2 transport that trusts it and sends extended CONNECT. The caller
// closes both (transport.CloseIdleConnections, then server.Close).
func NewServer(h http.Handler) (*httptest.Server, *http2.Transport) {
	srv := httptest.NewUnstartedServer(h)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	cfg := srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	cfg.NextProtos = []string{"h2"}
	return srv, &http2.Transport{TLSClientConfig: cfg}
}
