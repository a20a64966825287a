package natsbroker

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/realtime-go/realtime"
)

// Defaults of Options.
const (
	// DefaultPrefix starts the names of the streams, subjects and the
	// presence bucket of a Broker.
	DefaultPrefix = "realtime"
	// DefaultMaxKeyAge is how long a publish key is remembered: the
	// JetStream default duplicate window.
	DefaultMaxKeyAge = 2 * time.Minute
	// DefaultRequestTimeout bounds one request to the server.
	DefaultRequestTimeout = 5 * time.Second
	// DefaultHeartbeat is how often the server is asked to show, while a
	// Follow waits, that its pull is still alive.
	DefaultHeartbeat = 2 * time.Second
	// DefaultMinDelay and DefaultMaxDelay bound the wait between two
	// attempts to reach the server: reconnecting (a connection Dial
	// made) and a Follow's retries.
	DefaultMinDelay = 100 * time.Millisecond
	DefaultMaxDelay = 2 * time.Second
	// DefaultMaxPresenceAge bounds how long the presence bucket keeps an
	// entry nobody refreshes or removes (a dead node's entry in a
	// channel whose presence nobody lists): the bucket's TTL.
	DefaultMaxPresenceAge = 24 * time.Hour
)

// ErrTooLarge: the message does not fit the server's max_payload (1 MiB
// by default), headers included.
var ErrTooLarge = errors.New("natsbroker: message larger than the server's max_payload")

// Options configures a Broker. The zero value is usable; a nil *Options
// means the zero value. Every node sharing a server must use the same
// Prefix; the history limits and storage apply to the streams a node
// creates, and a stream keeps the settings of whoever created it.
type Options struct {
	// Prefix starts every name the broker uses on the server: streams
	// PREFIX_<hash of the channel>, subjects PREFIX.c.<channel>.<epoch>
	// and PREFIX.n.<node>, the KV bucket PREFIX_presence. Up to 64
	// letters, digits, '-' and '_'. "" means DefaultPrefix.
	Prefix string

	// MaxHistory (count), MaxHistoryBytes (int64 bytes) and
	// MaxHistoryAge (duration) bound what a channel's stream keeps
	// (MaxMsgs, MaxBytes, MaxAge). 0 means realtime.DefaultMaxHistory
	// (1000), realtime.DefaultMaxHistoryBytes (4 MiB) and no age bound.
	// Negative: no bound. MaxHistoryBytes counts JetStream's stored
	// size, payload plus subject, headers and a few dozen bytes.
	MaxHistory      int
	MaxHistoryBytes int64
	MaxHistoryAge   time.Duration

	// MaxKeyAge is the deduplication window: how long the stream
	// remembers a Publish key (the stream's Duplicates). 0 means
	// DefaultMaxKeyAge, 2 minutes; it is cut to MaxHistoryAge when that
	// is shorter, as JetStream requires. Negative is invalid.
	MaxKeyAge time.Duration

	// MemoryStorage keeps the streams in memory instead of files: a
	// server restart then loses them (a new epoch for every channel).
	MemoryStorage bool

	// Replicas of each stream and of the presence bucket in a JetStream
	// cluster. 0 means 1. Use 3 in a cluster for durability (see the
	// package documentation).
	Replicas int

	// RequestTimeout bounds each request to the server within the
	// caller's context. 0 means DefaultRequestTimeout; negative: only
	// the caller's context bounds it.
	RequestTimeout time.Duration

	// Heartbeat is how often the server shows a waiting Follow that its
	// pull is alive; a Follow that misses two starts again from where it
	// was. 0 means DefaultHeartbeat.
	Heartbeat time.Duration

	// MinDelay and MaxDelay bound the wait between attempts to reach
	// the server, doubling after each failure in a row, with jitter.
	// 0 means DefaultMinDelay and DefaultMaxDelay.
	MinDelay, MaxDelay time.Duration

	// MaxPresenceAge is the presence bucket's TTL: an entry neither
	// refreshed nor removed for this long disappears without a leave
	// being reported. AddPresence refuses a ttl above it. 0 means
	// DefaultMaxPresenceAge. It applies when the bucket is created.
	MaxPresenceAge time.Duration

	// Name is the connection name Dial gives the server (monitoring).
	Name string

	// ConnectOptions are more options of the connection Dial makes:
	// credentials, TLS and the like (nats.UserCredentials,
	// nats.RootCAs, ...). They come after Dial's own, so they may also
	// change those.
	ConnectOptions []nats.Option
}

// Broker is a realtime.Broker on NATS JetStream. Each channel is one
// stream, so that a channel's offsets are the stream's sequences; see
// the package documentation.
type Broker struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	own    bool // Close closes nc
	opts   Options
	prefix string
	bucket string
	life   context.Context // ends when the broker is closed
	end    context.CancelFunc

	mu      sync.Mutex
	streams map[string]stream // by channel: the stream last seen
	kv      jetstream.KeyValue
}

// stream is one life of a channel's stream on the server.
type stream struct {
	name    string // PREFIX_<hash>
	subject string // PREFIX.c.<channel>.<epoch>
	epoch   uint64
}

// Dial connects to the NATS server(s) at url (a comma-separated list,
// as for nats.Connect; "" means nats.DefaultURL) and returns a Broker
// that owns the connection: Close closes it. The connection reconnects
// for ever, waiting between MinDelay and MaxDelay, and does not buffer
// while disconnected, so that a call fails at once with
// realtime.ErrBrokerUnavailable instead of waiting out its context. A
// server that is down when Dial is called is not an error: the broker
// connects when it comes up.
func Dial(url string, opts *Options) (*Broker, error) {
	o, err := normalize(opts)
	if err != nil {
		return nil, err
	}
	if url == "" {
		url = nats.DefaultURL
	}
	nopts := append([]nats.Option{
		nats.Name(o.Name),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.ReconnectBufSize(-1),
		nats.CustomReconnectDelay(func(attempts int) time.Duration {
			return backoff(attempts, o.MinDelay, o.MaxDelay)
		}),
	}, o.ConnectOptions...)
	nc, err := nats.Connect(url, nopts...)
	if err != nil {
		return nil, fmt.Errorf("natsbroker: %w: %w", realtime.ErrBrokerUnavailable, err)
	}
	b, err := newBroker(nc, o)
	if err != nil {
		nc.Close()
		return nil, err
	}
	b.own = true
	return b, nil
}

// New returns a Broker over nc, a connection the caller owns: Close
// leaves it open. Give it nats.MaxReconnects(-1), so that it never gives
// up, and nats.ReconnectBufSize(-1), so that calls fail at once while
// it is disconnected (Dial does both).
func New(nc *nats.Conn, opts *Options) (*Broker, error) {
	if nc == nil {
		return nil, errors.New("natsbroker: New with a nil connection")
	}
	o, err := normalize(opts)
	if err != nil {
		return nil, err
	}
	return newBroker(nc, o)
}

func normalize(opts *Options) (Options, error) {
	var o Options
	if opts != nil {
		o = *opts
		o.ConnectOptions = slices.Clone(o.ConnectOptions)
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if len(o.Prefix) > 64 {
		return o, fmt.Errorf("natsbroker: prefix %q longer than 64 bytes", o.Prefix)
	}
	for _, r := range o.Prefix {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return o, fmt.Errorf("natsbroker: prefix %q: only letters, digits, '-' and '_'", o.Prefix)
		}
	}
	if o.MaxHistory == 0 {
		o.MaxHistory = realtime.DefaultMaxHistory
	}
	if o.MaxHistoryBytes == 0 {
		o.MaxHistoryBytes = realtime.DefaultMaxHistoryBytes
	}
	switch {
	case o.MaxKeyAge < 0:
		return o, errors.New("natsbroker: negative MaxKeyAge")
	case o.MaxKeyAge == 0:
		o.MaxKeyAge = DefaultMaxKeyAge
	}
	if o.MaxHistoryAge > 0 && o.MaxKeyAge > o.MaxHistoryAge {
		o.MaxKeyAge = o.MaxHistoryAge
	}
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	if o.RequestTimeout == 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = DefaultHeartbeat
	}
	if o.MinDelay <= 0 {
		o.MinDelay = DefaultMinDelay
	}
	if o.MaxDelay <= 0 {
		o.MaxDelay = DefaultMaxDelay
	}
	if o.MaxDelay < o.MinDelay {
		o.MaxDelay = o.MinDelay
	}
	if o.MaxPresenceAge <= 0 {
		o.MaxPresenceAge = DefaultMaxPresenceAge
	}
	return o, nil
}

func newBroker(nc *nats.Conn, o Options) (*Broker, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("natsbroker: %w", err)
	}
	life, end := context.WithCancel(context.Background())
	return &Broker{
		nc:      nc,
		js:      js,
		opts:    o,
		prefix:  o.Prefix,
		bucket:  o.Prefix + "_presence",
		life:    life,
		end:     end,
		streams: make(map[string]stream),
	}, nil
}

// backoff is the wait before attempt n (from 1) of a series of failures:
// min doubled n-1 times, at most max, less a random quarter.
func backoff(n int, min, max time.Duration) time.Duration {
	d := min
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	var r [8]byte
	_, _ = rand.Read(r[:])
	return d - time.Duration(binary.LittleEndian.Uint64(r[:])%uint64(d/4+1))
}

// Close releases the broker: its methods then fail with
// realtime.ErrBrokerClosed, and its Follow and Serve calls return. It
// closes the connection only if Dial made it. It deletes nothing on
// the server.
func (b *Broker) Close() error {
	b.end()
	if b.own {
		b.nc.Close()
	}
	return nil
}

func (b *Broker) closed() bool {
	return b.life.Err() != nil
}

// errReconnected and errPullCut end a Follow's consumer, to go on with
// a new one after the last entry delivered: when the connection comes
// back (the server may have lost the pull), and when a pull was ended
// on the client's side (what the server sent for it afterwards is lost).
var (
	errReconnected = errors.New("natsbroker: reconnected")
	errPullCut     = errors.New("natsbroker: pull ended by the client")
)

var errClosed = fmt.Errorf("natsbroker: %w", realtime.ErrBrokerClosed)

// errForeign: the stream named after a channel is not one this package
// made for it (made by someone else, or a hash collision). Retrying
// cannot mend it.
var errForeign = errors.New("not a stream of this broker")

// token escapes s into one subject token (and a valid KV key part).
func token(s string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(s))
}

// names returns the stream name and the subject prefix (without the
// epoch) of channel.
func (b *Broker) names(channel string) (name, subjectPrefix string) {
	h := sha256.Sum256([]byte(channel))
	return b.prefix + "_" + hex.EncodeToString(h[:16]), b.prefix + ".c." + token(channel) + "."
}

// usable fails when the broker is closed or channel is not a name.
func (b *Broker) usable(channel string) error {
	if b.closed() {
		return errClosed
	}
	if channel == "" {
		return errors.New("natsbroker: empty channel name")
	}
	return nil
}

// requestContext bounds one request by RequestTimeout.
func (b *Broker) requestContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if b.opts.RequestTimeout < 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, b.opts.RequestTimeout)
}

// fail wraps err, of a request made under the caller's ctx, in the
// broker's errors: ErrBrokerClosed once closed, ErrBrokerUnavailable
// when the server could not be reached or did not answer in time (with
// ctx's error too when ctx ended), and the server's refusal otherwise.
func (b *Broker) fail(ctx context.Context, op string, err error) error {
	if b.closed() {
		return errClosed
	}
	if refused(err) {
		return fmt.Errorf("natsbroker: %s: %w", op, err)
	}
	if errors.Is(err, nats.ErrMaxPayload) {
		return fmt.Errorf("natsbroker: %s: %w (max_payload %d bytes): %w", op, ErrTooLarge, b.nc.MaxPayload(), err)
	}
	if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		return fmt.Errorf("natsbroker: %s: %w: %w: %w", op, realtime.ErrBrokerUnavailable, err, ctx.Err())
	}
	return fmt.Errorf("natsbroker: %s: %w: %w", op, realtime.ErrBrokerUnavailable, err)
}

// refused tells whether err is the server's answer that retrying will
// not change (an API error other than unavailable or timed out), or a
// stream this broker cannot use.
func refused(err error) bool {
	var api *jetstream.APIError
	return errors.As(err, &api) && api.Code != 503 && api.Code != 408 || errors.Is(err, errForeign)
}

// cached returns the stream last seen for channel.
func (b *Broker) cached(channel string) (stream, bool) {
	b.mu.Lock()
	s, ok := b.streams[channel]
	b.mu.Unlock()
	return s, ok
}

func (b *Broker) remember(channel string, s stream) {
	b.mu.Lock()
	b.streams[channel] = s
	b.mu.Unlock()
}

func (b *Broker) forget(channel string, s stream) {
	b.mu.Lock()
	if b.streams[channel] == s {
		delete(b.streams, channel)
	}
	b.mu.Unlock()
}

// state is a stream and what it holds: sequences first to last (first
// is last+1 when it is empty).
type state struct {
	stream
	first, last uint64
}

// info returns channel's stream as the server has it now, creating it
// under a new epoch when it does not exist.
func (b *Broker) info(ctx context.Context, channel string) (state, error) {
	name, prefix := b.names(channel)
	s, err := b.js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s, err = b.create(ctx, name, prefix)
	}
	if err != nil {
		return state{}, err
	}
	in := s.CachedInfo()
	st := state{stream: stream{name: name}, first: in.State.FirstSeq, last: in.State.LastSeq}
	if len(in.Config.Subjects) == 1 {
		st.subject = in.Config.Subjects[0]
		if rest, ok := strings.CutPrefix(st.subject, prefix); ok && len(rest) == 16 {
			st.epoch, _ = strconv.ParseUint(rest, 16, 64)
		}
	}
	if st.epoch == 0 {
		return state{}, fmt.Errorf("%w: stream %s, subjects %q, for channel %q", errForeign, name, in.Config.Subjects, channel)
	}
	if st.first == 0 {
		st.first = st.last + 1
	}
	b.remember(channel, st.stream)
	return st, nil
}

// create makes the stream of a channel under a new random epoch, or
// returns the one another node made first.
func (b *Broker) create(ctx context.Context, name, subjectPrefix string) (jetstream.Stream, error) {
	var epoch uint64
	for epoch == 0 {
		var r [8]byte
		_, _ = rand.Read(r[:])
		epoch = binary.BigEndian.Uint64(r[:])
	}
	o := &b.opts
	cfg := jetstream.StreamConfig{
		Name:       name,
		Subjects:   []string{subjectPrefix + fmt.Sprintf("%016x", epoch)},
		Retention:  jetstream.LimitsPolicy,
		Discard:    jetstream.DiscardOld,
		MaxMsgs:    -1,
		MaxBytes:   -1,
		MaxAge:     max(o.MaxHistoryAge, 0),
		Duplicates: o.MaxKeyAge,
		Replicas:   o.Replicas,
		Storage:    jetstream.FileStorage,
	}
	if o.MaxHistory > 0 {
		cfg.MaxMsgs = int64(o.MaxHistory)
	}
	if o.MaxHistoryBytes > 0 {
		cfg.MaxBytes = o.MaxHistoryBytes
	}
	if o.MemoryStorage {
		cfg.Storage = jetstream.MemoryStorage
	}
	s, err := b.js.CreateStream(ctx, cfg)
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return b.js.Stream(ctx, name)
	}
	return s, err
}

// Publish appends text to channel's stream with one JetStream publish.
// A non-empty key is the message's Nats-Msg-Id: a repeat within
// Options.MaxKeyAge returns the first's position. It fails with
// ErrTooLarge when the message does not fit the server's max_payload.
func (b *Broker) Publish(ctx context.Context, channel, text, key string) (realtime.Position, error) {
	if err := b.usable(channel); err != nil {
		return realtime.Position{}, err
	}
	if mp := b.nc.MaxPayload(); mp > 0 && int64(len(text)) > mp {
		return realtime.Position{}, fmt.Errorf("natsbroker: publish of %d bytes: %w (max_payload %d bytes)", len(text), ErrTooLarge, mp)
	}
	rctx, cancel := b.requestContext(ctx)
	defer cancel()
	msg := &nats.Msg{Data: []byte(text)}
	if key != "" {
		msg.Header = nats.Header{jetstream.MsgIDHeader: []string{key}}
	}
	// The subject names the epoch, so a publish can only land in the
	// stream of the epoch it reports; one that finds no stream (lost or
	// recreated) looks the stream up and tries once more.
	for attempt := 0; ; attempt++ {
		s, ok := b.cached(channel)
		if !ok {
			st, err := b.info(rctx, channel)
			if err != nil {
				return realtime.Position{}, b.fail(ctx, "publish", err)
			}
			s = st.stream
		}
		msg.Subject = s.subject
		ack, err := b.js.PublishMsg(rctx, msg, jetstream.WithRetryAttempts(0))
		if errors.Is(err, jetstream.ErrNoStreamResponse) && attempt == 0 {
			b.forget(channel, s)
			continue
		}
		if err != nil {
			return realtime.Position{}, b.fail(ctx, "publish", err)
		}
		if ack.Stream != s.name {
			return realtime.Position{}, fmt.Errorf("natsbroker: publish to %s was stored by stream %s", s.subject, ack.Stream)
		}
		return realtime.Position{Epoch: s.epoch, Offset: ack.Sequence}, nil
	}
}

func lost(format string, a ...any) error {
	return fmt.Errorf("natsbroker: %w: %s", realtime.ErrPositionLost, fmt.Sprintf(format, a...))
}

// check tells whether the messages after pos can be read from st.
func check(st state, pos realtime.Position) error {
	switch {
	case pos.Epoch != 0 && pos.Epoch != st.epoch:
		return lost("epoch %d, the channel is at epoch %d", pos.Epoch, st.epoch)
	case pos.Epoch == 0 && pos.Offset != 0:
		return lost("position %s has no epoch", pos)
	case pos.Offset > st.last:
		return lost("offset %d is past the channel's last, %d", pos.Offset, st.last)
	case st.first > pos.Offset+1:
		return lost("offsets %d to %d were evicted", pos.Offset+1, st.first-1)
	}
	return nil
}

// Since returns the entries of channel after pos up to its last.
func (b *Broker) Since(ctx context.Context, channel string, pos realtime.Position) ([]realtime.Entry, realtime.Position, error) {
	if err := b.usable(channel); err != nil {
		return nil, realtime.Position{}, err
	}
	rctx, cancel := b.requestContext(ctx)
	defer cancel()
	st, err := b.info(rctx, channel)
	if err != nil {
		return nil, realtime.Position{}, b.fail(ctx, "since", err)
	}
	latest := realtime.Position{Epoch: st.epoch, Offset: st.last}
	if pos == (realtime.Position{}) {
		return nil, latest, nil
	}
	if err := check(st, pos); err != nil {
		return nil, latest, err
	}
	if pos.Offset == st.last {
		return nil, latest, nil
	}
	entries := make([]realtime.Entry, 0, min(st.last-pos.Offset, readBatch))
	next := pos.Offset + 1
	err = b.read(rctx, st.name, consumerFrom(next), int(st.last-pos.Offset), func(m jetstream.Msg, seq uint64) error {
		if err := st.verify(m, seq, next); err != nil {
			return err
		}
		entries = append(entries, realtime.Entry{Position: realtime.Position{Epoch: st.epoch, Offset: seq}, Text: string(m.Data())})
		next++
		return nil
	})
	if err == nil && next <= st.last {
		err = lost("offsets %d to %d are gone", next, st.last)
	}
	if err != nil {
		if errors.Is(err, realtime.ErrPositionLost) {
			return nil, latest, err
		}
		return nil, latest, b.fail(ctx, "since", err)
	}
	return entries, latest, nil
}

// verify checks that m, at stream sequence seq, is the message expected
// at offset next of st's epoch.
func (st *state) verify(m jetstream.Msg, seq, next uint64) error {
	if m.Subject() != st.subject {
		return lost("the stream of the channel was replaced (subject %s, expected %s)", m.Subject(), st.subject)
	}
	if seq != next {
		return lost("offset %d came when %d was expected", seq, next)
	}
	return nil
}

// consumerFrom configures an ephemeral consumer that reads from
// sequence seq on, for one reader. InactiveThreshold removes it from
// the server if its reader goes away without deleting it.
func consumerFrom(seq uint64) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       seq,
		AckPolicy:         jetstream.AckNonePolicy,
		InactiveThreshold: time.Minute,
		MemoryStorage:     true,
		Replicas:          1,
	}
}

// readBatch is the most messages one pull asks for.
const readBatch = 1024

// read makes an ephemeral consumer on stream and passes up to n of its
// messages (fewer when the consumer has fewer pending at its creation)
// to fn, with their stream sequences, then deletes the consumer.
func (b *Broker) read(ctx context.Context, stream string, cfg jetstream.ConsumerConfig, n int, fn func(jetstream.Msg, uint64) error) error {
	c, err := b.js.CreateConsumer(ctx, stream, cfg)
	if err != nil {
		return err
	}
	defer b.deleteConsumer(stream, c)
	n = min(n, int(c.CachedInfo().NumPending))
	for n > 0 {
		batch, err := c.Fetch(min(n, readBatch), jetstream.FetchContext(ctx))
		if err != nil {
			return err
		}
		got := 0
		for m := range batch.Messages() {
			md, err := m.Metadata()
			if err != nil {
				return err
			}
			got++
			if err := fn(m, md.Sequence.Stream); err != nil {
				return err
			}
		}
		if err := batch.Error(); err != nil {
			return err
		}
		if got == 0 {
			return errors.New("the server sent no message")
		}
		n -= got
	}
	return nil
}

// deleteConsumer removes an ephemeral consumer, within a short bound:
// if the server cannot be reached, InactiveThreshold removes it later.
func (b *Broker) deleteConsumer(stream string, c jetstream.Consumer) {
	if b.closed() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = b.js.DeleteConsumer(ctx, stream, c.CachedInfo().Name)
}

// Follow delivers the entries of channel after pos through a pull
// consumer: the server sends only what the Follow asked for, so a slow
// deliver makes it lag, never cuts it off. When the server cannot be
// reached (or a pull misses its heartbeats) it starts again after the
// last entry delivered, and returns an error wrapping
// realtime.ErrPositionLost when the stream was replaced (a new epoch)
// or the entries it had to deliver next were evicted. A zero pos
// follows the current epoch from its first entry.
func (b *Broker) Follow(ctx context.Context, channel string, pos realtime.Position, deliver func(realtime.Entry)) error {
	if err := b.usable(channel); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(b.life, cancel)
	defer stop()
	fails := 0
	for {
		if err := ctx.Err(); err != nil {
			if b.closed() {
				return errClosed
			}
			return err
		}
		err := b.follow(ctx, channel, &pos, deliver)
		if errors.Is(err, realtime.ErrPositionLost) {
			return err
		}
		if refused(err) && !errors.Is(err, jetstream.ErrStreamNotFound) && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return fmt.Errorf("natsbroker: follow: %w", err)
		}
		if err == nil || errors.Is(err, errReconnected) || errors.Is(err, errPullCut) {
			fails = 0
			continue
		}
		fails++
		t := time.NewTimer(backoff(fails, b.opts.MinDelay, b.opts.MaxDelay))
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
}

// follow is one life of a Follow's consumer: it checks the stream and
// pos, then pulls and delivers until the pull fails. It advances pos
// as it delivers.
func (b *Broker) follow(ctx context.Context, channel string, pos *realtime.Position, deliver func(realtime.Entry)) error {
	rctx, cancel := b.requestContext(ctx)
	st, err := b.info(rctx, channel)
	if err == nil {
		if err = check(st, *pos); err != nil {
			cancel()
			return err
		}
		pos.Epoch = st.epoch
	}
	var c jetstream.Consumer
	if err == nil {
		c, err = b.js.CreateConsumer(rctx, st.name, consumerFrom(pos.Offset+1))
	}
	cancel()
	if err != nil {
		return err
	}
	defer b.deleteConsumer(st.name, c)
	// A pull lasts a few heartbeats: a pull the server forgot (it
	// restarted) is noticed by its missing heartbeats, or sooner when
	// the connection says it reconnected.
	wait := 5 * b.opts.Heartbeat
	lctx, lcancel := context.WithCancel(ctx)
	defer lcancel()
	reconnected := b.nc.StatusChanged(nats.CONNECTED)
	defer b.nc.RemoveStatusListener(reconnected)
	go func() {
		select {
		case <-reconnected:
			lcancel()
		case <-lctx.Done():
		}
	}()
	for {
		pctx, cancel := context.WithTimeout(lctx, wait)
		batch, err := c.Fetch(readBatch, jetstream.FetchContext(pctx), jetstream.FetchHeartbeat(b.opts.Heartbeat))
		if err != nil {
			cancel()
			return err
		}
		for m := range batch.Messages() {
			md, err := m.Metadata()
			if err == nil {
				err = st.verify(m, md.Sequence.Stream, pos.Offset+1)
			}
			if err != nil {
				cancel()
				return err
			}
			pos.Offset++
			deliver(realtime.Entry{Position: *pos, Text: string(m.Data())})
		}
		err = batch.Error()
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if lctx.Err() != nil {
			return errReconnected
		}
		if errors.Is(err, context.DeadlineExceeded) {
			// Our deadline came before the server's expiry: messages
			// the server sent meanwhile were dropped with the pull, and
			// the consumer counts them as delivered.
			return errPullCut
		}
		if err != nil {
			return err
		}
	}
}
