package natsbroker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

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

// bucketKV returns the presence bucket, creating it on first use, with
// rctx; its errors are those of op, a call under ctx.
func (b *Broker) bucketKV(ctx, rctx context.Context, op string) (jetstream.KeyValue, error) {
	kv, err := b.openBucket(rctx)
	if err != nil {
		return nil, b.fail(ctx, op, err)
	}
	return kv, nil
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
		storage := jetstream.FileStorage
		if b.opts.MemoryStorage {
			storage = jetstream.MemoryStorage
		}
		kv, err = b.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:   b.bucket,
			History:  1,
			TTL:      b.opts.MaxPresenceAge,
			Storage:  storage,
			Replicas: b.opts.Replicas,
		})
		if errors.Is(err, jetstream.ErrBucketExists) || errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
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
	ttl = max(ttl, 0)
	value, err := json.Marshal(record{PresenceEntry: e, TTL: ttl})
	if err != nil {
		return false, err
	}
	rctx, cancel := b.requestContext(ctx)
	defer cancel()
	kv, err := b.bucketKV(ctx, rctx, "add presence")
	if err != nil {
		return false, err
	}
	key := presenceKey(channel, e.Socket)
	for {
		old, err := kv.Get(rctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			_, err = kv.Create(rctx, key, value)
			if errors.Is(err, jetstream.ErrKeyExists) {
				continue
			}
			if err != nil {
				return false, b.fail(ctx, "add presence", err)
			}
			return true, nil
		case err != nil:
			return false, b.fail(ctx, "add presence", err)
		}
		_, err = kv.Update(rctx, key, value, old.Revision())
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
			continue
		}
		if err != nil {
			return false, b.fail(ctx, "add presence", err)
		}
		return false, nil
	}
}

// RemovePresence deletes socket's entry in channel (expired or not):
// removed is true when there was one, and then no Presence call
// reports it as expired.
func (b *Broker) RemovePresence(ctx context.Context, channel, socket string) (bool, error) {
	if err := b.usable(channel); err != nil {
		return false, err
	}
	rctx, cancel := b.requestContext(ctx)
	defer cancel()
	kv, err := b.bucketKV(ctx, rctx, "remove presence")
	if err != nil {
		return false, err
	}
	key := presenceKey(channel, socket)
	for {
		old, err := kv.Get(rctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return false, nil
		}
		if err == nil {
			err = kv.Delete(rctx, key, jetstream.LastRevision(old.Revision()))
		}
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
			continue
		}
		if err != nil {
			return false, b.fail(ctx, "remove presence", err)
		}
		return true, nil
	}
}

// Presence lists channel's entries, each list sorted by socket, with one consumer on the bucket's
// stream (the last value of each key of the channel), and deletes each
// expired entry conditionally on its revision: only the caller whose
// delete succeeds returns it as expired.
func (b *Broker) Presence(ctx context.Context, channel string) (live, expired []realtime.PresenceEntry, err error) {
	if err := b.usable(channel); err != nil {
		return nil, nil, err
	}
	rctx, cancel := b.requestContext(ctx)
	defer cancel()
	kv, err := b.bucketKV(ctx, rctx, "presence")
	if err != nil {
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
	var all []found
	err = b.read(rctx, "KV_"+b.bucket, cfg, readAll, func(m jetstream.Msg, seq uint64) error {
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
		all = append(all, found{key: m.Subject()[len(prefix):], rev: seq, rec: r, end: md.Timestamp.Add(r.TTL)})
		return nil
	})
	if err != nil {
		return nil, nil, b.fail(ctx, "presence", err)
	}
	now := time.Now()
	for _, f := range all {
		if f.rec.TTL == 0 || now.Before(f.end) {
			live = append(live, f.rec.PresenceEntry)
			continue
		}
		err := kv.Delete(rctx, f.key, jetstream.LastRevision(f.rev))
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
			continue // refreshed, removed or reaped by another caller
		}
		if err != nil {
			return nil, nil, b.fail(ctx, "presence", err)
		}
		expired = append(expired, f.rec.PresenceEntry)
	}
	bySocket := func(a, b realtime.PresenceEntry) int { return strings.Compare(a.Socket, b.Socket) }
	slices.SortFunc(live, bySocket)
	slices.SortFunc(expired, bySocket)
	return live, expired, nil
}

// readAll asks read for every message its consumer has pending.
const readAll = int(^uint(0) >> 1)
