package api_test

import (
	"context"
	"strings"
	"testing"

	"github.com/wxcampaign/wxcampaign/api"
	"github.com/wxcampaign/wxcampaign/store/storetest"
)

// TestPopupsAndChoiceMetrics pushes popup and change events and posts a
// result over the real store on every driver: popups are recorded once (no
// grant), they show in the user's balance and in the stats, and the choice
// counters count each choice once.
func TestPopupsAndChoiceMetrics(t *testing.T) {
	for _, d := range storetest.Drivers(t) {
		t.Run(d.Name, func(t *testing.T) {
			db := storetest.Open(t, d.Config)
			e := setupPush(t, func(_ *api.Config, deps *api.Deps) {
				deps.Subs, deps.Deliveries, deps.Popups, deps.Balances, deps.Stats = db, db, db, db, db
			})
			for range 2 { // a repeated push stores and counts nothing new
				for _, body := range []string{popup, changeReject} {
					if r := e.raw(t, "POST", pushURL(signedQuery(pushToken, fixedNow, "n")), body); r.status != 200 || r.body != "success" {
						t.Fatalf("push: %d %q", r.status, r.body)
					}
				}
				if r := e.do(t, "POST", "/v1/subscriptions", bearer(token), strings.NewReader(validSub)); r.status/100 != 2 {
					t.Fatalf("subscription: %d %s", r.status, r.raw)
				}
			}
			var popups, erinGrants int
			if err := db.SQLX().Get(&popups, "SELECT COUNT(*) FROM popup_events"); err != nil || popups != 2 {
				t.Errorf("popup rows = %d (%v), want 2", popups, err)
			}
			if err := db.SQLX().Get(&erinGrants, "SELECT COUNT(*) FROM grants WHERE openid = 'o-erin'"); err != nil || erinGrants != 0 {
				t.Errorf("a popup created %d grants (%v)", erinGrants, err)
			}
			bs, err := db.Balances(context.Background(), "o-erin", fixedNow)
			if err != nil || len(bs) != 2 || bs[0].TemplateID != "T-price" || bs[0].LastAcceptAt.IsZero() || bs[1].RejectedAt.IsZero() || bs[0].Credits != 0 {
				t.Errorf("balances of o-erin = %+v, %v", bs, err)
			}
			want := map[string]float64{
				"result/accept": 2, "result/reject": 1, "change/reject": 1, "popup/accept": 1, "popup/reject": 1, "popup/ban": 0,
			}
			for k, v := range want {
				src, res, _ := strings.Cut(k, "/")
				mfs, err := e.reg.Gather()
				if err != nil {
					t.Fatal(err)
				}
				var found float64 = -1
				for _, mf := range mfs {
					if mf.GetName() != "wxcampaign_subscription_choices_total" {
						continue
					}
					if len(mf.Metric) != 12 {
						t.Errorf("%d series, want 12 (3 sources × 4 results)", len(mf.Metric))
					}
					for _, m := range mf.Metric {
						labels := map[string]string{}
						for _, l := range m.Label {
							labels[l.GetName()] = l.GetValue()
						}
						if labels["source"] == src && labels["result"] == res {
							found = m.GetCounter().GetValue()
						}
					}
				}
				if found != v {
					t.Errorf("choices{source=%s,result=%s} = %v, want %v", src, res, found, v)
				}
			}
		})
	}
}
