package bench

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseSizes parses a comma-separated list of positive grant counts
// ("100000,1000000"; "_" separators allowed).
func ParseSizes(s string) ([]int, error) {
	var out []int
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		n, err := strconv.ParseInt(strings.ReplaceAll(part, "_", ""), 10, 0)
		if err != nil || n <= 0 || n > 1e9 {
			return nil, fmt.Errorf("bench: size %q: want a count between 1 and 1e9", part)
		}
		out = append(out, int(n))
	}
	return out, nil
}

// ParseLatencies parses a comma-separated list of non-negative durations
// ("0,50ms").
func ParseLatencies(s string) ([]time.Duration, error) {
	var out []time.Duration
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		d, err := time.ParseDuration(part)
		if err != nil || d < 0 || d > time.Minute {
			return nil, fmt.Errorf("bench: latency %q: want a duration between 0 and 1m (e.g. 0,50ms)", part)
		}
		out = append(out, d)
	}
	return out, nil
}
