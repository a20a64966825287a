// Package lazydone is a Done channel made only when first asked for:
// most sockets and connections of a push server are never asked, and a
// channel made for each cost every idle one 96 bytes.
package lazydone

// Chan is the channel, or nil before anyone asked for it. Its owner
// guards it with a mutex of its own and keeps whether it has ended.
type Chan struct{ c chan struct{} }

// Get returns the channel, made now if needed: closed when ended is true,
// the owner having ended before anyone asked. Called with the owner's
// mutex held.
func (d *Chan) Get(ended bool) <-chan struct{} {
	if d.c == nil {
		if ended {
			return Closed
		}
		d.c = make(chan struct{})
	}
	return d.c
}

// Close closes the channel if it was made: the owner has ended. Called
// once, with the owner's mutex held.
func (d *Chan) Close() {
	if d.c != nil {
		close(d.c)
	}
}

// Made reports whether the channel was made.
func (d *Chan) Made() bool { return d.c != nil }

// Closed is a closed channel.
var Closed = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()
