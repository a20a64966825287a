package redisbroker

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/realtime-go/realtime"
)

// AddPresence implements realtime.Broker: one EVALSHA. The expiry is
// reckoned on Redis's clock. A ttl of 0 or less keeps the entry until
// it is removed.
func (b *Broker) AddPresence(ctx context.Context, channel string, e realtime.PresenceEntry, ttl time.Duration) (bool, error) {
	if b.closed.Load() {
		return false, errClosed("add presence")
	}
	j, err := json.Marshal(e)
	if err != nil {
		return false, fmt.Errorf("redisbroker: add presence %q: %w", channel, err)
	}
	ms := int64(0)
	if ttl > 0 {
		ms = max(ttl.Milliseconds(), 1)
	}
	octx, cancel := b.opContext(ctx)
	defer cancel()
	n, err := presenceAddScript.Run(octx, b.client, b.presenceKeys(channel), e.Socket, j, ms).Int()
	if err != nil {
		return false, b.fail(octx, "add presence", channel, err)
	}
	return n == 1, nil
}

// RemovePresence implements realtime.Broker: one EVALSHA. An entry that
// has expired but that no Presence call has returned yet is still
// there: it is removed, and reported removed.
func (b *Broker) RemovePresence(ctx context.Context, channel, socket string) (bool, error) {
	if b.closed.Load() {
		return false, errClosed("remove presence")
	}
	octx, cancel := b.opContext(ctx)
	defer cancel()
	n, err := presenceRemoveScript.Run(octx, b.client, b.presenceKeys(channel), socket).Int()
	if err != nil {
		return false, b.fail(octx, "remove presence", channel, err)
	}
	return n == 1, nil
}

// Presence implements realtime.Broker: one EVALSHA, which removes the
// expired entries it returns, so that each is returned to one caller.
// Both lists are sorted by socket id.
func (b *Broker) Presence(ctx context.Context, channel string) (live, expired []realtime.PresenceEntry, err error) {
	if b.closed.Load() {
		return nil, nil, errClosed("presence")
	}
	octx, cancel := b.opContext(ctx)
	defer cancel()
	r, err := presenceListScript.Run(octx, b.client, b.presenceKeys(channel)).Slice()
	if err != nil {
		return nil, nil, b.fail(octx, "presence", channel, err)
	}
	if len(r) != 2 {
		return nil, nil, fmt.Errorf("redisbroker: presence %q: bad reply %v", channel, r)
	}
	if live, err = parsePresence(r[0]); err == nil {
		expired, err = parsePresence(r[1])
	}
	if err != nil {
		return nil, nil, fmt.Errorf("redisbroker: presence %q: %w", channel, err)
	}
	return live, expired, nil
}

// parsePresence reads a list of JSON entries, sorted by socket id.
func parsePresence(x any) ([]realtime.PresenceEntry, error) {
	a, _ := x.([]any)
	if len(a) == 0 {
		return nil, nil
	}
	out := make([]realtime.PresenceEntry, 0, len(a))
	for _, v := range a {
		s, _ := v.(string)
		var e realtime.PresenceEntry
		if err := json.Unmarshal([]byte(s), &e); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b realtime.PresenceEntry) int { return strings.Compare(a.Socket, b.Socket) })
	return out, nil
}
