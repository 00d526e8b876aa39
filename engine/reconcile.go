package engine

import (
	"context"

	wx "github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/store"
)

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
