// Package realtime pushes text messages from a server to browsers and Go
// programs over one URL, on a WebSocket when the network allows it and on
// an EventSource stream when it does not (a proxy that drops the Upgrade
// header, one that refuses CONNECT), with the same server code for both.
//
//	hub := realtime.NewHub(nil)
//	http.Handle("/realtime.js", realtime.ClientJS())
//	http.Handle("/socket", realtime.Handler(&realtime.Options{
//		Hub: hub,
//		OnMessage: func(ctx context.Context, s *realtime.Socket, text string) {
//			hub.Broadcast(text) // a chat: everyone gets every message
//		},
//	}, nil))
//
// [Handler] turns each client into a [Socket]: send text, ping, close,
// and see why it ended, whatever the transport. Messages from clients
// reach Options.OnMessage whether they came as WebSocket messages or as
// POSTs beside an EventSource stream. A [Hub] numbers the messages it
// broadcasts and keeps the recent ones, so that a client that reconnects
// gets what it missed exactly once. [ClientJS] serves the browser client;
// package client is the Go one.
//
// # Reliability
//
// Each socket has a bounded send queue drained by its own writer
// goroutine: Send and Broadcast never wait for a client, and a client
// that reads slowly fills its own queue only, with the policy set by
// Options.QueuePolicy when it is full (close with 1013 so the client
// resumes, or drop the oldest). Dead peers are noticed by heartbeats on
// both transports: WebSocket pings whose pongs must come back in time,
// and EventSource comment lines whose writes must finish within
// Options.WriteTimeout. [Hub.Shutdown] closes every socket with 1001
// and waits, with a deadline.
//
// # Goroutines
//
// For each socket the package runs one writer goroutine, and for a
// WebSocket one read goroutine, which calls OnMessage; all end when the
// socket does. The serve function of an EventSource socket runs on the
// request's goroutine, which stays until the stream ends (and, without
// a serve function, is the writer); a WebSocket's runs on a goroutine of
// its own, since the connection leaves net/http at the upgrade and its
// handler returns at once. OnMessage for an EventSource socket runs on
// the goroutine of the POST that carried the message.
//
// # Wire protocol, version realtime.v1
//
// This is what a client must do; the browser client and package client
// both follow it. One URL serves everything. Ids are opaque strings
// without line breaks (today EPOCH-SEQ, see [Hub]). A
// client keeps a last event id, initially empty or one it saved.
//
// WebSocket. The client opens a WebSocket on the URL (ws or wss)
// offering the subprotocol "realtime.v1" ([Subprotocol]), with the query
// parameter lastEventId=ID when it has a last event id (a Go client may
// send the Last-Event-ID header instead). The server selects the
// subprotocol. Every server message is then a text message "ID" or
// "ID\nDATA": the text before the first LF is an id, the rest the data,
// which may be empty and may contain LFs.
//
//   - The first message is always "ID" without LF, the position: the id
//     the connection starts from. It may be empty (a handler without a
//     hub). The connection counts as open once it has arrived.
//   - "ID\nDATA" delivers DATA. A non-empty ID becomes the last event id;
//     an empty one (a message sent to this socket only) leaves it as is.
//   - Client messages are text, the data alone. A binary message closes
//     the connection with 1003.
//
// A client that does not offer the subprotocol gets every message as
// plain text, the data alone: no position, no ids, no resuming.
//
// EventSource. The client sends a GET to the URL with Accept:
// text/event-stream, and with the Last-Event-ID header or the query
// parameter lastEventId when it has a last event id. The response is an
// event stream (with X-Accel-Buffering: no, so nginx passes it through
// unbuffered) carrying, in this order:
//
//   - an event of type "realtime.hello" ([HelloEvent]) whose data is the
//     session token and whose id field is the position (no id field when
//     it is empty);
//   - messages, as events of the default type "message": the data is the
//     message, the id field its id, absent for a message sent to this
//     socket only;
//   - comment lines, every Options.Heartbeat while idle;
//   - when the server closes the socket, an event of type
//     "realtime.close" ([CloseEvent]) whose data is the close code, a
//     space and the reason ("1001 going away"), after which the response
//     ends. A stream that ends without it counts as code 1006.
//
// The client sends a message by POSTing it to the same URL, the UTF-8
// text as the body, with the header "Realtime-Token: TOKEN"
// ([TokenHeader]) carrying the token of its current stream. It must wait for one POST's
// answer before sending the next, so that messages arrive in order. The
// answers are 204 (delivered, OnMessage has returned), 400 (no token, or
// not UTF-8), 404 (a token this handler never issued), 410 (the token's
// stream has ended: reconnect), 413 (larger than Options.MaxMessageSize).
// The token is the only credential: cookies play no part, so a page of
// another site cannot post as the user.
//
// Resuming. When the position a connection announces equals the last
// event id the client presented, the server resumed: the messages after
// that id follow, then the live ones, each once. Otherwise the client
// may have missed messages (the history no longer reaches back that far,
// or the server's hub is a new one), and the server reports
// [Socket.ResumeFailed].
//
// Closing and reconnecting. The server closes with 1000 ([Socket.Close]),
// 1001 ([Hub.Shutdown]), 1013 (send queue overflow) or a code the
// application chose ([Socket.CloseWith]); on EventSource the code comes
// in the realtime.close event. After 1001, 1006, 1011, 1012, 1013 or
// 1014, and after a failed connection attempt, a client reconnects with
// backoff, presenting its last event id; after any other code it stops.
// A client falls back from WebSocket to EventSource when the WebSocket
// does not open (any response but 101, such as the 426 this handler
// answers to a GET whose Upgrade header a proxy dropped) or when the
// position does not arrive within a timeout (5 s in the browser client).
// New sockets are refused with 503 while their hub shuts down.
//
// # Glossary
//
// The packages of this module (realtime, websocket, eventsource, client,
// proxy, extensions) call one idea by one name, with one unit and one
// meaning of zero. These rules hold for every options struct:
//
//   - A nil pointer to options means the zero value.
//   - Whoever takes options (Handler, NewHub, websocket.Accept,
//     eventsource.Accept, a client.Dialer's methods, ...) copies them
//     deeply, slices, maps, http.Header, *tls.Config and nested options
//     included, and never modifies them: changing them afterwards changes
//     nothing.
//   - A field left 0 means its default, a constant named after the field
//     (MaxMessageSize 0 means DefaultMaxMessageSize), unless the term
//     says otherwise below.
//   - Limits are named MaxXxx: sizes are int64 bytes, counts are int. A
//     negative limit means no limit.
//   - Durations are time.Duration, named XxxTimeout, XxxDelay or
//     Heartbeat. A negative duration means off, or no bound.
//   - XxxOptions configures Xxx (HubOptions for NewHub, DecoderOptions for
//     eventsource.NewDecoder); a package's main entry point takes Options
//     (Handler, eventsource.Accept). websocket.ConnOptions, what both ends
//     of a WebSocket share, is embedded in websocket.AcceptOptions,
//     websocket.ClientOptions and client.Dialer.
//
// The terms, with their unit, their default and where they appear:
//
//   - Heartbeat (duration): how often a connection is probed, so that a
//     dead peer is noticed and no proxy cuts a quiet connection: a
//     WebSocket ping, whose pong must come within PongTimeout, or, once a
//     stream has been idle that long, an EventSource comment line.
//     Options and eventsource.Options: 0 means DefaultHeartbeat and
//     eventsource.DefaultHeartbeat, both 15 s, under the 30-60 s idle
//     timeouts common in proxies; negative: none. websocket.ConnOptions
//     (and so client.Dialer): 0, like a negative value, means none, as a
//     bare WebSocket has no default heartbeat.
//   - PongTimeout (duration): how long a heartbeat ping waits for its
//     pong; then the connection is closed and reads fail with an error
//     wrapping websocket.ErrPongTimeout. websocket.ConnOptions; 0 or a
//     negative value means the Heartbeat.
//   - Transport: which transport a socket uses, TransportWebSocket or
//     TransportEventSource: Socket.Transport here, and
//     client.SocketOptions.Transport, client.Socket.Transport and
//     client.OpenInfo.Transport in package client.
//   - MaxMessageSize (int64 bytes): the largest message received, its
//     payload summed over fragments and after decompression, and here
//     also the body of a POST. websocket.ConnOptions, Options (unless
//     Options.WebSocket sets its own) and client.SocketOptions (the text,
//     without the id). 0 means websocket.DefaultMaxMessageSize, 2^26-1
//     bytes, in every package. A larger message fails the connection with
//     an error wrapping websocket.ErrMessageTooBig (close code 1009), or
//     its POST with 413. Negative: no limit, which lets a peer make the
//     process allocate without bound.
//   - MaxEventSize (int64 bytes): the largest server-sent event a client
//     reads, its data plus the line being read. eventsource.DecoderOptions
//     and client.EventSourceOptions; 0 means eventsource.DefaultMaxEventSize,
//     1 MiB. A larger event fails with an error wrapping
//     eventsource.ErrEventTooLarge.
//   - MaxFragments (count): the frames of one received WebSocket message,
//     so that empty fragments cannot keep a reader busy for ever.
//     websocket.ConnOptions; 0 means websocket.DefaultMaxFragments, 2^17.
//     Negative: no limit.
//   - MaxHistory (count), MaxHistoryBytes (int64 bytes), MaxHistoryAge
//     (duration): what is kept for clients that resume. [HubOptions]
//     (payload bytes) and eventsource.HistoryOptions (bytes on the wire);
//     0 means DefaultMaxHistory, 1000, and DefaultMaxHistoryBytes, 4 MiB,
//     in both packages. MaxHistoryAge 0 keeps messages however old: the
//     default is no age bound. Negative: no bound.
//   - MaxQueue (count), MaxQueueBytes (int64 bytes): the messages waiting
//     for one socket's or stream's writer, and their summed size: Options
//     (payload bytes) and eventsource.BrokerOptions (bytes on the wire).
//     0 means DefaultMaxQueue, 256, and DefaultMaxQueueBytes, 4 MiB, in
//     both packages. Negative: no bound. A message always enters an
//     empty queue, so one larger than MaxQueueBytes still goes, alone.
//   - QueuePolicy: what happens to a socket whose queue is full:
//     [QueueClose], close with 1013 so that the client resumes, or
//     [QueueDropOldest].
//   - IdleTimeout (duration): how long a client lets a connection stay
//     silent (no message, ping or comment) before it drops it and
//     reconnects; keep it above the server's Heartbeat. client.SocketOptions
//     and client.EventSourceOptions; 0 means client.DefaultIdleTimeout,
//     60 s. The error matches client.ErrIdleTimeout. Negative: off, as in
//     browsers, where a silent dead connection waits for ever.
//   - WriteTimeout (duration): bounds one write to a client, so that one
//     that stops reading is let go instead of holding its writer. Options
//     and eventsource.Options; 0 means DefaultWriteTimeout and
//     eventsource.DefaultWriteTimeout, both 10 s. The error wraps
//     eventsource.ErrWriteTimeout, on either transport. Negative: no
//     bound.
//   - HandshakeTimeout (duration): one opening handshake. client.Dialer:
//     dialing, the proxy, TLS and the WebSocket handshake or the response
//     header of an EventSource request; 0 means
//     client.DefaultHandshakeTimeout, 30 s. websocket.Server: from
//     accepting a connection to the 101 response, so that a client that
//     sends its request slowly cannot hold a descriptor; 0 means
//     websocket.DefaultHandshakeTimeout, 10 s. Negative: no bound but the
//     context.
//   - CloseTimeout (duration): the WebSocket closing handshake, from
//     writing the close frame to the peer's. websocket.ConnOptions (and so
//     client.Dialer); 0 means websocket.DefaultCloseTimeout, 5 s. The one
//     exception to "negative is off": a closing handshake is always
//     bounded, so a negative value means the default too.
//   - ConnectTimeout (duration): one connection attempt of a
//     client.Socket, from dialing until the server has announced the
//     position; a WebSocket that has not opened by then is given up for
//     EventSource. client.SocketOptions; 0 means
//     client.DefaultConnectTimeout, 5 s. Negative: no bound (a WebSocket
//     is then never given up for EventSource).
//   - MinDelay, MaxDelay (duration): the floor and the ceiling of the
//     wait before a client reconnects, which doubles after each failure
//     in a row, with jitter. client.SocketOptions and
//     client.EventSourceOptions (where MinDelay is also the floor under a
//     server's "retry:", so that "retry: 0" cannot make a client
//     reconnect in a tight loop); 0 means client.DefaultMinDelay, 500 ms,
//     and client.DefaultMaxDelay, 30 s. A negative MinDelay sets no
//     floor; a negative MaxDelay turns backoff off (every wait is
//     MinDelay).
//   - Retry (duration): only the SSE "retry:" field, the reconnection
//     time a server asks of its clients, sent in milliseconds.
//     eventsource.Options.Retry is sent at the start of each stream (0
//     sends none), eventsource.Event.Retry with an event;
//     client.EventSourceOptions.Retry is the time until a server sends
//     one (0 means client.DefaultRetry, 3 s).
//   - Last event id: the id of the last message a client got, which it
//     presents when it reconnects (the Last-Event-ID header, or the query
//     parameter named by eventsource.Options.LastEventIDParam, "lastEventId"
//     by default) to get what it missed exactly once. LastEventID in
//     client.SocketOptions and client.EventSourceOptions resumes from one
//     saved earlier.
//   - ReadBufferSize, WriteBufferSize (int bytes): the sizes of a
//     WebSocket connection's I/O buffers, which it holds only while data
//     is in flight. websocket.ConnOptions; 0 or negative means 4 KiB, and
//     a size is rounded up to its pool's size class. Sizes, not limits: a
//     message may be larger than its buffer.
//   - ErrInvalidUTF8, ErrWriteTimeout, ErrQueueFull: one sentinel each,
//     websocket.ErrInvalidUTF8, eventsource.ErrWriteTimeout and
//     eventsource.ErrQueueFull; the
//     other packages return errors that wrap them, so errors.Is works
//     whatever the transport.
package realtime
