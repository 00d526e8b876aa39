package engine

import (
	"testing"
	"time"
)

func TestLatencyQuantiles(t *testing.T) {
	tests := []struct {
		name     string
		samples  []time.Duration
		q        float64
		min, max time.Duration
	}{
		{"empty", nil, 0.5, 0, 0},
		{"one", []time.Duration{3 * time.Millisecond}, 0.99, 3 * time.Millisecond, 3200 * time.Microsecond},
		{"sub-16us", []time.Duration{5 * time.Microsecond}, 0.5, 5 * time.Microsecond, 6 * time.Microsecond},
		{"median of 1..100ms", ramp(100), 0.5, 50 * time.Millisecond, 53 * time.Millisecond},
		{"p99 of 1..100ms", ramp(100), 0.99, 99 * time.Millisecond, 105 * time.Millisecond},
		{"huge", []time.Duration{time.Hour}, 0.5, time.Hour, 66 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var l latencies
			for _, d := range tt.samples {
				l.observe(d)
			}
			got := l.quantile(tt.q)
			if got < tt.min || got > tt.max {
				t.Errorf("quantile(%v) = %v, want in [%v, %v]", tt.q, got, tt.min, tt.max)
			}
		})
	}
}

func ramp(n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = time.Duration(i+1) * time.Millisecond
	}
	return out
}

func TestLatencyBucketsMonotonic(t *testing.T) {
	prev := -1
	for us := int64(0); us < 1<<22; us += 1 + us/64 {
		b := latencyBucket(time.Duration(us) * time.Microsecond)
		if b < prev {
			t.Fatalf("bucket(%dus) = %d < %d", us, b, prev)
		}
		if up := latencyUpper(b); up <= time.Duration(us)*time.Microsecond {
			t.Fatalf("upper(bucket(%dus)) = %v, not above the sample", us, up)
		}
		prev = b
	}
}
