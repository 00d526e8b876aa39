package engine

import (
	"context"
	"fmt"

	wx "github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/store"
)

// The decisions about the credits a campaign shares with others and about
// measuring its lift (docs/campaigns.md, "Sharing credits" and "Measuring
// lift"): a holdout keeps a deterministic share of the eligible users
// unsent; the reserve of a campaign of higher priority keeps a user's last
// credits of the template from this one.

// holdOut skips it, and lists its user in held, when the campaign's
// holdout keeps the user unsent (campaigns.Campaign.HeldOut: a hash of the
// campaign's name and the openid, the same on every run and replica).
func (r *run) holdOut(it *item, held *[]store.Holdout) bool {
	if !r.c.HeldOut(it.g.OpenID) {
		return false
	}
	decide(it, wx.Skipped, wx.ReasonHeldOut, fmt.Sprintf("%g%% holdout", 100*r.c.Holdout))
	*held = append(*held, store.Holdout{Campaign: r.c.Name, Occurrence: r.occ, OpenID: it.g.OpenID, TemplateID: r.c.Template.ID})
	return true
}

// recordHoldouts stores the users a batch held out, so that the lift
// report finds them; a preview writes nothing.
func (r *run) recordHoldouts(ctx context.Context, held []store.Holdout) error {
	if r.opt.DryRun || len(held) == 0 {
		return nil
	}
	return r.e.retry(ctx, "record holdouts", func() error {
		return r.e.store.RecordHoldouts(ctx, r.e.cfg.Now(), held)
	})
}

// credits reads the active credits of the template of the users of items
// still undecided when a campaign of higher priority reserves some of them
// (Campaign.Yield); nil when none does.
func (r *run) credits(ctx context.Context, items []*item) (map[string]int, error) {
	if r.c.Yield <= 0 || r.c.Template.Kind != wx.OneTime {
		return nil, nil
	}
	ids := make([]string, 0, len(items))
	for _, it := range items {
		if !it.decided {
			ids = append(ids, it.g.OpenID)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	var out map[string]int
	err := r.e.retry(ctx, "active credits", func() error {
		var err error
		out, err = r.e.store.ActiveCredits(ctx, r.c.Template.ID, ids)
		return err
	})
	return out, err
}

// reserved skips it when its message would spend one of the user's last
// credits that a campaign of higher priority keeps. taken is how many
// messages of the template this run admitted for the user before it: they
// spend credits the count read earlier may still hold (counting them again
// when they were already consumed only keeps more back, never less).
func (r *run) reserved(it *item, credits map[string]int, taken int32) bool {
	if credits == nil {
		return false
	}
	left := credits[it.g.OpenID] - int(taken)
	if left > r.c.Yield {
		return false
	}
	decide(it, wx.Skipped, wx.ReasonReservedForPriority,
		fmt.Sprintf("%d credit(s) left; the last %d kept for %s (higher priority)", max(left, 0), r.c.Yield, r.c.YieldTo))
	return true
}
