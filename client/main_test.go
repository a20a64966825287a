package client

import (
	"os"
	"testing"

	"github.com/realtime-go/realtime/internal/h2test"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// The HTTP/2 tests need extended CONNECT, which net/http enables
	// from the environment only.
	if code, ran := h2test.Reexec(); ran {
		os.Exit(code)
	}
	goleak.VerifyTestMain(m)
}
