package websocket

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"
)

// protocolViolations are frames RFC 6455 §5 forbids. Each builds, for the
// given peer, the bytes of one offending frame.
var protocolViolations = []struct {
	name  string
	bad   func(p *peer) []byte
	roles []bool // the Conn roles (client?) it applies to; nil means both
}{
	{"unmasked frame from client", func(p *peer) []byte {
		return appendFrame(nil, true, 0, opText, false, [4]byte{}, []byte("hi"))
	}, []bool{false}},
	{"masked frame from server", func(p *peer) []byte {
		return appendFrame(nil, true, 0, opText, true, [4]byte{1, 2, 3, 4}, []byte("hi"))
	}, []bool{true}},
	{"unmasked ping from client", func(p *peer) []byte {
		return appendFrame(nil, true, 0, opPing, false, [4]byte{}, []byte("hi"))
	}, []bool{false}},
	{"masked close from server", func(p *peer) []byte {
		return appendFrame(nil, true, 0, opClose, true, [4]byte{1, 2, 3, 4}, closeBody(1000, ""))
	}, []bool{true}},
	{"rsv1 on text", func(p *peer) []byte { return p.frame(true, rsv1, opText, []byte("hi")) }, nil},
	{"rsv2 on binary", func(p *peer) []byte { return p.frame(true, rsv2, opBinary, []byte("hi")) }, nil},
	{"rsv3 on text", func(p *peer) []byte { return p.frame(true, rsv3, opText, []byte("hi")) }, nil},
	{"all rsv on empty binary", func(p *peer) []byte { return p.frame(true, rsvMask, opBinary, nil) }, nil},
	{"rsv1 on ping", func(p *peer) []byte { return p.frame(true, rsv1, opPing, []byte("hi")) }, nil},
	{"rsv3 on close", func(p *peer) []byte { return p.frame(true, rsv3, opClose, closeBody(1000, "")) }, nil},
	{"rsv2 on continuation", func(p *peer) []byte {
		return append(p.frame(false, 0, opText, []byte("a")), p.frame(true, rsv2, opContinuation, []byte("b"))...)
	}, nil},
	{"ping of 126 bytes", func(p *peer) []byte { return p.frame(true, 0, opPing, make([]byte, 126)) }, nil},
	{"pong of 126 bytes", func(p *peer) []byte { return p.frame(true, 0, opPong, make([]byte, 126)) }, nil},
	{"close of 126 bytes", func(p *peer) []byte {
		return p.frame(true, 0, opClose, closeBody(1000, string(bytes.Repeat([]byte("r"), 124))))
	}, nil},
	{"ping claiming 65536 bytes", func(p *peer) []byte {
		return p.rawHeader(0x89, 127, 0, 0, 0, 0, 0, 1, 0, 0)
	}, nil},
	{"fragmented ping", func(p *peer) []byte { return p.frame(false, 0, opPing, []byte("hi")) }, nil},
	{"fragmented pong", func(p *peer) []byte { return p.frame(false, 0, opPong, []byte("hi")) }, nil},
	{"fragmented close", func(p *peer) []byte { return p.frame(false, 0, opClose, closeBody(1000, "")) }, nil},
	{"fragmented ping inside a message", func(p *peer) []byte {
		return append(p.frame(false, 0, opText, []byte("a")), p.frame(false, 0, opPing, nil)...)
	}, nil},
	{"continuation without start", func(p *peer) []byte { return p.frame(true, 0, opContinuation, []byte("hi")) }, nil},
	{"non-final continuation without start", func(p *peer) []byte { return p.frame(false, 0, opContinuation, []byte("hi")) }, nil},
	{"text inside a fragmented message", func(p *peer) []byte {
		return append(p.frame(false, 0, opText, []byte("a")), p.frame(true, 0, opText, []byte("b"))...)
	}, nil},
	{"binary inside a fragmented text message", func(p *peer) []byte {
		return append(p.frame(false, 0, opText, []byte("a")), p.frame(false, 0, opBinary, []byte("b"))...)
	}, nil},
	{"text inside a fragmented binary message after continuations", func(p *peer) []byte {
		b := p.frame(false, 0, opBinary, []byte("a"))
		b = append(b, p.frame(false, 0, opContinuation, []byte("b"))...)
		return append(b, p.frame(true, 0, opText, []byte("c"))...)
	}, nil},
	{"64-bit length with the top bit set", func(p *peer) []byte {
		return p.rawHeader(0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 5)
	}, nil},
	{"64-bit length all ones", func(p *peer) []byte {
		return p.rawHeader(0x82, 127, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
	}, nil},
	{"16-bit length of 5", func(p *peer) []byte { return append(p.rawHeader(0x82, 126, 0, 5), "hello"...) }, nil},
	{"16-bit length of 0", func(p *peer) []byte { return p.rawHeader(0x82, 126, 0, 0) }, nil},
	{"64-bit length of 200", func(p *peer) []byte {
		return append(p.rawHeader(0x82, 127, 0, 0, 0, 0, 0, 0, 0, 200), make([]byte, 200)...)
	}, nil},
	{"64-bit length of 65535", func(p *peer) []byte { return p.rawHeader(0x82, 127, 0, 0, 0, 0, 0, 0, 0xff, 0xff) }, nil},
}

func init() {
	for op := byte(3); op <= 0xF; op++ {
		if op >= 8 && op <= 0xA {
			continue
		}
		protocolViolations = append(protocolViolations, struct {
			name  string
			bad   func(p *peer) []byte
			roles []bool
		}{fmt.Sprintf("reserved opcode %#x", op), func(p *peer) []byte { return p.frame(true, 0, opcode(op), []byte("hi")) }, nil})
	}
	protocolViolations = append(protocolViolations, struct {
		name  string
		bad   func(p *peer) []byte
		roles []bool
	}{"reserved opcode inside a fragmented message", func(p *peer) []byte {
		return append(p.frame(false, 0, opText, []byte("a")), p.frame(false, 0, 0x3, nil)...)
	}, nil})
}

// TestProtocolViolations sends, as Autobahn does, a valid message, an
// offending frame and a ping, all at once. The Conn must deliver the
// message (its echo arrives), then fail with 1002, answer no frame after
// the offending one, and return a *ProtocolError.
func TestProtocolViolations(t *testing.T) {
	for _, tr := range transports {
		for _, client := range []bool{false, true} {
			for _, v := range protocolViolations {
				if v.roles != nil && v.roles[0] != client {
					continue
				}
				role := "server"
				if client {
					role = "client"
				}
				t.Run(fmt.Sprintf("%s/%s/%s", tr, role, v.name), func(t *testing.T) {
					c, p := newTestConn(t, tr, client, ConnOptions{})
					echo := startEcho(t, c)
					b := p.frame(true, 0, opText, []byte("before"))
					b = append(b, v.bad(p)...)
					b = append(b, p.frame(true, 0, opPing, []byte("after"))...)
					b = append(b, p.frame(true, 0, opText, []byte("after"))...)
					w := p.sendAsync(b)
					p.expectFrame(t, opText, []byte("before"))
					p.expectFail(t, StatusProtocolError)
					var err error
					select {
					case err = <-echo:
					case <-time.After(waitLong):
						t.Fatal("Read did not fail")
					}
					expectProtocolError(t, err, StatusProtocolError)
					if !errors.Is(err, net.ErrClosed) {
						t.Fatalf("%v: want errors.Is(err, net.ErrClosed)", err)
					}
					<-w
				})
			}
		}
	}
}

// TestControlFramesBetweenFragments checks control frames inside a
// fragmented message are handled at once (RFC 6455 §5.4, §5.5): the pong
// for a ping in the middle of a message arrives before the message's
// last fragment is sent.
func TestControlFramesBetweenFragments(t *testing.T) {
	for _, tr := range transports {
		for _, client := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/client=%v", tr, client), func(t *testing.T) {
				c, p := newTestConn(t, tr, client, ConnOptions{})
				reads := startReader(t, c)
				p.send(t, p.frame(false, 0, opText, []byte("Hel")))
				p.send(t, p.frame(true, 0, opPing, []byte("p1")))
				p.expectFrame(t, opPong, []byte("p1"))
				p.send(t, p.frame(true, 0, opPong, []byte("unsolicited")))
				p.send(t, p.frame(false, 0, opContinuation, nil))
				p.send(t, p.frame(true, 0, opPing, nil))
				p.expectFrame(t, opPong, nil)
				p.send(t, p.frame(false, 0, opContinuation, []byte("l")))
				p.send(t, p.frame(true, 0, opPing, pattern(125, 0)))
				p.expectFrame(t, opPong, pattern(125, 0))
				p.send(t, p.frame(true, 0, opContinuation, []byte("o")))
				expectMsg(t, reads, MessageText, []byte("Hello"))
				// The unsolicited pong got no answer.
				p.expectNothing(t, 20*time.Millisecond)

				// A close frame between fragments ends the connection.
				p.send(t, p.frame(false, 0, opBinary, []byte("x")))
				p.send(t, p.frame(true, 0, opClose, closeBody(StatusNormalClosure, "mid")))
				p.expectClose(t, StatusNormalClosure)
				p.finishClose(t)
				err := expectReadErr(t, reads)
				if CloseStatus(err) != StatusNormalClosure {
					t.Fatalf("Read: %v, want CloseStatus 1000", err)
				}
			})
		}
	}
}

// TestNothingAnsweredAfterClose sends a close frame followed, in the same
// write, by a ping and a message: the Conn echoes the close and nothing
// else (RFC 6455 §5.5.1: no data after a close frame).
func TestNothingAnsweredAfterClose(t *testing.T) {
	for _, tr := range transports {
		for _, client := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/client=%v", tr, client), func(t *testing.T) {
				c, p := newTestConn(t, tr, client, ConnOptions{})
				echo := startEcho(t, c)
				b := p.frame(true, 0, opClose, closeBody(StatusNormalClosure, ""))
				b = append(b, p.frame(true, 0, opPing, []byte("x"))...)
				b = append(b, p.frame(true, 0, opText, []byte("x"))...)
				b = append(b, p.frame(true, 0, opClose, closeBody(StatusNormalClosure, ""))...)
				w := p.sendAsync(b)
				p.expectClose(t, StatusNormalClosure)
				select {
				case f, ok := <-p.frames:
					if ok {
						t.Fatalf("got %v after the close echo", f)
					}
				case <-time.After(20 * time.Millisecond):
				}
				p.finishClose(t)
				select {
				case err := <-echo:
					if CloseStatus(err) != StatusNormalClosure {
						t.Fatalf("Read: %v", err)
					}
				case <-time.After(waitLong):
					t.Fatal("Read did not return")
				}
				<-w
			})
		}
	}
}

// TestValidFragmentation delivers messages fragmented in every legal way.
func TestValidFragmentation(t *testing.T) {
	for _, client := range []bool{false, true} {
		c, p := newTestConn(t, overTCP, client, ConnOptions{})
		reads := startReader(t, c)
		msg := textPattern(1000)
		for _, size := range []int{1, 2, 3, 7, 125, 126, 999, 1000} {
			var b []byte
			for i := 0; i < len(msg); i += size {
				op := opContinuation
				if i == 0 {
					op = opText
				}
				end := min(i+size, len(msg))
				b = append(b, p.frame(end == len(msg), 0, op, msg[i:end])...)
			}
			p.send(t, b)
			expectMsg(t, reads, MessageText, msg)
		}
		// Empty fragments anywhere.
		b := p.frame(false, 0, opBinary, nil)
		b = append(b, p.frame(false, 0, opContinuation, []byte("ab"))...)
		b = append(b, p.frame(false, 0, opContinuation, nil)...)
		b = append(b, p.frame(true, 0, opContinuation, nil)...)
		p.send(t, b)
		expectMsg(t, reads, MessageBinary, []byte("ab"))
		// Empty message.
		p.send(t, p.frame(true, 0, opText, nil))
		expectMsg(t, reads, MessageText, []byte{})
	}
}

// TestLargeMessages: the sizes of Autobahn's 9.x cases pass with the
// default limits: a 16 MiB message, and 4 MiB in 65536 fragments of 64
// bytes, both ways.
func TestLargeMessages(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	c, p := newTestConn(t, overTCP, false, ConnOptions{})
	echo := startEcho(t, c)
	big := pattern(16<<20, 7)
	w := p.sendAsync(p.frame(true, 0, opBinary, big))
	f := p.next(t)
	if f.op != opBinary || !f.fin || !bytes.Equal(f.payload, big) {
		t.Fatalf("16 MiB echo: %v", f)
	}
	if err := <-w; err != nil {
		t.Fatal(err)
	}
	text := textPattern(4 << 20)
	var b []byte
	for i := 0; i < len(text); i += 64 {
		op := opContinuation
		if i == 0 {
			op = opText
		}
		b = append(b, p.frame(i+64 >= len(text), 0, op, text[i:min(i+64, len(text))])...)
	}
	w = p.sendAsync(b)
	f = p.next(t)
	if f.op != opText || !f.fin || !bytes.Equal(f.payload, text) {
		t.Fatalf("fragmented 4 MiB echo: %v", f)
	}
	if err := <-w; err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-echo:
		t.Fatalf("echo ended: %v", err)
	default:
	}
}

// TestMessageThenClose: a message and a close frame in one write: the
// echo of the message goes out before the close frame (Autobahn 7.1.1).
func TestMessageThenClose(t *testing.T) {
	for _, tr := range transports {
		for _, client := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/%s", tr, roleName(client)), func(t *testing.T) {
				c, p := newTestConn(t, tr, client, ConnOptions{})
				startEcho(t, c)
				b := p.frame(true, 0, opText, []byte("Hello World!"))
				b = append(b, p.frame(true, 0, opClose, closeBody(StatusNormalClosure, ""))...)
				w := p.sendAsync(b)
				p.expectFrame(t, opText, []byte("Hello World!"))
				p.expectClose(t, StatusNormalClosure)
				p.finishClose(t)
				<-w
			})
		}
	}
}
