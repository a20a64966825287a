// Package extensions negotiates WebSocket extensions (RFC 6455 §9) and
// defines the contract between the websocket driver and an extension.
//
// # For applications
//
// Configure extensions on websocket.AcceptOptions.Extensions or
// websocket.ClientOptions.Extensions. A client offers them in that order;
// a server answers the client's offers in its own order of preference.
// Package deflate provides permessage-deflate (RFC 7692).
//
// # For extension authors
//
// An [Extension] is configuration shared by many connections; it must be
// safe for concurrent use. Negotiation turns it into a [Session] for one
// connection. Each extension owns RSV bits: a server never accepts two
// extensions claiming the same bit, and a client fails a handshake whose
// response would. A frame with an RSV bit that no active extension owns
// fails the connection with close code 1002.
//
// Outgoing messages pass the active sessions in negotiation order,
// incoming messages in reverse order. The driver reads whole messages
// through [Session.Decode] and writes them through [Session.Encode]; it
// counts the decoded bytes against its message size limit, so a
// decompression bomb costs bounded work and memory. The driver never
// calls Decode or Encode concurrently with itself on one session, but the
// reading and writing sides may run at the same time.
package extensions
