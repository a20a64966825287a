package websocket

import (
	"context"
	"sync/atomic"
)

// ctxLock is a mutex whose Lock gives up when a context ends or the
// connection closes. Taking a free lock is one atomic operation; only
// waiters use the channel.
type ctxLock struct {
	held    atomic.Bool
	waiters atomic.Int32
	wake    chan struct{} // capacity 1: a release signals one waiter
}

func newCtxLock() ctxLock { return ctxLock{wake: make(chan struct{}, 1)} }

func (l *ctxLock) tryLock() bool { return l.held.CompareAndSwap(false, true) }

// lock takes l, or returns ctx's error or closed's.
func (l *ctxLock) lock(ctx context.Context, closed <-chan struct{}) error {
	if l.tryLock() {
		return nil
	}
	l.waiters.Add(1)
	defer l.waiters.Add(-1)
	for {
		// A release between the failed attempt and the wait leaves a
		// token in wake, so no wake-up is lost.
		if l.tryLock() {
			return nil
		}
		select {
		case <-l.wake:
		case <-ctx.Done():
			return ctx.Err()
		case <-closed:
			return errLockClosed
		}
	}
}

func (l *ctxLock) unlock() {
	l.held.Store(false)
	if l.waiters.Load() > 0 {
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
}

var errLockClosed = &closedError{}
