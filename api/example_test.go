package api_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"time"

	"github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/api"
)

// memSubs is a minimal Subscriptions for the examples; the daemon passes
// its *store.DB.
type memSubs struct{ seen map[string]bool }

func (m *memSubs) RecordSubscription(_ context.Context, r wxcampaign.SubscriptionResult, _ time.Time) (wxcampaign.RecordResult, error) {
	if m.seen[r.RequestID] {
		return wxcampaign.RecordResult{Duplicate: true}, nil
	}
	m.seen[r.RequestID] = true
	var res wxcampaign.RecordResult
	for _, id := range r.AgreeTemplateIDs {
		if slices.Contains(r.LongTermTemplateIDs, id) {
			res.LongTerm++
		} else {
			res.Credits++
		}
	}
	res.Rejected = len(r.RejectTemplateIDs)
	return res, nil
}

func post(url, body string) {
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer my-api-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	fmt.Print(resp.StatusCode, " ", string(b))
}

// Example records a subscription result the way the mini program's backend
// reports it, then the same result again.
func Example() {
	s, err := api.New(
		api.Config{Tokens: []string{"my-api-token"}},
		api.Deps{Subs: &memSubs{seen: map[string]bool{}}, Catalog: catalog},
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()

	body := `{"openId":"oUser1","scene":"cart.add","busNo":"P100",
		"extraVariableMap":{"price":"12.50"},
		"agreeTemplateIds":["T-price","T-long"],"rejectTemplateIds":["T-stock"],
		"requestId":"2f1c-0001"}`
	post(srv.URL+"/v1/subscriptions", body)
	post(srv.URL+"/v1/subscriptions", body)
	post(srv.URL+"/v1/subscriptions", `{"openId":"oUser1","requestId":"x","agreeTemplateIds":["T"],"admin":true}`)
	// Output:
	// 201 {"requestId":"2f1c-0001","credits":1,"longTerm":1,"rejected":1,"duplicate":false}
	// 200 {"requestId":"2f1c-0001","credits":0,"longTerm":0,"rejected":0,"duplicate":true}
	// 400 {"error":{"code":"invalid","message":"invalid JSON: unknown field \"admin\""}}
}

// ExampleServer_Handler lists the template ids to pass to
// wx.requestSubscribeMessage in a scene: one-time and long-term ids come in
// separate lists because WeChat forbids mixing them in one call.
func ExampleServer_Handler() {
	s, _ := api.New(api.Config{Tokens: []string{"my-api-token"}}, api.Deps{Subs: &memSubs{}, Catalog: catalog})
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()

	for _, path := range []string{"/v1/scenes/cart.add/templates", "/v1/scenes/unknown/templates"} {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer my-api-token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			fmt.Println(err)
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Print(resp.StatusCode, " ", string(b))
	}
	// Output:
	// 200 {"scene":"cart.add","tmplIds":["T-price","T-stock","T-act"],"longTermTmplIds":["T-long","T-long2"]}
	// 200 {"scene":"unknown","tmplIds":[],"longTermTmplIds":[]}
}

// ExampleNewHTTPServer serves the API with timeouts that protect it from
// slow clients, and shuts it down gracefully.
func ExampleNewHTTPServer() {
	s, err := api.New(api.Config{Tokens: []string{"my-api-token"}}, api.Deps{
		Subs:    &memSubs{seen: map[string]bool{}},
		Catalog: catalog,
		Ready:   func(ctx context.Context) error { return nil }, // e.g. the store's ping
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := api.NewHTTPServer("127.0.0.1:0", s.Handler())
	fmt.Println(srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout)

	// In the daemon: go srv.ListenAndServe(); on SIGTERM:
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
	// Output:
	// 5s 15s 30s 2m0s
}

// ExampleNew shows that the API refuses to start without a token.
func ExampleNew() {
	_, err := api.New(api.Config{}, api.Deps{Subs: &memSubs{}, Catalog: catalog})
	fmt.Println(err)
	// Output:
	// api: new: http.token: no bearer token configured; the API refuses to start without authentication
}
