package wxcampaign

import (
	"strings"
	"time"
)

// Subscription results of one template in one wx.requestSubscribeMessage
// popup, as balances and accept rates name them (acceptWithAudio and
// acceptWithAlert count as accept).
const (
	ResultAccept = "accept"
	ResultReject = "reject"
	ResultBan    = "ban"
	ResultFilter = "filter"
)

// PopupResult maps a popup event's SubscribeStatusString (accept,
// acceptWithAudio, acceptWithAlert, reject, ban, filter) to a result
// above, "" for a status that is none of them.
func PopupResult(status string) string {
	switch {
	case strings.HasPrefix(status, "accept"):
		return ResultAccept
	case status == ResultReject, status == ResultBan, status == ResultFilter:
		return status
	}
	return ""
}

// Long-term grant states of a Balance.
const (
	LongTermActive  = "active"  // a standing grant the engine may send on
	LongTermRevoked = "revoked" // granted once, since rejected, banned or used up (43101)
)

// Balance is what the ledger knows of one user and one template: the
// credits left, the last message sent, and what the user last chose.
type Balance struct {
	TemplateID string `json:"template_id"`
	// Kind is the kind of the user's grants of the template; one_time when
	// the user never accepted it.
	Kind Kind `json:"kind"`
	// Credits counts the active one-time grants (credits available), those
	// a send in flight holds included (Reserved of them: the message may be
	// on its way).
	Credits  int `json:"credits"`
	Reserved int `json:"reserved"`
	// Consumed counts the one-time grants used up: sent, or refused by
	// WeChat with 43101 (no subscription left).
	Consumed int `json:"consumed"`
	// LongTerm is LongTermActive, LongTermRevoked or "" (never granted).
	LongTerm string `json:"long_term,omitempty"`
	// LastAcceptAt is when the user last accepted the template.
	LastAcceptAt time.Time `json:"last_accept_at,omitzero"`
	// LastSent is the last message sent (or possibly sent) to the user
	// with this template; nil when none was.
	LastSent *LastSend `json:"last_sent,omitempty"`
	// RejectedAt and BannedAt are when the user last rejected or banned the
	// template, from subscription results, settings changes (change
	// events) and popup events; zero when never.
	RejectedAt time.Time `json:"rejected_at,omitzero"`
	BannedAt   time.Time `json:"banned_at,omitzero"`
}

// LastSend is one send log entry of a Balance.
type LastSend struct {
	Campaign string    `json:"campaign"`
	Status   string    `json:"status"` // sent, or unknown (may have arrived)
	MsgID    int64     `json:"msgid,omitempty"`
	At       time.Time `json:"at"`
}

// RejectedSince reports whether the user rejected the template at or after
// since and has not accepted it again after that.
func (b Balance) RejectedSince(since time.Time) bool {
	return !b.RejectedAt.IsZero() && !b.RejectedAt.Before(since) && b.RejectedAt.After(b.LastAcceptAt)
}

// Banned reports whether the user banned the template and has not accepted
// it again after that.
func (b Balance) Banned() bool {
	return !b.BannedAt.IsZero() && b.BannedAt.After(b.LastAcceptAt)
}

// PopupEvent is one entry of a subscribe_msg_popup_event pushed by WeChat:
// what OpenID chose for TemplateID in a popup.
type PopupEvent struct {
	OpenID     string    `json:"openid"`
	TemplateID string    `json:"template_id"`
	Status     string    `json:"status"`      // SubscribeStatusString: accept, reject, ban, filter, acceptWithAudio, ...
	PopupScene string    `json:"popup_scene"` // WeChat's PopupScene ("0": a mini program page)
	At         time.Time `json:"at"`          // the event's CreateTime (whole seconds)
}

// Sources of a SubscriptionStat row.
const (
	SourceResult = "result" // results the backend reported (POST /v1/subscriptions, import)
	SourceChange = "change" // rejects from subscribe_msg_change_event (settings switched off)
	SourcePopup  = "popup"  // subscribe_msg_popup_event entries
)

// SubscriptionStat counts what users chose for one template on one day in
// one scene, from one source. For SourcePopup, Scene is "popup:" and
// WeChat's PopupScene; for SourceChange it is empty.
type SubscriptionStat struct {
	Day        string `json:"day"` // YYYY-MM-DD in the report's zone
	Source     string `json:"source"`
	Scene      string `json:"scene"`
	TemplateID string `json:"template_id"`
	Accept     int    `json:"accept"`
	Reject     int    `json:"reject"`
	Ban        int    `json:"ban"`
	Filter     int    `json:"filter"`
}

// Total is the number of choices counted in s.
func (s SubscriptionStat) Total() int { return s.Accept + s.Reject + s.Ban + s.Filter }

// AcceptRate is Accept over Total, 0 when nothing was counted.
func (s SubscriptionStat) AcceptRate() float64 {
	if s.Total() == 0 {
		return 0
	}
	return float64(s.Accept) / float64(s.Total())
}
