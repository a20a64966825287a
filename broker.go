package realtime

import (
	"context"
	"errors"
	"strconv"
	"time"
)

// Position is where a message sits in its channel: Offset counts the
// channel's messages from 1, and Epoch names one life of the channel's
// stream in the broker. A broker that has lost a stream (an engine
// restarted without its data) starts it again under a new epoch, so a
// position from before the loss is never mistaken for one after it.
// The zero Position names no message: the start of a channel nobody
// has published to.
type Position struct {
	Epoch  uint64
	Offset uint64
}

// String returns the position as EPOCH-OFFSET, in decimal.
func (p Position) String() string {
	return strconv.FormatUint(p.Epoch, 10) + "-" + strconv.FormatUint(p.Offset, 10)
}

// Entry is one message of a channel as a broker keeps it.
type Entry struct {
	Position Position
	Text     string
}

// PresenceEntry is one socket's presence in a channel: Socket is its id
// (Socket.ID, unique across nodes), User and Info what the application
// set with Socket.SetPresence.
type PresenceEntry struct {
	Socket string `json:"socket"`
	User   string `json:"user,omitempty"`
	Info   string `json:"info,omitempty"`
}

// Errors a Broker returns, wrapped with detail; test them with
// errors.Is.
var (
	// ErrPositionLost: what follows a position cannot be told, because
	// the position is of another epoch of its channel, or the messages
	// right after it are no longer kept.
	ErrPositionLost = errors.New("realtime: position lost")

	// ErrBrokerUnavailable: the engine behind the broker could not be
	// reached (or did not answer) in time. Nothing was published, or
	// the publish is in doubt: retry it with the same key.
	ErrBrokerUnavailable = errors.New("realtime: broker unavailable")

	// ErrNoNode: a call named a node that is not serving calls (it has
	// ended, or never existed).
	ErrNoNode = errors.New("realtime: no such node")

	// ErrBrokerClosed: the broker was closed.
	ErrBrokerClosed = errors.New("realtime: broker closed")
)

// Broker numbers, keeps and carries the messages of channels for every
// node (every Hub) that shares it, and keeps presence and carries calls
// between nodes. NewMemoryBroker returns the one-process broker; the
// modules redisbroker (Redis Streams) and natsbroker (NATS JetStream)
// of this repository share a cluster's channels through an engine.
// package brokertest is the conformance suite every Broker must pass.
//
// The broker, not the node, numbers messages, so a position means the
// same thing on every node, and a client can resume on any of them.
// Every method is safe for concurrent use, and every method that takes
// a context returns when it ends.
type Broker interface {
	// Publish appends text to channel and returns its position: one
	// write to the engine, whatever the number of subscribers. A
	// non-empty key makes the call idempotent within the broker's
	// deduplication window (documented by each broker): a repeat with
	// the same key and channel appends nothing and returns the
	// position of the first. When the engine cannot be reached it
	// fails with an error wrapping ErrBrokerUnavailable.
	Publish(ctx context.Context, channel, text, key string) (Position, error)

	// Since returns the entries of channel after pos, oldest first, up
	// to the channel's latest at the time of the call, and that latest
	// position. A zero pos returns no entries, only the latest position
	// (zero when nothing was ever published in the current epoch, with
	// the current epoch, which is never 0). It fails with an error
	// wrapping ErrPositionLost when pos is not of the channel's current
	// epoch, or when an entry after it was evicted; the latest position
	// is returned then too.
	Since(ctx context.Context, channel string, pos Position) ([]Entry, Position, error)

	// Follow calls deliver with every entry of channel after pos, in
	// order and each once, from one goroutine, until ctx ends (it then
	// returns ctx's error). While the engine cannot be reached it keeps
	// trying, and goes on after the last entry it delivered when the
	// engine is back. It returns an error wrapping ErrPositionLost when
	// it cannot go on without a gap: the entries it had yet to deliver
	// were evicted, or the channel's epoch changed. deliver must not
	// call the broker; it may be called with the broker's locks held.
	Follow(ctx context.Context, channel string, pos Position, deliver func(Entry)) error

	// AddPresence records e in channel's presence, or refreshes it,
	// until ttl from now. added reports that the entry was not there.
	AddPresence(ctx context.Context, channel string, e PresenceEntry, ttl time.Duration) (added bool, err error)

	// RemovePresence removes the entry of socket from channel's
	// presence. removed reports that it was there.
	RemovePresence(ctx context.Context, channel, socket string) (removed bool, err error)

	// Presence returns the entries of channel's presence that have not
	// expired, and removes those that have, returning them as expired:
	// each expired entry is returned to one caller only, so that one
	// node reports its leave.
	Presence(ctx context.Context, channel string) (live, expired []PresenceEntry, err error)

	// Call sends req to the node named node, which answers it through
	// its Serve, and returns the answer. It fails with an error
	// wrapping ErrNoNode when no node of that name serves calls, and
	// with ErrBrokerUnavailable when the engine cannot be reached.
	Call(ctx context.Context, node string, req []byte) ([]byte, error)

	// Serve answers the calls made to node with answer, each on a
	// goroutine of its own, until ctx ends; then it returns ctx's
	// error. One Serve per node name at a time.
	Serve(ctx context.Context, node string, answer func(ctx context.Context, req []byte) []byte) error

	// Close releases the broker's connections; its methods then fail
	// with ErrBrokerClosed. It does not delete what the engine keeps.
	Close() error
}
