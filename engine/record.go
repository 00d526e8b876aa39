package engine

import (
	"context"
	"sync"
	"time"

	wx "github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/store"
)

// checkpointEvery and checkpointAge bound how far a run's checkpoint
// trails its recorded batches.
const (
	checkpointEvery = 8
	checkpointAge   = time.Second
)

// sending is a batch handed to the dispatcher.
type sending struct {
	b       *batch
	results []store.Result
	wg      sync.WaitGroup
	budget  int64 // sends taken from the walk's budget, given back once recorded
}

// record waits for a dispatched batch's sends (live) and records every
// outcome of a marked send in one transaction with the checkpoint; a dry
// run only reports. Batches are recorded in order.
func (r *run) record(ctx context.Context, s *sending, live bool) error {
	e, b := r.e, s.b
	s.wg.Wait()
	var finish []store.Result
	resume := false // a grant of the batch must be looked at again when the tick resumes
	for i, it := range b.items {
		if !it.decided && live {
			res := s.results[i]
			res.Campaign, res.Occurrence, res.GrantID, res.Holder = r.c.Name, r.occ, it.g.ID, r.holder
			if it.marked && res.Reason != wx.ReasonAwaitingEvent {
				// An ambiguous send under the reconcile policy stays in
				// flight until its delivery event settles it.
				finish = append(finish, res)
			}
			if res.Reason == wx.ReasonShutdown {
				resume = true
			}
			it.report.Outcome, it.report.Reason, it.report.Detail, it.report.MsgID = res.Outcome, res.Reason, res.Detail, res.MsgID
		}
	}
	if live {
		bg := context.WithoutCancel(ctx)
		// The checkpoint moves only past a batch whose every grant has its
		// outcome for this occurrence: one held back by a shutdown is not
		// done, and the run that resumes the tick must see it again. Once
		// a batch was held back, or the run is ending, no later batch moves
		// it either (it would jump past the held-back grants); looking at a
		// finished grant again is harmless. Outcomes and checkpoint are
		// recorded in one transaction. The checkpoint moves every
		// checkpointEvery batches or checkpointAge, not with each batch (a
		// row update per batch saved): a run resumed from it looks again
		// at a few batches of grants whose sends are already recorded,
		// which send_log_once refuses to send twice.
		if resume {
			r.holdCP = true
		}
		f := store.Finish{At: e.cfg.Now(), Results: finish}
		r.cpBatches++
		due := r.cpBatches >= checkpointEvery || f.At.Sub(r.cpAt) >= checkpointAge
		if !r.holdCP && ctx.Err() == nil && due {
			f.Checkpoint = &store.Checkpoint{Campaign: r.c.Name, Occurrence: r.occ, Holder: r.holder, LastGrantID: b.lastID}
			r.cpBatches, r.cpAt = 0, f.At
		}
		if f.Checkpoint != nil || len(finish) > 0 {
			if err := e.retry(bg, "record sends", func() error {
				_, err := e.store.FinishSends(bg, f)
				return err
			}); err != nil {
				return err
			}
		}
	}
	e.cfg.Metrics.countGrants(r.c.Name, b.items, r.opt.DryRun)
	for _, it := range b.items {
		r.sum.add(&it.report)
		if r.opt.Report != nil {
			r.opt.Report(it.report)
		}
	}
	return nil
}
