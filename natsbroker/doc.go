// Package natsbroker is a realtime.Broker on NATS JetStream, so that
// several processes (nodes) running a realtime.Hub share their channels,
// presence and calls through a nats-server:
//
//	broker, err := natsbroker.Dial("nats://127.0.0.1:4222", nil)
//	if err != nil { ... }
//	defer broker.Close()
//	hub := realtime.NewHub(&realtime.HubOptions{Broker: broker})
//
// It needs nats-server 2.9.0 or newer with JetStream enabled
// (nats-server -js, or a jetstream block in its configuration); it is
// tested with the Debian nats-server 2.9.10 binary. It lives in a Go
// module of its own so that the realtime module does not depend on
// nats.go.
//
// # Layout on the server
//
// Each channel is one stream, named PREFIX_<first 128 bits of the
// SHA-256 of the channel name, in hex>, with one subject,
// PREFIX.c.<channel, base64url>.<epoch, 16 hex digits>. (PREFIX is
// Options.Prefix, "realtime" by default.) One stream per channel is what
// makes a channel's offsets contiguous: JetStream numbers the messages
// of a stream, not of a subject, so in a stream shared by several
// channels a channel's sequences would have holes, and a hole could
// not be told from an evicted message. So a position's Offset is the
// stream sequence, and the channel's history bounds are the stream's
// limits: MaxHistory is MaxMsgs, MaxHistoryBytes is MaxBytes (JetStream's
// stored size: payload, subject, headers and a few dozen bytes a
// message), MaxHistoryAge is MaxAge, all with DiscardOld.
//
// The stream is created on first use by Publish, Since or Follow, under
// a random epoch. The epoch is part of the subject (2.9 has no stream
// metadata to keep it in), which gives three guarantees for free: a
// publish can only be stored in the stream of the epoch it reports (a
// publish to a stream that was lost or recreated finds no stream, and
// the broker looks it up again); every message a consumer delivers
// says its epoch; and when two nodes create a channel's stream at once,
// the server keeps one, and both adopt its epoch. A server that lost a
// stream (restarted without its store, or the stream was deleted) gets
// a new one under a new epoch at the next use, and the positions of the
// old one fail with realtime.ErrPositionLost.
//
// Streams are never deleted by the broker: a channel used once keeps a
// stream, empty once MaxHistoryAge has passed. Deleting one (nats
// stream rm) is safe: the channel starts again under a new epoch, and
// its clients are told that they could not resume. A stream keeps the
// settings of the node that created it; change them with nats stream
// edit. Every node sharing a server must use the same Prefix.
//
// Presence is the KV bucket PREFIX_presence (stream KV_PREFIX_presence,
// made without direct get, so that a server that lost it says so at
// once), one key <channel>.<socket id> (both base64url) per entry; calls
// go to the core NATS subject PREFIX.n.<node, base64url>.
//
// # Publish and deduplication
//
// Publish is one JetStream publish, whatever the number of nodes and
// sockets following the channel, and its acknowledgment gives the
// offset. A non-empty key is sent as the Nats-Msg-Id header: within the
// deduplication window, Options.MaxKeyAge (the stream's Duplicates, 2
// minutes by default, at most MaxHistoryAge), a publish with a key the
// stream has seen stores nothing and returns the first's offset. So a
// publish whose acknowledgment was lost, retried with the same key
// within the window, is stored once, also across a restart of the
// server on its store (the server rebuilds the window from the stored
// messages, as long as they are kept: a message evicted by MaxHistory
// takes its key along on restart). The window is per stream: after an
// epoch change a retried key is stored again, in the new epoch.
//
// A message must fit the server's max_payload, 1 MiB by default,
// headers included (the key adds its length and about 30 bytes):
// a larger one fails with ErrTooLarge before anything is sent.
//
// # Follow
//
// Follow reads the stream through an ephemeral pull consumer starting
// after the position, one pull of up to 1024 messages at a time, so the
// server only sends what the follower asked for: a slow node lags, it is
// never cut off as a slow consumer, and no message goes through
// fire-and-forget pub/sub. When the connection drops or a pull misses
// two heartbeats (Options.Heartbeat), Follow makes a new consumer after
// the last entry it delivered; it checks every message's sequence and
// epoch, and returns realtime.ErrPositionLost when the next entry was
// evicted or the stream was replaced. A Dial connection reconnects for
// ever, so a Follow survives a server restart. (nats.go's ordered
// consumer resets itself too, but it would follow a replaced stream
// from the same sequence without a word, and retries for ever on a
// deleted one.)
//
// Since reads the stream's state (one request), and when entries are
// missing reads them through a short-lived consumer.
//
// # Presence
//
// nats-server 2.9 has no per-message TTL (AllowMsgTTL is ignored), so
// an entry keeps its ttl in its value, and expires at its server
// timestamp plus ttl, as seen by the clock of the node that lists the
// presence: keep the clocks of the nodes and the server synchronized.
// Presence deletes each expired entry conditionally on its revision, so
// one caller only returns it as expired. The bucket's TTL,
// Options.MaxPresenceAge (24 hours by default), removes entries nobody
// refreshed, removed or listed, without any leave being reported.
//
// # Calls
//
// Call is a core NATS request to the node's subject, which Serve
// subscribes to in a queue group. A node that serves nothing answers
// no-responders: realtime.ErrNoNode. Calls are at most once (a call
// lost with a connection fails with realtime.ErrBrokerUnavailable) and
// bounded by max_payload like messages.
//
// # Durability
//
// Streams use file storage by default (Options.MemoryStorage keeps them
// in memory: a server restart is then a new epoch for every channel).
// nats-server 2.9 writes acknowledged messages to its files
// asynchronously and syncs them to disk every 2 minutes (sync_interval
// exists, and can be set to always, from 2.10 only). The tests kill -9
// the server and restart it on the same store with no loss; but a crash
// of the machine, or of the process before a write reached its file,
// can lose acknowledged messages, and the stream then gives their
// offsets again to new messages under the same epoch: a client that had
// them resumes past messages it never got, or gets other messages at
// those offsets, and cannot tell. For durable channels run a JetStream
// cluster with Options.Replicas 3 (a message is acknowledged once a
// majority stored it); on a single server of 2.10 or newer set
// sync_interval: always.
//
// # Errors and connections
//
// A server that cannot be reached, or does not answer within
// Options.RequestTimeout, gives errors wrapping
// realtime.ErrBrokerUnavailable; a Dial connection does not buffer
// while disconnected, so that they come at once. Dial owns its
// connection and Close closes it; New takes a connection the caller
// owns and Close leaves it open (give it nats.MaxReconnects(-1) and
// nats.ReconnectBufSize(-1), as Dial does).
package natsbroker
