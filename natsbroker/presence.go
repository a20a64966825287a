package natsbroker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/realtime-go/realtime"
)

// record is a presence entry as the bucket keeps it. Its expiry is the
// entry's server timestamp plus TTL, so that the server's clock, not
// the writer's, starts it.
type record struct {
	realtime.PresenceEntry
	TTL time.Duration `json:"ttl"`
}

// withBucket runs op, the method name, with the presence bucket,
// creating the bucket on first use, within RequestTimeout of ctx. When
// op fails as if the bucket were gone (the server lost it), it opens the
// bucket again, which creates it, and runs op once more.
func (b *Broker) withBucket(ctx context.Context, name string, op func(ctx context.Context, kv jetstream.KeyValue) error) error {
	rctx, cancel := b.requestContext(ctx)
	defer cancel()
	for attempt := 0; ; attempt++ {
		kv, err := b.openBucket(rctx)
		if err == nil {
			err = op(rctx, kv)
		}
		if err == nil {
			return nil
		}
		if attempt == 0 && kv != nil && bucketGone(err) {
			b.mu.Lock()
			if b.kv == kv {
				b.kv = nil
			}
			b.mu.Unlock()
			continue
		}
		return b.fail(ctx, name, err)
	}
}

// bucketGone tells whether err may mean that the bucket's stream does
// not exist.
func bucketGone(err error) bool {
	return errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, jetstream.ErrBucketNotFound)
}

func (b *Broker) openBucket(ctx context.Context) (jetstream.KeyValue, error) {
	b.mu.Lock()
	kv := b.kv
	b.mu.Unlock()
	if kv != nil {
		return kv, nil
	}
	kv, err := b.js.KeyValue(ctx, b.bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		// The stream of a KV bucket as CreateKeyValue makes it, but
		// with no direct get: a direct get of a stream the server lost
		// is answered by nobody, and waits out its timeout, where the
		// JetStream API answers "stream not found" at once.
		cfg := jetstream.StreamConfig{
			Name:              "KV_" + b.bucket,
			Subjects:          []string{"$KV." + b.bucket + ".>"},
			MaxMsgsPerSubject: 1,
			MaxMsgs:           -1,
			MaxBytes:          -1,
			MaxMsgSize:        -1,
			MaxConsumers:      -1,
			MaxAge:            b.opts.MaxPresenceAge,
			Duplicates:        min(b.opts.MaxPresenceAge, 2*time.Minute),
			Storage:           jetstream.FileStorage,
			Replicas:          b.opts.Replicas,
			AllowRollup:       true,
			DenyDelete:        true,
			Discard:           jetstream.DiscardNew,
		}
		if b.opts.MemoryStorage {
			cfg.Storage = jetstream.MemoryStorage
		}
		_, err = b.js.CreateStream(ctx, cfg)
		if err == nil || errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			kv, err = b.js.KeyValue(ctx, b.bucket)
		}
	}
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	b.kv = kv
	b.mu.Unlock()
	return kv, nil
}

// presenceKey is the bucket key of socket in channel: both escaped into
// one token each, so that a channel's entries share the subject prefix
// the listing filters on.
func presenceKey(channel, socket string) string {
	return token(channel) + "." + token(socket)
}

// AddPresence writes e to the presence bucket under channel, with its
// ttl (0 or less: until it is removed, within Options.MaxPresenceAge).
// added is true when the key held no entry: an entry that expired
// but that no Presence call removed yet is refreshed (added false), so
// that no join is reported twice without a leave between.
func (b *Broker) AddPresence(ctx context.Context, channel string, e realtime.PresenceEntry, ttl time.Duration) (bool, error) {
	if err := b.usable(channel); err != nil {
		return false, err
	}
	if ttl > b.opts.MaxPresenceAge {
		return false, fmt.Errorf("natsbroker: presence ttl %v above MaxPresenceAge %v", ttl, b.opts.MaxPresenceAge)
	}
	value, err := json.Marshal(record{PresenceEntry: e, TTL: max(ttl, 0)})
	if err != nil {
		return false, err
	}
	key := presenceKey(channel, e.Socket)
	var added bool
	err = b.withBucket(ctx, "add presence", func(ctx context.Context, kv jetstream.KeyValue) error {
		for {
			old, err := kv.Get(ctx, key)
			if errors.Is(err, jetstream.ErrKeyNotFound) {
				_, err = kv.Create(ctx, key, value)
				added = err == nil
			} else if err == nil {
				_, err = kv.Update(ctx, key, value, old.Revision())
			}
			if !conflict(err) {
				return err
			}
		}
	})
	return added, err
}

// conflict tells whether err is a write refused because the key changed
// since it was read: the caller reads it again.
func conflict(err error) bool {
	return errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists)
}

// RemovePresence deletes socket's entry in channel (expired or not):
// removed is true when there was one, and then no Presence call
// reports it as expired.
func (b *Broker) RemovePresence(ctx context.Context, channel, socket string) (bool, error) {
	if err := b.usable(channel); err != nil {
		return false, err
	}
	key := presenceKey(channel, socket)
	var removed bool
	err := b.withBucket(ctx, "remove presence", func(ctx context.Context, kv jetstream.KeyValue) error {
		for {
			old, err := kv.Get(ctx, key)
			if errors.Is(err, jetstream.ErrKeyNotFound) {
				return nil
			}
			if err == nil {
				err = kv.Delete(ctx, key, jetstream.LastRevision(old.Revision()))
				removed = err == nil
			}
			if !conflict(err) {
				return err
			}
		}
	})
	return removed, err
}

// Presence lists channel's entries, each list sorted by socket, with one
// consumer on the bucket's stream (the last value of each key of the
// channel), and deletes each expired entry conditionally on its
// revision: only the caller whose delete succeeds returns it as expired.
func (b *Broker) Presence(ctx context.Context, channel string) (live, expired []realtime.PresenceEntry, err error) {
	if err := b.usable(channel); err != nil {
		return nil, nil, err
	}
	prefix := "$KV." + b.bucket + "."
	cfg := jetstream.ConsumerConfig{
		DeliverPolicy:     jetstream.DeliverLastPerSubjectPolicy,
		FilterSubject:     prefix + token(channel) + ".*",
		AckPolicy:         jetstream.AckNonePolicy,
		InactiveThreshold: time.Minute,
		MemoryStorage:     true,
		Replicas:          1,
	}
	type found struct {
		key string
		rev uint64
		rec record
		end time.Time
	}
	err = b.withBucket(ctx, "presence", func(ctx context.Context, kv jetstream.KeyValue) error {
		var all []found
		at := map[string]int{} // key -> index in all
		live, expired = nil, nil
		err := b.read(ctx, "KV_"+b.bucket, cfg, readAll, func(m jetstream.Msg, seq uint64) error {
			if op := m.Headers().Get("KV-Operation"); op != "" {
				return nil // a deleted or purged key
			}
			md, err := m.Metadata()
			if err != nil {
				return err
			}
			var r record
			if json.Unmarshal(m.Data(), &r) != nil {
				return nil // not ours: ignored
			}
			f := found{key: m.Subject()[len(prefix):], rev: seq, rec: r, end: md.Timestamp.Add(r.TTL)}
			// One entry per key, its latest: a read that overlaps other
			// callers' deletes and refreshes may see a key more than once.
			if i, ok := at[f.key]; ok {
				if f.rev > all[i].rev {
					all[i] = f
				}
				return nil
			}
			at[f.key] = len(all)
			all = append(all, f)
			return nil
		})
		if err != nil {
			return err
		}
		now := time.Now()
		for _, f := range all {
			if f.rec.TTL == 0 || now.Before(f.end) {
				live = append(live, f.rec.PresenceEntry)
				continue
			}
			err := kv.Delete(ctx, f.key, jetstream.LastRevision(f.rev))
			if conflict(err) {
				continue // refreshed, removed or reaped by another caller
			}
			if err != nil {
				return err
			}
			expired = append(expired, f.rec.PresenceEntry)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	bySocket := func(a, b realtime.PresenceEntry) int { return strings.Compare(a.Socket, b.Socket) }
	slices.SortFunc(live, bySocket)
	slices.SortFunc(expired, bySocket)
	return live, expired, nil
}

// readAll asks read for every message its consumer has pending.
const readAll = int(^uint(0) >> 1)
