package engine

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"golang.org/x/time/rate"

	wx "github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/store"
)

// limiter is the process-wide send rate; nil rate.Limiter = unlimited.
type limiter struct{ l *rate.Limiter }

func newLimiter(perSecond float64) *limiter {
	if perSecond <= 0 {
		return &limiter{}
	}
	burst := int(perSecond / 10)
	if burst < 1 {
		burst = 1
	}
	return &limiter{l: rate.NewLimiter(rate.Limit(perSecond), burst)}
}

func (l *limiter) wait(ctx context.Context) error {
	if l.l == nil {
		return ctx.Err()
	}
	return l.l.Wait(ctx)
}

// userLocks keeps one send in flight per openid across the runs of one
// engine (WeChat answers 43108 to overlapping sends): a send holds the
// stripe of its openid from its mark to its answer. Two openids of one
// stripe wait for each other; with 16,384 stripes and 512 workers about
// eight pairs of workers share a stripe at any moment.
type userLocks [16384]sync.Mutex

func (l *userLocks) lock(openid string) func() {
	m := &l[hashKey(openid)%uint64(len(l))]
	m.Lock()
	return m.Unlock
}

// dispatcher sends items with a bounded pool of workers sharing one queue:
// the next user's send goes to the next free worker, so one slow send
// holds back no other (with a worker per openid, the unluckiest worker of
// a batch had four or five sends in a row and the batch waited for all of
// them). A user's sends go in dispatch order (grant order, as preview
// decided them), one at a time: a send dispatched while the same openid
// has one queued or in flight waits in that user's line and is taken by
// the worker that finishes the one before. Across runs a send also holds
// its user lock.
type dispatcher struct {
	r     *run
	ctx   context.Context
	jobs  chan job
	wg    sync.WaitGroup
	marks *marker

	mu    sync.Mutex
	lines map[string][]job // openids with a send queued or in flight: the sends waiting behind it
}

type job struct {
	it   *item
	res  *store.Result
	done *sync.WaitGroup
}

func (r *run) newDispatcher(ctx context.Context) *dispatcher {
	n := r.e.cfg.Concurrency
	d := &dispatcher{r: r, ctx: ctx, jobs: make(chan job, n), marks: r.newMarker(ctx), lines: map[string][]job{}}
	for range n {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			for j := range d.jobs {
				for ok := true; ok; j, ok = d.next(j.it.g.OpenID) {
					*j.res = d.send(j.it)
					j.done.Done()
				}
			}
		}()
	}
	return d
}

// enqueue hands j to the workers, or puts it in its user's line when the
// user has a send queued or in flight.
func (d *dispatcher) enqueue(j job) {
	openid := j.it.g.OpenID
	d.mu.Lock()
	if line, busy := d.lines[openid]; busy {
		d.lines[openid] = append(line, j)
		d.mu.Unlock()
		return
	}
	d.lines[openid] = nil
	d.mu.Unlock()
	d.jobs <- j
}

// next returns the send waiting behind openid's finished one, if any, or
// frees the user.
func (d *dispatcher) next(openid string) (job, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	line := d.lines[openid]
	if len(line) == 0 {
		delete(d.lines, openid)
		return job{}, false
	}
	d.lines[openid] = line[1:]
	return line[0], true
}

func (d *dispatcher) close() {
	close(d.jobs)
	d.wg.Wait()
	d.marks.close()
}

// send delivers one message with retries; it never returns before the
// outcome is known, and a send in flight finishes even when ctx ends. The
// first try marks the send in flight (store.BeginSends, with its caps)
// just before the request is written: a grant whose send never started is
// never marked, and a mark that proves nothing was sent is deleted when
// the batch is recorded.
func (d *dispatcher) send(it *item) store.Result {
	r, e := d.r, d.r.e
	defer func() {
		if it.pending != nil { // never marked: its admitted cap takes are gone
			r.capMu.Lock()
			r.unpend(it)
			r.capMu.Unlock()
		}
	}()
	for attempt := 1; ; attempt++ {
		if r.stopped() {
			return store.Result{Outcome: wx.Skipped, Reason: wx.ReasonRunStopped}
		}
		if err := e.limit.wait(d.ctx); err != nil {
			return store.Result{Outcome: wx.Deferred, Reason: wx.ReasonShutdown}
		}
		unlock := e.users.lock(it.g.OpenID)
		if !it.marked {
			if res, ok := d.begin(it); !ok {
				unlock()
				return res
			}
		}
		start := time.Now()
		msgid, err := e.sender.Send(context.WithoutCancel(d.ctx), it.msg)
		unlock()
		took := time.Since(start)
		e.cfg.Metrics.observeSend(took, err)
		r.lat.observe(took)
		if err == nil {
			r.sent()
			return store.Result{Outcome: wx.Sent, Reason: wx.ReasonOK, MsgID: msgid, Consume: it.g.Kind != wx.LongTerm, Retain: true}
		}
		res, stop, pause := r.classify(it, err)
		if sendError(err).Class == SendAmbiguous {
			// WeChat may still be working on it: no other send to the
			// user until the hold passes.
			e.holds.set(it.g.OpenID, e.cfg.Now().Add(e.cfg.AmbiguousHold))
		}
		if res.Outcome == wx.Unknown && it.g.Kind == wx.LongTerm {
			// A long-term grant is never used up by a message, arrived or not.
			res.Consume = false
		}
		switch {
		case pause:
			until := e.nextQuotaReset(e.cfg.Now())
			_ = e.store.SetPause(context.WithoutCancel(d.ctx), e.quotaKey(), until, "45009 daily quota reached")
			r.stop(nil, until)
			e.log.WithField("until", until.Format(time.RFC3339)).Warn("WeChat daily quota reached: sending paused")
			return res
		case stop != nil:
			r.stop(stop, time.Time{})
			return res
		case retryable(err) && attempt < e.cfg.MaxAttempts:
			e.cfg.Metrics.countRetry(res.Reason)
			if !sleep(d.ctx, backoff(e.cfg.RetryBase, e.cfg.RetryMax, attempt)) {
				return store.Result{Outcome: wx.Deferred, Reason: wx.ReasonShutdown}
			}
			continue
		}
		if res.Outcome == wx.Unknown {
			e.log.WithField("campaign", r.c.Name).WithField("grant_id", it.g.ID).WithError(err).
				Warn("send may have arrived: grant consumed as unknown, not retried")
		}
		return res
	}
}

// begin marks it in flight, unless the run is ending, the user is held
// after an ambiguous send or the store refuses the mark (caps, another
// run); ok false returns the outcome instead. The caller holds the
// openid's lock.
func (d *dispatcher) begin(it *item) (res store.Result, ok bool) {
	r, e := d.r, d.r.e
	if until, held := e.holds.held(it.g.OpenID, e.cfg.Now()); held {
		return store.Result{Outcome: wx.Deferred, Reason: wx.ReasonAmbiguousHold,
			Detail: "an earlier send to this user may have arrived; held until " + until.UTC().Format(time.RFC3339)}, false
	}
	if d.ctx.Err() != nil {
		return store.Result{Outcome: wx.Deferred, Reason: wx.ReasonShutdown}, false
	}
	b, err := d.marks.mark(it)
	if err != nil {
		r.fail(fmt.Errorf("engine: mark sends in flight: %w", err))
		return store.Result{Outcome: wx.Deferred, Reason: wx.ReasonShutdown, Detail: "store unavailable"}, false
	}
	if !b.Marked {
		return store.Result{Outcome: wx.Skipped, Reason: b.Reason, Detail: b.Detail}, false
	}
	it.marked = true
	return store.Result{}, true
}

// backoff is base*2^(attempt-1), capped, with full jitter in [d/2, d].
func backoff(base, max time.Duration, attempt int) time.Duration {
	d := base << (attempt - 1)
	if d > max || d <= 0 {
		d = max
	}
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// dispatch hands a prepared batch's messages to the workers and returns at
// once (it blocks only while the workers' queue is full).
func (r *run) dispatch(b *batch, d *dispatcher) *sending {
	s := &sending{b: b}
	if d == nil {
		return s // a preview: nothing to send, no result to record
	}
	s.results = make([]store.Result, len(b.items))
	for i, it := range b.items {
		if it.decided {
			continue
		}
		s.wg.Add(1)
		d.enqueue(job{it: it, res: &s.results[i], done: &s.wg})
	}
	return s
}

// sends counts b's messages to send (the items not decided by admission).
func (b *batch) sends() int {
	n := 0
	for _, it := range b.items {
		if !it.decided {
			n++
		}
	}
	return n
}

// retryable reports whether err proves nothing was delivered, so the send
// may be tried again: -1, 43108, 502/503, refused connections, and a token
// rejected again after the client's own refresh.
func retryable(err error) bool {
	return sendError(err).Class == SendRetryable
}
