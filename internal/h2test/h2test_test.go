//lint:file-ignore SA1019 net/http's Transport cannot send an extended CONNECT (Go 1.26); x/net/http2.Transport can.

package h2test

import (
	"net/http"
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if code, ran := Reexec(); ran {
		os.Exit(code)
	}
	goleak.VerifyTestMain(m)
}

// TestExtendedConnect: the re-executed binary's server advertises
// extended CONNECT, so the transport sends one.
func TestExtendedConnect(t *testing.T) {
	if !Enabled() {
		t.Fatal("GODEBUG lacks " + setting)
	}
	got := make(chan string, 1)
	srv, rt := NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Method + " " + r.Proto + " " + r.Header.Get(":protocol")
	}))
	defer srv.Close()
	defer rt.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodConnect, srv.URL, http.NoBody)
	req.Header[":protocol"] = []string{"websocket"}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if g := <-got; g != "CONNECT HTTP/2.0 websocket" {
		t.Fatalf("server saw %q", g)
	}
}
