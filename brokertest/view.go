package brokertest

import (
	"context"
	"fmt"
	"time"

	"github.com/realtime-go/realtime"
)

// View returns one node's view of b, a broker that several nodes of one
// process share (such as a realtime.MemoryBroker): its methods call b's,
// and its Close ends what was called through it (the Follows and Serves
// return, then every method fails with an error wrapping
// realtime.ErrBrokerClosed) but leaves b open. A Harness of a broker
// with no engine returns a View of one broker from New, so that the
// suite may close each client.
func View(b realtime.Broker) realtime.Broker {
	ctx, cancel := context.WithCancel(context.Background())
	return &view{b: b, ctx: ctx, cancel: cancel}
}

type view struct {
	b      realtime.Broker
	ctx    context.Context // ends with Close
	cancel context.CancelFunc
}

var errViewClosed = fmt.Errorf("brokertest: view closed: %w", realtime.ErrBrokerClosed)

// with runs f with a context that also ends with the client's Close,
// and tells a Close from the end of ctx.
func (c *view) with(ctx context.Context, f func(ctx context.Context) error) error {
	if c.ctx.Err() != nil {
		return errViewClosed
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(c.ctx, cancel)
	defer stop()
	err := f(ctx)
	if err != nil && c.ctx.Err() != nil {
		return errViewClosed
	}
	return err
}

func (c *view) Publish(ctx context.Context, channel, text, key string) (p realtime.Position, err error) {
	err = c.with(ctx, func(ctx context.Context) error {
		p, err = c.b.Publish(ctx, channel, text, key)
		return err
	})
	return p, err
}

func (c *view) Since(ctx context.Context, channel string, pos realtime.Position) (es []realtime.Entry, latest realtime.Position, err error) {
	err = c.with(ctx, func(ctx context.Context) error {
		es, latest, err = c.b.Since(ctx, channel, pos)
		return err
	})
	return es, latest, err
}

func (c *view) Follow(ctx context.Context, channel string, pos realtime.Position, deliver func(realtime.Entry)) error {
	return c.with(ctx, func(ctx context.Context) error { return c.b.Follow(ctx, channel, pos, deliver) })
}

func (c *view) AddPresence(ctx context.Context, channel string, e realtime.PresenceEntry, ttl time.Duration) (added bool, err error) {
	err = c.with(ctx, func(ctx context.Context) error {
		added, err = c.b.AddPresence(ctx, channel, e, ttl)
		return err
	})
	return added, err
}

func (c *view) RemovePresence(ctx context.Context, channel, socket string) (removed bool, err error) {
	err = c.with(ctx, func(ctx context.Context) error {
		removed, err = c.b.RemovePresence(ctx, channel, socket)
		return err
	})
	return removed, err
}

func (c *view) Presence(ctx context.Context, channel string) (live, expired []realtime.PresenceEntry, err error) {
	err = c.with(ctx, func(ctx context.Context) error {
		live, expired, err = c.b.Presence(ctx, channel)
		return err
	})
	return live, expired, err
}

func (c *view) Call(ctx context.Context, node string, req []byte) (ans []byte, err error) {
	err = c.with(ctx, func(ctx context.Context) error {
		ans, err = c.b.Call(ctx, node, req)
		return err
	})
	return ans, err
}

func (c *view) Serve(ctx context.Context, node string, answer func(ctx context.Context, req []byte) []byte) error {
	return c.with(ctx, func(ctx context.Context) error { return c.b.Serve(ctx, node, answer) })
}

// Close ends the calls made through the view; b stays open.
func (c *view) Close() error {
	c.cancel()
	return nil
}
