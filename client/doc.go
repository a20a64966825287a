// Package client connects Go programs to realtime servers: sockets that
// speak the realtime.v2 protocol of package realtime (or realtime.v1,
// with servers of older releases) with [Dialer.Socket],
// WebSocket connections with [Dialer.Dial] and server-sent event streams
// with [Dialer.EventSource], directly or through HTTP, HTTPS and SOCKS5
// proxies.
//
//	c, _, err := client.Dial(ctx, "wss://chat.example/socket", nil)
//	if err != nil {
//		return err
//	}
//	defer c.CloseNow()
//
// # Sockets
//
// A [Socket] is the Go counterpart of the browser client served by
// realtime.ClientJS: it tries a WebSocket, falls back to an event stream
// with POSTs when the WebSocket is refused (a proxy dropped the Upgrade
// header) or does not open in time, reconnects with backoff, and resumes
// from the last message it received, so that it gets every missed
// message exactly once.
//
//	s, err := d.Socket("https://chat.example/socket", nil)
//	if err != nil {
//		return err
//	}
//	defer s.Close()
//	s.Send(ctx, "hello")
//	for m, err := range s.All(ctx) {
//		...
//	}
//
// # Channels
//
// Under realtime.v2 a Socket is in any number of channels: those the
// server puts it in, and those it asks for with [Socket.Subscribe],
// which the server's OnSubscribe hook may refuse. Every [Message] says
// what it is ([Kind]) and which channel it is about: a channel's
// message, news that the Socket is in a channel (with whether the
// messages it missed were replayed), left it, lost its place in it,
// presence joins and leaves. The Socket asks for its subscriptions again
// after every reconnection, before anything else it sends, and the last
// event id, an opaque cursor, resumes each channel where it was, on any
// node of a cluster.
//
//	s.Subscribe(ctx, "room")
//	s.Publish(ctx, "room", "hello")
//	for m, err := range s.All(ctx) {
//		if err != nil {
//			return err
//		}
//		switch m.Kind {
//		case client.KindMessage:
//			fmt.Println(m.Channel, m.Data)
//		case client.KindSubscribed:
//			if m.Status == client.SubscribeFailed {
//				// messages of m.Channel may be missing: reload its state
//			}
//		}
//	}
//
// A [Dialer] holds what both kinds of connection share: how to pick a
// proxy (by default from HTTP_PROXY, HTTPS_PROXY, ALL_PROXY and
// NO_PROXY, see package proxy), TLS settings for the proxy and for the
// origin kept apart, extra header fields, a cookie jar and a handshake
// timeout. Its zero value is ready to use.
//
// # HTTP
//
// The WebSocket handshake is written by this package. The HTTP requests
// of an [EventSource] and of a Socket's EventSource transport (the
// stream's GET, the POSTs) go through net/http: over HTTP/2 when the
// origin offers it, on connections that each EventSource and each Socket
// keep and reuse, with net/http's redirects under this package's rule of
// credentials (see [Dialer.MaxRedirects]). Its connections are opened
// the Dialer's way, through the same proxies as WebSocket connections;
// [Dialer.HTTPClient] replaces all of that by a client of the caller's.
//
// # Proxies
//
// Through an http:// or https:// proxy a connection is tunnelled with
// CONNECT, credentials from the proxy URL going in Proxy-Authorization;
// TLS with a wss:// or https:// origin then runs inside the tunnel, with
// the origin's name in SNI. socks5:// and socks5h:// proxies work the
// same way. [Dialer.ForwardProxy] sends plain ws:// and http:// requests
// to the proxy in absolute form instead (forward mode), which some
// proxies allow where they refuse CONNECT. A [Socket] does that by
// itself for http:// and ws:// URLs when the proxy refuses CONNECT, as
// corporate proxies that tunnel to port 443 only do, and reports it in
// [OpenInfo.ForwardProxy]. A proxy that refuses shows up as a
// [*DialError] wrapping a *proxy.Error with the proxy's status.
//
// # HTTP/2
//
// With [Dialer.HTTP2] set, Dial carries wss:// WebSockets over HTTP/2
// (RFC 8441) where the server allows it, as browsers do: the WebSockets
// a Dialer, and the Sockets made from it, open to one server share one
// TCP and TLS connection, also through a proxy's tunnel, and that
// connection closes with its last WebSocket. A server that does not
// speak HTTP/2, or does not allow WebSockets over it, gets HTTP/1.1,
// and the Dialer remembers that for a while. The response's ProtoMajor
// tells which was used, for a Socket in [OpenInfo.Response].
//
// # Contexts
//
// The context given to Dial bounds dialing and the opening handshake,
// never the life of the connection. An EventSource or a Socket lives
// until Close or until it stops on its own; the context given to
// [EventSource.Next], [Socket.Next] or [Socket.Send] bounds only that
// call. Each EventSource and each Socket runs one goroutine, which
// connects, reads and reconnects; Close stops it and waits for it.
//
// # Failed handshakes
//
// When a server answers a WebSocket handshake with anything but 101,
// Dial returns the response, with its status, header and the first
// 1 KiB of its body, and an error wrapping websocket.ErrBadHandshake.
// Programs that fall back to EventSource do so on that error.
package client
