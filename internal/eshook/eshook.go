// Package eshook lets package realtime learn that an eventsource.Stream
// has ended without a goroutine per stream waiting on its Done channel:
// an idle realtime socket holds no goroutine of its own.
package eshook

// OnEnd, set by package eventsource, arranges for f to run on a
// goroutine of its own once s (an *eventsource.Stream) has ended, at
// once if it has. f runs at most once.
var OnEnd func(s any, f func())

// Interrupt, set by package eventsource, makes the write to s (an
// *eventsource.Stream) under way, and every later one, fail with cause,
// without waiting for it: the stream's writer then need not hand it a
// context that can end, whose watch costs every write a registration.
// The caller makes sure the stream's handler has not returned.
var Interrupt func(s any, cause error)
