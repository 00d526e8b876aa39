package api_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"time"

	"github.com/wxcampaign/wxcampaign/api"
	"github.com/wxcampaign/wxcampaign/store"
	"github.com/wxcampaign/wxcampaign/wechat"
)

// printDeliveries is a Deliveries for the example; the daemon passes its
// *store.DB.
type printDeliveries struct{}

func (printDeliveries) RecordDeliveries(_ context.Context, _ time.Time, ds []store.Delivery) (int, error) {
	for _, d := range ds {
		fmt.Println("delivery:", d.MsgID, d.OpenID, d.TemplateID, d.ErrCode, d.Status, d.SentAt.Format(time.RFC3339))
	}
	return len(ds), nil
}

// Example_messagePush serves WeChat's message push: the URL verification
// (a signed GET whose echostr comes back) and a subscribe_msg_sent_event
// that becomes a stored delivery.
func Example_messagePush() {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	s, err := api.New(
		api.Config{Tokens: []string{"my-api-token"}, PushToken: "console-push-token", Now: func() time.Time { return now }},
		api.Deps{Subs: &memSubs{seen: map[string]bool{}}, Catalog: catalog, Deliveries: printDeliveries{}},
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()

	// What WeChat puts in the query: signature = sha1(sort(token, timestamp, nonce)).
	ts := strconv.FormatInt(now.Unix(), 10)
	query := "?signature=" + wechat.SignPush("console-push-token", ts, "42") + "&timestamp=" + ts + "&nonce=42"

	resp, _ := http.Get(srv.URL + api.PushPath + query + "&echostr=7391")
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println("verify:", resp.StatusCode, string(b))

	event := `{"ToUserName":"gh_123","FromUserName":"o-alice","CreateTime":1740830390,"MsgType":"event",
	  "Event":"subscribe_msg_sent_event","List":{"TemplateId":"T-price","MsgID":"1700000001","ErrorCode":"0","ErrorStatus":"success"}}`
	resp, _ = http.Post(srv.URL+api.PushPath+query, "application/json", strings.NewReader(event))
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println("push:", resp.StatusCode, string(b))
	// Output:
	// verify: 200 7391
	// delivery: 1700000001 o-alice T-price 0 success 2025-03-01T11:59:50Z
	// push: 200 success
}
