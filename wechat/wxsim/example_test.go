package wxsim_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/wxcampaign/wxcampaign/wechat/wxsim"
)

// A simulator in a test: feed credits, get a token, send, read back what
// was delivered.
func ExampleServer() {
	sim, err := wxsim.New(wxsim.Config{AppID: "wx-demo", Secret: "demo-secret", Templates: []wxsim.TemplateDef{
		{ID: "T-ACT", Kind: "one_time", Keys: []string{"thing1", "date2"}},
	}})
	if err != nil {
		panic(err)
	}
	srv := httptest.NewServer(sim.Handler())
	defer srv.Close()
	sim.AddCredits("o-bob", "T-ACT", 1)

	resp, _ := http.Post(srv.URL+"/cgi-bin/stable_token", "application/json",
		strings.NewReader(`{"grant_type":"client_credential","appid":"wx-demo","secret":"demo-secret"}`))
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	decode(resp, &tok)

	send := func() {
		resp, _ := http.Post(srv.URL+"/cgi-bin/message/subscribe/send?access_token="+tok.AccessToken, "application/json",
			strings.NewReader(`{"touser":"o-bob","template_id":"T-ACT","data":{"thing1":{"value":"活动开始了"},"date2":{"value":"2024年5月1日"}}}`))
		var r struct {
			ErrCode int    `json:"errcode"`
			ErrMsg  string `json:"errmsg"`
		}
		decode(resp, &r)
		fmt.Println(r.ErrCode, r.ErrMsg)
	}
	send()
	send() // the one credit is spent
	for _, m := range sim.Messages() {
		fmt.Println(m.ToUser, m.TemplateID, m.Data["thing1"])
	}
	// Output:
	// 0 ok
	// 43101 user refuse to accept the msg
	// o-bob T-ACT 活动开始了
}
