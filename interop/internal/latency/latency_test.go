package latency

import (
	"math"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestHistogramQuantiles(t *testing.T) {
	var h Histogram
	if h.Quantile(0.5) != 0 {
		t.Error("quantile of nothing is not 0")
	}
	// 1..10000 µs, once each.
	for us := 1; us <= 10000; us++ {
		h.Add(us, time.Duration(us)*time.Microsecond)
	}
	for _, q := range []float64{0.01, 0.5, 0.99, 1} {
		want := q * 10000
		got := float64(h.Quantile(q) / time.Microsecond)
		if got > want || got < want*(1-1.0/subBuckets)-1 {
			t.Errorf("quantile(%v) = %v µs, want within a bucket below %v", q, got, want)
		}
	}
}

func TestBuckets(t *testing.T) {
	prev := -1
	for _, us := range []uint64{0, 1, 31, 32, 33, 63, 64, 1000, 1 << 20, 1<<31 - 1, 1 << 31, 1 << 40, math.MaxUint64} {
		b := bucketOf(us)
		if b < prev || b >= numBuckets {
			t.Fatalf("bucketOf(%d) = %d after %d", us, b, prev)
		}
		prev = b
		if us < 1<<31 && (bucketLow(b) > us || bucketOf(bucketLow(b)) != b) {
			t.Errorf("bucket %d of %d starts at %d", b, us, bucketLow(b))
		}
	}
}
