package realtime

import (
	"bufio"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"
)

// TestIdleSocketHeap measures what an idle realtime.v1 WebSocket socket
// on a Hub, with one channel joined, costs of the server's heap, as each
// of the 10,000 of capbench's rt-ws row does: the socket, its
// websocket.Conn, what it keeps of the request, its membership, the
// reading goroutine's g (not its stack). The clients are bare TCP
// connections that wrote the upgrade and read the position, so that the
// client side adds only its net.Conn. It was 3.9 KiB a socket
// (with the client's 0.3), before the request's contexts, Done
// channels, and most of the Conn went.
func TestIdleSocketHeap(t *testing.T) {
	hub := NewHub(nil)
	defer hub.Close()
	srv := httptest.NewServer(Handler(&Options{Hub: hub, Channels: []string{"bench"}}, nil))
	defer srv.Close()
	const n = 200
	// The least of a few readings: what a handshake just finished or a
	// timer just fired still holds is not the idle socket's.
	live := func() int64 {
		least := int64(math.MaxInt64)
		for range 5 {
			var ms runtime.MemStats
			runtime.GC()
			runtime.GC()
			runtime.ReadMemStats(&ms)
			least = min(least, int64(ms.HeapAlloc))
			time.Sleep(10 * time.Millisecond)
		}
		return least
	}
	// One round first: what a process makes once, on its first
	// connections (the runtime's and net/http's), is not the sockets'.
	measure := func() int64 {
		before := live()
		conns := make([]net.Conn, n)
		for i := range conns {
			nc, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			conns[i] = nc
			defer nc.Close()
			req := "GET / HTTP/1.1\r\nHost: " + srv.Listener.Addr().String() + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
				"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: " + Subprotocol + "\r\n\r\n"
			if _, err := nc.Write([]byte(req)); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(nc)
			resp, err := http.ReadResponse(br, nil)
			if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("upgrade: %v %v", resp, err)
			}
			// The position: a text frame, unmasked, of less than 126 bytes.
			var hdr [2]byte
			if _, err := br.Read(hdr[:1]); err != nil {
				t.Fatal(err)
			}
			if _, err := br.Read(hdr[1:]); err != nil {
				t.Fatal(err)
			}
			pos := make([]byte, hdr[1]&0x7f)
			for got := 0; got < len(pos); {
				k, err := br.Read(pos[got:])
				if err != nil {
					t.Fatal(err)
				}
				got += k
			}
			if hdr[0] != 0x81 || len(pos) == 0 || br.Buffered() > 0 {
				t.Fatalf("first frame %x %q", hdr, pos)
			}
		}
		if got := hub.Len(); got != n {
			t.Fatalf("the hub holds %d sockets, want %d", got, n)
		}
		per := (live() - before) / n
		for _, nc := range conns {
			nc.Close()
		}
		for deadline := time.Now().Add(10 * time.Second); hub.Len() > 0; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d sockets still open 10 s after their clients closed", hub.Len())
			}
		}
		return per
	}
	measure()
	per := measure()
	t.Logf("%d bytes of heap per idle socket", per)
	if per > 3328 {
		t.Errorf("an idle socket costs %d bytes of the heap, want at most 3.25 KiB", per)
	}
}
