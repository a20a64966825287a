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
//
// The same timer tells the writer when it has been idle, written nothing,
// for the time given to idleAfter: a v2 socket's heartbeat costs it no
// timer of its own.
type writeDeadline struct {
	parent  context.Context
	timeout time.Duration // <= 0: never armed, the parent alone
	timer   *time.Timer   // made on the first arm, or by idleAfter
	unwatch func() bool   // stops the watch of parent
	idle    time.Duration // > 0: onIdle runs once the writer was idle that long
	onIdle  func()

	mu       sync.Mutex
	armed    bool
	busy     bool      // between arm and disarm
	idleAt   time.Time // when onIdle is due, unless busy
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
	if parent.Done() == nil {
		// A parent that never ends (a socket's values) needs no watch,
		// which would cost the socket a context of its own.
		d.unwatch = func() bool { return false }
	} else {
		d.unwatch = context.AfterFunc(parent, func() { d.expire(parent.Err(), false) })
	}
	return d
}

// idleDeadlines are the writeDeadlines of sockets whose writer went
// idle: an idle socket without a heartbeat needs none, and its timer and
// Done channel would cost it about 0.4 KiB.
var idleDeadlines sync.Pool

// getWriteDeadline is newWriteDeadline for a parent that never ends,
// reusing an idle socket's writeDeadline if there is one.
func getWriteDeadline(parent context.Context, timeout time.Duration) *writeDeadline {
	d, _ := idleDeadlines.Get().(*writeDeadline)
	if d == nil {
		return newWriteDeadline(parent, timeout)
	}
	// A timer of its last use that fires late finds it disarmed.
	d.mu.Lock()
	d.parent, d.timeout = parent, timeout
	d.mu.Unlock()
	return d
}

// release puts d in idleDeadlines, unless something may still use it:
// the idle time of a heartbeat, a registration of AfterFunc, an end. It
// reports whether it did. Called between batches, by the writer.
func (d *writeDeadline) release() bool {
	d.mu.Lock()
	ok := d.onIdle == nil && len(d.waiting) == 0 && !d.busy && !d.armed && d.err == nil && d.parent.Done() == nil
	if ok {
		d.parent = context.Background() // not the socket's values
	}
	d.mu.Unlock()
	if !ok {
		return false
	}
	if d.timer != nil {
		d.timer.Stop()
	}
	idleDeadlines.Put(d)
	return true
}

// idleAfter makes f run (on the timer's goroutine) whenever nothing was
// written for idle: from now, and from the end of each batch. f runs
// again only after the next batch. Called once, between batches.
func (d *writeDeadline) idleAfter(idle time.Duration, f func()) {
	if idle <= 0 {
		return
	}
	d.idle, d.onIdle = idle, f
	d.mu.Lock()
	d.idleAt = time.Now().Add(idle)
	if d.timer == nil {
		d.timer = time.AfterFunc(idle, d.fire)
	} else {
		d.timer.Reset(idle) // an arm made it, for the position
	}
	d.mu.Unlock()
}

// arm starts a batch: the deadline is timeout from now.
func (d *writeDeadline) arm() {
	if d.timeout <= 0 {
		if d.idle > 0 {
			d.mu.Lock()
			d.busy = true
			d.mu.Unlock()
		}
		return
	}
	d.mu.Lock()
	if d.err != nil && d.parent.Err() == nil {
		// The last batch's deadline passed (and failed it): a new Done.
		d.done, d.err = make(chan struct{}), nil
	}
	d.armed, d.busy = true, true
	d.deadline = time.Now().Add(d.timeout)
	d.mu.Unlock()
	if d.timer == nil {
		d.timer = time.AfterFunc(d.timeout, d.fire)
	} else {
		d.timer.Reset(d.timeout)
	}
}

// disarm ends a batch; the writer is idle from now.
func (d *writeDeadline) disarm() {
	if d.timeout <= 0 && d.idle <= 0 {
		return
	}
	d.mu.Lock()
	d.armed, d.busy = false, false
	if d.idle > 0 {
		d.idleAt = time.Now().Add(d.idle)
		d.timer.Reset(d.idle)
	} else {
		d.timer.Stop()
	}
	d.mu.Unlock()
}

// fire runs on the timer: the armed deadline, or the idle time, is due.
// A timer that fires late, for a batch already over or after a re-arm,
// or for an idle time a batch has since ended, does nothing.
func (d *writeDeadline) fire() {
	d.mu.Lock()
	idle := d.onIdle != nil && !d.busy && !time.Now().Before(d.idleAt)
	d.mu.Unlock()
	if idle {
		d.onIdle()
		return
	}
	d.expire(context.DeadlineExceeded, true)
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
