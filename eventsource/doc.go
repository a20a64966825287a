// Package eventsource implements server-sent events (the EventSource
// protocol of the WHATWG HTML standard): a server Stream, an event
// encoder, a replay History, and a Decoder that parses event streams for
// Go clients.
//
// A [Broker] serves the same events to every client, replays what a
// reconnecting client missed, and never lets a slow client hold up the
// others:
//
//	broker := eventsource.NewBroker(&eventsource.BrokerOptions{
//		Stream:  eventsource.Options{Retry: 5 * time.Second},
//		History: eventsource.NewHistory(nil),
//	})
//	http.Handle("/events", broker)
//	broker.Publish(eventsource.Event{ID: "1", Data: "hello"}) // from any goroutine
//
// A handler can also answer an EventSource request with [Accept] and
// send events itself until the client leaves:
//
//	func events(w http.ResponseWriter, r *http.Request) {
//		s, err := eventsource.Accept(w, r, &eventsource.Options{Retry: 5 * time.Second})
//		if err != nil {
//			return // Accept has written the error response
//		}
//		defer s.Close()
//		broker.Serve(r.Context(), s) // or: s.Send from any goroutine, then <-s.Done()
//	}
//
// The handler must not return while the stream is live: the
// ResponseWriter becomes invalid when it does. [Stream.Close] waits for
// a send in progress, so a deferred Close makes returning safe.
//
// # Serving
//
// [Accept] sends the response head, the optional retry and padding
// lines, and flushes at once. Every event is flushed when sent. Over
// HTTP/1.1 Accept hijacks the connection when it can and writes the
// chunked response itself, so that a handler may return at once and an
// idle stream costs neither a parked handler goroutine nor net/http's
// buffers and background read (see [HijackMode]); hijacked connections
// are not tracked by http.Server.Shutdown, so close their streams
// yourself (or with Broker.Close). Over HTTP/2, and behind middleware
// that hides the connection, writes go through http.ResponseController.
// Each write has a
// deadline (Options.WriteTimeout), so a client that stops reading ends
// its stream instead of holding a goroutine. Idle streams send a comment
// line every Options.Heartbeat, which keeps proxies from closing them and
// lets clients detect a dead connection.
//
// Do not compress the response, or flush the compressor after every
// event: a compressor that buffers delays events indefinitely. Accept
// sends X-Accel-Buffering: no, which stops nginx from buffering. Over
// HTTP/1.1 a browser opens at most six connections per origin, and each
// tab's EventSource holds one; serve over HTTP/2 if users open many tabs.
// To make a browser stop reconnecting, answer its next request with a
// status other than 200, such as 204.
//
// # Events
//
// [Event] is what is sent and received. [AppendEvent] and [Encode]
// produce the wire form: data is split into one "data:" line per line of
// text, and fields that cannot be sent safely (a line break in the type
// or id, NUL in the id) are refused with an error matching
// [ErrInvalidField] rather than written. An [EncodedEvent] is encoded
// once and sent to many streams with [Stream.SendEncoded]. A [Batch] of
// events goes out with one write and one flush through
// [Stream.SendBatch], so a burst costs one system call, not one per
// event.
//
// # Resuming
//
// A reconnecting EventSource sends the id of the last event it saw;
// [Stream.LastEventID] returns it (or the query parameter a page can set
// on its first connection). A [History] keeps recent events, bounded by
// count, bytes and age. A [Broker] with a History sends a reconnecting
// stream what it missed before the live events; [Replay] does it for a
// single stream, or reports that the id is no longer known so the caller
// can send a reset.
//
// # Parsing
//
// [Decoder] follows the standard's parsing and interpretation rules to
// the letter (byte order mark, CR/LF/CRLF line ends even split across
// reads, comments, the single optional space, NUL ids, digits-only
// retry, no dispatch without data, discarding an unfinished event at the
// end) and bounds the memory of an event with
// DecoderOptions.MaxEventSize.
//
// # Concurrency
//
// A Stream's methods are safe for concurrent use; sends are serialized
// event by event. A History is safe for concurrent use; a Decoder is
// not. A Broker is safe for concurrent use; the events of the streams
// it serves are written by a few writer goroutines of its own, which
// exit once it has no streams, and the handler's goroutine only waits.
// Apart from these, the package runs one goroutine per hijacked stream,
// which reads the connection to see the client leave (a client sends
// nothing on an event stream, so it only waits, on a small stack):
// keep-alives are timer callbacks that take the stream's write lock,
// the end of a request served through net/http is watched with
// context.AfterFunc, and all are stopped when the stream ends.
package eventsource
