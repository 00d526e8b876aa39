package engine

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// latencies is a lock-free log-linear histogram of send-call latencies,
// for the quantiles in a run's Summary: 16 sub-buckets per power of two of
// microseconds (about 6% resolution), 8 KiB per run.
type latencies struct {
	n [64 * 16]atomic.Int64
}

func latencyBucket(d time.Duration) int {
	us := uint64(max(d.Microseconds(), 0))
	if us < 16 {
		return int(us)
	}
	e := bits.Len64(us) - 5 // us>>e is in [16, 32)
	return (e+1)*16 + int(us>>e) - 16
}

// latencyUpper is the upper bound of bucket b.
func latencyUpper(b int) time.Duration {
	if b < 16 {
		return time.Duration(b+1) * time.Microsecond
	}
	e := b/16 - 1
	return time.Duration((uint64(b%16+16)+1)<<e) * time.Microsecond
}

func (l *latencies) observe(d time.Duration) { l.n[latencyBucket(d)].Add(1) }

// quantile returns the upper bound of the bucket holding quantile q, 0 with
// no observations.
func (l *latencies) quantile(q float64) time.Duration {
	var total int64
	for i := range l.n {
		total += l.n[i].Load()
	}
	if total == 0 {
		return 0
	}
	rank := int64(q*float64(total)+0.5) - 1
	rank = max(rank, 0)
	var seen int64
	for i := range l.n {
		seen += l.n[i].Load()
		if seen > rank {
			return latencyUpper(i)
		}
	}
	return latencyUpper(len(l.n) - 1)
}
