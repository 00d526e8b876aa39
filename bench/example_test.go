package bench_test

import (
	"fmt"
	"time"

	"github.com/wxcampaign/wxcampaign/bench"
)

// ConcurrencyFor sizes the sends in flight for a simulator latency.
func ExampleConcurrencyFor() {
	for _, lat := range []time.Duration{0, 20 * time.Millisecond, 50 * time.Millisecond} {
		fmt.Println(lat, bench.ConcurrencyFor(lat))
	}
	// Output:
	// 0s 64
	// 20ms 256
	// 50ms 512
}

// A Result evaluates the issue's targets on its rows; Run fills the rows
// by running `wxcampaign` child processes against MariaDB:
//
//	res, err := bench.Run(ctx, bench.Config{Binary: "./wxcampaign", Out: "bench-results",
//		Sizes: []int{100_000, 1_000_000}})
func ExampleResult_Targets() {
	res := &bench.Result{Rows: []bench.Row{
		{Phase: "import", N: 1_000_000, Count: 1_000_000, Wall: 16 * time.Second, Rate: 62_500, Unit: "grants/s", PeakRSS: 60 << 10},
		{Phase: "preview", N: 1_000_000, Count: 1_000_000, Wall: 5 * time.Second, Rate: 200_000, Unit: "grants/s", PeakRSS: 90 << 10},
		{Phase: "send", N: 1_000_000, Latency: 50 * time.Millisecond, Count: 300_000, Rate: 9000, Unit: "msgs/s", WireRate: 20_000},
		{Phase: "baseline", N: 1_000_000, Latency: 50 * time.Millisecond, Count: 300, Rate: 15, Unit: "msgs/s"},
	}}
	for _, t := range res.Targets() {
		fmt.Printf("%s: %s (want %s) met=%v\n", t.Name, t.Measured, t.Want, t.Met)
	}
	// Output:
	// import 1000000: 62500 grants/s (16s) (want ≥ 100,000 grants/s (1M lines in ≤ 10 s)) met=false
	// preview 1000000: 200000 grants/s (5s) (want ≥ 166,667 grants/s (1M in ≤ 6 s)) met=true
	// preview peak RSS 1000000: 90.0 MB (want ≤ 120 MB) met=true
	// send 1000000 @50ms: 9000 msgs/s; wire 20000 msgs/s (want ≥ 8000 msgs/s) met=true
	// engine/baseline 1000000 @50ms: 600x (9000 vs 15.0 msgs/s) (want ≥ 100x (issue 7)) met=true
}
