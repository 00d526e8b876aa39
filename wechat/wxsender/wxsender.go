// Package wxsender adapts the WeChat client to the engine's Sender: it
// turns the engine's Message into a subscribeMessage.send request and
// WeChat's answers into the engine's send classes and reason codes. It is
// the one place that knows what each WeChat errcode means to a run.
package wxsender

import (
	"context"
	"errors"
	"strconv"

	wx "github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/engine"
	"github.com/wxcampaign/wxcampaign/wechat"
)

// Sender sends the engine's messages as WeChat subscription messages.
type Sender struct{ c *wechat.Client }

var _ engine.Sender = Sender{}

// New returns the engine's Sender over c.
func New(c *wechat.Client) Sender { return Sender{c: c} }

// Send implements engine.Sender. Failures are *engine.SendError wrapping
// the client's *wechat.APIError.
func (s Sender) Send(ctx context.Context, m engine.Message) (int64, error) {
	id, err := s.c.Send(ctx, wechat.Message{ToUser: m.To, TemplateID: m.Template, Page: m.Page, Data: m.Data,
		State: m.Options["state"], Lang: m.Options["lang"]})
	if err != nil {
		return 0, Classify(err)
	}
	return id, nil
}

// Classify maps a WeChat client error to the engine's class, reason code
// and detail (the errcode and errmsg, or the HTTP status).
func Classify(err error) *engine.SendError {
	se := &engine.SendError{Err: err, Detail: err.Error()}
	var ae *wechat.APIError
	if errors.As(err, &ae) {
		switch {
		case ae.Code != 0 && ae.Msg != "":
			se.Detail = strconv.Itoa(ae.Code) + " " + ae.Msg
		case ae.Code != 0:
			se.Detail = strconv.Itoa(ae.Code)
		case ae.HTTPStatus != 0:
			se.Detail = "HTTP " + strconv.Itoa(ae.HTTPStatus)
		}
	}
	code := wechat.Code(err)
	switch wechat.ClassOf(err) {
	case wechat.ClassRetryable, wechat.ClassToken:
		// Token churn (another process refreshing) after the client's own
		// refresh and retry: retried with backoff like -1.
		se.Class, se.Reason = engine.SendRetryable, wx.ReasonRetriesExhausted
	case wechat.ClassGrantGone:
		se.Class, se.Reason = engine.SendGrantGone, wx.ReasonWeChat43101
	case wechat.ClassUser:
		se.Class, se.Reason = engine.SendRecipient, wx.ReasonWeChat40003
	case wechat.ClassContent:
		se.Class, se.Reason = engine.SendContent, wx.ReasonWeChatOther
		switch code {
		case wechat.CodeArgInvalid:
			se.Reason = wx.ReasonWeChat47003
		case wechat.CodeSensitiveWords:
			se.Reason = wx.ReasonWeChat45168
		}
	case wechat.ClassMisconfigured:
		se.Class, se.Reason = engine.SendCampaign, wx.ReasonWeChatMisconfigured
		if code == wechat.CodeInvalidPage {
			se.Class, se.Reason = engine.SendPage, wx.ReasonWeChat41030
		}
	case wechat.ClassQuota:
		se.Class, se.Reason = engine.SendQuota, wx.ReasonQuotaPaused
	case wechat.ClassConfig:
		se.Class, se.Reason = engine.SendConfig, wx.ReasonWeChatConfig
	case wechat.ClassAmbiguous:
		se.Class, se.Reason = engine.SendAmbiguous, wx.ReasonAmbiguous
	default: // ClassPermanent: an errcode of no known meaning
		se.Class, se.Reason = engine.SendContent, wx.ReasonWeChatOther
	}
	return se
}
