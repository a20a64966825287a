package realtime

import (
	"context"
	"slices"
	"sync"
	"time"
)

// writeDeadline is the context of a socket's batches: the writer's context
// (which abort cancels) with, while armed, the deadline of one batch. The
// writer makes one and re-arms it for every batch: a context.WithTimeout
// per batch, with its timer and its registration in the writer's context,
// and a context.AfterFunc of the transport on each, cost a busy node
// several percent of its CPU; here a batch costs two timer operations and
// a registration of the transport's callback in a slice.
//
// It behaves as the context.WithTimeout it replaces: Done is closed, and
// Err says context.DeadlineExceeded, once the armed deadline passes, or
// the parent's error once it ends; AfterFunc runs its function on its own
// goroutine then. It is used by one writer at a time: between disarm and
// the next arm nothing waits on it.
type writeDeadline struct {
	parent  context.Context
	timeout time.Duration // <= 0: never armed, the parent alone
	timer   *time.Timer   // made on the first arm
	unwatch func() bool   // stops the watch of parent

	mu       sync.Mutex
	armed    bool
	deadline time.Time
	done     chan struct{}
	err      error        // set when done is closed
	waiting  []*afterFunc // AfterFunc's, until done is closed
}

// afterFunc is one AfterFunc registration.
type afterFunc struct {
	d *writeDeadline
	f func()
}

func newWriteDeadline(parent context.Context, timeout time.Duration) *writeDeadline {
	d := &writeDeadline{parent: parent, timeout: timeout, done: make(chan struct{})}
	d.unwatch = context.AfterFunc(parent, func() { d.expire(parent.Err(), false) })
	return d
}

// arm starts a batch: the deadline is timeout from now.
func (d *writeDeadline) arm() {
	if d.timeout <= 0 {
		return
	}
	d.mu.Lock()
	if d.err != nil && d.parent.Err() == nil {
		// The last batch's deadline passed (and failed it): a new Done.
		d.done, d.err = make(chan struct{}), nil
	}
	d.armed = true
	d.deadline = time.Now().Add(d.timeout)
	d.mu.Unlock()
	if d.timer == nil {
		d.timer = time.AfterFunc(d.timeout, func() { d.expire(context.DeadlineExceeded, true) })
	} else {
		d.timer.Reset(d.timeout)
	}
}

// disarm ends a batch.
func (d *writeDeadline) disarm() {
	if d.timeout <= 0 {
		return
	}
	d.timer.Stop()
	d.mu.Lock()
	d.armed = false
	d.mu.Unlock()
}

// stop releases the timer and the watch of the parent.
func (d *writeDeadline) stop() {
	if d.timer != nil {
		d.timer.Stop()
	}
	d.unwatch()
}

// expire ends the context with err: the parent's end, or the deadline's.
// A timer that fires late, for a batch already over or after a re-arm,
// changes nothing.
func (d *writeDeadline) expire(err error, deadline bool) {
	d.mu.Lock()
	if d.err != nil || (deadline && (!d.armed || time.Now().Before(d.deadline))) {
		d.mu.Unlock()
		return
	}
	d.err = err
	close(d.done)
	waiting := d.waiting
	d.waiting = nil
	d.mu.Unlock()
	for _, a := range waiting {
		go a.f()
	}
}

func (d *writeDeadline) Deadline() (time.Time, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.armed {
		return d.deadline, true
	}
	return d.parent.Deadline()
}

func (d *writeDeadline) Done() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.done
}

func (d *writeDeadline) Err() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

func (d *writeDeadline) Value(key any) any { return d.parent.Value(key) }

// AfterFunc is what context.AfterFunc calls for a context that has one,
// instead of starting a goroutine to wait for Done.
func (d *writeDeadline) AfterFunc(f func()) func() bool {
	a := &afterFunc{d: d, f: f}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err != nil {
		go f()
	} else {
		d.waiting = append(d.waiting, a)
	}
	return a.cancel
}

// cancel stops a's function from running, and reports whether it did.
func (a *afterFunc) cancel() bool {
	d := a.d
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, w := range d.waiting {
		if w == a {
			d.waiting = slices.Delete(d.waiting, i, i+1)
			return true
		}
	}
	return false
}
