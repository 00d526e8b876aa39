package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/api"
)

// fakeBalances answers Balances from a table per openid.
type fakeBalances map[string][]wxcampaign.Balance

func (f fakeBalances) Balances(_ context.Context, openid string, _ time.Time) ([]wxcampaign.Balance, error) {
	if openid == "o-broken" {
		return nil, errors.New("db down: dsn user:secret@tcp")
	}
	return f[openid], nil
}

// fakeSchedules: the next send of each template, relative to fixedNow.
type fakeSchedules map[string]time.Duration

func (f fakeSchedules) NextSend(tmpl string, after time.Time) (time.Time, bool) {
	d, ok := f[tmpl]
	return after.Add(d), ok
}

func TestOffers(t *testing.T) {
	day := 24 * time.Hour
	balances := fakeBalances{
		"o-rich": {
			{TemplateID: "T-price", Credits: 5},
			{TemplateID: "T-stock", Credits: 0},
			{TemplateID: "T-act", Credits: 2},
			{TemplateID: "T-more", Credits: 1},
		},
		"o-picky": {
			{TemplateID: "T-price", Credits: 0, RejectedAt: fixedNow.Add(-2 * day)},                                          // within the cool-down
			{TemplateID: "T-stock", Credits: 0, RejectedAt: fixedNow.Add(-8 * day)},                                          // cool-down over
			{TemplateID: "T-act", Credits: 0, BannedAt: fixedNow.Add(-90 * day)},                                             // banned long ago: still out
			{TemplateID: "T-more", BannedAt: fixedNow.Add(-90 * day), LastAcceptAt: fixedNow.Add(-day)},                      // accepted since the ban
			{TemplateID: "T-long", Kind: wxcampaign.LongTerm, LongTerm: wxcampaign.LongTermActive},                           // has one
			{TemplateID: "T-long2", Kind: wxcampaign.LongTerm, RejectedAt: fixedNow.Add(-time.Hour), LastAcceptAt: fixedNow}, // accepted after the reject
		},
	}
	schedules := fakeSchedules{"T-more": time.Hour, "T-act": 48 * time.Hour, "T-price": 30 * time.Minute, "T-long2": time.Hour}
	tests := []struct {
		name     string
		query    string
		oneTime  []string
		longTerm []string
		leftOut  string
	}{
		{"without openid: catalog order", "", []string{"T-price", "T-stock", "T-act"}, []string{"T-long", "T-long2"}, "[]"},
		// Soon: T-price (30m), T-more (1h); then fewest credits: T-stock 0, T-act 2.
		{"soon first, then fewest credits", "?openid=o-rich", []string{"T-more", "T-price", "T-stock"}, []string{"T-long2", "T-long"}, "[]"},
		{"limit", "?openid=o-rich&limit=2", []string{"T-more", "T-price"}, []string{"T-long2", "T-long"}, "[]"},
		{"unknown user: wanted soon, then catalog order", "?openid=o-new", []string{"T-price", "T-more", "T-stock"}, []string{"T-long2", "T-long"}, "[]"},
		{"rejected within the cool-down and banned are left out", "?openid=o-picky", []string{"T-more", "T-stock"}, []string{"T-long2", "T-long"},
			"[map[reason:rejected templateId:T-price] map[reason:banned templateId:T-act]]"},
		{"format=ids gives one kind only", "?openid=o-rich&format=ids", []string{"T-more", "T-price", "T-stock"}, nil, ""},
		{"format=ids long-term", "?openid=o-picky&format=ids&kind=long_term", nil, []string{"T-long2", "T-long"}, ""},
	}
	e := setup(t, func(_ *api.Config, d *api.Deps) { d.Balances = balances; d.Schedules = schedules })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.rawGet(t, "/v1/scenes/cart.add/templates"+tt.query)
			if r.status != 200 {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			if tt.leftOut == "" { // the bare array of ids
				want := tt.oneTime
				if want == nil {
					want = tt.longTerm
				}
				if got := fmt.Sprint(r.ids); got != fmt.Sprint(want) {
					t.Errorf("ids = %s, want %v", got, want)
				}
				return
			}
			if got := fmt.Sprint(r.obj["tmplIds"]); got != fmt.Sprint(tt.oneTime) {
				t.Errorf("tmplIds = %s, want %v", got, tt.oneTime)
			}
			if got := fmt.Sprint(r.obj["longTermTmplIds"]); got != fmt.Sprint(tt.longTerm) {
				t.Errorf("longTermTmplIds = %s, want %v", got, tt.longTerm)
			}
			left := r.obj["leftOut"]
			if left == nil {
				left = []any{}
			}
			if got := fmt.Sprint(left); got != tt.leftOut {
				t.Errorf("leftOut = %s, want %s", got, tt.leftOut)
			}
		})
	}
	for _, bad := range []string{"?openid=o-rich&limit=0", "?openid=o-rich&limit=x", "?openid=" + url.QueryEscape("a\x00b")} {
		if r := e.do(t, "GET", "/v1/scenes/cart.add/templates"+bad, bearer(token), nil); r.status != 400 || r.errCode() != wxcampaign.EINVALID {
			t.Errorf("%s: %d %s, want 400 invalid", bad, r.status, r.raw)
		}
	}
	if r := e.do(t, "GET", "/v1/scenes/cart.add/templates?openid=o-broken", bearer(token), nil); r.status != 500 || r.errCode() != wxcampaign.EINTERNAL {
		t.Errorf("store error: %d %s", r.status, r.raw)
	}
}

func TestGrantsEndpoint(t *testing.T) {
	sent := fixedNow.Add(-time.Hour)
	e := setup(t, func(_ *api.Config, d *api.Deps) {
		d.Balances = fakeBalances{"o 1/中": {{TemplateID: "T-price", Kind: wxcampaign.OneTime, Credits: 2,
			LastSent: &wxcampaign.LastSend{Campaign: "price-drop", Status: "sent", MsgID: 9, At: sent}}}}
	})
	r := e.do(t, "GET", "/v1/users/"+url.PathEscape("o 1/中")+"/grants", bearer(token), nil)
	if r.status != 200 || r.body["openid"] != "o 1/中" {
		t.Fatalf("grants: %d %s", r.status, r.raw)
	}
	ts := r.body["templates"].([]any)
	b := ts[0].(map[string]any)
	if len(ts) != 1 || b["credits"] != 2.0 || b["last_sent"].(map[string]any)["msgid"] != 9.0 {
		t.Errorf("templates = %s", r.raw)
	}
	if r := e.do(t, "GET", "/v1/users/nobody/grants", bearer(token), nil); r.status != 200 || fmt.Sprint(r.body["templates"]) != "[]" {
		t.Errorf("unknown user: %d %s", r.status, r.raw)
	}
	for path, want := range map[string]int{
		"/v1/users/o-broken/grants":                         500,
		"/v1/users/" + url.PathEscape("a\x00b") + "/grants": 400,
		"/v1/users/x/grants?":                               200,
	} {
		if r := e.do(t, "GET", path, bearer(token), nil); r.status != want {
			t.Errorf("%s: %d %s, want %d", path, r.status, r.raw, want)
		} else if want == 500 && r.errMessage() != "internal error" {
			t.Errorf("%s leaks %q", path, r.errMessage())
		}
	}
	if r := e.do(t, "GET", "/v1/users/x/grants", "", nil); r.status != 401 {
		t.Errorf("without a token: %d", r.status)
	}
	if r := e.do(t, "POST", "/v1/users/x/grants", bearer(token), nil); r.status != 405 {
		t.Errorf("POST: %d", r.status)
	}
	// Without Deps.Balances: 503, and the scene endpoints ignore openid.
	plain := setup(t)
	if r := plain.do(t, "GET", "/v1/users/x/grants", bearer(token), nil); r.status != 503 {
		t.Errorf("not configured: %d %s", r.status, r.raw)
	}
}

// fakeStats records the range it was asked for.
type fakeStats struct{ from, to time.Time }

func (f *fakeStats) SubscriptionStats(_ context.Context, from, to time.Time, _ *time.Location) ([]wxcampaign.SubscriptionStat, error) {
	f.from, f.to = from, to
	return []wxcampaign.SubscriptionStat{{Day: "2025-03-01", Source: "result", Scene: "cart", TemplateID: "A", Accept: 3, Reject: 1}}, nil
}

func TestStatsEndpoint(t *testing.T) {
	shanghai, _ := time.LoadLocation("Asia/Shanghai")
	st := &fakeStats{}
	e := setup(t, func(c *api.Config, d *api.Deps) { d.Stats = st; c.Location = shanghai })
	r := e.do(t, "GET", "/v1/stats/subscriptions?from=2025-03-01&to=2025-03-02", bearer(token), nil)
	if r.status != 200 || r.body["zone"] != "Asia/Shanghai" || r.body["to"] != "2025-03-02" {
		t.Fatalf("stats: %d %s", r.status, r.raw)
	}
	if !st.from.Equal(time.Date(2025, 3, 1, 0, 0, 0, 0, shanghai)) || !st.to.Equal(time.Date(2025, 3, 3, 0, 0, 0, 0, shanghai)) {
		t.Errorf("range asked = [%v, %v)", st.from, st.to)
	}
	row := r.body["rows"].([]any)[0].(map[string]any)
	if row["accept"] != 3.0 || row["total"] != 4.0 || row["accept_rate"] != 0.75 {
		t.Errorf("row = %v", row)
	}
	// Defaults: the last seven days up to today (fixedNow is 20:00 in Shanghai on 03-01).
	if r := e.do(t, "GET", "/v1/stats/subscriptions", bearer(token), nil); r.status != 200 || r.body["from"] != "2025-02-23" || r.body["to"] != "2025-03-01" {
		t.Errorf("defaults: %d %s", r.status, r.raw)
	}
	for _, q := range []string{"from=2025-3-1", "to=tomorrow", "from=2025-03-02&to=2025-03-01", "from=2020-01-01&to=2025-01-01"} {
		if r := e.do(t, "GET", "/v1/stats/subscriptions?"+q, bearer(token), nil); r.status != 400 || r.errCode() != wxcampaign.EINVALID {
			t.Errorf("%s: %d %s, want 400", q, r.status, r.raw)
		}
	}
	if r := setup(t).do(t, "GET", "/v1/stats/subscriptions", bearer(token), nil); r.status != 503 {
		t.Errorf("not configured: %d", r.status)
	}
}

// anyReply is a JSON answer that may be an object or an array.
type anyReply struct {
	status int
	body   string
	obj    map[string]any
	ids    []any
}

// rawGet GETs path with the bearer token and decodes an object or an array.
func (e *env) rawGet(t *testing.T, path string) anyReply {
	t.Helper()
	req, err := http.NewRequest("GET", e.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", bearer(token))
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := anyReply{status: resp.StatusCode, body: string(raw)}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("GET %s: not JSON: %q", path, raw)
	}
	switch v := v.(type) {
	case map[string]any:
		r.obj = v
	case []any:
		r.ids = v
	}
	return r
}
