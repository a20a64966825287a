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
	goleak.VerifyTestMain(m)
}
