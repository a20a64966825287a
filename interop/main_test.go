// Package interop runs our websocket package against real peers: the npm ws
// package under Node.js, headless Chromium, and other Go libraries. Run it
// with interop/run.sh, which installs the peers first. Under CI=true a
// missing peer fails the tests instead of skipping them.
package interop

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(stopBrowsersAfter{m})
}

// stopBrowsersAfter runs the tests, then stops the browsers they shared,
// before goleak looks for leaked goroutines.
type stopBrowsersAfter struct{ m *testing.M }

func (s stopBrowsersAfter) Run() int {
	defer rtStopSharedBrowsers()
	return s.m.Run()
}
