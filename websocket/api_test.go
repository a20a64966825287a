package websocket

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

// TestWriterStreams: a Writer sends fragments as its buffer fills, before
// it is closed, and Close sends the final one (RFC 6455 §5.4).
func TestWriterStreams(t *testing.T) {
	for _, tr := range transports {
		for _, client := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/%s", tr, roleName(client)), func(t *testing.T) {
				c, p := newTestConn(t, tr, client, ConnOptions{WriteBufferSize: 256})
				w, err := c.Writer(context.Background(), MessageBinary)
				if err != nil {
					t.Fatal(err)
				}
				data := pattern(2000, 5)
				for i := 0; i < len(data); i += 50 {
					if n, err := w.Write(data[i : i+50]); n != 50 || err != nil {
						t.Fatalf("Write = %d, %v", n, err)
					}
				}
				// Before Close: several fragments are on the wire already.
				var got []byte
				for i := range 3 {
					f := p.next(t)
					want := opContinuation
					if i == 0 {
						want = opBinary
					}
					if f.op != want || f.fin || f.rsv != 0 || len(f.payload) == 0 {
						t.Fatalf("fragment %d: %v", i, f)
					}
					got = append(got, f.payload...)
				}
				// A large write goes out too.
				big := pattern(10000, 6)
				if n, err := w.Write(big); n != len(big) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				for {
					f := p.next(t)
					if f.op != opContinuation || f.rsv != 0 {
						t.Fatalf("got %v, want a continuation", f)
					}
					got = append(got, f.payload...)
					if f.fin {
						break
					}
				}
				if want := append(append([]byte(nil), data...), big...); !bytes.Equal(got, want) {
					t.Fatalf("fragments carry %d bytes, differing from the %d written", len(got), len(want))
				}
				// The connection goes on with whole messages.
				if err := c.Write(context.Background(), MessageText, []byte("next")); err != nil {
					t.Fatal(err)
				}
				p.expectFrame(t, opText, []byte("next"))
			})
		}
	}
}

// TestWriterExclusive: while a Writer is open other data messages wait,
// and control frames may go between its fragments.
func TestWriterExclusive(t *testing.T) {
	c, p := newTestConn(t, overTCP, false, ConnOptions{WriteBufferSize: 200})
	w, err := c.Writer(context.Background(), MessageText)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(bytes.Repeat([]byte("a"), 500)); err != nil {
		t.Fatal(err)
	}
	other := make(chan error, 1)
	go func() { other <- c.Write(context.Background(), MessageBinary, []byte("other")) }()
	if err := c.PingFunc([]byte("between"), func(time.Duration, error) {}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-other:
		t.Fatalf("Write returned (%v) while a Writer was open", err)
	case <-time.After(30 * time.Millisecond):
	}
	if _, err := w.Write(bytes.Repeat([]byte("b"), 300)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var text []byte
	sawPing, sawFinal := false, false
	for !sawFinal {
		f := p.next(t)
		switch f.op {
		case opPing:
			sawPing = true
		case opText, opContinuation:
			text = append(text, f.payload...)
			sawFinal = f.fin
		default:
			t.Fatalf("got %v inside the streamed message", f)
		}
	}
	if string(text) != string(bytes.Repeat([]byte("a"), 500))+string(bytes.Repeat([]byte("b"), 300)) {
		t.Fatalf("streamed message of %d bytes garbled", len(text))
	}
	if !sawPing {
		p.expectFrame(t, opPing, []byte("between"))
	}
	p.expectFrame(t, opBinary, []byte("other"))
	if err := <-other; err != nil {
		t.Fatal(err)
	}
}

func TestWriterMisuse(t *testing.T) {
	c, p := newTestConn(t, overTCP, false, ConnOptions{})
	for _, typ := range []MessageType{0, 3, 8, 9, 10, -1} {
		if _, err := c.Writer(context.Background(), typ); err == nil {
			t.Fatalf("Writer(%d) accepted", typ)
		}
	}
	// An empty streamed message is one empty final frame of its type.
	w, err := c.Writer(context.Background(), MessageText)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	p.expectFrame(t, opText, nil)
	if err := w.Close(); err == nil {
		t.Fatal("second Close of a Writer accepted")
	}
	if _, err := w.Write([]byte("late")); err == nil {
		t.Fatal("Write to a closed Writer accepted")
	}
	p.expectNothing(t, 20*time.Millisecond)
}

// TestReaderStreams reads messages as streams, in small reads.
func TestReaderStreams(t *testing.T) {
	for _, tr := range transports {
		for _, client := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/%s", tr, roleName(client)), func(t *testing.T) {
				c, p := newTestConn(t, tr, client, ConnOptions{})
				msg := textPattern(10000)
				b := p.frame(false, 0, opText, msg[:3000])
				b = append(b, p.frame(false, 0, opContinuation, msg[3000:3001])...)
				b = append(b, p.frame(true, 0, opContinuation, msg[3001:])...)
				b = append(b, p.frame(true, 0, opBinary, []byte("second"))...)
				w := p.sendAsync(b)
				ctx := context.Background()
				typ, r, err := c.Reader(ctx)
				if err != nil || typ != MessageText {
					t.Fatalf("Reader = %v, %v", typ, err)
				}
				got, err := readAllSmall(r, 7)
				if err != nil || !bytes.Equal(got, msg) {
					t.Fatalf("streamed %d bytes, %v", len(got), err)
				}
				if n, err := r.Read(make([]byte, 10)); n != 0 || err != io.EOF {
					t.Fatalf("Read after the end = %d, %v, want io.EOF", n, err)
				}
				typ, r, err = c.Reader(ctx)
				if err != nil || typ != MessageBinary {
					t.Fatalf("second Reader = %v, %v", typ, err)
				}
				if got, err := io.ReadAll(r); err != nil || string(got) != "second" {
					t.Fatalf("second message %q, %v", got, err)
				}
				<-w
			})
		}
	}
}

// TestReaderDiscards: a new Reader or Read skips what is left of the
// previous message, still checking it.
func TestReaderDiscards(t *testing.T) {
	c, p := newTestConn(t, overTCP, false, ConnOptions{})
	ctx := context.Background()
	b := p.frame(false, 0, opBinary, pattern(5000, 1))
	b = append(b, p.frame(true, 0, opPing, []byte("inside"))...)
	b = append(b, p.frame(true, 0, opContinuation, pattern(100, 2))...)
	b = append(b, p.frame(true, 0, opText, []byte("two"))...)
	b = append(b, p.frame(true, 0, opText, []byte("three and more"))...)
	b = append(b, p.frame(true, 0, opText, []byte("four"))...)
	p.send(t, b)
	_, r, err := c.Reader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(r, make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	typ, r2, err := c.Reader(ctx)
	if err != nil || typ != MessageText {
		t.Fatalf("Reader = %v, %v", typ, err)
	}
	if got, _ := io.ReadAll(r2); string(got) != "two" {
		t.Fatalf("got %q", got)
	}
	p.expectFrame(t, opPong, []byte("inside"))
	_, r3, err := c.Reader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(r3, make([]byte, 5)); err != nil {
		t.Fatal(err)
	}
	if _, got, err := c.Read(ctx); err != nil || string(got) != "four" {
		t.Fatalf("Read = %q, %v", got, err)
	}

	// The skipped part is still checked: invalid UTF-8 in it fails.
	bad := append(bytes.Repeat([]byte("x"), 100), 0xff)
	p.send(t, p.frame(true, 0, opText, bad))
	_, r4, err := c.Reader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(r4, make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { _, _, err := c.Reader(ctx); errc <- err }()
	p.expectFail(t, StatusInvalidFramePayloadData)
	expectProtocolError(t, <-errc, StatusInvalidFramePayloadData)
}

// TestNetConn carries a byte stream over the connection.
func TestNetConn(t *testing.T) {
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) {
			s, c := connPair(t, tr, ConnOptions{}, ConnOptions{})
			sn, cn := NetConn(s, MessageBinary), NetConn(c, MessageBinary)
			if cn.LocalAddr() == nil || cn.RemoteAddr() == nil || cn.LocalAddr().String() != c.LocalAddr().String() {
				t.Fatal("addresses")
			}
			copied := make(chan error, 1)
			go func() {
				_, err := io.Copy(sn, sn) // echo
				copied <- err
			}()
			data := pattern(300000, 1)
			wrote := make(chan error, 1)
			go func() {
				for i := 0; i < len(data); i += 1000 {
					if _, err := cn.Write(data[i:min(i+1000, len(data))]); err != nil {
						wrote <- err
						return
					}
				}
				wrote <- nil
			}()
			got := make([]byte, len(data))
			if _, err := io.ReadFull(cn, got); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Fatal("echoed stream differs")
			}
			if err := <-wrote; err != nil {
				t.Fatal(err)
			}

			// Read deadlines interrupt a read and leave the stream usable.
			cn.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
			n, err := cn.Read(make([]byte, 10))
			var ne net.Error
			if n != 0 || !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("Read past the deadline = %d, %v, want a timeout", n, err)
			}
			cn.SetReadDeadline(time.Time{})
			if _, err := cn.Write([]byte("after deadline")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 14)
			if _, err := io.ReadFull(cn, buf); err != nil || string(buf) != "after deadline" {
				t.Fatalf("Read after the deadline: %q, %v", buf, err)
			}

			// Closing ends the peer's stream with io.EOF.
			if err := cn.Close(); err != nil {
				t.Fatalf("Close = %v", err)
			}
			select {
			case err := <-copied:
				if err != nil {
					t.Fatalf("peer io.Copy = %v, want nil (io.EOF)", err)
				}
			case <-time.After(waitLong):
				t.Fatal("peer stream did not end")
			}
		})
	}
}

func TestNetConnCloseStatus(t *testing.T) {
	for _, tc := range []struct {
		code StatusCode
		eof  bool
	}{{StatusNormalClosure, true}, {StatusGoingAway, true}, {StatusInternalError, false}, {4000, false}} {
		t.Run(fmt.Sprint(tc.code), func(t *testing.T) {
			s, c := connPair(t, overTCP, ConnOptions{}, ConnOptions{})
			cn := NetConn(c, MessageBinary)
			done := make(chan error, 1)
			go func() { done <- s.Close(tc.code, "") }()
			_, err := cn.Read(make([]byte, 1))
			if tc.eof && err != io.EOF {
				t.Fatalf("Read = %v, want io.EOF", err)
			}
			if !tc.eof && CloseStatus(err) != tc.code {
				t.Fatalf("Read = %v, want CloseStatus %d", err, tc.code)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestNetConnWriteDeadline(t *testing.T) {
	_, c := connPair(t, overTCP, ConnOptions{}, ConnOptions{})
	cn := NetConn(c, MessageBinary)
	cn.SetWriteDeadline(time.Now().Add(-time.Second))
	_, err := cn.Write([]byte("late"))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Write past the deadline = %v, want os.ErrDeadlineExceeded", err)
	}
}

// TestPreparedMessage writes one prepared message to many connections of
// both roles, concurrently; each receives it intact, clients masked.
func TestPreparedMessage(t *testing.T) {
	for _, size := range []int{5, 200, 70000} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			data := pattern(size, 3)
			want := append([]byte(nil), data...)
			pm, err := NewPreparedMessage(MessageBinary, data)
			if err != nil {
				t.Fatal(err)
			}
			for i := range data {
				data[i] = 0 // the message holds its own copy
			}
			type pair struct {
				c *Conn
				p *peer
			}
			var pairs []pair
			for i := range 6 {
				c, p := newTestConn(t, transports[i%2], i%3 == 0, ConnOptions{})
				pairs = append(pairs, pair{c, p})
			}
			var wg sync.WaitGroup
			errs := make(chan error, 2*len(pairs))
			for _, pr := range pairs {
				for range 2 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						errs <- pr.c.WritePrepared(context.Background(), pm)
					}()
				}
			}
			for _, pr := range pairs {
				pr.p.expectFrame(t, opBinary, want)
				pr.p.expectFrame(t, opBinary, want)
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
		})
	}
	if _, err := NewPreparedMessage(MessageType(0), nil); err == nil {
		t.Fatal("NewPreparedMessage accepted type 0")
	}
}

// stamp makes a message that says who wrote it and checks itself.
func stamp(writer, seq, size int) []byte {
	b := make([]byte, 8+size)
	binary.BigEndian.PutUint32(b, uint32(writer))
	binary.BigEndian.PutUint32(b[4:], uint32(seq))
	for i := range size {
		b[8+i] = byte(writer*31 + seq*7 + i)
	}
	return b
}

func checkStamp(b []byte) (writer, seq int, err error) {
	if len(b) < 8 {
		return 0, 0, fmt.Errorf("message of %d bytes", len(b))
	}
	writer, seq = int(binary.BigEndian.Uint32(b)), int(binary.BigEndian.Uint32(b[4:]))
	if !bytes.Equal(b, stamp(writer, seq, len(b)-8)) {
		return writer, seq, fmt.Errorf("message %d/%d garbled", writer, seq)
	}
	return writer, seq, nil
}

// TestConcurrentWrites: many goroutines write at once, both ways, with
// Write, Writer, WritePrepared and pings mixed; every message arrives
// whole and each writer's in order. Run with -race.
//
// No pings over net.Pipe: it has no buffer, so two Conns that both answer
// pings from their reading goroutines can wait on each other for ever
// while both write.
func TestConcurrentWrites(t *testing.T) {
	const writers, perWriter = 6, 60
	sizes := []int{0, 1, 100, 125, 126, 4000, 5000, 20000, 70000}
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) {
			s, c := connPair(t, tr, ConnOptions{}, ConnOptions{})
			pm, _ := NewPreparedMessage(MessageBinary, stamp(99, 0, 300))
			var wg sync.WaitGroup
			defer func() {
				s.CloseNow()
				c.CloseNow()
				wg.Wait()
			}()
			readErrs := make(chan error, 2+2*writers)
			for _, pair := range [][2]*Conn{{s, c}, {c, s}} {
				from, to := pair[0], pair[1]
				for w := range writers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						ctx := context.Background()
						for seq := range perWriter {
							msg := stamp(w, seq, sizes[(w+seq)%len(sizes)])
							var err error
							switch (w + seq) % 4 {
							case 0:
								var wr io.WriteCloser
								if wr, err = from.Writer(ctx, MessageBinary); err == nil {
									for i := 0; i < len(msg) && err == nil; i += 777 {
										_, err = wr.Write(msg[i:min(i+777, len(msg))])
									}
									if cerr := wr.Close(); err == nil {
										err = cerr
									}
								}
							case 1:
								err = from.WritePrepared(ctx, pm)
								if err == nil {
									err = from.Write(ctx, MessageBinary, msg)
								}
							case 2:
								if tr == overTCP {
									err = from.PingFunc([]byte{byte(seq)}, func(time.Duration, error) {})
								}
								if err == nil {
									err = from.Write(ctx, MessageBinary, msg)
								}
							default:
								err = from.Write(ctx, MessageBinary, msg)
							}
							if err != nil {
								readErrs <- fmt.Errorf("writer %d: %w", w, err)
								return
							}
						}
					}()
				}
				go func() {
					next := make([]int, writers)
					want := writers * perWriter
					for got := 0; got < want; {
						typ, p, err := to.Read(context.Background())
						if err != nil {
							readErrs <- err
							return
						}
						w, seq, err := checkStamp(p)
						if err == nil && typ != MessageBinary {
							err = fmt.Errorf("type %v", typ)
						}
						if err != nil {
							readErrs <- err
							return
						}
						if w == 99 {
							continue // a prepared message
						}
						if w >= writers || seq != next[w] {
							readErrs <- fmt.Errorf("writer %d: message %d arrived, want %d", w, seq, next[w])
							return
						}
						next[w]++
						got++
					}
					readErrs <- nil
				}()
			}
			for range 2 {
				select {
				case err := <-readErrs:
					if err != nil {
						t.Fatal(err)
					}
				case <-time.After(4 * waitLong):
					t.Fatal("messages missing")
				}
			}
			wg.Wait()
		})
	}
}

func TestWriteMisuse(t *testing.T) {
	c, p := newTestConn(t, overTCP, false, ConnOptions{})
	for _, typ := range []MessageType{0, 3, 7, 8, 9, 10, 15, -1, 256 + 1} {
		err := c.Write(context.Background(), typ, []byte("x"))
		if err == nil {
			t.Fatalf("Write of type %d accepted", typ)
		}
		if errors.Is(err, net.ErrClosed) {
			t.Fatalf("Write of type %d: %v; a usage error must not close", typ, err)
		}
	}
	p.expectNothing(t, 20*time.Millisecond)
	if err := c.Write(context.Background(), MessageText, []byte("fine")); err != nil {
		t.Fatal(err)
	}
	p.expectFrame(t, opText, []byte("fine"))
}

// TestReadContext: a context that ends before a message starts leaves the
// connection usable; one that ends inside a message closes it.
func TestReadContext(t *testing.T) {
	for _, tr := range transports {
		for _, client := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/%s", tr, roleName(client)), func(t *testing.T) {
				c, p := newTestConn(t, tr, client, ConnOptions{})
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
				defer cancel()
				_, _, err := c.Read(ctx)
				if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, net.ErrClosed) {
					t.Fatalf("Read = %v, want context.DeadlineExceeded and the connection open", err)
				}
				canceled, cancel2 := context.WithCancel(context.Background())
				cancel2()
				if _, _, err := c.Read(canceled); !errors.Is(err, context.Canceled) {
					t.Fatalf("Read with a canceled context = %v", err)
				}
				if _, _, err := c.Reader(canceled); !errors.Is(err, context.Canceled) {
					t.Fatalf("Reader with a canceled context = %v", err)
				}
				if err := c.Write(canceled, MessageText, []byte("x")); !errors.Is(err, context.Canceled) {
					t.Fatalf("Write with a canceled context = %v", err)
				}
				w := p.sendAsync(p.frame(true, 0, opText, []byte("after")))
				typ, got, err := c.Read(context.Background())
				if err != nil || typ != MessageText || string(got) != "after" {
					t.Fatalf("Read after the timeouts: %v %q %v", typ, got, err)
				}
				<-w
				if err := c.Write(context.Background(), MessageText, []byte("ok")); err != nil {
					t.Fatal(err)
				}
				p.expectFrame(t, opText, []byte("ok"))

				// A context ending inside a message ends the connection.
				f := p.frame(true, 0, opBinary, make([]byte, 100))
				w = p.sendAsync(f[:p.hdrLen(100)+10])
				ctx3, cancel3 := context.WithTimeout(context.Background(), 50*time.Millisecond)
				defer cancel3()
				_, _, err = c.Read(ctx3)
				if err == nil {
					t.Fatal("Read of a partial message succeeded")
				}
				<-w
				if _, _, err := c.Read(context.Background()); !errors.Is(err, net.ErrClosed) {
					t.Fatalf("Read after a message was cut = %v, want net.ErrClosed", err)
				}
			})
		}
	}
}

// TestReadContextInsideControlFrame: a context that ends while a control
// frame is half read, before any message, leaves the connection usable:
// the rest of the frame is still understood as that frame.
func TestReadContextInsideControlFrame(t *testing.T) {
	for _, tr := range transports {
		for _, op := range []opcode{opPing, opClose} {
			t.Run(fmt.Sprintf("%s/op=%#x", tr, byte(op)), func(t *testing.T) {
				c, p := newTestConn(t, tr, false, ConnOptions{})
				payload := []byte("abcdefgh")
				if op == opClose {
					payload = closeBody(StatusGoingAway, "abcdef")
				}
				f := p.frame(true, 0, op, payload)
				cut := p.hdrLen(len(payload)) + 3
				w := p.sendAsync(f[:cut])
				ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
				defer cancel()
				_, _, err := c.Read(ctx)
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("Read = %v, want context.DeadlineExceeded", err)
				}
				<-w
				rest := append(append([]byte(nil), f[cut:]...), p.frame(true, 0, opText, []byte("message"))...)
				w = p.sendAsync(rest)
				reads := startReader(t, c)
				if op == opPing {
					expectMsg(t, reads, MessageText, []byte("message"))
					p.expectFrame(t, opPong, payload)
				} else {
					p.expectClose(t, StatusGoingAway)
					if err := expectReadErr(t, reads); CloseStatus(err) != StatusGoingAway {
						t.Fatalf("Read = %v, want CloseStatus 1001", err)
					}
				}
				<-w
			})
		}
	}
}

// TestWriteContextStalledPeer: a Write blocked on a peer that reads
// nothing ends with its context; the frame is cut, so the connection is
// closed.
func TestWriteContextStalledPeer(t *testing.T) {
	c, nc := benchConn(t, overTCP, false, ConnOptions{}) // nobody reads nc
	defer nc.Close()
	defer c.CloseNow()
	// Made before the clock starts: under -race, making 64 MiB can take
	// longer than the timeout, which then ends before the frame began and
	// leaves the connection usable, as documented.
	p := make([]byte, 64<<20)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	var err error
	within(t, waitLong, "Write", func() { err = c.Write(ctx, MessageBinary, p) })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Write = %v, want context.DeadlineExceeded", err)
	}
	if err := c.Write(context.Background(), MessageText, []byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write after a cut frame = %v, want net.ErrClosed", err)
	}
}

// TestCoalescedWriteFlushes: a reply written while more input is buffered
// may wait to share a flush, but not for the application's next Read.
func TestCoalescedWriteFlushes(t *testing.T) {
	for _, tr := range transports {
		for _, client := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/%s", tr, roleName(client)), func(t *testing.T) {
				c, p := newTestConn(t, tr, client, ConnOptions{})
				b := p.frame(true, 0, opText, []byte("one"))
				b = append(b, p.frame(true, 0, opText, []byte("two"))...)
				w := p.sendAsync(b)
				ctx := context.Background()
				if _, got, err := c.Read(ctx); err != nil || string(got) != "one" {
					t.Fatalf("Read = %q, %v", got, err)
				}
				<-w
				if err := c.Write(ctx, MessageText, []byte("reply")); err != nil {
					t.Fatal(err)
				}
				// No Read now: the reply must still go out.
				select {
				case f := <-p.frames:
					if f.op != opText || string(f.payload) != "reply" {
						t.Fatalf("got %v", f)
					}
				case <-time.After(time.Second):
					t.Fatal("reply held back while the application does not read")
				}
				if _, got, err := c.Read(ctx); err != nil || string(got) != "two" {
					t.Fatalf("Read = %q, %v", got, err)
				}
			})
		}
	}
}

// TestCloseRace closes connections while every method is in use from
// other goroutines. Everything must return, with no race or panic, and
// report net.ErrClosed once the connection is gone.
func TestCloseRace(t *testing.T) {
	for i := range 40 {
		tr := transports[i%2]
		s, c := connPair(t, tr, ConnOptions{CloseTimeout: 200 * time.Millisecond}, ConnOptions{CloseTimeout: 200 * time.Millisecond})
		var wg sync.WaitGroup
		run := func(f func() error) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for f() == nil {
				}
			}()
		}
		ctx := context.Background()
		for _, conn := range []*Conn{s, c} {
			run(func() error { _, _, err := conn.Read(ctx); return err })
			run(func() error { return conn.Write(ctx, MessageBinary, make([]byte, 3000)) })
			run(func() error {
				w, err := conn.Writer(ctx, MessageText)
				if err != nil {
					return err
				}
				w.Write([]byte("streamed"))
				return w.Close()
			})
			run(func() error {
				pctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
				defer cancel()
				_, err := conn.Ping(pctx, []byte("p"))
				if errors.Is(err, context.DeadlineExceeded) {
					return nil
				}
				return err
			})
		}
		time.Sleep(time.Duration(i%5) * time.Millisecond)
		switch i % 4 {
		case 0:
			go s.Close(StatusNormalClosure, "")
			c.Close(StatusGoingAway, "")
		case 1:
			s.CloseNow()
		case 2:
			c.Close(StatusNormalClosure, "")
		default:
			go c.CloseNow()
			s.Close(StatusNormalClosure, "")
		}
		s.CloseNow()
		c.CloseNow()
		within(t, waitLong, "the goroutines using closed connections", wg.Wait)
		for _, conn := range []*Conn{s, c} {
			if err := conn.Write(ctx, MessageText, nil); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("run %d: Write after close = %v", i, err)
			}
		}
	}
}

// TestWriterFragmentsComplete: a fragment the Writer has emitted reaches
// the peer whole while the Writer stays open; none of it waits in a
// buffer for later writes.
func TestWriterFragmentsComplete(t *testing.T) {
	for _, tr := range transports {
		for _, client := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/%s", tr, roleName(client)), func(t *testing.T) {
				const size = 256
				c, p := newTestConn(t, tr, client, ConnOptions{WriteBufferSize: size})
				w, err := c.Writer(context.Background(), MessageBinary)
				if err != nil {
					t.Fatal(err)
				}
				defer w.Close()
				data := pattern(2*size, 4)
				if _, err := w.Write(data); err != nil {
					t.Fatal(err)
				}
				var got []byte
				deadline := time.After(time.Second)
				for len(got) < len(data) {
					select {
					case f := <-p.frames:
						if f.fin || f.op != opBinary && f.op != opContinuation {
							t.Fatalf("got %v", f)
						}
						got = append(got, f.payload...)
					case <-deadline:
						t.Fatalf("the Writer took %d bytes in fragments of %d; %d reached the peer", len(data), size, len(got))
					}
				}
				if !bytes.Equal(got, data) {
					t.Fatal("fragments garbled")
				}
			})
		}
	}
}
