package api_test

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/wxcampaign/wxcampaign/api"
	"github.com/wxcampaign/wxcampaign/campaigns"
	"github.com/wxcampaign/wxcampaign/engine"
	"github.com/wxcampaign/wxcampaign/store"
	"github.com/wxcampaign/wxcampaign/store/storetest"
	"github.com/wxcampaign/wxcampaign/wechat"
	"github.com/wxcampaign/wxcampaign/wechat/wxsender"
	"github.com/wxcampaign/wxcampaign/wechat/wxsim"
)

// Compile-time checks: the store and the catalog serve the new endpoints,
// as the daemon wires them.
var (
	_ api.Balances  = (*store.DB)(nil)
	_ api.Stats     = (*store.DB)(nil)
	_ api.Popups    = (*store.DB)(nil)
	_ api.Schedules = (*campaigns.Catalog)(nil)
)

const (
	e2eAppID  = "wxgrants000000001"
	e2eSecret = "grants-secret-never-logged"
)

// promoCampaign sends T-promo hourly to every grant; otherCampaign sends
// T-other once a year; serviceCampaign is long-term.
const (
	promoCampaign = `name: promo
schedule: "0 * * * *"
timezone: Asia/Shanghai
template: {id: T-promo, kind: one_time}
scenes: [checkout]
when: "true"
data: {thing1: '"hello"'}
`
	otherCampaign = `name: other
schedule: "0 0 1 1 *"
timezone: Asia/Shanghai
template: {id: T-other, kind: one_time}
scenes: [checkout]
when: "true"
data: {thing1: '"hi"'}
`
	serviceCampaign = `name: service
schedule: "0 * * * *"
timezone: Asia/Shanghai
template: {id: T-lt, kind: long_term}
scenes: [checkout]
when: "true"
data: {thing1: '"svc"'}
`
)

type e2eClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *e2eClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *e2eClock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// TestGrantsEndToEnd records subscriptions through the API (several credits
// per user), runs a campaign three times with the real engine against the
// WeChat simulator, where half the users have fewer credits than the
// ledger thinks (43101), and checks on every driver that GET
// /v1/users/{openid}/grants matches the ledger and the simulator, and that
// the offers follow the user's need without mixing kinds.
func TestGrantsEndToEnd(t *testing.T) {
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range storetest.Drivers(t) {
		t.Run(d.Name, func(t *testing.T) {
			ctx := context.Background()
			db := storetest.Open(t, d.Config)
			var cs []*campaigns.Campaign
			for i, src := range []string{promoCampaign, otherCampaign, serviceCampaign} {
				c, err := campaigns.Parse(fmt.Sprintf("c%d.yaml", i), []byte(src), campaigns.Defaults{Location: shanghai})
				if err != nil {
					t.Fatal(err)
				}
				cs = append(cs, c)
			}
			promo := cs[0]
			clock := &e2eClock{t: time.Date(2025, 3, 1, 9, 0, 0, 0, shanghai)}
			sim, err := wxsim.New(wxsim.Config{AppID: e2eAppID, Secret: e2eSecret, Templates: []wxsim.TemplateDef{
				{ID: "T-promo", Kind: "one_time", Keys: []string{"thing1"}},
				{ID: "T-other", Kind: "one_time", Keys: []string{"thing1"}},
				{ID: "T-lt", Kind: "long_term", Keys: []string{"thing1"}},
			}})
			if err != nil {
				t.Fatal(err)
			}
			simSrv := httptest.NewServer(sim.Handler())
			t.Cleanup(simSrv.Close)
			log := logrus.New()
			log.SetOutput(io.Discard)
			client, err := wechat.New(wechat.Config{BaseURL: simSrv.URL, AppID: e2eAppID, Secret: e2eSecret, Tokens: db, Logger: log, Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			eng, err := engine.New(engine.Config{Holder: "e2e", AppID: e2eAppID, RetryBase: time.Millisecond, Concurrency: 4,
				Lease: 30 * time.Second, Now: clock.Now, Logger: log}, db, db.Facts(), wxsender.New(client))
			if err != nil {
				t.Fatal(err)
			}
			cat := campaigns.NewCatalog(cs)
			e := setup(t, func(c *api.Config, deps *api.Deps) {
				c.Now = clock.Now
				deps.Subs, deps.Catalog, deps.Balances, deps.Schedules, deps.Stats = db, cat, db, cat, db
			})

			// u0..u3 have three credits in the ledger and at WeChat;
			// u4..u7 three in the ledger but one at WeChat.
			const users = 8
			for u := range users {
				openid := fmt.Sprintf("u%d", u)
				for k := range 3 {
					body := fmt.Sprintf(`{"openId":%q,"scene":"checkout","agreeTemplateIds":["T-promo"],"requestId":"r-%s-%d"}`, openid, openid, k)
					if r := e.do(t, "POST", "/v1/subscriptions", bearer(token), strings.NewReader(body)); r.status != 201 {
						t.Fatalf("subscribe: %d %s", r.status, r.raw)
					}
				}
				if u < 4 {
					sim.AddCredits(openid, "T-promo", 3)
				} else {
					sim.AddCredits(openid, "T-promo", 1)
				}
			}
			for h := range 3 {
				when := time.Date(2025, 3, 1, 10+h, 0, 0, 0, shanghai)
				clock.Set(when)
				if _, err := eng.Run(ctx, promo, engine.Options{At: when}); err != nil {
					t.Fatalf("run %d: %v", h, err)
				}
			}
			clock.Set(time.Date(2025, 3, 1, 13, 30, 0, 0, shanghai))

			for u := range users {
				openid := fmt.Sprintf("u%d", u)
				var ledger struct {
					Active   int `db:"active"`
					Consumed int `db:"consumed"`
				}
				if err := db.SQLX().Get(&ledger, db.SQLX().Rebind(`SELECT
  COALESCE(SUM(CASE WHEN status = 'active' THEN 1 ELSE 0 END), 0) AS active,
  COALESCE(SUM(CASE WHEN status = 'consumed' THEN 1 ELSE 0 END), 0) AS consumed
FROM grants WHERE openid = ? AND template_id = 'T-promo'`), openid); err != nil {
					t.Fatal(err)
				}
				r := e.do(t, "GET", "/v1/users/"+url.PathEscape(openid)+"/grants", bearer(token), nil)
				if r.status != 200 {
					t.Fatalf("grants of %s: %d %s", openid, r.status, r.raw)
				}
				ts := r.body["templates"].([]any)
				if len(ts) != 1 {
					t.Fatalf("grants of %s: %s", openid, r.raw)
				}
				b := ts[0].(map[string]any)
				if int(b["credits"].(float64)) != ledger.Active || int(b["consumed"].(float64)) != ledger.Consumed {
					t.Errorf("%s: balance credits %v consumed %v, ledger active %d consumed %d", openid, b["credits"], b["consumed"], ledger.Active, ledger.Consumed)
				}
				// Three runs, one send each: u0..u3 got three messages (no
				// credit left); u4..u7 one message, then a 43101 in each
				// later run used a ledger credit up (none left either).
				msgs := sim.MessagesTo(openid)
				wantMsgs := 3
				if u >= 4 {
					wantMsgs = 1
				}
				if len(msgs) != wantMsgs || ledger.Active != 0 || ledger.Consumed != 3 {
					t.Errorf("%s: %d messages (want %d), ledger %+v (want 0 active, 3 consumed)", openid, len(msgs), wantMsgs, ledger)
				}
				last, _ := b["last_sent"].(map[string]any)
				if len(msgs) == 0 || last == nil || int64(last["msgid"].(float64)) != msgs[len(msgs)-1].MsgID || last["campaign"] != "promo" {
					t.Errorf("%s: last_sent %v, want msgid of the last delivered message", openid, last)
				}
			}

			// Offers: u8 has credits of T-other, none of T-promo; T-promo is
			// wanted soon (hourly), T-other is not (yearly). A user who
			// rejected T-promo an hour ago is not offered it.
			for k, tmpl := range []string{"T-other", "T-other"} {
				body := fmt.Sprintf(`{"openId":"u8","scene":"checkout","agreeTemplateIds":[%q],"requestId":"r-u8-%d"}`, tmpl, k)
				if r := e.do(t, "POST", "/v1/subscriptions", bearer(token), strings.NewReader(body)); r.status != 201 {
					t.Fatalf("subscribe: %d %s", r.status, r.raw)
				}
			}
			if r := e.do(t, "POST", "/v1/subscriptions", bearer(token), strings.NewReader(
				`{"openId":"u9","scene":"checkout","rejectTemplateIds":["T-promo"],"requestId":"r-u9"}`)); r.status != 201 {
				t.Fatalf("reject: %d %s", r.status, r.raw)
			}
			for _, c := range []struct {
				openid, oneTime, longTerm, leftOut string
			}{
				{"u8", "[T-promo T-other]", "[T-lt]", "<nil>"},
				{"u9", "[T-other]", "[T-lt]", "[map[reason:rejected templateId:T-promo]]"},
			} {
				r := e.do(t, "GET", "/v1/scenes/checkout/templates?openid="+c.openid, bearer(token), nil)
				if got := fmt.Sprint(r.body["tmplIds"], r.body["longTermTmplIds"], r.body["leftOut"]); got != c.oneTime+" "+c.longTerm+" "+c.leftOut {
					t.Errorf("offer for %s = %s, want %s %s %s", c.openid, got, c.oneTime, c.longTerm, c.leftOut)
				}
			}

			// Accept rates of the day: 24 + 2 accepts, 1 reject.
			r := e.do(t, "GET", "/v1/stats/subscriptions?from=2025-03-01&to=2025-03-01", bearer(token), nil)
			rows, _ := r.body["rows"].([]any)
			var accepts, rejects float64
			for _, row := range rows {
				m := row.(map[string]any)
				accepts += m["accept"].(float64)
				rejects += m["reject"].(float64)
			}
			if r.status != 200 || accepts != 26 || rejects != 1 {
				t.Errorf("stats: %d accepts %v rejects %v: %s", r.status, accepts, rejects, r.raw)
			}
		})
	}
}
