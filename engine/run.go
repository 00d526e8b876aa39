package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	wx "github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/campaigns"
	"github.com/wxcampaign/wxcampaign/store"
)

// Options select what a run does.
type Options struct {
	// At is the run's scheduled time (the occurrence, and `now` for the
	// rule); zero means the engine's clock now.
	At time.Time
	// DryRun previews: no reservation, no send, no write.
	DryRun bool
	// OpenID restricts the run to one user's grants (preview only).
	OpenID string
	// Explain attaches an Explanation to every report (preview only).
	Explain bool
	// Report, when set, is called once for every grant looked at, from one
	// goroutine, in batch order.
	Report func(GrantReport)
}

// ErrAlreadyRun reports that the occurrence was run (or is being run) by
// another process or an earlier run.
var ErrAlreadyRun = errors.New("engine: this occurrence already ran or is running elsewhere")

// StopError stops a run: the campaign or the engine is misconfigured.
type StopError struct{ Reason string }

func (e *StopError) Error() string { return "run stopped: " + e.Reason }

// run is the state of one run.
type run struct {
	e         *Engine
	c         *campaigns.Campaign
	opt       Options
	at        time.Time // scheduled time, in the campaign's zone
	occ       time.Time // occurrence key (UTC, second precision)
	holder    string
	sum       *Summary
	seen      map[uint64]int32 // in-run dedup: hash of openid|template -> messages
	sim       map[uint64]int32 // preview: simulated cap takes per hashed scope key
	repeat    map[uint64]bool  // preview: hashed openids of RepeatUsers; nil in a live run
	pending   map[uint64]int32 // live: cap takes of items admitted and not yet marked
	capMu     sync.RWMutex     // live: held to read (CheckCaps + pending) or commit marks
	holdCP    bool             // a batch was held back: the checkpoint stays put
	cpBatches int              // batches recorded since the checkpoint last moved
	cpAt      time.Time        // when it last moved
	facts     factCache        // fact rows read by this run, under factMu
	factMu    sync.Mutex
	options   map[string]string // Message.Options of every message
	mu        sync.Mutex
	stopErr   error
	failErr   error // the store failed the run (not the campaign): resumable
	paused    time.Time
	lat       latencies // send-call latencies, for the summary
	// Under mu: what the run's sends tell about the campaign.
	delivered  int             // sends answered 0
	failReason wx.Reason       // the reason of the latest failures in a row
	failRun    int             // how many in a row, while nothing was delivered
	badPages   map[string]bool // pages WeChat refused (41030)
}

// item is one grant on its way to WeChat.
type item struct {
	g       wx.Grant
	msg     Message
	report  GrantReport
	decided bool     // the report is final before dispatch
	marked  bool     // its send_log row is in flight (set by the worker that marked it)
	pending []uint64 // cap counters in r.pending this item holds until it is marked
}

type batch struct {
	items  []*item
	lastID int64
	// credits are the users' active credits of the template when a
	// campaign of higher priority reserves some (share.go); nil otherwise.
	credits map[string]int
}

// Run runs campaign c once at opt.At. A live run takes the occurrence's run
// lease (ErrAlreadyRun when another process has it or it is done), walks
// the grants and records every outcome. A dry run writes nothing.
func (e *Engine) Run(ctx context.Context, c *campaigns.Campaign, opt Options) (Summary, error) {
	start := e.cfg.Now()
	at := opt.At
	if at.IsZero() {
		at = start
	}
	loc := c.Location
	if loc == nil {
		loc = time.Local
	}
	at = at.In(loc)
	occ := at.Truncate(time.Second).UTC()
	r := &run{
		e: e, c: c, opt: opt, at: at, occ: occ,
		holder:  fmt.Sprintf("%s/%s/%d", e.cfg.Holder, c.Name, occ.Unix()),
		sum:     newSummary(c.Name, occ, opt.DryRun),
		seen:    map[uint64]int32{},
		sim:     map[uint64]int32{},
		pending: map[uint64]int32{},
		// One map for every message of the run: senders only read it.
		options: map[string]string{"state": or(c.Template.State, e.cfg.State), "lang": or(c.Template.Lang, e.cfg.Lang)},
	}
	if !opt.DryRun && (opt.OpenID != "" || opt.Explain) {
		return *r.sum, errors.New("engine: --openid and explain are preview-only")
	}
	if !opt.DryRun && e.sender == nil {
		return *r.sum, errors.New("engine: no WeChat sender configured")
	}
	err := r.execute(ctx)
	r.sum.Duration = e.cfg.Now().Sub(start)
	if secs := r.sum.Duration.Seconds(); secs > 0 {
		r.sum.PerSecond = float64(r.sum.Counts[wx.Sent]) / secs
	}
	r.sum.SendP50, r.sum.SendP99 = r.lat.quantile(0.5), r.lat.quantile(0.99)
	if err != nil {
		r.sum.Error = err.Error()
	}
	e.cfg.Metrics.observeRun(r.sum)
	log := e.log.WithFields(map[string]any{
		"campaign": c.Name, "occurrence": occ.Format(time.RFC3339), "dry_run": opt.DryRun,
		"status": r.sum.Status, "looked": r.sum.Looked, "sent": r.sum.Counts[wx.Sent],
		"duration": r.sum.Duration.String(),
	})
	if err != nil && !errors.Is(err, ErrAlreadyRun) {
		log.WithError(err).Error("run failed")
	} else {
		log.Info("run finished")
	}
	return *r.sum, err
}

func (r *run) execute(ctx context.Context) error {
	e := r.e
	if r.opt.DryRun {
		r.sum.Status = "preview"
		err := r.walk(ctx, 0, nil)
		if err == nil && r.stopErr != nil {
			// What stops a send (a fact query failing, ...) stops its
			// preview with the same error.
			r.sum.Status = "stopped"
			err = r.stopErr
		}
		return err
	}
	now := e.cfg.Now()
	var rn store.Run
	var ok bool
	err := e.retry(ctx, "acquire run", func() error {
		var err error
		rn, ok, err = e.store.AcquireRun(ctx, r.c.Name, r.occ, r.holder, now, now.Add(e.cfg.Lease))
		return err
	})
	if err != nil {
		r.sum.Status = "error"
		return err
	}
	if !ok {
		r.sum.Status = "already run"
		return ErrAlreadyRun
	}
	if until, why, err := e.store.PausedUntil(ctx, e.quotaKey(), now); err == nil && !until.IsZero() {
		r.sum.Status = "paused until " + until.Format(time.RFC3339) + ": " + why
		r.release(ctx)
		return nil
	}
	e.resolveStale(ctx)

	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	hbDone := make(chan struct{})
	go r.heartbeat(runCtx, cancel, hbDone)
	d := r.newDispatcher(runCtx)
	err = r.walk(runCtx, rn.Checkpoint, d)
	d.close()
	cancel(nil)
	<-hbDone

	bg := context.WithoutCancel(ctx)
	switch {
	case err == nil && r.failErr != nil:
		// The store gave up mid-run (an outage past the engine's wait):
		// interrupted, so the occurrence resumes from its checkpoint.
		r.sum.Status = "interrupted"
		err = r.failErr
	case err == nil && r.stopErr == nil && r.paused.IsZero() && ctx.Err() == nil:
		r.sum.Status = "done"
	case !r.paused.IsZero():
		r.sum.Status = "paused until " + r.paused.Format(time.RFC3339)
	case r.stopErr != nil:
		r.sum.Status = "stopped"
		err = r.stopErr
	default:
		r.sum.Status = "interrupted"
		if err == nil {
			err = context.Cause(ctx)
		}
	}
	if r.sum.Status == "interrupted" {
		// Let another process (or the next start) resume from the checkpoint.
		r.release(bg)
		return err
	}
	ferr := e.retry(bg, "finish run", func() error {
		return e.store.FinishRun(bg, r.c.Name, r.occ, r.holder, r.sum.Status)
	})
	if err == nil {
		err = ferr
	}
	return err
}

// repeatAfter is how many in-run counters (r.seen and r.sim) a preview
// keeps for every user before it keeps them only for its repeat users: a
// short preview (the console's first cards, one user's view) is spared
// the scan of RepeatUsers.
const repeatAfter = 1 << 16

// onlyRepeatUsers switches a preview to counting only the users it may
// meet more than once (store.RepeatUsers), once its counters pass
// repeatAfter. A user met once is never looked up again, so its counts
// would only hold memory (about 50 MB at a million grants); keeping just
// these users keeps a preview's memory flat in the number of grants. The
// counters of the other users are dropped. A grant that arrives while the
// preview walks, for a user met once before it, is not counted against
// the first: the preview is of the grants there when it began. Called
// from admit, which owns the counters.
func (r *run) onlyRepeatUsers(ctx context.Context) error {
	if !r.opt.DryRun || r.repeat != nil || len(r.seen)+len(r.sim) <= r.e.repeatAfter {
		return nil
	}
	var users []string
	err := r.e.retry(ctx, "repeat users", func() error {
		var err error
		users, err = r.e.store.RepeatUsers(ctx, r.c.Template.ID)
		return err
	})
	if err != nil {
		return err
	}
	tpl, limits := r.c.Template.ID, r.limits()
	repeat := make(map[uint64]bool, len(users))
	seen := make(map[uint64]int32, len(users))
	sim := make(map[uint64]int32, len(users)*len(limits))
	keep := func(from, to map[uint64]int32, k uint64) {
		if n, ok := from[k]; ok {
			to[k] = n
		}
	}
	for _, u := range users {
		repeat[hashKey(u)] = true
		keep(r.seen, seen, hashKey(u, tpl))
		for _, l := range limits {
			keep(r.sim, sim, capKey(l, u, tpl))
		}
	}
	for _, l := range limits {
		if l.Scope == store.ScopeTemplate { // one counter for all users
			keep(r.sim, sim, capKey(l, "", tpl))
		}
	}
	r.repeat, r.seen, r.sim = repeat, seen, sim
	return nil
}

// counts tells whether the run keeps in-run counts for openid: always in
// a live run, only for the repeat users in a preview. A hash collision
// counts a user it need not, never the reverse.
func (r *run) counts(openid string) bool {
	return r.repeat == nil || r.repeat[hashKey(openid)]
}

// release gives the run lease up so another process can resume at once.
func (r *run) release(ctx context.Context) {
	_ = r.e.store.ExtendRun(ctx, r.c.Name, r.occ, r.holder, r.e.cfg.Now().Add(-time.Second))
}

func (r *run) heartbeat(ctx context.Context, cancel context.CancelCauseFunc, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(r.e.cfg.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			until := r.e.cfg.Now().Add(r.e.cfg.Lease)
			if err := r.e.store.ExtendRun(ctx, r.c.Name, r.occ, r.holder, until); err != nil {
				if errors.Is(err, store.ErrLeaseLost) {
					cancel(fmt.Errorf("engine: run lease lost: %w", err))
					return
				}
				r.e.log.WithError(err).Warn("extend run lease")
				continue
			}
		}
	}
}

func (r *run) stopped() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stopErr != nil || r.failErr != nil || !r.paused.IsZero()
}

// fail ends the run after the sends in flight because the store failed;
// the run is interrupted, not stopped (see execute).
func (r *run) fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failErr == nil {
		r.failErr = err
	}
}

// stop ends the run after the sends in flight; err is a StopError or nil
// for a quota pause.
func (r *run) stop(err error, pausedUntil time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopErr == nil && err != nil {
		r.stopErr = err
	}
	if !pausedUntil.IsZero() && r.paused.IsZero() {
		r.paused = pausedUntil
	}
}
