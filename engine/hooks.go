package engine

import (
	"context"
	"time"

	"github.com/robfig/cron/v3"
)

// Hooks let the scheduler's owner steer and observe its ticks (the console:
// stored campaign pauses, run reports). A nil field does nothing.
type Hooks struct {
	// Paused is asked at each tick before the run; true skips the tick
	// (the occurrence is not run). Every replica asks the same store, so a
	// stored pause holds everywhere from the next tick on.
	Paused func(ctx context.Context, campaign string, at time.Time) bool
	// Finished is called after each run the scheduler started, with its
	// summary and error (ErrAlreadyRun when another replica ran it).
	Finished func(ctx context.Context, sum Summary, err error)
}

// SetHooks sets the scheduler's hooks; call it before Start.
func (s *Scheduler) SetHooks(h Hooks) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hooks = h
}

// paused asks the Paused hook about the tick of campaign at at.
func (s *Scheduler) paused(ctx context.Context, campaign string, at time.Time) bool {
	s.mu.Lock()
	h := s.hooks.Paused
	s.mu.Unlock()
	if h == nil || !h(ctx, campaign, at) {
		return false
	}
	s.e.log.WithField("campaign", campaign).WithField("occurrence", at.UTC().Format(time.RFC3339)).Info("campaign paused: tick skipped")
	return true
}

// finished hands a run's result to the Finished hook.
func (s *Scheduler) finished(ctx context.Context, sum Summary, err error) {
	s.mu.Lock()
	h := s.hooks.Finished
	s.mu.Unlock()
	if h != nil {
		h(ctx, sum, err)
	}
}

// NextTick is the scheduler's next occurrence of s after now (an "@every"
// schedule is aligned to multiples of its interval), for pages that show
// what the scheduler will do.
func NextTick(s cron.Schedule, now time.Time) time.Time { return nextTick(s, now) }
