package engine

import (
	"context"
	"errors"

	wx "github.com/wxcampaign/wxcampaign"
)

// Sender delivers one message on a channel (WeChat subscription messages:
// wechat/wxsender). It returns the channel's message id, and for a failure
// a *SendError (any other error counts as ambiguous: the message may have
// arrived). A second channel is one adapter package; the run and the
// dispatcher do not change.
type Sender interface {
	Send(ctx context.Context, m Message) (msgid int64, err error)
}

// Message is one message to one recipient, in the engine's terms.
type Message struct {
	To       string            // the recipient (an openid)
	Template string            // the channel's template id
	Data     map[string]string // the template's values by key
	Page     string            // where the message leads, if anywhere
	// Options are the channel's per-message settings, read only (WeChat:
	// miniprogram_state, lang).
	Options map[string]string
}

// SendClass says what a failed send means to the engine.
type SendClass string

// Send failure classes.
const (
	// SendRetryable: nothing was delivered; trying again later may work
	// (busy, refused connection, a concurrent send to the user, token
	// churn).
	SendRetryable SendClass = "retryable"
	// SendAmbiguous: the message may have arrived (a timeout after the
	// request was written, a 5xx).
	SendAmbiguous SendClass = "ambiguous"
	// SendGrantGone: the recipient has no permission left (43101): the
	// grant is used up.
	SendGrantGone SendClass = "grant_gone"
	// SendRecipient: the recipient is wrong (40003): the grant is used up.
	SendRecipient SendClass = "recipient"
	// SendContent: this message's content was refused (47003, 45168, an
	// unknown code): this grant fails, the run goes on.
	SendContent SendClass = "content"
	// SendPage: the message's page was refused (41030): this grant's, or,
	// when the same page is refused twice, the campaign's.
	SendPage SendClass = "page"
	// SendCampaign: the campaign is misconfigured (40037, 43107): the run
	// stops.
	SendCampaign SendClass = "campaign"
	// SendQuota: the channel's daily quota is reached (45009): sending
	// pauses until it resets.
	SendQuota SendClass = "quota"
	// SendConfig: the engine's credentials or address are refused: the
	// run stops.
	SendConfig SendClass = "config"
)

// SendError is a failed send as the engine sees it.
type SendError struct {
	Class  SendClass
	Reason wx.Reason // the outcome's code (wechat_47003, ...); empty: the class decides
	Detail string    // the channel's answer, safe to show (no credentials)
	Err    error     // the channel's own error
}

// Error implements error.
func (e *SendError) Error() string {
	if e.Err != nil {
		return e.Err.Error()
	}
	return string(e.Class) + ": " + e.Detail
}

// Unwrap returns the channel's error.
func (e *SendError) Unwrap() error { return e.Err }

// sendError returns err as a *SendError; anything else is ambiguous.
func sendError(err error) *SendError {
	var se *SendError
	if errors.As(err, &se) {
		return se
	}
	return &SendError{Class: SendAmbiguous, Reason: wx.ReasonAmbiguous, Detail: err.Error(), Err: err}
}
