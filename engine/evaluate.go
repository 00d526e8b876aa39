package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	wx "github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/rules"
	"github.com/wxcampaign/wxcampaign/store"
)

func decide(it *item, o wx.Outcome, reason wx.Reason, detail string) {
	it.report.Outcome, it.report.Reason, it.report.Detail, it.decided = o, reason, detail, true
}

// evaluate evaluates a batch on its own: facts, rule, render, repeat-once,
// holdout and quiet hours, and reads the users' credits when a reserve
// applies. It runs ahead of admit, on the next batches, with env its own:
// the run's evaluators work on several batches at once.
func (r *run) evaluate(ctx context.Context, env *rules.Env, grants []wx.Grant) (*batch, error) {
	c := r.c
	b := &batch{items: make([]*item, 0, len(grants))}
	all := make([]item, len(grants)) // one allocation for the batch's items
	for i := range grants {
		g := grants[i]
		if r.opt.OpenID != "" && g.OpenID != r.opt.OpenID {
			continue
		}
		it := &all[i]
		it.g, it.report = g, GrantReport{GrantID: g.ID, OpenID: g.OpenID}
		b.items = append(b.items, it)
	}
	rows, err := r.loadFacts(ctx, env, b.items)
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
	var streaks map[int64]store.Streak
	if n := r.e.cfg.SetAsideAfter; n > 0 && len(b.items) > 0 {
		ids := make([]int64, len(b.items))
		for i, it := range b.items {
			ids[i] = it.g.ID
		}
		if err := r.e.retry(ctx, "fail streaks", func() error {
			var err error
			streaks, err = r.e.store.FailStreaks(ctx, c.Name, ids, n)
			return err
		}); err != nil {
			return nil, err
		}
	}
	inQuiet := c.QuietHours != nil && c.QuietHours.In(r.at, c.Location)
	var held []store.Holdout
	for i, it := range b.items {
		env.Reset(&it.g, r.at)
		for name, byKey := range rows {
			env.SetFact(name, byKey[i])
		}
		if r.opt.Explain {
			it.report.Explain = r.explain(env, it, rows, i)
		}
		if d := r.duplicateFact(env, rows, i); d != "" {
			decide(it, wx.Skipped, wx.ReasonFactDuplicateKey, d)
			continue
		}
		if st, ok := streaks[it.g.ID]; ok {
			// Failed the same way run after run: its data, not the
			// campaign, is at fault; trying again would fail again.
			decide(it, wx.Skipped, wx.ReasonSetAside, fmt.Sprintf("failed %d runs in a row: %s", st.Runs, wx.Explain(st.Reason, st.Detail)))
			continue
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
		it.msg = Message{To: it.g.OpenID, Template: c.Template.ID, Page: msg.Page, Data: msg.Data,
			Options: r.options}
		if r.holdOut(it, &held) {
			continue
		}
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
	if err := r.recordHoldouts(ctx, held); err != nil {
		return nil, err
	}
	if b.credits, err = r.credits(ctx, b.items); err != nil {
		return nil, err
	}
	return b, nil
}

// admit decides, in batch order, what depends on the batches before: the
// in-run dedup, the reserve of a campaign of higher priority and, in a
// preview, the caps (read only). A live run takes
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
		if r.reserved(it, b.credits, r.seen[key]) {
			continue
		}
		if r.counts(it.g.OpenID) {
			r.seen[key]++
		}
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
	return r.onlyRepeatUsers(ctx)
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (r *run) explain(env *rules.Env, it *item, rows map[string][]map[string]any, i int) *Explanation {
	x := &Explanation{Grant: it.g, FactKeys: map[string]any{}, Facts: map[string]map[string]any{}}
	for _, f := range r.c.Facts {
		x.Facts[f.Name] = rows[f.Name][i]
		k, err := r.c.Program.FactKey(f.Name, env)
		if err != nil {
			x.FactKeys[f.Name] = "error: " + err.Error()
		} else {
			x.FactKeys[f.Name] = k
		}
	}
	v, err := r.c.Program.When(env)
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
