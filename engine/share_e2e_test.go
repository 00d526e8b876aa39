package engine_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	wx "github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/campaigns"
	"github.com/wxcampaign/wxcampaign/store"
	"github.com/wxcampaign/wxcampaign/store/storetest"
)

// holdoutCampaign sends T-hold to every grant, holding 5% out.
const holdoutCampaign = `name: lift-promo
schedule: "0 10 * * *"
timezone: Asia/Shanghai
template: {id: T-hold, kind: one_time}
when: "true"
data: {thing1: '"hello"'}
holdout: 5%
`

// subscribeMany records one one-time grant of tpl per openid, in batches.
func (w *world) subscribeMany(tpl string, openids []string) {
	w.t.Helper()
	var rs []wx.SubscriptionResult
	for _, id := range openids {
		rs = append(rs, wx.SubscriptionResult{OpenID: id, Scene: "e2e", AgreeTemplateIDs: []string{tpl}, RequestID: "req-" + tpl + "-" + id})
	}
	for lo := 0; lo < len(rs); lo += 2000 {
		if _, err := w.db.RecordSubscriptions(w.ctx, rs[lo:min(lo+2000, len(rs))], at(1, 12, 0)); err != nil {
			w.t.Fatalf("record subscriptions: %v", err)
		}
	}
}

// TestHoldout: over 20,000 eligible users a 5% holdout keeps 5% (within
// one point) unsent, the same users in every preview and in the live run;
// a live run records them and keeps their credits.
func TestHoldout(t *testing.T) {
	eachDriver(t, func(t *testing.T, nc storetest.NamedConfig) {
		c := parseCampaign(t, holdoutCampaign)
		w := newWorld(t, nc, simTemplate(c))
		const n = 20000
		ids := make([]string, n)
		for i := range ids {
			ids[i] = fmt.Sprintf("user-%05d", i)
		}
		w.subscribeMany("T-hold", ids)
		heldOut := func(r runResult) map[string]bool {
			out := map[string]bool{}
			for _, g := range r.reports {
				if g.Reason == wx.ReasonHeldOut {
					if g.Outcome != wx.Skipped {
						t.Fatalf("held out with outcome %s", g.Outcome)
					}
					out[g.OpenID] = true
				}
			}
			return out
		}
		first := heldOut(w.run(nil, c, at(3, 10, 0), true))
		second := heldOut(w.run(nil, c, at(4, 10, 0), true))
		share := float64(len(first)) / n
		if share < 0.04 || share > 0.06 {
			t.Fatalf("held out %d of %d (%.2f%%), want 5%% within 1 point", len(first), n, 100*share)
		}
		t.Logf("held out %d of %d eligible users (%.2f%%)", len(first), n, 100*share)
		if fmt.Sprint(sorted(keys(first))) != fmt.Sprint(sorted(keys(second))) {
			t.Fatalf("another run held out other users")
		}
		// Live, on the first 400 users: the same held-out users, recorded,
		// with their credits kept and no message.
		for _, id := range ids[:400] {
			w.sim.AddCredits(id, "T-hold", 1)
		}
		small := parseCampaign(t, holdoutCampaign+"batch_size: 100\n")
		w.exec("UPDATE grants SET status = 'revoked' WHERE openid >= 'user-00400'")
		r := w.mustRun(small, at(5, 10, 0))
		live := heldOut(r)
		for id := range live {
			if !first[id] {
				t.Errorf("%s held out live but not in the preview", id)
			}
			if len(w.sim.MessagesTo(id)) != 0 {
				t.Errorf("held-out %s got a message", id)
			}
		}
		if len(live) == 0 || r.sum.Counts[wx.Sent]+len(live) != 400 {
			t.Errorf("live run: %d sent, %d held out, want 400 in all", r.sum.Counts[wx.Sent], len(live))
		}
		if got := w.count("SELECT COUNT(*) FROM holdouts WHERE campaign = 'lift-promo'"); got != len(live) {
			t.Errorf("holdouts rows = %d, want %d", got, len(live))
		}
		if got := w.count("SELECT COUNT(*) FROM grants WHERE status = 'active'"); got != len(live) {
			t.Errorf("active grants = %d, want the %d held out", got, len(live))
		}
		// The lift report finds both groups: an order a day after the run
		// from every third user of the 400.
		w.exec("CREATE TABLE orders (openid VARCHAR(64), paid_at DATETIME)")
		wantSent, wantHeld := 0, 0
		for i, id := range ids[:400] {
			if i%3 != 0 {
				continue
			}
			w.exec("INSERT INTO orders VALUES ('" + id + "', '" + sqlTime(at(6, 10, 0)) + "')")
			if live[id] {
				wantHeld++
			} else {
				wantSent++
			}
		}
		rep, err := w.db.Lift(w.ctx, w.db.Facts(), "lift-promo", store.LiftQuery{
			Query: "SELECT openid, paid_at AS at FROM orders WHERE openid IN (:openids)", Window: 72 * time.Hour}, at(5, 0, 0), at(6, 0, 0))
		if err != nil {
			t.Fatal(err)
		}
		if rep.Sent.Users != 400-len(live) || rep.HeldOut.Users != len(live) || rep.Sent.Conversions != wantSent || rep.HeldOut.Conversions != wantHeld || rep.Credits != 400-len(live) {
			t.Errorf("lift = %+v, want %d/%d sent and %d/%d held-out conversions", rep, wantSent, 400-len(live), wantHeld, len(live))
		}
	})
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

const (
	reminderCampaign = `name: order-reminder
schedule: "*/5 * * * *"
timezone: Asia/Shanghai
template: {id: T-shared, kind: one_time}
when: "true"
data: {thing1: '"pay now"'}
priority: 10
reserve: 1
`
	marketingCampaign = `name: cart-marketing
schedule: "0 10 * * *"
timezone: Asia/Shanghai
template: {id: T-shared, kind: one_time}
when: "true"
data: {thing1: '"sale"'}
`
)

// TestReserve: a marketing campaign may not spend a user's last credit of
// a template that a reminder of higher priority reserves; the preview
// tells why; the reminder then sends on the kept credit.
func TestReserve(t *testing.T) {
	eachDriver(t, func(t *testing.T, nc storetest.NamedConfig) {
		reminder, marketing := parseCampaign(t, reminderCampaign), parseCampaign(t, marketingCampaign)
		campaigns.LinkReserves([]*campaigns.Campaign{reminder, marketing})
		w := newWorld(t, nc, simTemplate(reminder))
		// two: 2 credits (ledger and WeChat), one: 1 credit.
		for _, u := range []struct {
			id      string
			credits int
		}{{"two", 2}, {"one", 1}} {
			for range u.credits {
				w.subscribe(u.id, "T-shared", "", nil, true)
			}
		}
		// reasons lists each user's grants' outcomes and reasons, in grant order.
		reasons := func(r runResult) map[string]string {
			out := map[string]string{}
			for _, g := range r.reports {
				out[g.OpenID] = strings.TrimPrefix(out[g.OpenID]+" "+string(g.Outcome)+":"+string(g.Reason), " ")
			}
			return out
		}
		preview := w.run(nil, marketing, at(3, 10, 0), true)
		if got := fmt.Sprint(reasons(preview)); got != "map[one:skipped:reserved_for_priority two:sent:ok skipped:per_user_per_run]" {
			t.Errorf("preview = %s", got)
		}
		for _, g := range preview.reports {
			if g.OpenID == "one" && g.Detail != "1 credit(s) left; the last 1 kept for order-reminder (higher priority)" {
				t.Errorf("detail = %q", g.Detail)
			}
		}
		if got := fmt.Sprint(reasons(w.mustRun(marketing, at(3, 10, 0)))); got != "map[one:skipped:reserved_for_priority two:sent:ok skipped:per_user_per_run]" {
			t.Errorf("first marketing run = %s", got)
		}
		// "two" has 1 credit left now: kept as well.
		if got := fmt.Sprint(reasons(w.mustRun(marketing, at(4, 10, 0)))); got != "map[one:skipped:reserved_for_priority two:skipped:reserved_for_priority]" {
			t.Errorf("second marketing run = %s", got)
		}
		// The reminder spends the kept credits.
		if got := fmt.Sprint(reasons(w.mustRun(reminder, at(4, 10, 5)))); got != "map[one:sent:ok two:sent:ok]" {
			t.Errorf("reminder run = %s", got)
		}
		if len(w.sim.MessagesTo("two")) != 2 || len(w.sim.MessagesTo("one")) != 1 || w.count("SELECT COUNT(*) FROM grants WHERE status = 'active'") != 0 {
			t.Errorf("messages two=%d one=%d", len(w.sim.MessagesTo("two")), len(w.sim.MessagesTo("one")))
		}
	})
}
