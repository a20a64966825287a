//go:build race

package websocket

// raceEnabled: the race detector changes sync.Pool and allocation counts.
const raceEnabled = true
