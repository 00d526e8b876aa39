package engine

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/robfig/cron/v3"

	wx "github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/campaigns"
)

// Scheduler runs each enabled campaign on its cron schedule, in its zone.
// A tick whose previous run is still going is skipped; the run lease in the
// store makes several replicas run each tick once between them.
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
	var catchUp time.Time
	for {
		now := e.cfg.Now().In(loc)
		next := nextTick(c.Cron, now)
		if !catchUp.IsZero() && catchUp.After(now) && catchUp.Before(next) {
			next = catchUp
		}
		catchUp = time.Time{}
		if next.IsZero() {
			return
		}
		t := time.NewTimer(next.Sub(now))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		// The run gets the scheduler's root context: a reload that stops this
		// loop lets the run finish; only Stop drains it.
		if s.paused(ctx, c.Name, next) {
			continue
		}
		sum, err := e.Run(s.root, c, Options{At: next})
		s.finished(s.root, sum, err)
		if c.QuietHours != nil && sum.Counts[wx.Deferred] > 0 {
			for reason := range sum.Reasons {
				if strings.Contains(reason, reasonQuiet) {
					catchUp = c.QuietHours.End(next, loc)
					break
				}
			}
		}
	}
}

// nextTick is the schedule's next time after now. An "@every" schedule is
// aligned to multiples of its interval since the Unix epoch, so that every
// replica computes the same occurrences (and takes the same run lease).
func nextTick(s cron.Schedule, now time.Time) time.Time {
	if d, ok := s.(cron.ConstantDelaySchedule); ok && d.Delay > 0 {
		return now.Truncate(d.Delay).Add(d.Delay)
	}
	return s.Next(now)
}
