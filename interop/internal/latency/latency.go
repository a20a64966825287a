// Package latency counts latencies in a histogram of fixed buckets, from
// many goroutines at once, for the benchmarks' percentiles.
package latency

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// Latencies are counted in buckets of microseconds: exact below 32 µs,
// then 16 buckets per power of two (at most 1/16 = 6% wide), up to
// 2^31 µs (36 min).
const (
	subBits    = 4
	subBuckets = 1 << subBits
	maxExp     = 31
	numBuckets = (maxExp-subBits+1)*subBuckets + 2*subBuckets
	histShards = 32
)

// Histogram counts latencies from many goroutines at once; its shards
// keep them from contending on one cache line.
type Histogram struct {
	shards [histShards][numBuckets]atomic.Uint64
}

// bucketOf is the bucket of a latency of us microseconds.
func bucketOf(us uint64) int {
	if us < 2*subBuckets {
		return int(us)
	}
	exp := bits.Len64(us) - 1 // us >= 2^exp, exp >= subBits+1
	if exp > maxExp {
		return numBuckets - 1
	}
	mant := (us >> (exp - subBits)) & (subBuckets - 1)
	return (exp-subBits+1)*subBuckets + int(mant)
}

// bucketLow is the smallest latency, in microseconds, of bucket b.
func bucketLow(b int) uint64 {
	if b < 2*subBuckets {
		return uint64(b)
	}
	exp := b/subBuckets + subBits - 1
	mant := uint64(b % subBuckets)
	return (1 << exp) | mant<<(exp-subBits)
}

// Add counts a latency; shard is any number, such as the socket's.
func (h *Histogram) Add(shard int, d time.Duration) {
	us := d.Microseconds()
	if us < 0 {
		us = 0
	}
	h.shards[shard%histShards][bucketOf(uint64(us))].Add(1)
}

// counts merges the shards.
func (h *Histogram) counts() (c [numBuckets]uint64, total uint64) {
	for s := range h.shards {
		for b := range c {
			n := h.shards[s][b].Load()
			c[b] += n
			total += n
		}
	}
	return c, total
}

// Quantile is the latency below which the fraction q of the counted ones
// lie, as the low end of its bucket; 0 when nothing was counted.
func (h *Histogram) Quantile(q float64) time.Duration {
	c, total := h.counts()
	if total == 0 {
		return 0
	}
	rank := uint64(q * float64(total))
	if rank >= total {
		rank = total - 1
	}
	var seen uint64
	for b, n := range c {
		seen += n
		if seen > rank {
			return time.Duration(bucketLow(b)) * time.Microsecond
		}
	}
	return 0
}
