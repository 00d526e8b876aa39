// Package cpumeter measures the process's CPU time for benchmarks: on a
// machine shared with other work, CPU per op is a steadier figure than
// wall time per op.
package cpumeter

import (
	"syscall"
	"testing"
	"time"
)

// Meter is a CPU time reading taken at Start.
type Meter struct{ start time.Duration }

// Now is the process's user plus system CPU time so far (0 if unknown).
func Now() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Start begins a measurement.
func Start() Meter { return Meter{Now()} }

// Report adds "cpu-µs/op" and the ops per second under rateUnit (e.g.
// "sends/s") to b's results.
func (m Meter) Report(b *testing.B, rateUnit string) {
	used := Now() - m.start
	b.ReportMetric(float64(used.Microseconds())/float64(b.N), "cpu-µs/op")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), rateUnit)
}
