package api

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/store"
	"github.com/wxcampaign/wxcampaign/wechat"
)

type nopSubs struct{}

func (nopSubs) RecordSubscription(ctx context.Context, r wxcampaign.SubscriptionResult, at time.Time) (wxcampaign.RecordResult, error) {
	return wxcampaign.RecordResult{Credits: len(r.AgreeTemplateIDs)}, nil
}

type nopCatalog struct{}

func (nopCatalog) SceneTemplates(string) []wxcampaign.SceneTemplate { return nil }
func (nopCatalog) KindOf(string) wxcampaign.Kind                    { return wxcampaign.OneTime }

// FuzzDecodeSubscription feeds arbitrary bodies to the subscription decoder
// and to the whole endpoint: nothing panics, every rejection is a 4xx with
// an application error code, and whatever is accepted is valid.
func FuzzDecodeSubscription(f *testing.F) {
	for _, seed := range []string{
		`{"openId":"o1","scene":"cart.add","busNo":"P100","extraVariableMap":{"price":12.5},"agreeTemplateIds":["T1"],"rejectTemplateIds":["T2"],"requestId":"r1"}`,
		`{"openId":"o","requestId":"r","agreeTemplateIds":["T"],"longTermTemplateIds":["T"],"banTemplateIds":["B"],"filterTemplateIds":["F"]}`,
		`{"openId":"'; DROP TABLE grants; --","requestId":"😀","agreeTemplateIds":["T"]}`,
		`{"openid":"o","requestId":"r","agreeTemplateIds":["T"]}`,
		`{"openId":"o","openId":"o","requestId":"r","agreeTemplateIds":["T"]}`,
		`{"openId":1}`, `[]`, `null`, ``, `{`, `{"a":1} x`, `"\ud800"`,
		`{"extraVariableMap":{"a":[[[[[[[[[[1]]]]]]]]]]},"openId":"o","requestId":"r","agreeTemplateIds":["T"]}`,
		`{"openId":"o","triggerAct":"加入购物车","busNo":"P1","result":{"T1":"accept","T2":"reject","T3":"ban","errMsg":"requestSubscribeMessage:ok"}}`,
		`{"openId":"o","scene":"提交售后申请（退货退款）","agreeTemplateIds":["T","T","T"],"rejectTemplateIds":["U"]}`,
		`{"openId":"o\u0000","busNo":"\ud800","requestId":"r","agreeTemplateIds":["T"],"rejectTemplateIds":["T"]}`,
	} {
		f.Add([]byte(seed))
	}
	s, err := New(Config{Tokens: []string{"t"}, MaxBody: 4096}, Deps{Subs: nopSubs{}, Catalog: nopCatalog{}})
	if err != nil {
		f.Fatal(err)
	}
	h := s.Handler()
	f.Fuzz(func(t *testing.T, body []byte) {
		res, err := decodeSubscription(body, "", DefaultMaxTemplates)
		if err == nil {
			if verr := res.Validate(); verr != nil {
				t.Fatalf("accepted an invalid result: %v", verr)
			}
		} else if code := wxcampaign.ErrorCode(err); code != wxcampaign.EINVALID {
			t.Fatalf("decode error code %q, want invalid: %v", code, err)
		}

		req := httptest.NewRequest(http.MethodPost, "/v1/subscriptions", strings.NewReader(string(body)))
		req.Header.Set("Authorization", "Bearer t")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch {
		case rec.Code >= 500:
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
		case err == nil && len(body) <= 4096 && rec.Code != http.StatusCreated:
			t.Fatalf("decoder accepted %q but the endpoint answered %d: %s", body, rec.Code, rec.Body)
		case err != nil && rec.Code != http.StatusBadRequest && rec.Code != http.StatusRequestEntityTooLarge:
			t.Fatalf("decoder rejected %q but the endpoint answered %d", body, rec.Code)
		case rec.Code >= 400 && !strings.Contains(rec.Body.String(), `"error":{"code":`):
			t.Fatalf("status %d without a JSON error: %s", rec.Code, rec.Body)
		}
	})
}

// checkedDeliveries is a Deliveries that fails (and so turns into a 5xx the
// fuzzer reports) on any delivery the real store would refuse or choke on.
type checkedDeliveries struct{ t *testing.T }

func (c checkedDeliveries) RecordDeliveries(_ context.Context, _ time.Time, ds []store.Delivery) (int, error) {
	for _, d := range ds {
		if d.MsgID <= 0 || !validPushID(d.OpenID) || !validPushID(d.TemplateID) || !utf8.ValidString(d.Status) ||
			d.SentAt.Before(minPushTime) || !d.SentAt.Before(maxPushTime) {
			c.t.Errorf("handler passed an unstorable delivery: %+v", d)
			return 0, errors.New("unstorable delivery")
		}
	}
	return len(ds), nil
}

// FuzzPush feeds arbitrary bodies, signed or with an arbitrary query, to the
// message push endpoint: nothing panics, no garbage gets a 5xx, every
// refusal is a JSON error, and a signed body ParsePush accepts is answered
// "success" unless it holds values the store cannot keep (400).
func FuzzPush(f *testing.F) {
	for _, seed := range []string{
		`{"ToUserName":"gh_1","FromUserName":"o1","CreateTime":1740830400,"MsgType":"event","Event":"subscribe_msg_sent_event","List":{"TemplateId":"T","MsgID":"1","ErrorCode":"0","ErrorStatus":"success"}}`,
		`{"FromUserName":"o1","CreateTime":"1740830400","MsgType":"event","Event":"subscribe_msg_sent_event","List":[{"TemplateId":"T","MsgID":2,"ErrorCode":0},{"TemplateId":"U","MsgID":3,"ErrorCode":20001,"ErrorStatus":"fail"}]}`,
		`<xml><FromUserName>o</FromUserName><CreateTime>1740830400</CreateTime><MsgType>event</MsgType><Event>subscribe_msg_sent_event</Event><SubscribeMsgSentEvent><List><TemplateId>T</TemplateId><MsgID>4</MsgID><ErrorCode>0</ErrorCode></List></SubscribeMsgSentEvent></xml>`,
		`{"FromUserName":"o","CreateTime":1740830400,"MsgType":"event","Event":"subscribe_msg_change_event","List":{"TemplateId":"T","SubscribeStatusString":"reject"}}`,
		`{"FromUserName":"o","CreateTime":1740830400,"MsgType":"event","Event":"subscribe_msg_popup_event","List":[{"TemplateId":"T","SubscribeStatusString":"accept","PopupScene":"0"}]}`,
		`{"FromUserName":"o","CreateTime":1,"MsgType":"text","Content":"hi"}`,
		`{"ToUserName":"gh","Encrypt":"xx"}`, `<xml><Encrypt>x</Encrypt></xml>`,
		`{"FromUserName":"o","CreateTime":99999999999,"MsgType":"event","Event":"subscribe_msg_sent_event","List":{"TemplateId":"T","MsgID":"-5","ErrorCode":"0"}}`,
		``, `{`, `<xml>`, `[]`, `null`, "\xff\xfe<xml/>",
	} {
		f.Add([]byte(seed), "")
	}
	f.Add([]byte(`{}`), "signature=0000000000000000000000000000000000000000&timestamp=1740830400&nonce=1")
	f.Add([]byte(`{}`), "encrypt_type=aes")
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte, query string) {
		s, err := New(Config{Tokens: []string{"t"}, MaxBody: 4096, PushToken: "pt", Now: func() time.Time { return now }},
			Deps{Subs: nopSubs{}, Catalog: nopCatalog{}, Deliveries: checkedDeliveries{t}})
		if err != nil {
			t.Fatal(err)
		}
		signed := query == ""
		if signed {
			ts := strconv.FormatInt(now.Unix(), 10)
			query = "signature=" + wechat.SignPush("pt", ts, "n") + "&timestamp=" + ts + "&nonce=n"
		}
		req := httptest.NewRequest(http.MethodPost, PushPath+"?"+url.PathEscape(query), bytes.NewReader(body))
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		_, perr := wechat.ParsePush(body)
		switch {
		case rec.Code >= 500:
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
		case rec.Code == http.StatusOK && rec.Body.String() != "success":
			t.Fatalf("200 with %q", rec.Body)
		case rec.Code == http.StatusOK && perr != nil:
			t.Fatalf("accepted %q that ParsePush refuses: %v", body, perr)
		case signed && perr == nil && len(body) <= 4096 && rec.Code != http.StatusOK && rec.Code != http.StatusBadRequest:
			t.Fatalf("signed parsable push %q answered %d: %s", body, rec.Code, rec.Body)
		case rec.Code != http.StatusOK && !strings.Contains(rec.Body.String(), `"error":{"code":`):
			t.Fatalf("status %d without a JSON error: %s", rec.Code, rec.Body)
		}
	})
}
