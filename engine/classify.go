package engine

import (
	"fmt"

	wx "github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/store"
)

// classify maps the send error of it to its outcome and whether the run
// stops. A failure caused by one grant's data fails that grant only; one
// that is the campaign's (the template, a constant page, every send
// failing the same way) stops the run.
func (r *run) classify(it *item, err error) (res store.Result, stop error, pause bool) {
	se := sendError(err)
	reason, detail := se.Reason, se.Detail
	code := func(def wx.Reason) wx.Reason {
		if reason != "" {
			return reason
		}
		return def
	}
	failed := func(def wx.Reason) store.Result {
		return store.Result{Outcome: wx.Failed, Reason: code(def), Detail: detail, Retain: true}
	}
	switch se.Class {
	case SendGrantGone:
		res = failed(wx.ReasonWeChat43101)
		res.Consume = true
		return res, nil, false
	case SendRecipient:
		res = failed(wx.ReasonWeChat40003)
		res.Consume = true
		return res, nil, false
	case SendContent:
		return r.perMessage(failed(wx.ReasonWeChatOther))
	case SendPage:
		if !r.samePageFailed(it.msg.Page) {
			// The page of this grant (built from its data): this grant
			// only. The same page refused for two grants is the
			// campaign's page, below.
			return r.perMessage(failed(wx.ReasonWeChat41030))
		}
		fallthrough
	case SendCampaign:
		res = failed(wx.ReasonWeChatMisconfigured)
		res.Reason = wx.ReasonWeChatMisconfigured
		res.Retain = false
		return res, &StopError{Reason: fmt.Sprintf("campaign %s is misconfigured: %s %s", r.c.Name, code(wx.ReasonWeChatMisconfigured), detail)}, false
	case SendQuota:
		return store.Result{Outcome: wx.Deferred, Reason: wx.ReasonQuotaPaused, Detail: detail}, nil, true
	case SendConfig:
		return store.Result{Outcome: wx.Deferred, Reason: wx.ReasonWeChatConfig, Detail: detail},
			&StopError{Reason: fmt.Sprintf("channel configuration error %s: check appid, secret and IP whitelist", detail)}, false
	case SendAmbiguous:
		switch r.e.cfg.Ambiguous {
		case AmbiguousRetry:
			return store.Result{Outcome: wx.Deferred, Reason: wx.ReasonAmbiguous, Detail: "policy retry: will be sent again; " + detail}, nil, false
		case AmbiguousReconcile:
			// Left in flight: settled later from WeChat's delivery events.
			return store.Result{Outcome: wx.Unknown, Reason: wx.ReasonAwaitingEvent, Detail: detail}, nil, false
		}
		return store.Result{Outcome: wx.Unknown, Reason: wx.ReasonAmbiguous, Detail: detail, Consume: true, Retain: true}, nil, false
	default: // SendRetryable
		return store.Result{Outcome: wx.Deferred, Reason: wx.ReasonRetriesExhausted, Detail: detail}, nil, false
	}
}

// campaignFault is how many sends of a run in a row, none of them
// delivered, may fail the same way before the failure is taken as the
// campaign's (a constant value or page WeChat refuses) and the run stops.
const campaignFault = 10

// perMessage returns res, a failure of one message, and stops the run when
// every send of the run so far failed that way (campaignFault of them).
func (r *run) perMessage(res store.Result) (store.Result, error, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.delivered > 0 {
		return res, nil, false
	}
	if res.Reason != r.failReason {
		r.failReason, r.failRun = res.Reason, 0
	}
	r.failRun++
	if r.failRun < campaignFault {
		return res, nil, false
	}
	return res, &StopError{Reason: fmt.Sprintf("campaign %s: every send so far (%d) failed with %s (last: %s): the campaign, not its grants, is at fault",
		r.c.Name, r.failRun, res.Reason, res.Detail)}, false
}

// samePageFailed notes a 41030 for page and reports whether the same page
// already failed for another grant of the run.
func (r *run) samePageFailed(page string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.badPages == nil {
		r.badPages = map[string]bool{}
	}
	if r.badPages[page] || len(r.badPages) >= 1000 {
		return true
	}
	r.badPages[page] = true
	return false
}

// sent notes a delivered send: the campaign works.
func (r *run) sent() {
	r.mu.Lock()
	r.delivered++
	r.mu.Unlock()
}
