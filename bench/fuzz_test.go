package bench

import "testing"

// FuzzParsePreview feeds arbitrary child output to the preview parser: it
// must never panic, and what it accepts has non-negative counts.
func FuzzParsePreview(f *testing.F) {
	f.Add("status preview  grants looked at 1000  duration 1.2s\noutcomes: sent 300, skipped 700\n")
	f.Add("outcomes: \n grants looked at 0  duration 0s")
	f.Add("outcomes: sent 99999999999999999999999")
	f.Fuzz(func(t *testing.T, out string) {
		p, err := parsePreview([]byte(out))
		if err != nil {
			return
		}
		if p.Looked < 0 {
			t.Errorf("looked %d", p.Looked)
		}
		for o, n := range p.Counts {
			if n < 0 {
				t.Errorf("%s %d", o, n)
			}
		}
	})
}

// FuzzParseLists checks that the flag parsers accept only positive sizes
// and latencies in [0, 1m].
func FuzzParseLists(f *testing.F) {
	f.Add("100000,1000000")
	f.Add("0,50ms")
	f.Add("1_000,-1")
	f.Fuzz(func(t *testing.T, s string) {
		if sizes, err := ParseSizes(s); err == nil {
			for _, n := range sizes {
				if n <= 0 {
					t.Errorf("size %d accepted", n)
				}
			}
		}
		if lats, err := ParseLatencies(s); err == nil {
			for _, d := range lats {
				if d < 0 || d > 60e9 {
					t.Errorf("latency %v accepted", d)
				}
			}
		}
	})
}
