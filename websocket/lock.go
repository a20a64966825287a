package websocket

import (
	"context"
	"sync/atomic"
)

// ctxLock is a mutex whose Lock gives up when a context ends or the
// connection closes. Taking a free lock is one atomic operation; the
// channel waiters sleep on is made on first contention, so an idle
// connection does not pay for it.
type ctxLock struct {
	held    atomic.Bool
	waiters atomic.Int32
	wake    atomic.Pointer[chan struct{}] // capacity 1: a release signals one waiter
}

func (l *ctxLock) tryLock() bool { return l.held.CompareAndSwap(false, true) }

// lock takes l, or returns ctx's error or errLockClosed.
func (l *ctxLock) lock(ctx context.Context, closed <-chan struct{}) error {
	if l.tryLock() {
		return nil
	}
	wake := l.wake.Load()
	if wake == nil {
		ch := make(chan struct{}, 1)
		if !l.wake.CompareAndSwap(nil, &ch) {
			wake = l.wake.Load()
		} else {
			wake = &ch
		}
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
		case <-*wake:
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
		case *l.wake.Load() <- struct{}{}:
		default:
		}
	}
}

var errLockClosed = &closedError{}
