package wxsender

import (
	"context"
	"errors"
	"net"
	"testing"

	wx "github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/engine"
	"github.com/wxcampaign/wxcampaign/wechat"
)

// TestClassify: every WeChat answer of WECHAT.md's table maps to the
// engine's class and reason code; the detail carries the errcode and
// errmsg, never more.
func TestClassify(t *testing.T) {
	api := func(code int, msg string) error {
		return &wechat.APIError{Op: "send", Code: code, Msg: msg, Class: wechat.ClassOfCode(code)}
	}
	tests := []struct {
		name   string
		err    error
		class  engine.SendClass
		reason wx.Reason
		detail string
	}{
		{"busy", api(-1, "system error"), engine.SendRetryable, wx.ReasonRetriesExhausted, "-1 system error"},
		{"concurrent", api(43108, "x"), engine.SendRetryable, wx.ReasonRetriesExhausted, "43108 x"},
		{"token churn", api(40001, "invalid credential"), engine.SendRetryable, wx.ReasonRetriesExhausted, "40001 invalid credential"},
		{"no credit", api(43101, "user refuse to accept the msg"), engine.SendGrantGone, wx.ReasonWeChat43101, "43101 user refuse to accept the msg"},
		{"touser", api(40003, "invalid openid"), engine.SendRecipient, wx.ReasonWeChat40003, "40003 invalid openid"},
		{"value", api(47003, "argument invalid! data.thing1.value invalid"), engine.SendContent, wx.ReasonWeChat47003, "47003 argument invalid! data.thing1.value invalid"},
		{"sensitive", api(45168, "keyword"), engine.SendContent, wx.ReasonWeChat45168, "45168 keyword"},
		{"unknown errcode", api(61234, "new"), engine.SendContent, wx.ReasonWeChatOther, "61234 new"},
		{"page", api(41030, "invalid page"), engine.SendPage, wx.ReasonWeChat41030, "41030 invalid page"},
		{"template", api(40037, "invalid template_id"), engine.SendCampaign, wx.ReasonWeChatMisconfigured, "40037 invalid template_id"},
		{"banned", api(43107, "banned"), engine.SendCampaign, wx.ReasonWeChatMisconfigured, "43107 banned"},
		{"quota", api(45009, "reach max api daily quota limit"), engine.SendQuota, wx.ReasonQuotaPaused, "45009 reach max api daily quota limit"},
		{"ip", api(40164, "invalid ip"), engine.SendConfig, wx.ReasonWeChatConfig, "40164 invalid ip"},
		{"http 500", &wechat.APIError{Op: "send", HTTPStatus: 500, Class: wechat.ClassAmbiguous}, engine.SendAmbiguous, wx.ReasonAmbiguous, "HTTP 500"},
		{"timeout", context.DeadlineExceeded, engine.SendAmbiguous, wx.ReasonAmbiguous, "context deadline exceeded"},
		{"refused", &net.OpError{Op: "dial", Err: errors.New("connection refused")}, engine.SendRetryable, wx.ReasonRetriesExhausted, "dial: connection refused"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			se := Classify(tc.err)
			if se.Class != tc.class || se.Reason != tc.reason || se.Detail != tc.detail || !errors.Is(se, tc.err) {
				t.Errorf("Classify = {%s %s %q}, want {%s %s %q}", se.Class, se.Reason, se.Detail, tc.class, tc.reason, tc.detail)
			}
			if !tc.reason.Valid() {
				t.Errorf("reason %q is not a declared code", tc.reason)
			}
		})
	}
}
