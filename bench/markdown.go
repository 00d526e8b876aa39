package bench

import (
	"fmt"
	"strings"
	"time"
)

// Target is one of the targets, evaluated on a result.
type Target struct {
	Name     string `json:"name"`
	Want     string `json:"want"`
	Measured string `json:"measured"`
	Met      bool   `json:"met"`
}

func (r *Result) find(phase string, n int, lat time.Duration) (Row, bool) {
	for _, row := range r.Rows {
		if row.Phase == phase && row.N == n && (phase == "import" || phase == "preview" || row.Latency == lat) {
			return row, true
		}
	}
	return Row{}, false
}

func (r *Result) sizes() []int {
	var out []int
	for _, row := range r.Rows {
		if row.Phase == "import" {
			out = append(out, row.N)
		}
	}
	return out
}

// Targets evaluates the targets on the rows: import and preview
// rates scaled to 1,000,000 grants (20 s, 8 s), send rates at 0 and 50 ms,
// the ratio to the baseline at 50 ms, peak RSS at every size, and the
// throughput spread between the smallest and the largest size.
func (r *Result) Targets() []Target {
	var ts []Target
	mb := func(k int64) float64 { return float64(k) / 1024 }
	sizes := r.sizes()
	for _, n := range sizes {
		if row, ok := r.find("import", n, 0); ok {
			ts = append(ts, Target{fmt.Sprintf("import %d", n), "≥ 50,000 grants/s (1M in ≤ 20 s)",
				fmt.Sprintf("%.0f grants/s (%s)", row.Rate, row.Wall.Round(10*time.Millisecond)), row.Rate >= 50_000})
		}
		if row, ok := r.find("preview", n, 0); ok {
			ts = append(ts, Target{fmt.Sprintf("preview %d", n), "≥ 125,000 grants/s (1M in ≤ 8 s)",
				fmt.Sprintf("%.0f grants/s (%s)", row.Rate, row.Wall.Round(10*time.Millisecond)), row.Rate >= 125_000})
		}
		for _, lat := range []time.Duration{0, 50 * time.Millisecond} {
			row, ok := r.find("send", n, lat)
			if !ok {
				continue
			}
			want := 8000.0
			if lat > 0 {
				want = 5000
			}
			ts = append(ts, Target{fmt.Sprintf("send %d @%v", n, lat), fmt.Sprintf("≥ %.0f msgs/s", want),
				fmt.Sprintf("%.0f msgs/s", row.Rate), row.Rate >= want})
			if base, ok := r.find("baseline", n, lat); ok && lat == 50*time.Millisecond && base.Rate > 0 {
				ts = append(ts, Target{fmt.Sprintf("engine/baseline %d @%v", n, lat), "≥ 100x",
					fmt.Sprintf("%.0fx (%.0f vs %.1f msgs/s)", row.Rate/base.Rate, row.Rate, base.Rate), row.Rate/base.Rate >= 100})
			}
		}
		var peak int64
		for _, row := range r.Rows {
			if row.N == n && row.Phase != "baseline" {
				peak = max(peak, row.PeakRSS)
			}
		}
		if peak > 0 {
			ts = append(ts, Target{fmt.Sprintf("peak RSS %d", n), "< 200 MB (import, preview, send)", fmt.Sprintf("%.1f MB", mb(peak)), mb(peak) < 200})
		}
	}
	if len(sizes) >= 2 {
		lo, hi := sizes[0], sizes[len(sizes)-1]
		spread := func(name, phase string, lat time.Duration) {
			a, ok1 := r.find(phase, lo, lat)
			b, ok2 := r.find(phase, hi, lat)
			if !ok1 || !ok2 || a.Rate == 0 {
				return
			}
			d := (b.Rate - a.Rate) / a.Rate
			ts = append(ts, Target{fmt.Sprintf("%s %d vs %d", name, lo, hi), "within ±10%",
				fmt.Sprintf("%+.1f%% (%.0f → %.0f %s)", 100*d, a.Rate, b.Rate, a.Unit), d >= -0.10 && d <= 0.10})
		}
		spread("preview", "preview", 0)
		for _, row := range r.Rows {
			if row.Phase == "send" && row.N == lo {
				spread(fmt.Sprintf("send @%v", row.Latency), "send", row.Latency)
			}
		}
	}
	return ts
}

func dur(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(100 * time.Microsecond).String()
	default:
		return d.Round(10 * time.Millisecond).String()
	}
}

// Table returns the rows as a markdown table: phase, N, latency, wall time,
// rate, p50/p99, peak RSS, CPU (child, database server, simulator).
func (r *Result) Table() string {
	var b strings.Builder
	b.WriteString("| phase | N | latency | conc. | count | wall | rate | p50 / p99 | peak RSS MB | CPU s | DB CPU s | sim CPU s | note |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, row := range r.Rows {
		lat, conc, pq, rss, db, sim := "-", "-", "-", "-", "-", "-"
		if row.Phase == "send" || row.Phase == "baseline" {
			lat = row.Latency.String()
			conc = fmt.Sprint(row.Concurrency)
			pq = dur(row.P50) + " / " + dur(row.P99)
		}
		if row.PeakRSS > 0 {
			rss = fmt.Sprintf("%.1f", float64(row.PeakRSS)/1024)
		}
		if row.DBCPU > 0 {
			db = fmt.Sprintf("%.2f", row.DBCPU.Seconds())
		}
		if row.SimCPU > 0 {
			sim = fmt.Sprintf("%.2f", row.SimCPU.Seconds())
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %d | %s | %.0f %s | %s | %s | %.2f | %s | %s | %s |\n",
			row.Phase, row.N, lat, conc, row.Count, dur(row.Wall), row.Rate, row.Unit, pq, rss, row.CPU.Seconds(), db, sim, row.Note)
	}
	return b.String()
}

// Markdown renders the whole result: machine, command, table, targets and
// checks.
func (r *Result) Markdown() string {
	var b strings.Builder
	b.WriteString("# wxcampaign bench results\n\n")
	if r.Machine != "" {
		fmt.Fprintf(&b, "Machine: %s\n\n", r.Machine)
	}
	if r.Command != "" {
		fmt.Fprintf(&b, "Command: `%s`\n\n", r.Command)
	}
	b.WriteString(r.Table())
	if ts := r.Targets(); len(ts) > 0 {
		b.WriteString("\n| target | want | measured | met |\n|---|---|---|---|\n")
		for _, t := range ts {
			met := "yes"
			if !t.Met {
				met = "**no**"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", t.Name, t.Want, t.Measured, met)
		}
	}
	if len(r.Checks) > 0 {
		b.WriteString("\nChecks:\n\n")
		for _, c := range r.Checks {
			mark := "ok"
			if !c.OK {
				mark = "**FAILED**"
			}
			fmt.Fprintf(&b, "- %s %s: %s\n", mark, c.Name, c.Detail)
		}
	}
	return b.String()
}
