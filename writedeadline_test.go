package realtime

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestWriteDeadline: the context of a socket's batches ends as a
// context.WithTimeout per batch would: at the armed deadline, or with its
// parent; a deadline disarmed in time, or a timer firing late, ends
// nothing; a re-armed deadline after one passed gives a new Done.
func TestWriteDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		parent, cancel := context.WithCancel(context.Background())
		defer cancel()
		const timeout = time.Second
		d := newWriteDeadline(parent, timeout)
		defer d.stop()

		// Disarmed in time: nothing ends, however long one waits.
		d.arm()
		if dl, ok := d.Deadline(); !ok || !dl.Equal(time.Now().Add(timeout)) {
			t.Fatalf("Deadline = %v, %v", dl, ok)
		}
		ran := make(chan struct{}, 4)
		stop := context.AfterFunc(d, func() { ran <- struct{}{} })
		time.Sleep(timeout / 2)
		d.disarm()
		if !stop() {
			t.Fatal("stop of a waiting AfterFunc = false")
		}
		time.Sleep(3 * timeout)
		synctest.Wait()
		if d.Err() != nil || len(ran) != 0 {
			t.Fatalf("after disarm: Err %v, %d AfterFuncs ran", d.Err(), len(ran))
		}
		if _, ok := d.Deadline(); ok {
			t.Fatal("a disarmed context has a deadline")
		}

		// Armed past its deadline: Done, DeadlineExceeded, AfterFunc runs.
		d.arm()
		done := d.Done()
		stop = context.AfterFunc(d, func() { ran <- struct{}{} })
		time.Sleep(timeout - time.Nanosecond)
		synctest.Wait()
		if d.Err() != nil {
			t.Fatalf("before the deadline: %v", d.Err())
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		select {
		case <-done:
		default:
			t.Fatal("Done not closed at the deadline")
		}
		if !errors.Is(d.Err(), context.DeadlineExceeded) || len(ran) != 1 {
			t.Fatalf("at the deadline: Err %v, %d AfterFuncs ran", d.Err(), len(ran))
		}
		if stop() {
			t.Fatal("stop after the AfterFunc ran = true")
		}
		context.AfterFunc(d, func() { ran <- struct{}{} }) // already done: runs now
		synctest.Wait()
		if len(ran) != 2 {
			t.Fatal("AfterFunc on an ended context did not run")
		}
		d.disarm()

		// Re-armed: a fresh Done, which the next deadline closes.
		d.arm()
		if d.Err() != nil || d.Done() == done {
			t.Fatalf("re-armed: Err %v, same Done %v", d.Err(), d.Done() == done)
		}
		d.disarm()

		// The parent's end ends it, for good.
		d.arm()
		cancel()
		synctest.Wait()
		if !errors.Is(d.Err(), context.Canceled) {
			t.Fatalf("after the parent's end: %v", d.Err())
		}
		d.disarm()
		d.arm()
		if !errors.Is(d.Err(), context.Canceled) {
			t.Fatalf("re-armed after the parent's end: %v", d.Err())
		}
		d.disarm()
	})
}

// TestWriteDeadlineOff: without a timeout only the parent ends it.
func TestWriteDeadlineOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		parent, cancel := context.WithCancel(context.Background())
		d := newWriteDeadline(parent, 0)
		defer d.stop()
		d.arm()
		time.Sleep(time.Hour)
		synctest.Wait()
		if _, ok := d.Deadline(); ok || d.Err() != nil {
			t.Fatalf("Deadline %v, Err %v", ok, d.Err())
		}
		d.disarm()
		cancel()
		<-d.Done()
		if !errors.Is(d.Err(), context.Canceled) {
			t.Fatalf("Err = %v", d.Err())
		}
	})
}

// TestWriteDeadlineIdle: the same timer tells when the writer was idle
// for the idle time, from idleAfter and from the end of each batch, with
// or without a write timeout; never during a batch, and once per idle
// spell; a deadline still ends a batch that overruns it.
func TestWriteDeadlineIdle(t *testing.T) {
	for _, timeout := range []time.Duration{0, 3 * time.Second} {
		synctest.Test(t, func(t *testing.T) {
			const idle = 2 * time.Second
			var idles atomic.Int32
			d := newWriteDeadline(context.Background(), timeout)
			defer d.stop()
			d.idleAfter(idle, func() { idles.Add(1) })
			step := func(sleep time.Duration, want int32) {
				t.Helper()
				time.Sleep(sleep)
				synctest.Wait()
				if n := idles.Load(); n != want {
					t.Fatalf("timeout %v: %d idle calls, want %d", timeout, n, want)
				}
			}
			step(idle-time.Nanosecond, 0)
			step(time.Nanosecond, 1)
			step(10*idle, 1) // not again before a batch
			d.arm()
			step(idle+time.Second/2, 1) // busy: a long batch is not idle
			d.disarm()
			step(idle-time.Nanosecond, 1)
			step(time.Nanosecond, 2)
			d.arm()
			d.disarm()
			step(idle, 3)
			if timeout > 0 {
				d.arm()
				step(timeout, 3)
				if !errors.Is(d.Err(), context.DeadlineExceeded) {
					t.Fatalf("a batch past its deadline: Err %v", d.Err())
				}
				d.disarm()
				step(idle, 4)
			}
		})
	}
}
