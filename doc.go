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
package realtime
