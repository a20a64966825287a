package client

import (
	"math/rand/v2"
	"time"

	"github.com/realtime-go/realtime/websocket"
)

// healthyAfter is how long a connection of a Socket must stay open to
// count as healthy: only then does the backoff start again from
// SocketOptions.MinDelay. Opening alone does not reset it, so that a
// server that accepts and at once closes (overloaded, restarting) is
// not hammered. The browser client uses the same 10 s.
const healthyAfter = 10 * time.Second

// overloadPenalty is added to the failures after a close with 1012
// (service restart) or 1013 (try again later): the window of the next
// wait grows eightfold, so that the clients of a server that shed them
// come back spread over seconds rather than all at once.
const overloadPenalty = 3

// backoff is a Socket's reconnection policy: full jitter, the wait
// before attempt n+1 uniform in [0, min(max, min·2^failures)), failures
// counting the attempts since the last healthy connection. It is pure:
// the caller gives the times and the random source, so tests need no
// clock.
type backoff struct {
	min, max time.Duration
	failures int
}

// ended accounts for a connection that was open for open (0 when the
// round opened nothing) and ended with code (0 when none).
func (b *backoff) ended(open time.Duration, code websocket.StatusCode) {
	if open >= healthyAfter {
		b.failures = 0
	}
	if code == websocket.StatusServiceRestart || code == websocket.StatusTryAgainLater {
		b.failures += overloadPenalty
	}
}

// next returns the wait before the next attempt, drawn by randN
// (uniform in [0, n) for n > 0, like rand.N), and counts the attempt.
func (b *backoff) next(randN func(time.Duration) time.Duration) time.Duration {
	window := doubled(b.min, b.max, b.failures)
	b.failures++
	if window <= 0 {
		return 0
	}
	return randN(window)
}

// randDuration is the random source of a Socket's backoff.
func randDuration(n time.Duration) time.Duration { return rand.N(n) }

// backoffRand is the random source new Sockets take; tests that draw
// the longest wait, to see the window, set their own.
var backoffRand = randDuration

// doubled returns d doubled n times, at most limit.
func doubled(d, limit time.Duration, n int) time.Duration {
	for i := 0; i < n && d < limit; i++ {
		if d > limit/2 {
			return limit
		}
		d *= 2
	}
	return min(d, limit)
}
