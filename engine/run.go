package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	wx "github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/campaigns"
	"github.com/wxcampaign/wxcampaign/rules"
	"github.com/wxcampaign/wxcampaign/store"
	"github.com/wxcampaign/wxcampaign/wechat"
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
	e       *Engine
	c       *campaigns.Campaign
	opt     Options
	at      time.Time // scheduled time, in the campaign's zone
	occ     time.Time // occurrence key (UTC, second precision)
	holder  string
	sum     *Summary
	seen    map[uint64]int32 // in-run dedup: hash of openid|template -> messages
	sim     map[uint64]int32 // preview: simulated cap takes per hashed scope key
	pending map[uint64]int32 // live: cap takes of items admitted and not yet marked
	capMu   sync.RWMutex     // live: held to read (CheckCaps + pending) or commit marks
	holdCP  bool             // a batch was held back: the checkpoint stays put
	facts   factCache        // fact rows read by this run
	mu      sync.Mutex
	stopErr error
	paused  time.Time
	env     *rules.Env
	lat     latencies // send-call latencies, for the summary
}

// item is one grant on its way to WeChat.
type item struct {
	g       wx.Grant
	msg     wechat.Message
	report  GrantReport
	decided bool     // the report is final before dispatch
	marked  bool     // its send_log row is in flight (set by the worker that marked it)
	pending []uint64 // cap counters in r.pending this item holds until it is marked
}

type batch struct {
	items  []*item
	lastID int64
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
		env:     c.Program.NewEnv(),
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
		return r.walk(ctx, 0, nil)
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
	var sendErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for s := range sending {
			if err := r.record(ctx, s, d != nil); err != nil && sendErr == nil {
				sendErr = err
			}
		}
	}()
	// The next batch is evaluated (facts, rule, render) while this one is
	// admitted (dedup, caps, claim): their database waits overlap.
	evaluated := make(chan *batch, 1)
	var evalErr error
	go func() {
		defer close(evaluated)
		for grants := range pages {
			if pctx.Err() != nil || r.stopped() {
				return
			}
			b, err := r.evaluate(pctx, grants)
			if err != nil {
				if pctx.Err() == nil {
					evalErr = err
				}
				return
			}
			b.lastID = grants[len(grants)-1].ID
			select {
			case evaluated <- b:
			case <-pctx.Done():
				return
			}
		}
	}()
	var err error
	for b := range evaluated {
		if ctx.Err() != nil || r.stopped() {
			break
		}
		if err = r.admit(ctx, b); err != nil {
			break
		}
		sending <- r.dispatch(b, d)
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

// maxBatchesInFlight bounds the batches dispatched but not yet recorded.
const maxBatchesInFlight = 4

func (r *run) stopped() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stopErr != nil || !r.paused.IsZero()
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

func decide(it *item, o wx.Outcome, reason wx.Reason, detail string) {
	it.report.Outcome, it.report.Reason, it.report.Detail, it.decided = o, reason, detail, true
}

// evaluate evaluates a batch on its own: facts, rule, render, repeat-once
// and quiet hours. It runs ahead of admit, on the next batch.
func (r *run) evaluate(ctx context.Context, grants []wx.Grant) (*batch, error) {
	c := r.c
	b := &batch{items: make([]*item, 0, len(grants))}
	for i := range grants {
		g := grants[i]
		it := &item{g: g, report: GrantReport{GrantID: g.ID, OpenID: g.OpenID}}
		if r.opt.OpenID != "" && g.OpenID != r.opt.OpenID {
			continue
		}
		b.items = append(b.items, it)
	}
	rows, err := r.loadFacts(ctx, b.items)
	if err != nil {
		return nil, err
	}
	var sentBefore map[int64]bool
	if c.Template.Kind == wx.LongTerm && c.Repeat != "every_run" && len(b.items) > 0 {
		ids := make([]int64, len(b.items))
		for i, it := range b.items {
			ids[i] = it.g.ID
		}
		if err := r.e.retry(ctx, "sent before", func() error {
			var err error
			sentBefore, err = r.e.store.SentBefore(ctx, c.Name, ids)
			return err
		}); err != nil {
			return nil, err
		}
	}
	inQuiet := c.QuietHours != nil && c.QuietHours.In(r.at, c.Location)
	env := r.env
	for i, it := range b.items {
		env.Reset(&it.g, r.at)
		for name, byKey := range rows {
			env.SetFact(name, byKey[i])
		}
		if r.opt.Explain {
			it.report.Explain = r.explain(it, rows, i)
		}
		ok, err := c.Program.When(env)
		switch {
		case err != nil:
			decide(it, wx.Skipped, wx.ReasonRuleError, err.Error())
			continue
		case !ok:
			decide(it, wx.Skipped, wx.ReasonRuleFalse, "")
			continue
		case sentBefore[it.g.ID]:
			decide(it, wx.Skipped, wx.ReasonRepeatOnce, "")
			continue
		}
		msg, err := c.Program.Render(env)
		if err != nil {
			detail := err.Error()
			var re *rules.RenderError
			if errors.As(err, &re) {
				detail = re.Key + ": " + re.Reason
			}
			decide(it, wx.Skipped, wx.ReasonRenderInvalid, detail)
			continue
		}
		it.report.Data, it.report.Page = msg.Data, msg.Page
		it.msg = wechat.Message{ToUser: it.g.OpenID, TemplateID: c.Template.ID, Page: msg.Page,
			Data: msg.Data, State: or(c.Template.State, r.e.cfg.State), Lang: or(c.Template.Lang, r.e.cfg.Lang)}
		if inQuiet {
			end := c.QuietHours.End(r.at, c.Location)
			if c.QuietHours.Action == "drop" {
				decide(it, wx.Skipped, wx.ReasonQuietHours, "dropped")
			} else {
				decide(it, wx.Deferred, wx.ReasonQuietHours, "until "+end.Format("15:04"))
			}
			continue
		}
	}
	return b, nil
}

// admit decides, in batch order, what depends on the batches before: the
// in-run dedup and, in a preview, the caps (read only). A live run takes
// the caps when it marks each send in flight, just before sending it.
func (r *run) admit(ctx context.Context, b *batch) error {
	c := r.c
	for _, it := range b.items {
		if it.decided {
			continue
		}
		key := hashKey(it.g.OpenID, c.Template.ID)
		if c.PerUserPerRun > 0 && r.seen[key] >= int32(c.PerUserPerRun) {
			decide(it, wx.Skipped, wx.ReasonPerUserPerRun, "")
			continue
		}
		r.seen[key]++
	}
	if !r.opt.DryRun {
		return r.checkCaps(ctx, b, r.pending)
	}
	if err := r.checkCaps(ctx, b, r.sim); err != nil {
		return err
	}
	for _, it := range b.items {
		if !it.decided {
			decide(it, wx.Sent, wx.ReasonOK, "")
		}
	}
	return nil
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (r *run) explain(it *item, rows map[string][]map[string]any, i int) *Explanation {
	x := &Explanation{Grant: it.g, FactKeys: map[string]any{}, Facts: map[string]map[string]any{}}
	for _, f := range r.c.Facts {
		x.Facts[f.Name] = rows[f.Name][i]
		k, err := r.c.Program.FactKey(f.Name, r.env)
		if err != nil {
			x.FactKeys[f.Name] = "error: " + err.Error()
		} else {
			x.FactKeys[f.Name] = k
		}
	}
	v, err := r.c.Program.When(r.env)
	x.When = v
	if err != nil {
		x.WhenError = err.Error()
	}
	if q := r.c.QuietHours; q != nil {
		if q.In(r.at, r.c.Location) {
			x.QuietHours = "in quiet hours until " + q.End(r.at, r.c.Location).Format(time.RFC3339)
		} else {
			x.QuietHours = "outside quiet hours"
		}
	}
	return x
}

// loadFacts runs each fact query once for the batch; the result holds, per
// fact, the matched row of each item (nil when none).
func (r *run) loadFacts(ctx context.Context, items []*item) (map[string][]map[string]any, error) {
	out := make(map[string][]map[string]any, len(r.c.Facts))
	if len(items) == 0 {
		return out, nil
	}
	env := r.env
	now := r.e.cfg.Now()
	for _, f := range r.c.Facts {
		r.facts.rotate(now)
		keys := make([]string, len(items))
		var args []any
		var asked []string
		seen := map[string]bool{}
		for i, it := range items {
			env.Reset(&it.g, r.at)
			k, err := r.c.Program.FactKey(f.Name, env)
			if err != nil || k == nil {
				continue
			}
			s := keyString(k)
			keys[i] = s
			if _, ok := r.facts.get(f.Name, s); ok || seen[s] {
				continue
			}
			seen[s] = true
			args = append(args, k)
			asked = append(asked, s)
		}
		rows := make([]map[string]any, len(items))
		out[f.Name] = rows
		if len(args) > 0 {
			var res []map[string]any
			err := r.e.retry(ctx, "facts "+f.Name, func() error {
				var err error
				res, err = r.e.facts.Query(ctx, f.Query, args)
				return err
			})
			if err != nil {
				return nil, &StopError{Reason: fmt.Sprintf("fact %s: %v", f.Name, err)}
			}
			for _, s := range asked {
				r.facts.put(f.Name, s, nil) // no row, unless the result has one
			}
			for _, row := range res {
				v, ok := row[f.Column]
				if !ok {
					return nil, &StopError{Reason: fmt.Sprintf("fact %s: column %q is not in the query's result", f.Name, f.Column)}
				}
				r.facts.put(f.Name, keyString(v), row)
			}
		}
		for i, k := range keys {
			if k != "" {
				rows[i], _ = r.facts.get(f.Name, k)
			}
		}
	}
	return out, nil
}

// factCache keeps the fact rows a run has read, so that a key shared by
// many grants (a product saved by thousands of users) is queried once per
// window instead of once per batch. Entries live at most factTTL, so a long
// run still sees a price change or a paid order within that time; memory
// stays flat: two generations of at most factGen keys each, the older
// dropped when the newer fills.
type factCache struct {
	cur, old map[string]map[string]any // key: fact name + "\x00" + key
	since    time.Time
}

const (
	factTTL = 30 * time.Second
	factGen = 25000
)

func (c *factCache) rotate(now time.Time) {
	switch {
	case c.cur == nil || now.Sub(c.since) > factTTL:
		c.cur, c.old, c.since = map[string]map[string]any{}, nil, now
	case len(c.cur) >= factGen:
		c.old, c.cur = c.cur, map[string]map[string]any{}
	}
}

func (c *factCache) get(fact, key string) (map[string]any, bool) {
	k := fact + "\x00" + key
	if row, ok := c.cur[k]; ok {
		return row, true
	}
	row, ok := c.old[k]
	return row, ok
}

func (c *factCache) put(fact, key string, row map[string]any) { c.cur[fact+"\x00"+key] = row }

// keyString normalizes a fact key so that 42, int64(42) and "42" match.
func keyString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []byte:
		return string(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case int:
		return strconv.Itoa(x)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	default:
		return fmt.Sprint(x)
	}
}

// limits are the campaign's caps as the store takes them.
func (r *run) limits() []store.Limit {
	if len(r.c.Limits) == 0 {
		return nil
	}
	limits := make([]store.Limit, len(r.c.Limits))
	for i, l := range r.c.Limits {
		limits[i] = store.Limit{Scope: l.Scope, Max: l.Max, Window: l.Window}
	}
	return limits
}

// capRequests builds the cap requests of the undecided items.
func (r *run) capRequests(items []*item) ([]store.CapRequest, []*item) {
	limits := r.limits()
	if len(limits) == 0 {
		return nil, nil
	}
	var reqs []store.CapRequest
	var its []*item
	for _, it := range items {
		if it.decided {
			continue
		}
		reqs = append(reqs, store.CapRequest{OpenID: it.g.OpenID, TemplateID: r.c.Template.ID, Limits: limits})
		its = append(its, it)
	}
	return reqs, its
}

// checkCaps decides the caps of a batch's undecided items in batch order,
// read only (store.CheckCaps, the store's own decision): counts holds this
// run's takes that are not in the store yet, a preview's simulated takes
// (r.sim) or a live run's items admitted and not yet marked (r.pending).
// A capped item is decided; the others add to counts. A live run decides
// again, atomically, when it marks each send: in batch order here, a run
// skips the same grants as its preview.
func (r *run) checkCaps(ctx context.Context, b *batch, counts map[uint64]int32) error {
	reqs, its := r.capRequests(b.items)
	if len(reqs) == 0 {
		return nil
	}
	if !r.opt.DryRun {
		// The store's counts and r.pending are read as one snapshot: no
		// mark commits in between.
		r.capMu.RLock()
		defer r.capMu.RUnlock()
	}
	var usage [][]store.CapUsage
	err := r.e.retry(ctx, "check caps", func() error {
		var err error
		_, usage, err = r.e.store.CheckCaps(ctx, r.at, reqs)
		return err
	})
	if err != nil {
		return err
	}
	// CheckCaps counts, for each request, the takes of the batch's earlier
	// requests as it would decide them; the run decides itself (counts,
	// across batches), so it needs the stored count alone: the usage the
	// first request of a key in the batch saw.
	stored := map[uint64]int{}
	for i, it := range its {
		var failed *store.Limit
		var checks []CapCheck
		for _, u := range usage[i] {
			key := capKey(u.Limit, it.g.OpenID, r.c.Template.ID)
			base, seen := stored[key]
			if !seen {
				base = u.Used
				stored[key] = base
			}
			used := base + int(counts[key])
			ok := used < u.Limit.Max
			checks = append(checks, CapCheck{Scope: u.Limit.Scope, Max: u.Limit.Max, Window: store.FormatWindow(u.Limit.Window), Used: used, OK: ok})
			if !ok && failed == nil {
				failed = &u.Limit
			}
		}
		if it.report.Explain != nil {
			it.report.Explain.Caps = checks
		}
		if failed != nil {
			decide(it, wx.Skipped, failed.Reason(), failed.String())
			continue
		}
		var took []uint64 // two limits of one scope and window are one take
		for _, u := range usage[i] {
			key := capKey(u.Limit, it.g.OpenID, r.c.Template.ID)
			if !slices.Contains(took, key) {
				took = append(took, key)
				counts[key]++
			}
		}
		if !r.opt.DryRun {
			it.pending = took
		}
	}
	return nil
}

// unpend removes it from r.pending: its mark was committed (or refused),
// or it will not be marked. The caller holds r.capMu.
func (r *run) unpend(it *item) {
	for _, k := range it.pending {
		if n := r.pending[k] - 1; n > 0 {
			r.pending[k] = n
		} else {
			delete(r.pending, k)
		}
	}
	it.pending = nil
}

// hashKey is a 64-bit FNV-1a hash of parts joined by "|": the in-run maps
// hold a hash per user, not strings, to keep a million-grant run small. A
// collision (about 1 in 10^7 at a million users) can only hold a grant back
// for a later run.
func hashKey(parts ...string) uint64 {
	h := uint64(14695981039346656037)
	for i, p := range parts {
		if i > 0 {
			h ^= '|'
			h *= 1099511628211
		}
		for j := 0; j < len(p); j++ {
			h ^= uint64(p[j])
			h *= 1099511628211
		}
	}
	return h
}

// capKey identifies one cap counter: scope key and window.
func capKey(l store.Limit, openid, tpl string) uint64 {
	return hashKey(scopeKey(l.Scope, openid, tpl), l.Window.String())
}

func scopeKey(scope, openid, tpl string) string {
	switch scope {
	case "user":
		return "u|" + openid
	case "template":
		return "t|" + tpl
	default:
		return "ut|" + openid + "|" + tpl
	}
}

// resolveStale settles send-log rows left in flight by processes that died
// mid-send (and, with the reconcile policy, sends whose reply never came).
// With the reconcile policy a row is settled by WeChat's delivery events: a
// matching subscribe_msg_sent_event makes it sent; none within the grace
// period means it was not delivered and the grant is available again.
// Otherwise the ambiguous-send policy decides.
func (e *Engine) resolveStale(ctx context.Context) {
	for range 100 {
		now := e.cfg.Now()
		stale, err := e.store.StaleInflight(ctx, now, 500)
		if err != nil {
			e.log.WithError(err).Warn("list stale in-flight sends")
			return
		}
		if len(stale) == 0 {
			return
		}
		var res []store.Result
		settled, tried := 0, 0
		for _, a := range stale {
			r := store.Result{Campaign: a.Campaign, Occurrence: a.Occurrence, GrantID: a.GrantID, Holder: a.Holder}
			switch e.cfg.Ambiguous {
			case AmbiguousReconcile:
				msgid, err := e.store.MatchDelivery(ctx, a.OpenID, a.TemplateID, a.StartedAt.Add(-deliverySkew))
				if err != nil {
					e.log.WithError(err).Warn("match delivery events")
					return
				}
				switch {
				case msgid > 0:
					r.Outcome, r.Reason, r.MsgID, r.Retain = wx.Sent, wx.ReasonConfirmed, msgid, true
					r.Consume = a.Kind != wx.LongTerm
				case now.Sub(a.StartedAt) >= e.cfg.ReconcileGrace:
					r.Outcome, r.Reason = wx.Deferred, wx.ReasonNoEvent
				default:
					continue // the event may still come
				}
				// One at a time: the next row of the same user and template
				// must not match the same event.
				n, err := e.store.FinishSends(ctx, store.Finish{At: now, Results: []store.Result{r}})
				if err != nil {
					e.log.WithError(err).Warn("settle in-flight send")
					return
				}
				settled += n
				tried++
			case AmbiguousRetry:
				r.Outcome, r.Reason, r.Detail = wx.Deferred, wx.ReasonHolderDied, "policy retry: will be sent again"
				res = append(res, r)
			default:
				r.Outcome, r.Reason, r.Consume, r.Retain = wx.Unknown, wx.ReasonHolderDied, a.Kind != wx.LongTerm, true
				res = append(res, r)
			}
		}
		if len(res) > 0 {
			// Another run may settle the same rows at once: each row
			// counts for the one that took it out of flight.
			n, err := e.store.FinishSends(ctx, store.Finish{At: now, Results: res})
			if err != nil {
				e.log.WithError(err).Warn("resolve stale in-flight sends")
				return
			}
			settled += n
			tried += len(res)
		}
		if settled > 0 {
			e.cfg.Metrics.countStale(settled)
			e.log.WithField("count", settled).WithField("policy", e.cfg.Ambiguous).Warn("settled sends left in flight")
		}
		if tried == 0 {
			return
		}
	}
}

// classify maps a send error to its outcome and whether the run stops.
func (r *run) classify(err error) (res store.Result, stop error, pause bool) {
	code, msg := 0, ""
	var ae *wechat.APIError
	if errors.As(err, &ae) {
		code, msg = ae.Code, ae.Msg
	}
	// detail is WeChat's answer, for the send log and the report.
	detail := msg
	switch {
	case code != 0 && msg != "":
		detail = strconv.Itoa(code) + " " + msg
	case code != 0:
		detail = strconv.Itoa(code)
	case err != nil && ae == nil:
		detail = err.Error()
	case ae != nil && ae.HTTPStatus != 0:
		detail = "HTTP " + strconv.Itoa(ae.HTTPStatus)
	}
	failed := func(reason wx.Reason) store.Result {
		return store.Result{Outcome: wx.Failed, Reason: reason, Detail: detail, Retain: true}
	}
	switch wechat.ClassOf(err) {
	case wechat.ClassGrantGone:
		res = failed(wx.ReasonWeChat43101)
		res.Consume = true
		return res, nil, false
	case wechat.ClassUser:
		res = failed(wx.ReasonWeChat40003)
		res.Consume = true
		return res, nil, false
	case wechat.ClassContent:
		if code == wechat.CodeSensitiveWords {
			return failed(wx.ReasonWeChat45168), nil, false
		}
		if code == wechat.CodeArgInvalid {
			return failed(wx.ReasonWeChat47003), nil, false
		}
		return failed(wx.ReasonWeChatOther), nil, false
	case wechat.ClassQuota:
		return store.Result{Outcome: wx.Deferred, Reason: wx.ReasonQuotaPaused, Detail: detail}, nil, true
	case wechat.ClassMisconfigured:
		res = failed(wx.ReasonWeChatMisconfigured)
		res.Retain = false
		return res, &StopError{Reason: fmt.Sprintf("campaign %s is misconfigured: WeChat %d %s", r.c.Name, code, msg)}, false
	case wechat.ClassToken:
		// The client already dropped the token and retried once: token churn
		// (another process refreshing), retried with backoff like -1.
		return store.Result{Outcome: wx.Deferred, Reason: wx.ReasonRetriesExhausted, Detail: detail}, nil, false
	case wechat.ClassConfig:
		return store.Result{Outcome: wx.Deferred, Reason: wx.ReasonWeChatConfig, Detail: detail},
			&StopError{Reason: fmt.Sprintf("WeChat configuration error %d %s: check appid, secret and IP whitelist", code, msg)}, false
	case wechat.ClassAmbiguous:
		switch r.e.cfg.Ambiguous {
		case AmbiguousRetry:
			return store.Result{Outcome: wx.Deferred, Reason: wx.ReasonAmbiguous, Detail: "policy retry: will be sent again; " + detail}, nil, false
		case AmbiguousReconcile:
			// Left in flight: settled later from WeChat's delivery events.
			return store.Result{Outcome: wx.Unknown, Reason: wx.ReasonAwaitingEvent, Detail: detail}, nil, false
		}
		return store.Result{Outcome: wx.Unknown, Reason: wx.ReasonAmbiguous, Detail: detail, Consume: true, Retain: true}, nil, false
	case wechat.ClassRetryable:
		return store.Result{Outcome: wx.Deferred, Reason: wx.ReasonRetriesExhausted, Detail: detail}, nil, false
	default:
		return failed(wx.ReasonWeChatOther), nil, false
	}
}
