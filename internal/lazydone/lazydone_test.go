package lazydone

import "testing"

// A Chan asked for before its owner ends is closed by Close; one asked
// for after is closed already; one never asked for is never made.
func TestChan(t *testing.T) {
	var before Chan
	c := before.Get(false)
	if c != before.Get(false) {
		t.Fatal("a second Get made another channel")
	}
	select {
	case <-c:
		t.Fatal("closed before Close")
	default:
	}
	before.Close()
	<-c
	var after, never Chan
	never.Close()
	if never.Made() {
		t.Fatal("Close made the channel")
	}
	after.Close()
	<-after.Get(true)
}
