package realtime

import (
	"context"
	"time"
)

// socketContext is a Socket seen as its context, the one given to
// serve, OnConnect and OnMessage: Done is the socket's done channel, Err
// is context.Canceled once it is closed, and the values are those of
// the request that opened the socket. A context.WithCancel per socket
// cost every socket, idle or not, its context, its Done channel and its
// parent's registration; this costs none. It is the Socket itself, so
// that it is no field of its own.
type socketContext Socket

// context returns s as its context.
func (s *Socket) context() context.Context { return (*socketContext)(s) }

func (c *socketContext) Deadline() (time.Time, bool) { return time.Time{}, false }

func (c *socketContext) Done() <-chan struct{} { return (*Socket)(c).Done() }

func (c *socketContext) Err() error {
	if (*Socket)(c).isDone() {
		return context.Canceled
	}
	return nil
}

func (c *socketContext) Value(key any) any { return c.vals.Value(key) }

func (c *socketContext) String() string { return "realtime.Socket.context" }

// AfterFunc is what context.AfterFunc, and a context derived from this
// one, call instead of starting a goroutine to wait for Done (see
// context.AfterFunc): f runs on a goroutine of its own once the socket
// has ended.
func (c *socketContext) AfterFunc(f func()) func() bool {
	s := (*Socket)(c)
	a := &socketAfter{f: f}
	s.mu.Lock()
	if s.ctxDone {
		s.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	x := s.extra()
	x.afters = append(x.afters, a)
	s.mu.Unlock()
	return func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.x == nil {
			return false
		}
		for i, w := range s.x.afters {
			if w == a {
				last := len(s.x.afters) - 1
				s.x.afters[i] = s.x.afters[last]
				s.x.afters[last] = nil
				s.x.afters = s.x.afters[:last]
				return true
			}
		}
		return false
	}
}

// socketAfter is one AfterFunc registration of a socket's context.
type socketAfter struct{ f func() }

// endContext runs the AfterFunc registrations, once s.done is closed.
func (s *Socket) endContext() {
	s.mu.Lock()
	s.ctxDone = true
	var afters []*socketAfter
	if s.x != nil {
		afters, s.x.afters = s.x.afters, nil
	}
	s.mu.Unlock()
	for _, a := range afters {
		go a.f()
	}
}
