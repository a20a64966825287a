package interop

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/realtime-go/realtime"
)

// rtPage records what a RealtimeSocket receives, for the tests. Its
// query parameters set the transport and the connect timeout.
const rtPage = `<!doctype html>
<meta charset="utf-8"><title>realtime</title>
<script src="/realtime.js"></script>
<script>
const params = new URLSearchParams(location.search);
const R = window.__rt = { received: [], opens: [] };
const sock = window.__sock = new RealtimeSocket('/rt', { transport: params.get('transport') || 'auto',
	connectTimeout: Number(params.get('connectTimeout') || 5000), minDelay: 100, maxDelay: 1000 });
sock.onopen = (e) => R.opens.push({ transport: e.transport, resumed: e.resumed, missed: e.missed, lastEventId: sock.lastEventId });
sock.onmessage = (e) => R.received.push(e.data);
sock.onclose = (e) => { R.closed = e.code; };
</script>
`

// The server stops and starts again while a broadcaster goes on sending.
// Two pages, one on WebSocket and one on EventSource, reconnect to the
// new listener and receive every message exactly once, in order.
//
// This models a restart in which the Hub, and so the history, survives:
// the process stops serving (http.Server.Shutdown, which runs
// Hub.Shutdown: 1001 to WebSockets, realtime.close to streams) and
// serves again on the same port with the same Hub. A new process would
// have a new, empty Hub; its clients would see ResumeFailed instead.
func TestRealtimeRestartResume(t *testing.T) {
	const total = 60
	hub := realtime.NewHub(nil)
	t.Cleanup(func() { hub.Close() })
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, rtPage)
	})
	mux.Handle("/realtime.js", realtime.ClientJS())
	mux.Handle("/rt", realtime.Handler(&realtime.Options{Hub: hub, Channels: []string{"chat"}}, nil))

	srv := startRestartable(t, mux, hub)
	addr := srv.addr

	// A page per transport in each browser, all through the same restart.
	const state = `JSON.stringify(window.__rt)`
	pages := map[string]rtTab{}
	for _, name := range rtBrowserNames {
		browser := rtSharedBrowser(t, name)
		for _, transport := range []string{"websocket", "eventsource"} {
			tab := rtOpen(t, browser, "http://"+addr+"/?transport="+transport)
			rtWait(t, tab, name+" "+transport+" page opens", fmt.Sprintf(`window.__rt && __rt.opens.length === 1 && __rt.opens[0].transport === %q`, transport), state, 30*time.Second)
			pages[name+" "+transport] = tab
		}
	}
	if hub.Len() != len(pages) {
		t.Fatalf("hub has %d sockets, want %d", hub.Len(), len(pages))
	}

	// The broadcaster sends throughout; the restart happens in the middle.
	srv.broadcastAcrossRestart(total)

	want := make([]string, total)
	for i := range want {
		want[i] = "m" + strconv.Itoa(i+1)
	}
	for page, tab := range pages {
		_, transport, _ := strings.Cut(page, " ")
		rtWait(t, tab, transport+" page gets all messages", fmt.Sprintf(`__rt.received.length >= %d`, total), state, 60*time.Second)
		js := rtEval[string](t, tab, state)
		var got struct {
			Received []string `json:"received"`
			Opens    []struct {
				Transport string `json:"transport"`
				Resumed   bool   `json:"resumed"`
				Missed    bool   `json:"missed"`
			} `json:"opens"`
		}
		if err := json.Unmarshal([]byte(js), &got); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s page: opens %+v, %d messages", transport, got.Opens, len(got.Received))
		if fmt.Sprint(got.Received) != fmt.Sprint(want) {
			t.Fatalf("%s page received %q, want m1..m%d once each", transport, got.Received, total)
		}
		if len(got.Opens) < 2 {
			t.Fatalf("%s page opened %d times; the restart did not reach it", transport, len(got.Opens))
		}
		last := got.Opens[len(got.Opens)-1]
		if last.Transport != transport || !last.Resumed || last.Missed {
			t.Fatalf("%s page's last open %+v, want a resumed %s", transport, last, transport)
		}
	}
}

// restartable serves a handler and its Hub on a loopback address, and can
// stop and serve again on that address with the same Hub.
type restartable struct {
	t    *testing.T
	h    http.Handler
	hub  *realtime.Hub
	addr string
	stop func() // nil while stopped
}

// startRestartable serves h and hub until the test ends.
func startRestartable(t *testing.T, h http.Handler, hub *realtime.Hub) *restartable {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &restartable{t: t, h: h, hub: hub, addr: ln.Addr().String()}
	r.stop = serveWithHub(t, ln, h, hub)
	t.Cleanup(func() {
		if r.stop != nil {
			r.stop()
		}
	})
	return r
}

// broadcastAcrossRestart broadcasts "m1" … "m<total>" 25 ms apart. After
// the 15th it stops the server (clients get 1001 or realtime.close);
// after the 35th, broadcasts made while nothing listened, it serves again
// on the same address. It returns once all are sent.
func (r *restartable) broadcastAcrossRestart(total int) {
	t := r.t
	var wg sync.WaitGroup
	sent := make(chan int, total)
	wg.Go(func() {
		defer close(sent)
		for i := 1; i <= total; i++ {
			if _, err := r.hub.Publish(context.Background(), "chat", "m"+strconv.Itoa(i)); err != nil {
				t.Errorf("broadcast: %v", err)
				return
			}
			sent <- i
			time.Sleep(25 * time.Millisecond)
		}
	})
	for i := range sent {
		if i == 15 {
			break
		}
	}
	r.stop()
	r.stop = nil
	for i := range sent {
		if i == 35 {
			break
		}
	}
	ln, err := net.Listen("tcp", r.addr)
	if err != nil {
		t.Fatalf("listen again on %s: %v", r.addr, err)
	}
	r.stop = serveWithHub(t, ln, r.h, r.hub)
	wg.Wait()
}

// serveWithHub serves h on ln. stop shuts the server down, and the hub
// with it as net/http's shutdown hooks run, and checks that both ended
// cleanly: a restart test stops and starts the server on one address.
func serveWithHub(t *testing.T, ln net.Listener, h http.Handler, hub *realtime.Hub) (stop func()) {
	srv := &http.Server{Handler: h}
	hubDone := make(chan error, 1)
	srv.RegisterOnShutdown(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		hubDone <- hub.Shutdown(ctx)
	})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("server shutdown: %v", err)
		}
		if err := <-hubDone; err != nil {
			t.Errorf("hub shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	}
}
