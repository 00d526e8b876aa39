package console

import (
	"fmt"
	"html"
	"html/template"
	"strings"
	"time"

	"github.com/wxcampaign/wxcampaign/store"
)

// seriesColors are the chart's colours per outcome (sent, skipped,
// deferred, failed).
var seriesColors = []string{"#07c160", "#b2b2b2", "#fa9d3b", "#fa5151"}

// chart draws runs (newest first) as an inline SVG of stacked bars, oldest
// on the left: sent, skipped, deferred and failed per run. Only numbers and
// escaped text go into the markup.
func chart(runs []store.Run, loc *time.Location) template.HTML {
	if len(runs) == 0 {
		return ""
	}
	if loc == nil {
		loc = time.Local
	}
	const w, h, top, bottom, left = 720, 220, 10, 40, 50
	maxTotal := 1
	for _, r := range runs {
		t := 0
		for _, o := range outcomes {
			t += r.Report.Count(string(o))
		}
		maxTotal = max(maxTotal, t)
	}
	plotH := float64(h - top - bottom)
	slot := float64(w-left-10) / float64(len(runs))
	barW := max(slot*0.7, 1)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" role="img" aria-label="messages per run" viewBox="0 0 %d %d" width="%d" height="%d" xmlns="http://www.w3.org/2000/svg">`, w, h, w, h)
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#ccc"/>`, left, h-bottom, w-10, h-bottom)
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="11" text-anchor="end">%d</text>`, left-4, top+10, maxTotal)
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="11" text-anchor="end">0</text>`, left-4, h-bottom)
	for i := range runs {
		r := runs[len(runs)-1-i] // oldest first
		x := float64(left) + float64(i)*slot + (slot-barW)/2
		y := float64(h - bottom)
		var tip []string
		for k, o := range outcomes {
			n := r.Report.Count(string(o))
			tip = append(tip, fmt.Sprintf("%s %d", o, n))
			if n == 0 {
				continue
			}
			bh := plotH * float64(n) / float64(maxTotal)
			y -= bh
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`, x, y, barW, bh, seriesColors[k])
		}
		label := r.Occurrence.In(loc).Format("01-02 15:04")
		fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%.1f" fill="transparent"><title>run %d %s: %s</title></rect>`,
			x, top, barW, plotH, r.ID, html.EscapeString(label), html.EscapeString(strings.Join(tip, ", ")))
		if len(runs) <= 12 || i%max(1, len(runs)/8) == 0 {
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="10" text-anchor="middle">%s</text>`, x+barW/2, h-bottom+14, html.EscapeString(label))
		}
	}
	for k, o := range outcomes {
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="10" height="10" fill="%s"/><text x="%d" y="%d" font-size="11">%s</text>`,
			left+k*110, h-12, seriesColors[k], left+k*110+14, h-3, o)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // numbers and escaped text only
}
