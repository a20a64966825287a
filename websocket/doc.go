// Package websocket implements the WebSocket protocol of RFC 6455, versions
// 13 and 8, for servers and clients.
//
// A server upgrades a request inside a net/http handler with [Accept],
// performs the whole handshake on a raw connection with [AcceptConn], or
// serves net.Listeners without net/http with a [Server], which bounds
// each handshake, reports errors, outlives running out of descriptors
// and shuts down gracefully. A client performs the handshake over a
// connection it dialed itself, with or without TLS or a proxy underneath,
// with [NewClient]; package client does the dialing. Both ends also run
// over HTTP/2 (see below).
//
//	c, err := websocket.Accept(w, r, nil)
//	if err != nil {
//		return // Accept has written the error response
//	}
//	defer c.CloseNow()
//	for {
//		typ, p, err := c.Read(ctx)
//		if err != nil {
//			return
//		}
//		if err := c.Write(ctx, typ, p); err != nil {
//			return
//		}
//	}
//
// # HTTP/2
//
// RFC 8441 carries a WebSocket over one stream of an HTTP/2 connection,
// opened by an extended CONNECT with :protocol websocket, so several
// WebSockets share one TCP and TLS connection and pass where only HTTP/2
// does. [Accept] recognizes such a request ([IsWebSocket] too), checks
// version, origin, subprotocols and extensions as on HTTP/1.1, answers
// 200, and runs the same Conn over the stream: framing, limits,
// extensions, pings and the closing handshake are those of HTTP/1.1. The
// stream ends when the handler returns, so the handler waits for
// [Conn.Done] before it returns. Go's net/http server (Go 1.26) offers
// extended CONNECT only when the program runs with
// GODEBUG=http2xconnect=1 in its environment; the setting is read once
// at start-up, and neither a //go:debug line nor a go.mod godebug line
// is accepted for it. Without it, browsers use HTTP/1.1 for WebSockets
// as before.
//
// [NewClientHTTP2] is the client: it sends the extended CONNECT through
// an http.RoundTripper that speaks HTTP/2 and allows it, such as
// golang.org/x/net/http2.Transport (net/http's own Transport refuses
// the :protocol field). Package client's Dialer does this, and falls
// back to HTTP/1.1, when its HTTP2 field is set.
//
// The stream ends for good when the server's handler returns, so a
// server Conn that fails the connection closes at once after its close
// frame, instead of waiting, as on TCP, for the peer to close first:
// HTTP/2 delivers that frame before the stream's end or reset.
//
// Over HTTP/2, deadlines of the stream cannot serve a Conn: net/http
// ends the stream when one passes. So a goroutine per connection reads
// the stream ahead into a 16 KiB buffer, which an idle connection keeps,
// and a context or deadline that interrupts a read leaves the connection
// usable, as on TCP. The raw system-call path is not used.
//
// # Conformance
//
// Every framing rule of RFC 6455 §5 is enforced: masking by role, RSV bits
// only as negotiated, reserved opcodes, control frames of at most 125
// bytes that are never fragmented but may arrive between fragments, and
// 64-bit lengths with the top bit clear. Text is validated as UTF-8 while
// it arrives, so an invalid byte fails the connection with close code 1007
// in the read that brings it. A peer that breaks a rule gets the close code
// RFC 6455 prescribes (1002, 1007, 1009) and the reader gets a
// [*ProtocolError].
//
// # Limits
//
// A received message may not exceed [ConnOptions.MaxMessageSize] bytes
// (by default 2^26-1, as faye-websocket) nor [ConnOptions.MaxFragments]
// frames, and fails with 1009 when it does. Both are checked at every
// frame header, before the frame's payload is read, so a frame whose
// length would pass a limit is never read. A compressed message is
// counted as it is decompressed and fails as soon as it passes the limit.
// Either way the buffer Read fills never grows beyond MaxMessageSize
// bytes, and a message that fails costs Read about that much memory (plus
// a small constant), never a multiple of it, however small it was on the
// wire. The opening handshake is bounded to 16 KiB and by the caller's
// context.
//
// # Concurrency
//
// One goroutine reads; any goroutine may write, ping or close at any time.
// Control frames are processed by the reader, so a connection that should
// answer pings or see pongs must be read from. A Conn starts no
// goroutines: keep-alive pings and deferred flushes run on timers. Only
// [Server], like http.Server, starts a goroutine per connection, and a
// connection over HTTP/2 a goroutine that reads its stream.
//
// # Memory
//
// A connection borrows its read and write buffers from a pool only while
// data is in flight. An idle TCP connection waits for input through
// syscall.RawConn without holding a buffer, so it costs about 4.8 KiB in
// all, its goroutine's stack included, when served by [Server]. What else
// an idle connection keeps depends on how the program serves it (RSS per
// idle connection, heap and stack, 2,000 connections, Go 1.26, interop/bench
// scenario d):
//
//   - [Server] ([Serve]): 5.8 KiB (2.2 heap, 2.4 stack).
//   - [AcceptConn], then reading on the goroutine that called it: 5.3 KiB
//     (2.1, 2.1). AcceptConn parses the request on a short-lived
//     goroutine of its own, so the caller's stack stays at 2 KiB; before,
//     it kept the 4 KiB the parsing grew (6.8 KiB in all).
//   - [Accept] in a net/http handler that hands the Conn to a fresh
//     goroutine and returns: 5.6 KiB (2.1, 2.4). Over HTTP/1.1 the
//     handler may return as soon as Accept has: net/http then drops its
//     state for the connection and the goroutine whose stack the request
//     grew. Over HTTP/2 it must not (see below); r.ProtoMajor tells.
//   - [Accept] in a net/http handler that reads the connection itself:
//     13.9 KiB (4.6, 8.1). While the handler runs, net/http keeps the
//     goroutine it parsed the request on, its stack grown to 8 KiB, the
//     request, its context and its state for the connection. Accept
//     leaves that state without the two 4 KiB buffers of the reader and
//     writer it took over (18.1 KiB before); the rest cannot be released
//     from inside the handler. A server holding many connections should
//     start a goroutine and return, as package realtime does.
//
// These figures hold for a connection that has echoed messages with
// context.Background(), on a raw TCP connection. With a context that can
// end, watching it on every call grows the goroutine's stack to 4 KiB,
// and the runtime halves a stack only when it uses under a quarter, so
// such a connection keeps 2 KiB more.
//
// [Conn.Read] allocates the message it returns, once, at its size when
// the frame header gives it; [Conn.ReadAppend] reuses the caller's
// buffer. A message over 32 KiB is a large object to the runtime: it is
// zeroed, has pages of its own, and the collections that free such
// messages let the background scavenger return the pages to the
// operating system, which faults them in again for the next message. In
// an echo of 64 KiB messages (BenchmarkEchoServerRead, one connection
// over loopback, server and client in one process on 2 cores) Read costs
// about 1.5 times the CPU of ReadAppend, some 60 µs more per round trip
// (0.85 page faults per message against 0.07; GOGC=400 takes a third of
// the difference away), against about 1.1 times at 1 KiB. A server that
// moves large messages should read them with ReadAppend or [Conn.Reader].
//
// Writes made while pipelined input waits are coalesced
// into one system call, and so are the messages of a [Batch] sent with
// [Conn.WriteBatch], which a server writing bursts of queued messages
// (prepared ones included) uses to save a system call per message.
//
// # Speed
//
// A whole message already in the read buffer, with a header of at most a
// 16-bit length and no extension at work, is checked and taken in one
// step; anything else, including every frame that breaks a rule, takes
// the general path, which reports the error. On amd64, payloads of 128
// bytes and more are unmasked with AVX2 (or SSE2) assembly; the build tag
// purego selects the portable Go loop.
//
// On TCP and Unix sockets a connection reads and writes through
// syscall.RawConn, so an idle one holds no buffer. On Linux those calls
// are raw recv(2) and send(2) with MSG_DONTWAIT: the call never sleeps,
// and it copies at most one buffer, so the scheduler's bookkeeping around
// a system call would buy nothing. That bookkeeping was a tenth of the
// server's user time per 1 KiB echo; without it the echo server needs no
// more CPU per message than a plain TCP echo written on net.Conn.
//
// The build tag norawio turns the raw path off, on Linux and on every
// other system: connections then read and write through net.Conn's
// methods only, as over TLS, and an idle connection waits in a read that
// holds its read buffer. It is an escape hatch for a kernel, sandbox or
// seccomp policy that rejects the raw calls, and a way to rule them out
// when chasing a problem.
//
// # Errors
//
// Every error a Conn returns names the package once, then the operation:
// "websocket: read: ...", "websocket: write: ...". An I/O error unwraps
// to the *net.OpError that net.Conn gives for the same failure, on the
// raw path too, and a context's end unwraps to ctx.Err(). Once the
// connection is closed, every error but one about the arguments
// satisfies errors.Is(err, net.ErrClosed) and unwraps to the cause. Read and Write document what a
// context that ends mid-message does.
package websocket
