package wechat_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"

	"github.com/wxcampaign/wxcampaign/wechat"
)

// A message-push handler: verify the signature, echo echostr on the GET
// that WeChat sends when the URL is configured, parse the POSTed events.
func ExampleParsePush() {
	const token = "push-token"
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if !wechat.VerifyPushSignature(token, q.Get("signature"), q.Get("timestamp"), q.Get("nonce")) {
			http.Error(w, "bad signature", http.StatusForbidden)
			return
		}
		if r.Method == http.MethodGet {
			io.WriteString(w, q.Get("echostr"))
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, wechat.MaxPushBody))
		if err != nil {
			http.Error(w, "read", http.StatusBadRequest)
			return
		}
		ev, err := wechat.ParsePush(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, it := range ev.Items {
			fmt.Println(ev.Event, ev.OpenID, it.TemplateID, it.MsgID, it.ErrorCode, it.ErrorStatus)
		}
		io.WriteString(w, "success")
	})
	srv := httptest.NewServer(h)
	defer srv.Close()

	sign := func(ts, nonce string) string {
		return "?" + url.Values{"signature": {wechat.SignPush(token, ts, nonce)}, "timestamp": {ts}, "nonce": {nonce}}.Encode()
	}
	resp, _ := http.Get(srv.URL + sign("1620963428", "42") + "&echostr=hello")
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println("echo:", string(b))

	body := `{"ToUserName":"gh_123456789abc","FromUserName":"o-alice","CreateTime":1620963428,"MsgType":"event",
"Event":"subscribe_msg_sent_event","List":{"TemplateId":"T-PRICE","MsgID":"1864323726461255680","ErrorCode":"0","ErrorStatus":"success"}}`
	resp, _ = http.Post(srv.URL+sign("1620963428", "43"), "application/json", strings.NewReader(body))
	resp.Body.Close()
	resp, _ = http.Post(srv.URL+sign("1620963428", "43")+"0", "application/json", strings.NewReader(body)) // timestamp tampered (the last parameter)
	fmt.Println(resp.StatusCode)
	resp.Body.Close()
	// Output:
	// echo: hello
	// subscribe_msg_sent_event o-alice T-PRICE 1864323726461255680 0 success
	// 403
}
