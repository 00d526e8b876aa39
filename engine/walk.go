package engine

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"

	wx "github.com/wxcampaign/wxcampaign"
)

// walk pages the template's grants from after on, prepares each batch and
// hands it to the dispatcher (nil for a dry run). Preparing the next batch
// overlaps with sending the current one.
func (r *run) walk(ctx context.Context, after int64, d *dispatcher) error {
	size := r.c.BatchSize
	if size <= 0 {
		size = 500
	}
	// Three stages overlap: a pager reads the next page while the current
	// one is prepared (facts, rule, render, claim); prepared batches are
	// dispatched as they come, several in flight at once; a recorder
	// records them in order, so the checkpoint only ever moves past
	// batches whose every outcome is recorded.
	pctx, stopPager := context.WithCancel(ctx)
	defer stopPager()
	pages := make(chan []wx.Grant, 1)
	var pageErr error
	go func() {
		defer close(pages)
		for pctx.Err() == nil && !r.stopped() {
			var grants []wx.Grant
			err := r.e.retry(pctx, "list grants", func() error {
				var err error
				grants, err = r.e.store.ListAvailable(pctx, r.c.Template.ID, after, size, r.e.cfg.Now())
				return err
			})
			if err != nil || len(grants) == 0 {
				if pctx.Err() == nil {
					pageErr = err
				}
				return
			}
			after = grants[len(grants)-1].ID
			select {
			case pages <- grants:
			case <-pctx.Done():
				return
			}
		}
	}()

	sending := make(chan *sending, maxBatchesInFlight)
	budget := sendBudget(r.e.cfg.Concurrency, size)
	var sendErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for s := range sending {
			if err := r.record(ctx, s, d != nil); err != nil && sendErr == nil {
				sendErr = err
			}
			budget.Release(s.budget)
		}
	}()
	// The next batches are evaluated (facts, rule, render), several at
	// once, while this one is admitted (dedup, caps, claim): their
	// database waits overlap. Admit takes them in batch order. One batch
	// waits for admit beyond those being evaluated: as fast as more, and
	// 4-8 MB less at a million grants.
	evaluated := make(chan *evaluation, 1)
	go func() {
		work := make(chan *evaluation, evaluators)
		var running sync.WaitGroup
		for range evaluators {
			running.Add(1)
			go func() { // one evaluator, with its own rule environment
				defer running.Done()
				env := r.c.Program.NewEnv()
				for ev := range work {
					ev.b, ev.err = r.evaluate(pctx, env, ev.grants)
					if ev.err == nil {
						ev.b.lastID = ev.grants[len(ev.grants)-1].ID
					}
					close(ev.done)
				}
			}()
		}
		defer func() {
			close(work)
			running.Wait()
			close(evaluated)
		}()
		for grants := range pages {
			if pctx.Err() != nil || r.stopped() {
				return
			}
			ev := &evaluation{grants: grants, done: make(chan struct{})}
			select { // in batch order for admit, then to an evaluator
			case evaluated <- ev:
			case <-pctx.Done():
				return
			}
			select {
			case work <- ev:
			case <-pctx.Done():
				ev.err = pctx.Err() // never evaluated: the run is ending
				close(ev.done)
				return
			}
		}
	}()
	var evalErr error
	var err error
	for ev := range evaluated {
		<-ev.done
		if ev.err != nil {
			if pctx.Err() == nil {
				evalErr = ev.err
			}
			break
		}
		b := ev.b
		if ctx.Err() != nil || r.stopped() {
			break
		}
		if err = r.admit(ctx, b); err != nil {
			break
		}
		var n int64
		if d != nil {
			// Not cancelled with ctx: an admitted batch is dispatched even
			// when the run is ending, so that each of its grants leaves with
			// an outcome (deferred by the shutdown); the recorder gives the
			// budget back as batches are recorded.
			n = min(int64(b.sends()), budget.size)
			if err = budget.Acquire(context.WithoutCancel(ctx), n); err != nil {
				break
			}
		}
		s := r.dispatch(b, d)
		s.budget = n
		sending <- s
	}
	stopPager()
	for range evaluated {
	}
	for range pages {
	}
	if err == nil {
		err = evalErr
	}
	var se *StopError
	if errors.As(err, &se) {
		r.stop(err, time.Time{})
		err = nil
	}
	close(sending)
	wg.Wait()
	if err == nil {
		err = pageErr
	}
	if err == nil {
		err = sendErr
	}
	if err == nil && ctx.Err() != nil {
		err = context.Cause(ctx)
	}
	return err
}

// evaluation is a page of grants being evaluated; done is closed when b
// or err is set.
type evaluation struct {
	grants []wx.Grant
	b      *batch
	err    error
	done   chan struct{}
}

// evaluators is how many batches a run evaluates at once: facts, rule and
// render of one batch overlap with the database waits of another.
var evaluators = max(2, min(4, runtime.GOMAXPROCS(0)))

// maxBatchesInFlight bounds the batches dispatched but not yet recorded
// (the recorder records them in order); the send budget bounds their
// sends.
const maxBatchesInFlight = 32

// budget bounds the sends dispatched and not yet recorded: enough to keep
// every worker busy while the oldest batch waits for its slowest send (at
// 50 ms and 512 workers, four batches of 150 sends left most workers idle),
// and a bounded amount of memory.
type budget struct {
	*semaphore.Weighted
	size int64
}

func sendBudget(concurrency, batchSize int) budget {
	n := int64(max(4*concurrency, 2*batchSize))
	return budget{semaphore.NewWeighted(n), n}
}
