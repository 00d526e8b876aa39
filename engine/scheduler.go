package engine

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/robfig/cron/v3"

	wx "github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/campaigns"
	"github.com/wxcampaign/wxcampaign/store"
)

// Scheduler runs each enabled campaign on its cron schedule, in its zone.
// Each local wall-clock occurrence runs once: a time that a daylight saving
// jump skips runs at the first instant after the gap, a time that occurs
// twice runs at the first. A tick whose previous run is still going is
// missed; so is every tick while the scheduler is down. The campaign's
// misfire policy says what happens to missed ticks: run_once runs the latest
// one within misfire_window once, skip skips them. The run lease in the
// store, keyed by (campaign, occurrence), makes several replicas run each
// occurrence once between them, the missed ones included.
type Scheduler struct {
	e     *Engine
	root  context.Context
	stop  context.CancelFunc
	mu    sync.Mutex
	loops map[string]*loop
	wg    sync.WaitGroup
	hooks Hooks
}

type loop struct {
	c      *campaigns.Campaign
	cancel context.CancelFunc
}

// runHistory is what the misfire policy asks the store: the latest run of a
// campaign, to tell a missed occurrence from one of a campaign that was not
// scheduled yet. *store.DB implements it.
type runHistory interface {
	ListRuns(ctx context.Context, campaign string, limit int) ([]store.Run, error)
}

var _ runHistory = (*store.DB)(nil)

// NewScheduler returns a scheduler; call Start, then Apply with campaigns.
func NewScheduler(e *Engine) *Scheduler {
	return &Scheduler{e: e, loops: map[string]*loop{}}
}

// Start begins scheduling under ctx; cancelling ctx is the same as Stop.
func (s *Scheduler) Start(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.root, s.stop = context.WithCancel(ctx)
}

// Apply replaces the scheduled set: new and changed campaigns start,
// removed or disabled ones stop (a run in progress finishes first).
func (s *Scheduler) Apply(cs []*campaigns.Campaign) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.root == nil || s.root.Err() != nil {
		return
	}
	want := map[string]*campaigns.Campaign{}
	for _, c := range cs {
		if c.Enabled {
			want[c.Name] = c
		}
	}
	for name, l := range s.loops {
		if c, ok := want[name]; !ok || c != l.c {
			l.cancel()
			delete(s.loops, name)
		}
	}
	for name, c := range want {
		if _, ok := s.loops[name]; ok {
			continue
		}
		ctx, cancel := context.WithCancel(s.root)
		s.loops[name] = &loop{c: c, cancel: cancel}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.run(ctx, c)
		}()
	}
}

// Stop stops scheduling and waits for runs in progress to drain: sends in
// flight finish, unsent reservations are released. A second Stop is a no-op.
func (s *Scheduler) Stop() {
	s.mu.Lock()
	if s.stop != nil {
		s.stop()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *Scheduler) run(ctx context.Context, c *campaigns.Campaign) {
	e := s.e
	loc := c.Location
	if loc == nil {
		loc = time.Local
	}
	// last is the latest occurrence this loop ran; zero at start, when the
	// store tells what ran before.
	var last, catchUp time.Time
	for {
		now := e.cfg.Now().In(loc)
		if missed := s.missed(ctx, c, last, now); !missed.IsZero() {
			e.log.WithFields(map[string]any{"campaign": c.Name, "occurrence": missed.UTC().Format(time.RFC3339),
				"late": now.Sub(missed).Round(time.Second).String()}).Info("misfire: running the missed occurrence once")
			s.runAt(c, missed, loc, &catchUp)
			last = missed
			continue
		}
		// Never the same occurrence twice from one loop, even if the clock
		// steps back.
		next := nextTick(c.Cron, later(now, last))
		if !catchUp.IsZero() && catchUp.After(now) && catchUp.Before(next) {
			next = catchUp
		}
		catchUp = time.Time{}
		if next.IsZero() {
			return
		}
		t := time.NewTimer(max(next.Sub(now), 0))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if ctx.Err() != nil {
			return
		}
		s.runAt(c, next, loc, &catchUp)
		last = next
	}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b.In(a.Location())
	}
	return a
}

// runAt runs c's occurrence at and sets *catchUp when quiet hours deferred
// messages: the end of the window, when the campaign runs again.
func (s *Scheduler) runAt(c *campaigns.Campaign, at time.Time, loc *time.Location, catchUp *time.Time) {
	// The run gets the scheduler's root context: a reload that stops this
	// loop lets the run finish; only Stop drains it.
	if s.paused(s.root, c.Name, at) {
		return // a paused campaign skips the tick; it is not caught up later
	}
	sum, err := s.e.Run(s.root, c, Options{At: at})
	s.finished(s.root, sum, err)
	if c.QuietHours != nil && sum.Reasons[ReasonKey(wx.Deferred, wx.ReasonQuietHours)] > 0 {
		*catchUp = c.QuietHours.End(at, loc)
	}
}

// missed returns the occurrence the misfire policy runs now, or zero: the
// latest occurrence after last and at most misfire_window before now. At
// the start of a loop (last zero) it counts only if the campaign ran before
// it (a new campaign misses nothing) and has not run it yet.
func (s *Scheduler) missed(ctx context.Context, c *campaigns.Campaign, last, now time.Time) time.Time {
	if c.Misfire == campaigns.MisfireSkip || ctx.Err() != nil {
		return time.Time{}
	}
	window := c.MisfireWindow
	if window <= 0 {
		window = campaigns.DefaultMisfireWindow
	}
	from := now.Add(-window - time.Nanosecond)
	if last.After(from) {
		from = last
	}
	m := latestBetween(c.Cron, from, now)
	if m.IsZero() || !last.IsZero() {
		return m
	}
	h, ok := s.e.store.(runHistory)
	if !ok {
		return m // the run lease still runs it at most once
	}
	runs, err := h.ListRuns(ctx, c.Name, 1)
	if err != nil {
		s.e.log.WithError(err).WithField("campaign", c.Name).Error("misfire: cannot read the campaign's runs; running the missed occurrence (the run lease keeps it once)")
		return m
	}
	if len(runs) == 0 || !runs[0].Occurrence.Before(m.Truncate(time.Second)) {
		return time.Time{} // never ran (a new campaign), or ran it already
	}
	return m
}

// maxSteps bounds the walks over a schedule's occurrences.
const maxSteps = 1 << 20

// latestBetween is the latest occurrence t of s with from < t <= now, or
// zero.
func latestBetween(s cron.Schedule, from, now time.Time) time.Time {
	if d, ok := s.(cron.ConstantDelaySchedule); ok && d.Delay > 0 {
		if t := now.Truncate(d.Delay); t.After(from) {
			return t
		}
		return time.Time{}
	}
	var out time.Time
	for t, i := nextTick(s, from), 0; !t.IsZero() && !t.After(now) && i < maxSteps; t, i = nextTick(s, t), i+1 {
		out = t
	}
	return out
}

// nextTick is the schedule's next time after now. An "@every" schedule is
// aligned to multiples of its interval since the Unix epoch, so that every
// replica computes the same occurrences (and takes the same run lease). A
// cron spec runs on the wall clock of its zone (see nextWall).
func nextTick(s cron.Schedule, now time.Time) time.Time {
	switch s := s.(type) {
	case cron.ConstantDelaySchedule:
		if s.Delay > 0 {
			return now.Truncate(s.Delay).Add(s.Delay)
		}
	case *cron.SpecSchedule:
		return nextWall(s, now)
	}
	return s.Next(now)
}

// nextWall is the first instant after now of spec's next local wall-clock
// occurrence, in spec's zone (now's zone when spec has none). The spec is
// evaluated on wall-clock times, which have no daylight saving jumps; each
// wall time then becomes an instant: a time the clocks skip becomes the
// first instant after the gap, a time they repeat becomes its first
// instant. So each wall-clock occurrence runs once, whatever the zone does.
func nextWall(spec *cron.SpecSchedule, now time.Time) time.Time {
	loc := spec.Location
	if loc == nil || loc == time.Local {
		loc = now.Location()
	}
	ws := *spec
	ws.Location = time.UTC
	w := wallOf(now.In(loc))
	for range maxSteps {
		w = ws.Next(w)
		if w.IsZero() {
			return time.Time{}
		}
		// Occurrences that a gap folds onto one instant, or the first
		// instance of a repeated time already past, are not after now.
		if t := instantOf(w, loc); t.After(now) {
			return t.In(now.Location())
		}
	}
	return time.Time{}
}

// wallOf returns t's wall clock in its zone as a UTC time (a time with no
// daylight saving).
func wallOf(t time.Time) time.Time {
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	return time.Date(y, mo, d, h, mi, s, t.Nanosecond(), time.UTC)
}

// instantOf maps a wall-clock time w (a UTC time, see wallOf) to an instant
// in loc: the instant itself when the wall time occurs once, the first
// instant after the gap when the clocks skip it, the first of the two when
// they repeat it.
func instantOf(w time.Time, loc *time.Location) time.Time {
	y, mo, d := w.Date()
	h, mi, s := w.Clock()
	t := time.Date(y, mo, d, h, mi, s, w.Nanosecond(), loc)
	if got := wallOf(t); !got.Equal(w) {
		// In a gap: time.Date normalised w to one side of it.
		start, end := t.ZoneBounds()
		if got.After(w) {
			return start
		}
		return end
	}
	// Repeated: the clocks went back at the start of t's zone and w also
	// occurred, earlier, in the zone before.
	start, _ := t.ZoneBounds()
	if start.IsZero() {
		return t
	}
	_, prev := start.Add(-time.Nanosecond).Zone()
	_, cur := t.Zone()
	if prev > cur {
		if e := t.Add(time.Duration(cur-prev) * time.Second); e.Before(start) && wallOf(e.In(loc)).Equal(w) {
			return e
		}
	}
	return t
}

// DSTNote is one daylight saving transition that changes when a schedule
// runs.
type DSTNote struct {
	Wall time.Time // the affected local wall-clock occurrence, written as a UTC time
	Runs time.Time // the instant it runs at instead
	Gap  bool      // true: the clocks skip Wall; false: they repeat it
}

// String describes the note for `validate`.
func (n DSTNote) String() string {
	const f = "2006-01-02 15:04"
	if n.Gap {
		return fmt.Sprintf("%s does not exist (clocks go forward): it runs at %s", n.Wall.Format(f), n.Runs.Format("15:04 MST"))
	}
	return fmt.Sprintf("%s happens twice (clocks go back): it runs once, at the first (%s)", n.Wall.Format(f), n.Runs.Format("15:04 MST"))
}

// DSTNotes lists the occurrences of s in loc that daylight saving moves or
// folds between from and to: at most one note per transition (the first
// affected occurrence). An "@every" schedule counts real time and is never
// affected.
func DSTNotes(s cron.Schedule, loc *time.Location, from, to time.Time) []DSTNote {
	spec, ok := s.(*cron.SpecSchedule)
	if !ok || loc == nil {
		return nil
	}
	if spec.Location != nil && spec.Location != time.Local {
		loc = spec.Location
	}
	ws := *spec
	ws.Location = time.UTC
	var out []DSTNote
	for t, i := from.In(loc), 0; t.Before(to) && i < 1000; i++ {
		_, end := t.ZoneBounds()
		if end.IsZero() || !end.Before(to) {
			break
		}
		_, before := end.Add(-time.Nanosecond).In(loc).Zone()
		_, after := end.In(loc).Zone()
		t = end.In(loc)
		if before == after {
			continue
		}
		// The wall times the transition skips or repeats: [lo, hi).
		base := end.UTC()
		lo, hi := base.Add(time.Duration(before)*time.Second), base.Add(time.Duration(after)*time.Second)
		gap := after > before
		if !gap {
			lo, hi = hi, lo
		}
		w := ws.Next(lo.Add(-time.Nanosecond))
		if w.IsZero() || !w.Before(hi) {
			continue
		}
		out = append(out, DSTNote{Wall: w, Runs: instantOf(w, loc).In(loc), Gap: gap})
	}
	return out
}
