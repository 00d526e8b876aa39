package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wxcampaign/wxcampaign/campaigns"
	"github.com/wxcampaign/wxcampaign/engine"
)

// progress draws a progress bar on a terminal: done / total, rate and time
// left, redrawn at most every 100 ms on one line. A nil *progress draws
// nothing (stderr is not a terminal, or the output is JSON).
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	what  string
	total int64
	done  int64
	start time.Time
	drawn time.Time
	now   func() time.Time
	width int
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// newProgress returns a bar on g.stderr for total units of what, or nil
// when stderr is not a terminal or format is json.
func (g *globals) newProgress(format, what string, total int64) *progress {
	if format == "json" || total <= 0 || !isTerminal(g.stderr) {
		return nil
	}
	now := time.Now
	return &progress{w: g.stderr, what: what, total: total, start: now(), now: now, width: 30}
}

// add counts n more units done.
func (p *progress) add(n int64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done += n
	if t := p.now(); t.Sub(p.drawn) >= 100*time.Millisecond || p.done >= p.total {
		p.drawn = t
		p.draw(t)
	}
}

func (p *progress) draw(t time.Time) {
	done := min(p.done, p.total)
	filled := int(int64(p.width) * done / p.total)
	elapsed := t.Sub(p.start).Seconds()
	rate := 0.0
	if elapsed > 0 {
		rate = float64(p.done) / elapsed
	}
	left := "--"
	if rate > 0 && done < p.total {
		left = (time.Duration(float64(p.total-done)/rate) * time.Second).Round(time.Second).String()
	} else if done >= p.total {
		left = "0s"
	}
	fmt.Fprintf(p.w, "\r[%s%s] %d/%d %s  %.0f/s  %s left\x1b[K", strings.Repeat("#", filled), strings.Repeat(".", p.width-filled),
		done, p.total, p.what, rate, left)
}

// finish draws the last state and ends the line.
func (p *progress) finish() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.draw(p.now())
	fmt.Fprintln(p.w)
}

// countingReader counts the bytes read through it into a progress bar.
type countingReader struct {
	r io.Reader
	p *progress
}

func (c countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.p.add(int64(n))
	return n, err
}

// progressFor is the bar of a preview or send of c: grants looked at out of
// the template's available grants (none for one user's preview).
func (a *app) progressFor(ctx context.Context, g *globals, format string, c *campaigns.Campaign, openid string) *progress {
	if openid != "" || format == "json" || !isTerminal(g.stderr) {
		return nil
	}
	n, err := a.db.CountAvailable(ctx, c.Template.ID, time.Now())
	if err != nil {
		return nil
	}
	return g.newProgress(format, "grants", int64(n))
}

// wrap counts each grant report into the bar.
func (p *progress) wrap(next func(engine.GrantReport)) func(engine.GrantReport) {
	if p == nil {
		return next
	}
	return func(r engine.GrantReport) {
		next(r)
		p.add(1)
	}
}

// importProgress wraps the import file in a bar of bytes read.
func (g *globals) importProgress(f *os.File) (io.Reader, *progress) {
	st, err := f.Stat()
	if err != nil {
		return f, nil
	}
	p := g.newProgress("table", "bytes", st.Size())
	if p == nil {
		return f, nil
	}
	return countingReader{r: f, p: p}, p
}
