package websocket

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/realtime-go/realtime/extensions"
)

// replayConn is a net.Conn whose reads return the same pipelined frames
// over and over and whose writes go nowhere: an echo loop over it costs
// the library's CPU per message without any system call.
type replayConn struct {
	batch []byte
	off   int
}

func (r *replayConn) Read(p []byte) (int, error) {
	n := copy(p, r.batch[r.off:])
	r.off = (r.off + n) % len(r.batch)
	return n, nil
}

func (r *replayConn) Write(p []byte) (int, error)      { return len(p), nil }
func (r *replayConn) Close() error                     { return nil }
func (r *replayConn) LocalAddr() net.Addr              { return nil }
func (r *replayConn) RemoteAddr() net.Addr             { return nil }
func (r *replayConn) SetDeadline(time.Time) error      { return nil }
func (r *replayConn) SetReadDeadline(time.Time) error  { return nil }
func (r *replayConn) SetWriteDeadline(time.Time) error { return nil }

// BenchmarkEchoPipelined is a server's ReadAppend/Write echo loop with 16
// messages arriving per read, as a client that pipelines sends them.
func BenchmarkEchoPipelined(b *testing.B) {
	for _, size := range []int{16, 1024} {
		for _, typ := range []MessageType{MessageBinary, MessageText} {
			b.Run(fmt.Sprintf("%s/%d", typ, size), func(b *testing.B) {
				payload := make([]byte, size)
				for i := range payload {
					payload[i] = 'a' + byte(i%26)
				}
				var batch []byte
				for range 16 {
					batch = appendFrame(batch, true, 0, opcode(typ), true, [4]byte{1, 2, 3, 4}, payload)
				}
				c := newConn(&replayConn{batch: batch}, nil, false, 13, "", extensions.Negotiated{}, ConnOptions{})
				ctx := context.Background()
				var buf []byte
				b.ReportAllocs()
				b.SetBytes(int64(size))
				for b.Loop() {
					typ, p, err := c.ReadAppend(ctx, buf[:0])
					if err != nil {
						b.Fatal(err)
					}
					if err := c.Write(ctx, typ, p); err != nil {
						b.Fatal(err)
					}
					buf = p
				}
				c.CloseNow()
			})
		}
	}
}

// BenchmarkEchoServerRead is a round trip over TCP in which the server
// echoes with Read (a new slice per message) or ReadAppend (one buffer
// reused), and the client always reads with ReadAppend: the difference
// is what Read's allocation costs the server.
func BenchmarkEchoServerRead(b *testing.B) {
	for _, size := range []int{1024, 65536} {
		for _, read := range []string{"Read", "ReadAppend"} {
			b.Run(fmt.Sprintf("%s/%d", read, size), func(b *testing.B) {
				benchRoundTrips(b, overTCP, size, read == "ReadAppend", true)
			})
		}
	}
}
