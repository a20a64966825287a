package capacity

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"net"
	"net/http"
	"sync"

	"github.com/realtime-go/realtime"
	"github.com/realtime-go/realtime/eventsource"
	"github.com/realtime-go/realtime/websocket"
)

// The driver rows fan a broadcast out with package websocket or package
// eventsource alone, the way a user without the realtime layer would: the
// floor under the realtime rows' server CPU per delivery. Their messages
// are as long as the realtime rows' (see driverID) and carry the same
// marker, so deliveries/s and µs/delivery compare.

// driverID returns an id as long as the one the realtime layer gives the
// seq'th message of a socket on one channel (its cursor: a version byte,
// the channel's 8-byte hash, the epoch, below 2^32, and the offset as
// uvarints, in unpadded base64url), so that the driver rows send as many
// bytes per message as the realtime rows.
func driverID(seq uint64) string {
	var b [1 + 8 + 2*binary.MaxVarintLen64]byte
	b[0] = 1
	binary.BigEndian.PutUint64(b[1:], 0x5eed5eed5eed5eed)
	n := 9 + binary.PutUvarint(b[9:], 0xdeadbeef)
	n += binary.PutUvarint(b[n:], seq)
	return base64.RawURLEncoding.EncodeToString(b[:n])
}

// driverWSConn is one connection of the drv-ws row with its writer's
// queue.
type driverWSConn struct {
	c  *websocket.Conn
	ch chan *websocket.PreparedMessage
}

// newDriverWSServer is websocket.Serve with a broadcast written as a user
// of package websocket alone would write it (the chat-server pattern):
// each connection has a queue (a channel of realtime.DefaultMaxQueue
// messages) and a writer goroutine; a broadcast frames its message once
// (websocket.PreparedMessage), as the realtime Hub does, and puts it on
// every queue without waiting; each writer takes everything queued and
// writes it as one websocket.Batch, one flush, as the realtime socket's
// writer does. A connection whose queue is full is closed, as the
// realtime layer drops a socket whose send queue overflows; that also
// ends a write stuck on it, so no write needs a timeout. The handler
// reads (ReadAppend) to see control frames and the close. The message is
// "ID\nTEXT", the realtime.v1 framing, ID as long as the realtime layer's
// (driverID).
func newDriverWSServer() goServer {
	var (
		mu    sync.Mutex
		conns = map[*driverWSConn]struct{}{}
		seq   uint64
	)
	return goServer{
		serve: func(ln net.Listener) error {
			return websocket.Serve(ln, &websocket.AcceptOptions{InsecureSkipOriginCheck: true}, func(c *websocket.Conn, _ *http.Request) {
				d := &driverWSConn{c: c, ch: make(chan *websocket.PreparedMessage, realtime.DefaultMaxQueue)}
				mu.Lock()
				conns[d] = struct{}{}
				mu.Unlock()
				writerDone := make(chan struct{})
				go func() {
					defer close(writerDone)
					d.writeLoop()
				}()
				readAll(c)
				mu.Lock()
				delete(conns, d)
				mu.Unlock()
				c.CloseNow()
				<-writerDone
			})
		},
		count: func() int {
			mu.Lock()
			defer mu.Unlock()
			return len(conns)
		},
		publish: func(text string) error {
			mu.Lock()
			defer mu.Unlock()
			seq++
			id := driverID(seq)
			p := make([]byte, 0, len(id)+1+len(text))
			pm, err := websocket.NewPreparedMessage(websocket.MessageText, append(append(append(p, id...), '\n'), text...))
			if err != nil {
				return err
			}
			for d := range conns {
				select {
				case d.ch <- pm:
				default:
					go d.c.CloseNow() // too slow: dropped
				}
			}
			return nil
		},
	}
}

// writeLoop writes what is queued for d, all of it with one flush, until
// the connection is closed.
func (d *driverWSConn) writeLoop() {
	var b websocket.Batch
	for {
		select {
		case pm := <-d.ch:
			b.AddPrepared(pm)
		case <-d.c.Done():
			return
		}
		for range len(d.ch) {
			b.AddPrepared(<-d.ch)
		}
		err := d.c.WriteBatch(context.Background(), &b)
		b.Reset()
		if err != nil {
			d.c.CloseNow()
			return
		}
	}
}

// newDriverESServer is an eventsource.Broker with its default options
// serving the streams at /es through net/http, a broadcast being one
// Broker.Publish of an event with an id as long as the realtime layer's
// (driverID) and the text as its data, as the realtime layer sends a
// channel message on EventSource.
func newDriverESServer() goServer {
	b := eventsource.NewBroker(nil)
	mux := http.NewServeMux()
	mux.Handle("/es", b)
	var seq uint64
	return goServer{
		serve: func(ln net.Listener) error { return (&http.Server{Handler: mux}).Serve(ln) },
		count: b.Len,
		publish: func(text string) error {
			seq++
			_, err := b.Publish(eventsource.Event{ID: driverID(seq), Data: text})
			return err
		},
	}
}
