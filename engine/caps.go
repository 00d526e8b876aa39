package engine

import (
	"context"
	"slices"

	wx "github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/store"
)

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
			if it.report.Explain != nil {
				checks = append(checks, CapCheck{Scope: u.Limit.Scope, Max: u.Limit.Max, Window: store.FormatWindow(u.Limit.Window), Used: used, OK: ok})
			}
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
		counted := r.counts(it.g.OpenID)
		for _, u := range usage[i] {
			if !counted && u.Limit.Scope != store.ScopeTemplate {
				continue // a preview's user met once: never looked up again
			}
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

// capKey identifies one cap counter (store.Limit.CounterKey), hashed.
func capKey(l store.Limit, openid, tpl string) uint64 {
	return hashKey(l.CounterKey(openid, tpl))
}
