// Package realtime pushes text messages from a server to browsers and Go
// programs over one URL, on a WebSocket when the network allows it and on
// an EventSource stream when it does not (a proxy that drops the Upgrade
// header, one that refuses CONNECT), with the same server code for both.
//
//	hub := realtime.NewHub(nil)
//	http.Handle("/realtime.js", realtime.ClientJS())
//	http.Handle("/socket", realtime.Handler(&realtime.Options{
//		Hub:      hub,
//		Channels: []string{"chat"}, // every socket joins the channel "chat"
//		OnMessage: func(ctx context.Context, s *realtime.Socket, text string) {
//			hub.Publish(ctx, "chat", text) // a chat: everyone gets every message
//		},
//	}, nil))
//
// [Handler] turns each client into a [Socket]: send text, ping, close,
// and see why it ended, whatever the transport. Messages from clients
// reach Options.OnMessage whether they came as WebSocket messages or as
// POSTs beside an EventSource stream. A socket belongs to any number of
// channels: the server joins and leaves them ([Socket.Join], in
// Options.OnConnect where the application authorizes), and realtime.v2
// clients ask to subscribe, which Options.OnSubscribe decides.
// [Hub.Publish] sends a message to a channel, on every node that shares
// the hub's [Broker]. The broker numbers each channel's messages and
// keeps the recent ones, so that a client that reconnects, to any node,
// gets what it missed in each of its channels exactly once. Presence
// ([Socket.SetPresence], [Hub.Presence]) lists who is in a channel
// across the nodes. [ClientJS] serves the browser client; package client
// is the Go one.
//
// # Channels and nodes
//
// A [Hub] is one node. [NewMemoryBroker], the default, keeps everything
// in the process; brokers on Redis Streams and NATS JetStream (modules
// redisbroker and natsbroker of this repository) share channels,
// presence and calls between the nodes of a cluster, and any node may
// serve any client: socket ids and EventSource session tokens name their
// node (NODE.RANDOM), and a POST or a [Hub.SendTo] that reaches another
// node is forwarded to it through the broker. No load balancer
// stickiness is needed. A node follows each channel it has sockets in
// from the broker, from the latest position when its first socket
// joined, and delivers in the broker's order, its own publishes
// included, so every node delivers the same order.
//
// Presence: a socket with a user ([Socket.SetPresence]) is listed in
// each channel it is in, in the broker, with a time to live
// (HubOptions.PresenceTTL, 30 s by default) that its node refreshes
// every third of it. Joins and leaves are published on the channel's
// presence stream, delivered to the channel's realtime.v2 sockets and to
// HubOptions.OnPresence on every node. The entries of a node that died
// are gone from [Hub.Presence] within PresenceTTL, and their leave events
// come within PresenceTTL and a third from any node with sockets in the
// channel.
//
// # Reliability
//
// Each socket has a bounded send queue drained by its writer
// goroutine: Send and Publish never wait for a client, and a client
// that reads slowly fills its own queue only, with the policy set by
// Options.QueuePolicy when it is full (close with 1013 so the client
// resumes, or drop the oldest). Dead peers are noticed by heartbeats on
// both transports: WebSocket pings whose pongs must come back in time,
// and EventSource comment lines (heartbeat messages on realtime.v2)
// whose writes must finish within Options.WriteTimeout. Clients notice
// a dead server by the heartbeat messages of realtime.v2, which page
// JavaScript sees, unlike pings and comments. [Hub.Shutdown] closes
// every socket with 1001 and waits, with a deadline. Connections that
// left net/http (every WebSocket, and EventSource streams over HTTP/1.1,
// see below) are not tracked by http.Server.Shutdown: call Hub.Shutdown
// from http.Server.RegisterOnShutdown to close them gracefully.
//
// # Observability
//
// An [Observer] on HubOptions (or Options) receives the events an
// operator counts: sockets opened and ended (transport, protocol, close
// code, duration, cause), refusals and why, fallbacks, resumes that
// succeeded or failed, messages and bytes each way, drops, missed
// heartbeats, and the broker's publish latency and the node's follow
// lag. A nil hook costs a nil check, and no event allocates. A
// *slog.Logger (Options.Logger, HubOptions.Logger) logs the same events;
// nothing is logged by default. Modules promobserver and otelobserver of
// this repository turn an Observer into metrics.
//
// # Goroutines
//
// A socket has a writer only while it has something to write (messages,
// its position, a heartbeat, the close): the first message queued to an
// idle socket hands it to a few writer goroutines shared by every socket
// (more when some are blocked on clients that stopped reading), which
// write all that is queued for a socket in one write, so an idle socket
// holds no writer and no grown stack. A
// WebSocket has one read goroutine, which calls OnMessage, and an
// EventSource stream on a hijacked connection a small one that only
// sees the client leave (see eventsource.HijackMode); all end when the
// socket does. The connection of a WebSocket leaves net/http at the
// upgrade, and that of an EventSource stream over HTTP/1.1 when Accept
// hijacks it, so their handlers return at once and a serve function
// runs on a goroutine of its own. An EventSource stream that stays with
// net/http (over HTTP/2, behind middleware that hides the connection,
// or with Options.EventSource.Hijack set to eventsource.HijackNever)
// keeps its request's goroutine until the stream ends, and serve runs
// on it. A WebSocket over HTTP/2 (RFC 8441, which Go's
// net/http server offers when the program runs with
// GODEBUG=http2xconnect=1) is a stream of the request, so its handler
// stays until the socket ends, and the connection has one more goroutine
// that reads the stream. OnMessage for an EventSource socket runs on
// the goroutine of the POST that carried the message.
//
// # Wire protocol, version realtime.v1
//
// This is what a client must do; the browser client and package client
// both follow it. One URL serves everything. Ids are opaque strings
// without line breaks, at most about 2.5 KiB (the cursor of
// realtime.v2, below). A client keeps a last event id, initially empty
// or one it saved. A realtime.v1 client gets the messages of the
// channels the server joined it to, and knows nothing of channels,
// presence or requests.
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
//   - A later "ID" without LF (the server joined or left a channel, or a
//     channel was lost) only changes the last event id, to ID.
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
//   - events of type "realtime.position" ([PositionEvent]) with an id
//     and empty data when a join, a leave or a lost channel changed the
//     last event id and no message carried it (an event cannot clear a
//     last event id: when the new one is empty the client keeps the old
//     one, which does no harm);
//   - comment lines, every Options.Heartbeat while idle (realtime.v2
//     sends heartbeat messages instead);
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
// Origins. A browser request whose Origin is neither absent nor the
// request's own host is answered 403, on every transport (the WebSocket
// upgrade, the EventSource GET, the POST, OPTIONS), unless
// Options.OriginPatterns (or Options.WebSocket.OriginPatterns) allows
// it. The responses to an allowed origin carry
// "Access-Control-Allow-Origin: ORIGIN" and "Vary: Origin", without
// credentials, and OPTIONS, the preflight of its POSTs, is answered 204
// with "Access-Control-Allow-Methods: POST",
// "Access-Control-Allow-Headers: Realtime-Token, Realtime-Seq,
// Content-Type" and "Access-Control-Max-Age: 600". So a page of
// app.example can use a server on rt.example over either transport.
//
// Resuming. When the position a connection announces equals the last
// event id the client presented, the server resumed: the messages after
// that id follow, then the live ones, each once. Otherwise the client
// may have missed messages in some channel (the history no longer
// reaches back that far, or the broker lost the channel's stream), or
// was joined to a channel it did not name, and the server reports
// [Socket.ResumeFailed] for the channels it could not resume.
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
// New sockets are refused with 503 while their hub shuts down, and with
// 403 when Options.OnConnect refuses them.
//
// # Wire protocol, version realtime.v2
//
// realtime.v2 is realtime.v1 with channels, client requests and
// presence; everything above holds but where this section says
// otherwise. A WebSocket client offers the subprotocol "realtime.v2"
// ([SubprotocolV2]), which the server selects when offered (a client
// may offer "realtime.v1" after it); an EventSource client adds the
// query parameter protocol=realtime.v2 ([ProtocolParam]), and the
// response of a server that speaks it has the header field
// "Realtime-Protocol: realtime.v2" ([ProtocolHeader]).
//
// Ids are cursors: a socket's position in each of its channels, the
// last event id the client keeps and presents as in realtime.v1. A
// cursor is opaque to clients and means the same on every node: it is
// base64url without padding of the byte 1, then for each channel,
// sorted by hash, the 8-byte big-endian FNV-1a-64 hash of its name, the
// epoch and the offset of its position as uvarints. A socket is in at
// most Options.MaxChannels channels (64), so an id is at most about
// 2.5 KiB; one longer than 4096 bytes, or malformed, is ignored, and
// every channel joined then counts as a failed resume. Entries of
// channels the client presented and has not joined again are kept in
// its cursor, so it does not lose its place when it drops again before
// it subscribes; a leave drops the entry.
//
// Server messages. On WebSocket each is a text message "ID" alone (the
// position, first) or "ID\nHEADER\nDATA"; on EventSource an event of
// the default type with HEADER\nDATA as its data and ID as its id field
// (absent when ID is empty), beside the realtime.hello and realtime.close
// events of realtime.v1. HEADER is "KIND" or "KIND CHANNEL". A client
// ignores a message with a well-formed HEADER (a valid channel name, if
// any) of a kind it does not know, so that kinds can be added without a
// new version; a malformed message of a known kind is a protocol error
// (close 1002). The kinds:
//
//   - "message CHANNEL" + DATA: a message of the channel, with the
//     socket's cursor after it as ID. "message" + DATA with an empty ID:
//     a message to this socket only ([Socket.Send], [Hub.SendTo]).
//   - "subscribed CHANNEL" + "fresh", "resumed" or "failed": the socket
//     is in the channel, after the replay of the channel's missed
//     messages; "failed" means the position the client presented could
//     not be resumed from, and messages may be missing. Sent for every
//     join (Options.Channels, OnConnect, Socket.Join, an accepted
//     subscribe), with the new cursor as ID.
//   - "unsubscribed CHANNEL" + reason: the socket left the channel
//     ("left", with the new cursor as ID), or a subscribe or unsubscribe
//     was refused (the refusal's text: "refused", "invalid channel
//     name", "not subscribed", the OnSubscribe error's text; empty ID).
//   - "lost CHANNEL": the channel's position was lost mid-stream (the
//     broker lost the stream, or the node fell behind its history):
//     messages may be missing; live ones follow. ID is the new cursor.
//   - "join CHANNEL" / "leave CHANNEL" + the JSON of a [PresenceEntry]:
//     a presence event; "presence CHANNEL" + a JSON array of
//     PresenceEntry: the answer to a presence request. ID empty.
//   - "error" + text: a request that was malformed, or a publish or
//     presence request that was refused or failed. ID empty.
//   - "heartbeat" + the server's Options.Heartbeat in milliseconds,
//     decimal ("heartbeat\n15000"; on EventSource an event without an id
//     field): the link is alive. ID empty. The first comes right after
//     the position (WebSocket) or the realtime.hello event (EventSource),
//     announcing the interval; then one whenever nothing was written to
//     the socket for one Heartbeat. A client drops a connection on which
//     nothing at all arrived for twice the announced heartbeat plus a
//     second, and reconnects as after 1006. A v2 event stream carries no
//     comment lines: the heartbeats replace them. None is sent when
//     Options.Heartbeat is negative.
//
// Client requests: a WebSocket text message, or the body of a POST (one
// at a time, as in realtime.v1), "HEADER\nDATA" or "HEADER" alone:
//
//   - "message\nDATA": DATA for Options.OnMessage.
//   - "publish CHANNEL\nDATA": publish DATA to the channel, if
//     Options.OnPublish accepts (nil refuses); the message comes back
//     with the others of the channel when the socket is in it.
//   - "subscribe CHANNEL": join the channel, if Options.OnSubscribe
//     accepts (nil refuses), resuming from the client's cursor. A v2
//     client subscribes again to its own channels after every
//     reconnection; a subscribe to a channel the socket is in is
//     answered by "subscribed" again.
//   - "unsubscribe CHANNEL": leave the channel.
//   - "presence CHANNEL": ask for the presence of a channel the socket
//     is in.
//
// POSTs of a realtime.v2 client carry the header "Realtime-Seq: N"
// ([SeqHeader]), N = 1, 2, 3, ... per session token, decimal, at most
// 2^53-1, so that a POST retried after its answer was lost (a network
// error, a 5xx) is not delivered twice. The server keeps the highest N
// delivered per session: N one above it is delivered (204); N at most it
// is a retry, answered 204 and not delivered again; anything else (a
// gap, not a number) is answered 400. After the stream ends, a session's
// highest N stays on record for 2 minutes (for at most the last 100,000
// ended sessions of a node): a retry of a delivered message is still
// answered 204, any later N 410, as the message was not delivered, and
// the client sends it again on its next connection, under its new token.
// A POST without the header is delivered as in realtime.v1.
//
// Fallbacks. A v2 client that opens an event stream after a WebSocket
// attempt of the same connection round failed adds the query parameter
// fallback=1 ([FallbackParam]) to its GET, so that the server can count
// the clients a network keeps off WebSocket (Observer.OnFallback). It
// changes nothing else, and a server may ignore it; a client that tries
// EventSource first (because it worked last time) does not add it.
//
// Channel names are 1-200 bytes of UTF-8 without spaces or control
// characters; names starting with "$" are reserved for the library
// (presence streams) and refused.
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
//     On realtime.v2 sockets Options.Heartbeat is also the interval of
//     the heartbeat messages clients see.
//   - OriginPatterns ([]string): the browser origins allowed besides the
//     request's own host, as path.Match patterns of the origin's host
//     (or of "scheme://host" when the pattern contains "://").
//     websocket.AcceptOptions (the upgrade) and Options (every transport,
//     with CORS headers; the union with Options.WebSocket's applies).
//     Empty: same-origin browser requests only; others get 403.
//   - PongTimeout (duration): how long a heartbeat ping waits for its
//     pong; then the connection is closed and reads fail with an error
//     wrapping websocket.ErrPongTimeout. websocket.ConnOptions; 0 or a
//     negative value means the Heartbeat.
//   - Transport: which transport a socket uses, TransportWebSocket or
//     TransportEventSource: Socket.Transport here, and
//     client.SocketOptions.Transport, client.Socket.Transport and
//     client.OpenInfo.Transport in package client.
//   - ForwardProxy, forward mode (bool): a plain http:// or ws://
//     request sent to an HTTP proxy in absolute form ("GET
//     http://host/path"), rather than through a CONNECT tunnel (the
//     tunnel). client.Dialer.ForwardProxy asks for it; a client.Socket
//     switches to it by itself when the proxy refuses CONNECT by policy,
//     and client.OpenInfo.ForwardProxy reports it, with
//     client.OpenInfo.TunnelErr the refusal. false: tunnel.
//   - HTTP2 (bool): a WebSocket carried by one stream of an HTTP/2
//     connection (RFC 8441), several sharing one TCP and TLS connection.
//     client.Dialer.HTTP2 asks for it for wss:// URLs, falling back to
//     HTTP/1.1 where the server does not allow it; the response's
//     ProtoMajor says which was used. false: HTTP/1.1 only. Servers
//     (websocket.Accept, Handler) take it whenever net/http offers
//     extended CONNECT, with GODEBUG=http2xconnect=1.
//   - Hijack (eventsource.HijackMode): whether an EventSource stream
//     over HTTP/1.1 takes its connection over from net/http, so that the
//     handler returns at once and the stream writes to the connection.
//     eventsource.Options (and so Options.EventSource); 0, HijackAuto,
//     hijacks when the ResponseWriter allows it, and otherwise (HTTP/2,
//     HTTP/1.0, middleware that hides the connection) writes through
//     http.ResponseController, as HijackNever always does.
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
//     (each channel's cache in the node, and the history of the hub's own
//     memory broker; payload bytes), MemoryBrokerOptions (each channel)
//     and eventsource.HistoryOptions (bytes on the wire); 0 means
//     DefaultMaxHistory, 1000, and DefaultMaxHistoryBytes, 4 MiB, in
//     every package. MaxHistoryAge 0 keeps messages however old: the
//     default is no age bound. Negative: no bound.
//   - MaxRedirects (count): the redirects a client follows in one
//     connection attempt. client.Dialer, for the WebSocket handshake; 0
//     means none, an exception to "0 means the default", as browsers
//     never follow one for a WebSocket and Node's ws only when asked.
//     Negative: no limit, the attempt's timeout still bounding it.
//     Exceeding it, or a loop, fails with a client.RedirectError.
//   - MaxChannels (count): the channels one socket is in at once, which
//     bounds its cursor. Options; 0 means DefaultMaxChannels, 64. An
//     exception to "negative is no limit": the cursor must stay bounded,
//     so a negative value means the default too.
//   - PresenceTTL (duration): how long a presence entry lives unless its
//     node refreshes it (every third of it): the time within which the
//     entries of a node that died are gone. HubOptions; 0 means
//     DefaultPresenceTTL, 30 s. Like CloseTimeout, always bounded: a
//     negative value means the default too.
//   - Channel: a name sockets join and messages are published to, 1-200
//     bytes of UTF-8 without spaces or control characters; "$" starts
//     the names the library reserves. Options.Channels, Socket.Join,
//     Hub.Publish.
//   - Node: one Hub among those sharing a Broker, named by
//     HubOptions.Node (random by default); socket ids and session tokens
//     start with it.
//   - Position, cursor: where a message sits in its channel
//     (Position{Epoch, Offset}, numbered by the broker), and a socket's
//     positions in all its channels, which is the last event id its
//     client keeps.
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
//     silent (no message, heartbeat, ping or comment) before it drops it
//     and reconnects; keep it above the server's Heartbeat.
//     client.SocketOptions: 0 means twice the heartbeat a realtime.v2
//     server announced plus a second, else client.DefaultIdleTimeout,
//     60 s. client.EventSourceOptions: 0 means client.DefaultIdleTimeout.
//     The error matches client.ErrIdleTimeout. Negative: off.
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
//   - MinDelay, MaxDelay (duration): the start and the ceiling of the
//     window of the wait before a client reconnects. client.SocketOptions
//     (and the browser client): full jitter, the wait drawn from [0,
//     min(MaxDelay, MinDelay·2ⁿ)), n counting the attempts since the last
//     connection that stayed open 10 s, plus 3 after a close with 1012 or
//     1013; a negative MaxDelay turns backoff off (every window is
//     MinDelay). client.EventSourceOptions: the wait doubles after each
//     failure in a row, with jitter, and MinDelay is also the floor under
//     a server's "retry:", so that "retry: 0" cannot make a client
//     reconnect in a tight loop; a negative MaxDelay turns backoff off
//     (every wait is MinDelay). 0 means client.DefaultMinDelay, 500 ms,
//     and client.DefaultMaxDelay, 30 s. A negative MinDelay: no floor.
//   - Retry (duration): only the SSE "retry:" field, the reconnection
//     time a server asks of its clients, sent in milliseconds.
//     eventsource.Options.Retry is sent at the start of each stream (0
//     sends none), eventsource.Event.Retry with an event;
//     client.EventSourceOptions.Retry is the time until a server sends
//     one (0 means client.DefaultRetry, 3 s).
//   - Observer (*[Observer]), Logger (*slog.Logger): who hears of a
//     socket's and a hub's events, for metrics and logs. HubOptions (the
//     hub's events, and those of its handlers) and Options (a handler's,
//     in place of its hub's). nil: the hub's for Options, else none;
//     nothing is logged by default. A hook left nil costs a nil check.
//   - Last event id: the id of the last message a client got (its
//     cursor, for a realtime socket), which it presents when it reconnects (the Last-Event-ID header, or the query
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
