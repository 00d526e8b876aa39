package wxsim_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/wxcampaign/wxcampaign/wechat"
	"github.com/wxcampaign/wxcampaign/wechat/wxsim"
)

// A simulator that pushes subscribe_msg_sent_event to a message push URL
// after each delivered message; FlushPushes waits for the pushes.
func ExampleServer_FlushPushes() {
	const pushToken = "push-token"
	events := make(chan wechat.PushEvent, 10)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		body, _ := io.ReadAll(io.LimitReader(r.Body, wechat.MaxPushBody))
		ev, err := wechat.ParsePush(body)
		if err != nil || !wechat.VerifyPushSignature(pushToken, q.Get("signature"), q.Get("timestamp"), q.Get("nonce")) {
			http.Error(w, "bad push", http.StatusBadRequest)
			return
		}
		events <- ev
		io.WriteString(w, "success")
	}))
	defer recv.Close()

	sim, err := wxsim.New(wxsim.Config{AppID: "wx-demo", Secret: "demo-secret", LooseCredits: true,
		Templates: []wxsim.TemplateDef{{ID: "T-ACT", Keys: []string{"thing1"}}},
		PushURL:   recv.URL + "/wx/push", PushToken: pushToken})
	if err != nil {
		panic(err)
	}
	defer sim.Close()
	srv := httptest.NewServer(sim.Handler())
	defer srv.Close()

	resp, _ := http.Post(srv.URL+"/cgi-bin/stable_token", "application/json",
		strings.NewReader(`{"grant_type":"client_credential","appid":"wx-demo","secret":"demo-secret"}`))
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	decode(resp, &tok)
	var sent struct {
		MsgID int64 `json:"msgid"`
	}
	resp, _ = http.Post(srv.URL+"/cgi-bin/message/subscribe/send?access_token="+tok.AccessToken, "application/json",
		strings.NewReader(`{"touser":"o-bob","template_id":"T-ACT","data":{"thing1":{"value":"活动开始了"}}}`))
	decode(resp, &sent)

	if err := sim.FlushPushes(context.Background()); err != nil {
		panic(err)
	}
	ev := <-events
	it := ev.Items[0]
	fmt.Println(ev.Event, ev.OpenID, it.TemplateID, it.MsgID == sent.MsgID, it.ErrorCode, sim.Stats().Pushed)
	// Output:
	// subscribe_msg_sent_event o-bob T-ACT true 0 1
}
