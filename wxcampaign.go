// Package wxcampaign holds the domain types shared by every part of the
// engine: grants, subscription results, outcomes and application errors.
//
// The packages below it each own one concern: campaigns (campaign files),
// rules (expressions and rendering), keyword (WeChat's value rules), store
// (the grant ledger), wechat (the API client and its simulator), engine (runs,
// dispatch, scheduling), api (the HTTP API) and cmd/wxcampaign (the binary).
package wxcampaign

import (
	"errors"
	"fmt"
	"time"
)

// Kind is the subscription kind of a template.
type Kind string

// Template kinds, as campaign files spell them.
const (
	OneTime  Kind = "one_time"  // one accept allows exactly one message
	LongTerm Kind = "long_term" // one accept allows many messages
)

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool { return k == OneTime || k == LongTerm }

// Grant is one permission to send a template to a user: for a one-time
// template a single credit, for a long-term template a standing grant.
type Grant struct {
	ID         int64          `json:"id"`
	OpenID     string         `json:"openid"`
	TemplateID string         `json:"template_id"`
	Scene      string         `json:"scene"`
	BizNo      string         `json:"biz_no"`
	Vars       map[string]any `json:"vars"`
	GrantedAt  time.Time      `json:"granted_at"`
	Kind       Kind           `json:"kind"`
}

// SubscriptionResult is what the mini program backend reports after
// wx.requestSubscribeMessage, in the mini program's own JSON shape.
type SubscriptionResult struct {
	OpenID            string         `json:"openId"`
	Scene             string         `json:"scene"`
	BusNo             string         `json:"busNo"`
	ExtraVariableMap  map[string]any `json:"extraVariableMap"`
	AgreeTemplateIDs  []string       `json:"agreeTemplateIds"`
	RejectTemplateIDs []string       `json:"rejectTemplateIds"`
	// BanTemplateIDs and FilterTemplateIDs are optional extensions for the
	// "ban" and "filter" results of wx.requestSubscribeMessage.
	BanTemplateIDs    []string `json:"banTemplateIds,omitempty"`
	FilterTemplateIDs []string `json:"filterTemplateIds,omitempty"`
	// LongTermTemplateIDs optionally marks which agreed ids are long-term
	// templates; without it the store uses what it knows of the template.
	LongTermTemplateIDs []string `json:"longTermTemplateIds,omitempty"`
	RequestID           string   `json:"requestId"`
}

// Validate checks the fields every result must have.
func (r *SubscriptionResult) Validate() error {
	switch {
	case r.OpenID == "":
		return Errorf(EINVALID, "openId is required")
	case len(r.OpenID) > 128:
		return Errorf(EINVALID, "openId is longer than 128 bytes")
	case r.RequestID == "":
		return Errorf(EINVALID, "requestId is required")
	case len(r.RequestID) > 128:
		return Errorf(EINVALID, "requestId is longer than 128 bytes")
	case len(r.Scene) > 64:
		return Errorf(EINVALID, "scene is longer than 64 bytes")
	case len(r.BusNo) > 128:
		return Errorf(EINVALID, "busNo is longer than 128 bytes")
	case len(r.AgreeTemplateIDs)+len(r.RejectTemplateIDs)+len(r.BanTemplateIDs)+len(r.FilterTemplateIDs) == 0:
		return Errorf(EINVALID, "no template ids: agreeTemplateIds and rejectTemplateIds are both empty")
	}
	for _, ids := range [][]string{r.AgreeTemplateIDs, r.RejectTemplateIDs, r.BanTemplateIDs, r.FilterTemplateIDs, r.LongTermTemplateIDs} {
		for _, id := range ids {
			if id == "" || len(id) > 128 {
				return Errorf(EINVALID, "template id %q is empty or longer than 128 bytes", id)
			}
		}
	}
	return nil
}

// Outcome is what happened to one grant in one run.
type Outcome string

// Outcomes of a grant in a run. Every grant a run looks at ends with exactly
// one outcome and one reason.
const (
	Sent     Outcome = "sent"     // delivered; a one-time grant is consumed
	Skipped  Outcome = "skipped"  // not sent this run; the grant stays available unless the reason says otherwise
	Deferred Outcome = "deferred" // held back (quiet hours, quota, shutdown); picked up by a later run
	Failed   Outcome = "failed"   // WeChat refused it permanently
	Unknown  Outcome = "unknown"  // the send may have arrived; the grant is consumed and never retried
)

// Application error codes, mapped once to HTTP status and CLI text.
const (
	EINVALID      = "invalid"
	ENOTFOUND     = "not_found"
	ECONFLICT     = "conflict"
	EUNAUTHORIZED = "unauthorized"
	ETOOLARGE     = "too_large"
	EUNAVAILABLE  = "unavailable"
	EINTERNAL     = "internal"
)

// Error is an application error with a code and a message safe to show.
type Error struct {
	Code    string
	Message string
}

// Error implements error.
func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// Errorf returns an *Error with the given code and formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL
// for any other non-nil error and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Code
	default:
		return EINTERNAL
	}
}

// ErrorMessage returns the message of the first *Error in err's chain, or a
// generic text for internal errors, so that no internal detail leaks out.
func ErrorMessage(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Message
	default:
		return "internal error"
	}
}
