// Package redisbroker is a realtime.Broker on Redis Streams: the nodes
// (realtime.Hub) of a cluster share their channels, presence and calls
// through one Redis server.
//
//	b, err := redisbroker.Open("redis://127.0.0.1:6379/0", nil)
//	if err != nil { ... }
//	defer b.Close()
//	hub := realtime.NewHub(&realtime.HubOptions{Broker: b, Node: "node-1"})
//
// # Channels on streams
//
// Each channel is one Redis stream. A publish is one EVALSHA of a Lua
// script that takes the channel's next offset (starting a new epoch if
// the channel has none), checks and stores the idempotency key, and
// appends the message with XADD under the stream id OFFSET-0, so the
// payload goes to Redis once whatever the number of subscribers, and
// every node reads the same positions. The Broker remembers each
// channel's epoch from its last publish, so that the script usually
// runs three commands (HINCRBY, SET, XADD), and sets the keys' TTLs
// (two PEXPIRE) only when they are due (see Limits). Since is one
// script call too.
//
// Follow pulls: all the Follow calls of one Broker share one connection
// of their own, on which a loop runs XREAD BLOCK over every followed
// stream at once. Nothing is pushed with PUBLISH, so nothing is lost
// when a connection drops (the loop reads on from the last entry it
// delivered), and a slow node only lags behind: it is never cut off by
// Redis's client-output-buffer-limit for pub/sub. Each entry carries
// its epoch, and the loop checks that each is the one after the last it
// delivered: an entry trimmed before the node read it, or a stream that
// Redis lost and started again (a restart without its data), ends
// Follow with realtime.ErrPositionLost.
//
// An XREAD from an old id would wait for ever on a stream that Redis
// lost and started again under a new epoch (its ids start again at 1),
// so the loop also learns of new epochs, without polling:
//
//   - every script that starts an epoch announces it on one small
//     stream per Prefix (P:epochs), which the loop's XREAD reads too: a
//     followed channel whose epoch changed while Redis was up (its meta
//     evicted, or deleted) ends its Follow as soon as the loop reads
//     the announcement, in the same round trip as the entries of the
//     other channels;
//   - after every new connection of the loop (Redis restarted, with or
//     without its data, or failed over), and when it finds it missed
//     announcements, the loop reads every followed channel's epoch in
//     one script call before it reads on; a Follow that starts has its
//     channel's epoch read again when the loop takes it up;
//   - once every min(HistoryTTL×2/3, 10 minutes) the loop reads them all
//     again, which keeps the metas of followed channels from expiring,
//     and is the safety net of the rest.
//
// With nothing published the loop costs Redis one XREAD per
// FollowTimeout, and one script call (an HGET and a PEXPIRE per
// followed channel) per min(HistoryTTL×2/3, 10 minutes). Each new epoch
// costs every node that follows anything one XREAD reply.
//
// # Deduplication window
//
// A publish with a key stores "EPOCH OFFSET" under the key for
// Options.IdempotencyWindow (DefaultIdempotencyWindow, 2 minutes): a
// retry with the same key and channel within the window appends nothing
// and returns the first position. Each key costs Redis about 140 bytes
// plus the length of its name for the window (181 bytes measured with
// 16-byte keys on a 3-byte channel), so at 10,000 keyed publishes a
// second the default window holds about 220 MB. A publish
// without a key is not deduplicated; go-redis retries a command whose
// connection failed (Options.MaxRetries of the client), so such a
// publish may then be appended twice. realtime.Hub always publishes
// with a key.
//
// # Durability
//
// Positions are only as durable as Redis's data. Use a single primary
// with appendonly yes and appendfsync always: a restart (even after
// kill -9) then keeps every acknowledged publish, and followers go on
// with no gap and no duplicate. Without persistence a restart loses the
// streams; the next access starts each channel under a new epoch, and
// every client resuming from before gets a failed resume, never wrong
// data. With asynchronous replication (Sentinel or a managed failover),
// a replica promoted before it received the last writes reuses their
// offsets under the same epoch: clients that got the lost messages may
// then miss or be given different messages under the same ids. The
// same holds for appendfsync everysec after a crash (up to a second of
// writes). maxmemory-policy must be noeviction (the default): an evicted
// meta hash starts a new epoch (a failed resume), an evicted stream or
// idempotency key loses history or deduplication.
//
// # Limits
//
//   - History is bounded by count (MaxHistory, XADD MAXLEN, exact) and by
//     idle age (HistoryTTL: a channel's stream expires HistoryTTL after
//     its last publish, its meta after twice that, each at most
//     min(HistoryTTL/10, 1 minute) later: a node sets the TTLs on its
//     first publish to a channel and then once per that time, not on
//     every publish). Streams have no byte bound, and entries have no
//     age of their own (their ids are offsets, not times): bound bytes
//     and age in the node's cache (HubOptions.MaxHistoryBytes,
//     MaxHistoryAge).
//   - Redis Cluster is not supported: the keys carry the channel as a
//     hash tag, but a script that starts an epoch also writes the
//     epochs stream, and Follow reads all channels in one XREAD. Use
//     one primary (with Sentinel if you accept the failover caveat
//     above).
//   - One XREAD carries every followed channel, so its command grows
//     with the channels a node follows (about 50 bytes each), and Redis
//     scans them all each time it answers it. Under load one XREAD
//     returns many entries (up to 512 per channel), so this is paid per
//     batch, not per message; a node that follows many thousands of
//     busy channels should be split.
//   - Redis 7.0 or later (SET with both NX and GET; 7.0.15 is what the
//     tests run).
//
// # Calls between nodes
//
// Call and Serve use Redis pub/sub: Serve subscribes to the node's
// call channel, Call publishes the request there (no subscriber:
// realtime.ErrNoNode) and waits for the answer on the caller's reply
// channel, for at most Options.CallTimeout. A call lost on a broken
// connection costs only that call: the caller gets an error wrapping
// realtime.ErrBrokerUnavailable and may retry.
//
// # Key layout
//
// With P the Options.Prefix (DefaultPrefix, "realtime") and CH a
// channel name; {CH} is a Redis Cluster hash tag:
//
//	P:s:{CH}                  stream: entries OFFSET-0 with fields e (epoch), d (text)
//	P:e:{CH}                  hash: e (epoch E, decimal), sE (latest offset)
//	P:epochs                  stream: new epochs, fields c (channel), e, p (previous id)
//	P:k:N:{CH}:KEY            string "EPOCH OFFSET": idempotency key KEY (N is len(CH))
//	P:pz:{CH}                 zset: socket id -> expiry (ms, Redis clock)
//	P:ph:{CH}                 hash: socket id -> JSON realtime.PresenceEntry
//	P:wake:ID                 stream: wakes the Follow loop of broker ID
//	P:call:NODE, P:reply:ID   pub/sub channels of Call and Serve
package redisbroker

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/realtime-go/realtime"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Defaults of Options.
const (
	DefaultPrefix            = "realtime"
	DefaultMaxHistory        = 1000
	DefaultHistoryTTL        = 24 * time.Hour
	DefaultIdempotencyWindow = 2 * time.Minute
	DefaultTimeout           = 5 * time.Second
	DefaultCallTimeout       = 30 * time.Second
	DefaultFollowTimeout     = time.Second
)

// Options configures a Broker. A nil *Options means the zero value; a
// field left 0 means its default, a negative one no bound (or off).
type Options struct {
	// Prefix starts every key and pub/sub channel name, so that several
	// clusters (or applications) can share one Redis. "" means
	// DefaultPrefix.
	Prefix string

	// MaxHistory is how many entries each channel's stream keeps
	// (XADD MAXLEN): 0 means DefaultMaxHistory, 1000; negative, no
	// bound. A publish trims the stream, so every node sharing the
	// Redis must set the same MaxHistory (and HistoryTTL).
	MaxHistory int

	// HistoryTTL is how long a channel's stream is kept after its last
	// publish; its meta hash (epoch and latest offset) is kept twice
	// as long, and as long as a node follows the channel. Either may
	// be kept up to min(HistoryTTL/10, 1 minute) longer: the TTLs are
	// set once per that time, not on every publish. 0 means
	// DefaultHistoryTTL, 24 hours; negative, for ever.
	HistoryTTL time.Duration

	// IdempotencyWindow is how long a publish key is remembered: 0
	// means DefaultIdempotencyWindow, 2 minutes; negative, keys are
	// ignored.
	IdempotencyWindow time.Duration

	// Timeout bounds each round trip to Redis (a publish, a presence
	// update, ...) beyond the caller's context: 0 means DefaultTimeout,
	// 5 s; negative, only the context bounds it.
	Timeout time.Duration

	// CallTimeout bounds how long Call waits for its answer beyond the
	// caller's context: 0 means DefaultCallTimeout, 30 s; negative,
	// only the context bounds it.
	CallTimeout time.Duration

	// FollowTimeout is how long one blocking XREAD of Follow waits for
	// new entries before the loop issues it again: one command per
	// FollowTimeout is what following costs with nothing published. A
	// lost or restarted stream is noticed through the epochs stream and
	// the check after a reconnection (see the package documentation),
	// not through this timeout. 0 means DefaultFollowTimeout, 1 s.
	FollowTimeout time.Duration
}

// Broker is a realtime.Broker on Redis Streams. Its methods are safe for
// concurrent use.
type Broker struct {
	client *redis.Client // commands, Call and Serve
	own    bool          // Close closes client: Open made it
	reader *redis.Client // Follow's loop: a pool of one connection

	prefix        string
	maxLen        string        // XADD MAXLEN argument, "0" for none
	streamTTL     string        // ms, "0" for none; HistoryTTL + ttlSlack
	metaTTL       string        // 2 HistoryTTL + ttlSlack
	ttlSlack      time.Duration // a publish sets the TTLs once per ttlSlack
	checkEvery    time.Duration // the loop's safety-net check of every epoch
	window        string        // idempotency key TTL, ms; "" to ignore keys
	timeout       time.Duration
	callTimeout   time.Duration
	followTimeout time.Duration

	id      string // this Broker's random name, for its wake key and replies
	closed  atomic.Bool
	closing chan struct{}
	ctx     context.Context // ends at Close: the loops' commands
	cancel  context.CancelFunc
	wg      sync.WaitGroup // the Follow loop, the reply loop, Serves

	cmu   sync.Mutex
	chans map[string]chanState // by channel: what this node's publishes learnt
	sweep int                  // len(chans) at which to drop the stale ones

	fmu        sync.Mutex
	followers  map[string][]*follower // by stream key
	reading    bool                   // the loop is in an XREAD of the current set
	wakeSent   bool                   // a wake is on its way for the current XREAD
	started    bool                   // the loop runs
	changed    chan struct{}          // cap 1: the set of followers grew
	reconnect  atomic.Bool            // the reader made a new connection
	wakeExpiry atomic.Int64           // when the wake key's TTL was last set (UnixNano)

	// afterCheck, when set by a test before any Follow, runs in Follow
	// between its check of the position and its registration with the
	// loop.
	afterCheck func(channel string)

	rmu     sync.Mutex
	replies *redis.PubSub
	pmu     sync.Mutex
	pending map[string]chan []byte
	callSeq atomic.Uint64
}

// New returns a Broker that sends its commands through client (a
// standalone or Sentinel client: redis.NewClient or
// redis.NewFailoverClient). It does not connect yet. Follow uses a
// connection of its own, made with client's options. Close leaves
// client open: the caller closes it, after the Broker. Unless client's
// options set ContextTimeoutEnabled, go-redis bounds its reads by
// ReadTimeout (and MaxRetries) only, not by Options.Timeout or the
// caller's context.
func New(client *redis.Client, opts *Options) (*Broker, error) {
	if client == nil {
		return nil, errors.New("redisbroker: New: nil client")
	}
	return newBroker(client, false, opts), nil
}

// Open returns a Broker on the Redis server of url, as redis.ParseURL
// reads it (redis://[[user]:password@]host[:port][/db],
// rediss://..., unix:///path?db=N). It does not connect yet. Close
// closes the client it made. The client honours context deadlines
// (ContextTimeoutEnabled), so Options.Timeout bounds each round trip.
func Open(url string, opts *Options) (*Broker, error) {
	o, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redisbroker: Open: %w", err)
	}
	o.ContextTimeoutEnabled = true
	return newBroker(redis.NewClient(o), true, opts), nil
}

func newBroker(client *redis.Client, own bool, opts *Options) *Broker {
	var o Options
	if opts != nil {
		o = *opts
	}
	b := &Broker{
		client:        client,
		own:           own,
		prefix:        o.Prefix,
		maxLen:        strconv.Itoa(max(o.MaxHistory, 0)),
		timeout:       o.Timeout,
		callTimeout:   o.CallTimeout,
		followTimeout: o.FollowTimeout,
		closing:       make(chan struct{}),
		followers:     make(map[string][]*follower),
		chans:         make(map[string]chanState),
		sweep:         minSweep,
		changed:       make(chan struct{}, 1),
		pending:       make(map[string]chan []byte),
		id:            strconv.FormatUint(rand.Uint64(), 36),
	}
	if b.prefix == "" {
		b.prefix = DefaultPrefix
	}
	if o.MaxHistory == 0 {
		b.maxLen = strconv.Itoa(DefaultMaxHistory)
	}
	ttl := o.HistoryTTL
	if ttl == 0 {
		ttl = DefaultHistoryTTL
	}
	b.streamTTL, b.metaTTL = "0", "0"
	b.ttlSlack, b.checkEvery = maxTTLSlack, maxCheckEvery
	if ttl > 0 {
		b.ttlSlack = max(min(ttl/10, maxTTLSlack), time.Millisecond)
		b.streamTTL = strconv.FormatInt(max((ttl+b.ttlSlack).Milliseconds(), 1), 10)
		meta := 2*ttl + b.ttlSlack
		b.metaTTL = strconv.FormatInt(max(meta.Milliseconds(), 1), 10)
		b.checkEvery = max(min(meta/3, maxCheckEvery), time.Millisecond)
	}
	w := o.IdempotencyWindow
	if w == 0 {
		w = DefaultIdempotencyWindow
	}
	if w > 0 {
		b.window = strconv.FormatInt(max(w.Milliseconds(), 1), 10)
	}
	if b.timeout == 0 {
		b.timeout = DefaultTimeout
	}
	if b.callTimeout == 0 {
		b.callTimeout = DefaultCallTimeout
	}
	if b.followTimeout <= 0 {
		b.followTimeout = DefaultFollowTimeout
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())

	// The reader is a client of its own with one connection, so that
	// its blocking reads take no connection from the caller's pool, and
	// Close can cut a read that waits on an unreachable server. It does
	// not retry: every failure reaches the loop, which re-checks the
	// epochs after it.
	ro := *client.Options()
	ro.PoolSize = 1
	ro.MinIdleConns = 0
	ro.MaxIdleConns = 1
	ro.MaxRetries = -1
	ro.PushNotificationProcessor = nil
	ro.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	ro.ClientSideCache, ro.ClientSideCacheConfig = nil, nil
	onConnect := ro.OnConnect
	ro.OnConnect = func(ctx context.Context, cn *redis.Conn) error {
		b.reconnect.Store(true)
		if onConnect != nil {
			return onConnect(ctx, cn)
		}
		return nil
	}
	b.reader = redis.NewClient(&ro)
	return b
}

// Close stops every Follow and Serve of the Broker (they return errors
// wrapping realtime.ErrBrokerClosed), and closes the connections it
// made: the client too if Open made it, not one given to New. It
// deletes nothing in Redis.
func (b *Broker) Close() error {
	if !b.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(b.closing)
	b.cancel()
	err := b.reader.Close() // cuts the loop's XREAD
	b.rmu.Lock()
	if b.replies != nil {
		b.replies.Close()
	}
	b.rmu.Unlock()
	b.wg.Wait()
	if b.own {
		err = errors.Join(err, b.client.Close())
	}
	return err
}

// Keys; see the package documentation.

func (b *Broker) streamKey(ch string) string { return b.prefix + ":s:{" + ch + "}" }
func (b *Broker) metaKey(ch string) string   { return b.prefix + ":e:{" + ch + "}" }
func (b *Broker) epochsKey() string          { return b.prefix + ":epochs" }
func (b *Broker) idemKey(ch, key string) string {
	return b.prefix + ":k:" + strconv.Itoa(len(ch)) + ":{" + ch + "}:" + key
}
func (b *Broker) presenceKeys(ch string) []string {
	return []string{b.prefix + ":pz:{" + ch + "}", b.prefix + ":ph:{" + ch + "}"}
}
func (b *Broker) wakeKey() string             { return b.prefix + ":wake:" + b.id }
func (b *Broker) callChannel(n string) string { return b.prefix + ":call:" + n }
func (b *Broker) replyChannel() string        { return b.prefix + ":reply:" + b.id }

// ttlSlack and checkEvery bounds.
const (
	// maxTTLSlack bounds how much longer than HistoryTTL (twice that for
	// a meta) a channel's keys may be kept, since a node sets their TTLs
	// once per ttlSlack and sets them that much longer.
	maxTTLSlack = time.Minute
	// maxCheckEvery bounds the time between two checks of every followed
	// channel's epoch by the Follow loop. They are a safety net: the
	// epochs stream and the check after each reconnection tell of new
	// epochs first. With a HistoryTTL a third of the meta TTL is the
	// bound, so that followed metas are kept.
	maxCheckEvery = 10 * time.Minute
)

// chanState is what a Broker learnt of a channel from its own last
// publish: the epoch to expect, and when the keys' TTLs are due to be
// set again (then the entry may go: an unknown channel costs one HGET
// and the two PEXPIRE of a due TTL, nothing else).
type chanState struct {
	epoch string
	due   time.Time
}

// minSweep is the size of the chans map at which a publish first drops
// the entries whose TTLs are due; then at twice what was left.
const minSweep = 1024

// channelState returns what b knows of channel, and whether its TTLs
// are due.
func (b *Broker) channelState(channel string, now time.Time) (chanState, bool) {
	b.cmu.Lock()
	st, ok := b.chans[channel]
	b.cmu.Unlock()
	return st, !ok || !now.Before(st.due)
}

// learn records the epoch of a publish to channel that started at now,
// and, when it set the TTLs, when they are due next.
func (b *Broker) learn(channel, epoch string, now time.Time, setTTL bool) {
	b.cmu.Lock()
	defer b.cmu.Unlock()
	st := b.chans[channel]
	st.epoch = epoch
	if setTTL && st.due.Before(now.Add(b.ttlSlack)) {
		st.due = now.Add(b.ttlSlack)
	}
	b.chans[channel] = st
	if len(b.chans) >= b.sweep {
		for ch, st := range b.chans {
			if !now.Before(st.due) {
				delete(b.chans, ch)
			}
		}
		b.sweep = max(2*len(b.chans), minSweep)
	}
}

// newEpoch draws the epoch a script gives a channel whose meta is
// missing: random, nonzero, 63 bits.
func newEpoch() string {
	return strconv.FormatUint(rand.Uint64()>>1|1, 10)
}

// opContext bounds one round trip by b.timeout.
func (b *Broker) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if b.timeout > 0 {
		return context.WithTimeout(ctx, b.timeout)
	}
	return ctx, func() {}
}

// errClosed is what the methods of a closed Broker return.
func errClosed(op string) error {
	return fmt.Errorf("redisbroker: %s: %w", op, realtime.ErrBrokerClosed)
}

// fail wraps the error of a command: ErrBrokerClosed once the Broker is
// closed, ErrBrokerUnavailable when Redis could not be reached or
// answered that it cannot serve now, the error alone otherwise (a
// script error, a key of another type: a bug or a misconfiguration,
// which retrying does not mend). A context that ended is wrapped too.
func (b *Broker) fail(ctx context.Context, op, channel string, err error) error {
	if b.closed.Load() {
		return fmt.Errorf("redisbroker: %s %q: %w (%w)", op, channel, realtime.ErrBrokerClosed, err)
	}
	if !unavailable(err) {
		return fmt.Errorf("redisbroker: %s %q: %w", op, channel, err)
	}
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("redisbroker: %s %q: %w: %w (%w)", op, channel, realtime.ErrBrokerUnavailable, cerr, err)
	}
	return fmt.Errorf("redisbroker: %s %q: %w: %w", op, channel, realtime.ErrBrokerUnavailable, err)
}

// unavailable tells whether err means that Redis could not serve a
// command now (it could not be reached, did not answer in time, or
// answered that it cannot serve yet), rather than that the command is
// wrong.
func unavailable(err error) bool {
	var rerr redis.Error
	if !errors.As(err, &rerr) {
		return err != nil
	}
	msg := rerr.Error()
	for _, p := range []string{"LOADING", "BUSY", "MASTERDOWN", "READONLY", "TRYAGAIN", "CLUSTERDOWN", "NOREPLICAS", "ERR max number of clients"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// Publish implements realtime.Broker: one EVALSHA, which runs HINCRBY,
// SET (with a key) and XADD in Redis when b published to channel
// within the last min(HistoryTTL/10, 1 minute), and an HGET and two
// PEXPIRE more otherwise.
func (b *Broker) Publish(ctx context.Context, channel, text, key string) (realtime.Position, error) {
	if b.closed.Load() {
		return realtime.Position{}, errClosed("publish")
	}
	keys := []string{b.streamKey(channel), b.metaKey(channel), b.epochsKey()}
	if key != "" && b.window != "" {
		keys = append(keys, b.idemKey(channel, key))
	}
	now := time.Now()
	st, due := b.channelState(channel, now)
	setTTL := "0"
	if due {
		setTTL = "1"
	}
	octx, cancel := b.opContext(ctx)
	defer cancel()
	v, err := publishScript.Run(octx, b.client, keys,
		text, newEpoch(), b.maxLen, b.streamTTL, b.metaTTL, b.window, channel, st.epoch, setTTL).Text()
	if err != nil {
		return realtime.Position{}, b.fail(ctx, "publish", channel, err)
	}
	e, s, ok := strings.Cut(v, " ")
	if !ok {
		return realtime.Position{}, fmt.Errorf("redisbroker: publish %q: bad reply %q", channel, v)
	}
	p, err := parsePosition(e, s)
	if err == nil {
		b.learn(channel, e, now, due)
	}
	return p, err
}

func parsePosition(e, s string) (realtime.Position, error) {
	ep, err1 := strconv.ParseUint(e, 10, 64)
	off, err2 := strconv.ParseUint(s, 10, 64)
	if err := errors.Join(err1, err2); err != nil || ep == 0 {
		return realtime.Position{}, fmt.Errorf("redisbroker: bad position %q %q: %v", e, s, err)
	}
	return realtime.Position{Epoch: ep, Offset: off}, nil
}

// since runs sinceScript. With entries false it only checks pos.
func (b *Broker) since(ctx context.Context, c redis.Scripter, channel string, pos realtime.Position, entries bool) ([]realtime.Entry, realtime.Position, error) {
	pe, read := "", "0"
	if pos != (realtime.Position{}) {
		pe = strconv.FormatUint(pos.Epoch, 10)
	}
	if entries {
		read = "1"
	}
	next := strconv.FormatUint(pos.Offset+1, 10) + "-0"
	r, err := sinceScript.Run(ctx, c, []string{b.streamKey(channel), b.metaKey(channel), b.epochsKey()},
		newEpoch(), b.metaTTL, pe, strconv.FormatUint(pos.Offset, 10), next, read, channel).Slice()
	if err != nil {
		return nil, realtime.Position{}, b.fail(ctx, "since", channel, err)
	}
	if len(r) < 3 {
		return nil, realtime.Position{}, fmt.Errorf("redisbroker: since %q: bad reply %v", channel, r)
	}
	e, _ := r[0].(string)
	s, _ := r[1].(int64)
	latest, err := parsePosition(e, strconv.FormatInt(s, 10))
	if err != nil {
		return nil, latest, err
	}
	if r[2] != "ok" {
		return nil, latest, fmt.Errorf("redisbroker: channel %q: position %v lost (latest %v): %w",
			channel, pos, latest, realtime.ErrPositionLost)
	}
	if len(r) < 4 {
		return nil, latest, nil
	}
	raw, _ := r[3].([]any)
	out := make([]realtime.Entry, 0, len(raw))
	for _, x := range raw {
		en, err := parseRangeEntry(x)
		if err != nil {
			return nil, latest, fmt.Errorf("redisbroker: since %q: %w", channel, err)
		}
		out = append(out, en)
	}
	return out, latest, nil
}

// parseRangeEntry reads one XRANGE entry as a script returns it:
// {"OFFSET-0", {"e", EPOCH, "d", TEXT}}.
func parseRangeEntry(x any) (realtime.Entry, error) {
	a, _ := x.([]any)
	if len(a) != 2 {
		return realtime.Entry{}, fmt.Errorf("bad entry %v", x)
	}
	id, _ := a[0].(string)
	f, _ := a[1].([]any)
	var e, d string
	for i := 0; i+1 < len(f); i += 2 {
		k, _ := f[i].(string)
		v, _ := f[i+1].(string)
		switch k {
		case "e":
			e = v
		case "d":
			d = v
		}
	}
	return makeEntry(id, e, d)
}

// makeEntry makes an Entry of a stream entry's id and fields.
func makeEntry(id, epoch, text string) (realtime.Entry, error) {
	off, ok := strings.CutSuffix(id, "-0")
	if !ok {
		return realtime.Entry{}, fmt.Errorf("bad entry id %q", id)
	}
	p, err := parsePosition(epoch, off)
	if err != nil {
		return realtime.Entry{}, err
	}
	return realtime.Entry{Position: p, Text: text}, nil
}

// Since implements realtime.Broker: one EVALSHA.
func (b *Broker) Since(ctx context.Context, channel string, pos realtime.Position) ([]realtime.Entry, realtime.Position, error) {
	if b.closed.Load() {
		return nil, realtime.Position{}, errClosed("since")
	}
	octx, cancel := b.opContext(ctx)
	defer cancel()
	return b.since(octx, b.client, channel, pos, true)
}
