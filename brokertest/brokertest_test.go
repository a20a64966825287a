package brokertest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/realtime-go/realtime"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// engine stands for an engine the suite can kill, start and wipe: a
// MemoryBroker behind a switch. While it is down every call fails with
// ErrBrokerUnavailable, and Follow and Serve wait for it; a wipe puts a
// new MemoryBroker, so a new epoch, in its place. It checks the engine
// tests of the suite, which no broker of the root module has.
type engine struct {
	maxHistory int

	mu      sync.Mutex
	b       *realtime.MemoryBroker
	down    bool
	changed chan struct{} // closed at every Kill, Start and Wipe
}

func newEngine(maxHistory int) *engine {
	e := &engine{maxHistory: maxHistory, changed: make(chan struct{})}
	e.b = realtime.NewMemoryBroker(&realtime.MemoryBrokerOptions{MaxHistory: maxHistory})
	return e
}

// set changes the engine's state under its lock, and wakes whoever
// waits for a change.
func (e *engine) set(f func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	f()
	close(e.changed)
	e.changed = make(chan struct{})
}

func (e *engine) Kill(*testing.T)  { e.set(func() { e.down = true }) }
func (e *engine) Start(*testing.T) { e.set(func() { e.down = false }) }
func (e *engine) Wipe(*testing.T) {
	e.set(func() {
		e.b.Close()
		e.b = realtime.NewMemoryBroker(&realtime.MemoryBrokerOptions{MaxHistory: e.maxHistory})
	})
}

var errDown = fmt.Errorf("engine: connection refused: %w", realtime.ErrBrokerUnavailable)

// up returns the broker, or errDown.
func (e *engine) up() (*realtime.MemoryBroker, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.down {
		return nil, errDown
	}
	return e.b, nil
}

// run calls f on the broker of the moment with a context that ends at
// the next change, and again after every change, until f returns for
// another reason or ctx ends.
func (e *engine) run(ctx context.Context, f func(ctx context.Context, b *realtime.MemoryBroker) error) error {
	for {
		e.mu.Lock()
		b, down, changed := e.b, e.down, e.changed
		e.mu.Unlock()
		if !down {
			fctx, cancel := context.WithCancel(ctx)
			go func() {
				select {
				case <-changed:
				case <-fctx.Done():
				}
				cancel()
			}()
			err := f(fctx, b)
			cancel()
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if !errors.Is(err, context.Canceled) && !errors.Is(err, realtime.ErrBrokerClosed) {
				return err
			}
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (e *engine) Publish(ctx context.Context, channel, text, key string) (realtime.Position, error) {
	b, err := e.up()
	if err != nil {
		return realtime.Position{}, err
	}
	return b.Publish(ctx, channel, text, key)
}

func (e *engine) Since(ctx context.Context, channel string, pos realtime.Position) ([]realtime.Entry, realtime.Position, error) {
	b, err := e.up()
	if err != nil {
		return nil, realtime.Position{}, err
	}
	return b.Since(ctx, channel, pos)
}

// Follow goes on from the last entry it delivered after every change,
// on the broker of the moment: after a wipe, that fails with
// ErrPositionLost, as the new broker has another epoch.
func (e *engine) Follow(ctx context.Context, channel string, pos realtime.Position, deliver func(realtime.Entry)) error {
	return e.run(ctx, func(ctx context.Context, b *realtime.MemoryBroker) error {
		return b.Follow(ctx, channel, pos, func(en realtime.Entry) {
			pos = en.Position
			deliver(en)
		})
	})
}

func (e *engine) AddPresence(ctx context.Context, channel string, p realtime.PresenceEntry, ttl time.Duration) (bool, error) {
	b, err := e.up()
	if err != nil {
		return false, err
	}
	return b.AddPresence(ctx, channel, p, ttl)
}

func (e *engine) RemovePresence(ctx context.Context, channel, socket string) (bool, error) {
	b, err := e.up()
	if err != nil {
		return false, err
	}
	return b.RemovePresence(ctx, channel, socket)
}

func (e *engine) Presence(ctx context.Context, channel string) (live, expired []realtime.PresenceEntry, err error) {
	b, err := e.up()
	if err != nil {
		return nil, nil, err
	}
	return b.Presence(ctx, channel)
}

func (e *engine) Call(ctx context.Context, node string, req []byte) ([]byte, error) {
	b, err := e.up()
	if err != nil {
		return nil, err
	}
	return b.Call(ctx, node, req)
}

func (e *engine) Serve(ctx context.Context, node string, answer func(ctx context.Context, req []byte) []byte) error {
	return e.run(ctx, func(ctx context.Context, b *realtime.MemoryBroker) error {
		return b.Serve(ctx, node, answer)
	})
}

func (e *engine) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.b.Close()
}

// TestEngine runs the suite, the engine tests included, against the
// switched MemoryBroker of engine.
func TestEngine(t *testing.T) {
	e := newEngine(100)
	defer e.Close()
	Run(t, Harness{
		New:        func(*testing.T) realtime.Broker { return View(e) },
		MaxHistory: e.maxHistory,
		Kill:       e.Kill,
		Start:      e.Start,
		Wipe:       e.Wipe,
	})
}
