package store_test

import (
	"context"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/store"
)

// balanceOf returns the balance of tmpl in bs (zero when absent).
func balanceOf(bs []store.Balance, tmpl string) store.Balance {
	for _, b := range bs {
		if b.TemplateID == tmpl {
			return b
		}
	}
	return store.Balance{}
}

func TestBalances(t *testing.T) {
	eachDriver(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		rec := func(r wxcampaign.SubscriptionResult, at time.Time) {
			t.Helper()
			must[store.RecordResult](t)(db.RecordSubscription(ctx, r, at))
		}
		// u1: three credits of A (several grants per user), one of B, a
		// long-term C; u2 one credit of A (must not leak into u1's).
		rec(sub("r1", "u1", "A", "B"), t0)
		rec(sub("r2", "u1", "A"), t0.Add(time.Minute))
		rec(sub("r3", "u1", "A"), t0.Add(2*time.Minute))
		rec(longTerm(sub("r4", "u1", "C")), t0.Add(3*time.Minute))
		rec(sub("r5", "u2", "A"), t0)
		ids := must[[]wxcampaign.Grant](t)(db.ListAvailable(ctx, "A", 0, 10, t0))
		var u1A []int64
		for _, g := range ids {
			if g.OpenID == "u1" {
				u1A = append(u1A, g.ID)
			}
		}
		if len(u1A) != 3 {
			t.Fatalf("u1 has %d grants of A, want 3", len(u1A))
		}
		// One sent (consumed), one 43101 (consumed, failed), one in flight.
		occ := t0.Add(time.Hour)
		at := t0.Add(time.Hour)
		attempt := func(id int64) store.Attempt {
			return store.Attempt{Campaign: "c1", Occurrence: occ, GrantID: id, OpenID: "u1", TemplateID: "A", Holder: "h"}
		}
		must[[]store.Begun](t)(db.BeginSends(ctx, store.Mark{At: at, Attempts: []store.Attempt{attempt(u1A[0]), attempt(u1A[1]), attempt(u1A[2])}}))
		if _, err := db.FinishSends(ctx, store.Finish{At: at, Results: []store.Result{
			{Campaign: "c1", Occurrence: occ, GrantID: u1A[0], Holder: "h", Outcome: wxcampaign.Sent, Reason: wxcampaign.ReasonOK, MsgID: 77, Consume: true, Retain: true},
			{Campaign: "c1", Occurrence: occ, GrantID: u1A[1], Holder: "h", Outcome: wxcampaign.Failed, Reason: wxcampaign.ReasonWeChat43101, Consume: true, Retain: true},
		}}); err != nil {
			t.Fatal(err)
		}
		// u1 rejects B in a popup result, bans nothing; a settings change
		// rejects C (revokes the long-term grant); a popup event bans B.
		rec(wxcampaign.SubscriptionResult{OpenID: "u1", RejectTemplateIDs: []string{"B"}, RequestID: "r6"}, t0.Add(2*time.Hour))
		rec(wxcampaign.SubscriptionResult{OpenID: "u1", RejectTemplateIDs: []string{"C"}, RequestID: "push:change:u1:C:1"}, t0.Add(3*time.Hour))
		if n := must[int](t)(db.RecordPopups(ctx, t0, []wxcampaign.PopupEvent{
			{OpenID: "u1", TemplateID: "B", Status: "ban", PopupScene: "0", At: t0.Add(4 * time.Hour)},
			{OpenID: "u1", TemplateID: "B", Status: "ban", PopupScene: "0", At: t0.Add(4 * time.Hour)}, // repeated push
		})); n != 1 {
			t.Errorf("RecordPopups stored %d, want 1 (the repeat is the same event)", n)
		}

		bs := must[[]store.Balance](t)(db.Balances(ctx, "u1", at.Add(time.Minute)))
		if len(bs) != 3 {
			t.Fatalf("balances = %+v, want A, B and C", bs)
		}
		a, b, c := balanceOf(bs, "A"), balanceOf(bs, "B"), balanceOf(bs, "C")
		tests := []struct {
			name      string
			got, want any
		}{
			{"A credits (3 granted, 1 sent, 1 43101)", a.Credits, 1},
			{"A reserved", a.Reserved, 1},
			{"A consumed", a.Consumed, 2},
			{"A kind", a.Kind, wxcampaign.OneTime},
			{"A last sent msgid", a.LastSent != nil && a.LastSent.MsgID == 77 && a.LastSent.Campaign == "c1" && a.LastSent.Status == "sent", true},
			{"A last accept", a.LastAcceptAt.Equal(t0.Add(2 * time.Minute)), true},
			{"B credits", b.Credits, 1},
			{"B rejected at", b.RejectedAt.Equal(t0.Add(2 * time.Hour)), true},
			{"B banned at (popup)", b.BannedAt.Equal(t0.Add(4 * time.Hour)), true},
			{"B banned", b.Banned(), true},
			{"B rejected within a day", b.RejectedSince(t0), true},
			{"C long-term revoked by the change", c.LongTerm, wxcampaign.LongTermRevoked},
			{"C kind", c.Kind, wxcampaign.LongTerm},
			{"C rejected", c.RejectedAt.Equal(t0.Add(3 * time.Hour)), true},
			{"A not banned", a.Banned(), false},
		}
		for _, tt := range tests {
			if tt.got != tt.want {
				t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
			}
		}
		// ActiveCredits: u1 has 1 credit of A left, u2 1, nobody none; B 1.
		credits := must[map[string]int](t)(db.ActiveCredits(ctx, "A", []string{"u1", "u2", "nobody", "u1"}))
		if len(credits) != 2 || credits["u1"] != 1 || credits["u2"] != 1 {
			t.Errorf("ActiveCredits(A) = %v", credits)
		}
		if credits := must[map[string]int](t)(db.ActiveCredits(ctx, "C", []string{"u1"})); len(credits) != 0 {
			t.Errorf("ActiveCredits(C) counts a long-term grant: %v", credits)
		}
		// A send that leaves flight holds nothing.
		if _, err := db.FinishSends(ctx, store.Finish{At: at, Results: []store.Result{
			{Campaign: "c1", Occurrence: occ, GrantID: u1A[2], Holder: "h", Outcome: wxcampaign.Deferred, Reason: wxcampaign.ReasonShutdown},
		}}); err != nil {
			t.Fatal(err)
		}
		if bs := must[[]store.Balance](t)(db.Balances(ctx, "u1", at)); balanceOf(bs, "A").Reserved != 0 || balanceOf(bs, "A").Credits != 1 {
			t.Errorf("after the send left flight: %+v", balanceOf(bs, "A"))
		}
		// A later accept lifts the ban.
		rec(sub("r7", "u1", "B"), t0.Add(5*time.Hour))
		if bs := must[[]store.Balance](t)(db.Balances(ctx, "u1", at)); balanceOf(bs, "B").Banned() || balanceOf(bs, "B").Credits != 2 {
			t.Errorf("after a new accept: %+v", balanceOf(bs, "B"))
		}
		// u2 is untouched; an unknown user has none.
		if bs := must[[]store.Balance](t)(db.Balances(ctx, "u2", at)); len(bs) != 1 || bs[0].Credits != 1 || bs[0].LastSent != nil {
			t.Errorf("u2 = %+v", bs)
		}
		if bs := must[[]store.Balance](t)(db.Balances(ctx, "nobody", at)); len(bs) != 0 {
			t.Errorf("unknown user = %+v", bs)
		}
		if _, err := db.Balances(ctx, "", at); wxcampaign.ErrorCode(err) != wxcampaign.EINVALID {
			t.Errorf("empty openid: %v", err)
		}
	})
}

func TestSubscriptionStats(t *testing.T) {
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	eachDriver(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		// 2025-03-01 15:30 UTC is 23:30 in Shanghai (day 1); 16:30 UTC is
		// 00:30 on day 2.
		d1 := time.Date(2025, 3, 1, 15, 30, 0, 0, time.UTC)
		d2 := d1.Add(time.Hour)
		rec := func(r wxcampaign.SubscriptionResult, at time.Time) {
			t.Helper()
			must[store.RecordResult](t)(db.RecordSubscription(ctx, r, at))
		}
		rec(wxcampaign.SubscriptionResult{OpenID: "u1", Scene: "cart", AgreeTemplateIDs: []string{"A"}, RejectTemplateIDs: []string{"B"}, RequestID: "s1"}, d1)
		rec(wxcampaign.SubscriptionResult{OpenID: "u2", Scene: "cart", AgreeTemplateIDs: []string{"A"}, BanTemplateIDs: []string{"B"}, RequestID: "s2"}, d1)
		rec(wxcampaign.SubscriptionResult{OpenID: "u3", Scene: "cart", RejectTemplateIDs: []string{"A"}, FilterTemplateIDs: []string{"B"}, RequestID: "s3"}, d2)
		rec(wxcampaign.SubscriptionResult{OpenID: "u3", RejectTemplateIDs: []string{"A"}, RequestID: "push:change:u3:A:9"}, d2)
		must[int](t)(db.RecordPopups(ctx, d2, []wxcampaign.PopupEvent{
			{OpenID: "u3", TemplateID: "A", Status: "acceptWithAudio", PopupScene: "0", At: d2},
			{OpenID: "u4", TemplateID: "A", Status: "reject", PopupScene: "0", At: d2},
		}))
		// Outside the range: not counted.
		rec(wxcampaign.SubscriptionResult{OpenID: "u9", Scene: "cart", AgreeTemplateIDs: []string{"A"}, RequestID: "s9"}, d2.Add(48*time.Hour))

		from := time.Date(2025, 3, 1, 0, 0, 0, 0, shanghai)
		got := must[[]store.SubscriptionStat](t)(db.SubscriptionStats(ctx, from, from.AddDate(0, 0, 2), shanghai))
		want := []store.SubscriptionStat{
			{Day: "2025-03-01", Source: "result", Scene: "cart", TemplateID: "A", Accept: 2},
			{Day: "2025-03-01", Source: "result", Scene: "cart", TemplateID: "B", Reject: 1, Ban: 1},
			{Day: "2025-03-02", Source: "change", Scene: "", TemplateID: "A", Reject: 1},
			{Day: "2025-03-02", Source: "popup", Scene: "popup:0", TemplateID: "A", Accept: 1, Reject: 1},
			{Day: "2025-03-02", Source: "result", Scene: "cart", TemplateID: "A", Reject: 1},
			{Day: "2025-03-02", Source: "result", Scene: "cart", TemplateID: "B", Filter: 1},
		}
		if len(got) != len(want) {
			t.Fatalf("stats = %+v\nwant %+v", got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("row %d = %+v, want %+v", i, got[i], want[i])
			}
		}
		if r := got[0].AcceptRate(); r != 1 {
			t.Errorf("accept rate = %v", r)
		}
		if _, err := db.SubscriptionStats(ctx, from, from, shanghai); wxcampaign.ErrorCode(err) != wxcampaign.EINVALID {
			t.Errorf("empty range: %v", err)
		}
	})
}

// TestLift seeds an orders table with known conversion rates for a sent
// and a held-out group and checks the report finds them within their
// intervals, counting only orders inside each user's window.
func TestLift(t *testing.T) {
	eachDriver(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		x := db.SQLX()
		if _, err := x.ExecContext(ctx, "CREATE TABLE orders (id INTEGER PRIMARY KEY, openid VARCHAR(128) NOT NULL, created_at DATETIME NOT NULL)"); err != nil {
			t.Fatal(err)
		}
		const nSent, nHeld = 2000, 400
		const rateSent, rateHeld = 0.30, 0.10
		sentAt := t0.Add(time.Hour)
		var attempts []store.Attempt
		var results []store.Result
		var holdouts []store.Holdout
		var orders []any
		order := func(openid string, at time.Time) {
			orders = append(orders, len(orders)/3+1, openid, at.UTC().Format("2006-01-02 15:04:05"))
		}
		subs := make([]wxcampaign.SubscriptionResult, nSent)
		for i := range subs {
			subs[i] = sub("lift-"+strconv.Itoa(i), "s"+strconv.Itoa(i), "A")
		}
		must[[]store.RecordResult](t)(db.RecordSubscriptions(ctx, subs, t0))
		grantOf := map[string]int64{}
		for _, g := range must[[]wxcampaign.Grant](t)(db.ListAvailable(ctx, "A", 0, nSent, t0)) {
			grantOf[g.OpenID] = g.ID
		}
		for i := range nSent {
			id := "s" + strconv.Itoa(i)
			attempts = append(attempts, store.Attempt{Campaign: "promo", Occurrence: t0, GrantID: grantOf[id], OpenID: id, TemplateID: "A", Holder: "h"})
			results = append(results, store.Result{Campaign: "promo", Occurrence: t0, GrantID: grantOf[id], Holder: "h", Outcome: wxcampaign.Sent, Reason: wxcampaign.ReasonOK, Consume: true, Retain: true})
			if i < int(rateSent*nSent) {
				order(id, sentAt.Add(2*time.Hour)) // inside the window
			} else if i%7 == 0 {
				order(id, sentAt.Add(-time.Hour)) // before the message: not a conversion
			}
		}
		for i := range nHeld {
			id := "h" + strconv.Itoa(i)
			holdouts = append(holdouts, store.Holdout{Campaign: "promo", Occurrence: t0, OpenID: id, TemplateID: "A"})
			if i < int(rateHeld*nHeld) {
				order(id, sentAt.Add(24*time.Hour))
			} else if i%5 == 0 {
				order(id, sentAt.Add(30*24*time.Hour)) // after the window
			}
		}
		for lo := 0; lo < len(orders); lo += 3 * 500 {
			part := orders[lo:min(lo+3*500, len(orders))]
			values := strings.TrimSuffix(strings.Repeat("(?,?,?),", len(part)/3), ",")
			if _, err := x.ExecContext(ctx, "INSERT INTO orders (id, openid, created_at) VALUES "+values, part...); err != nil {
				t.Fatal(err)
			}
		}
		must[[]store.Begun](t)(db.BeginSends(ctx, store.Mark{At: sentAt, Attempts: attempts}))
		if _, err := db.FinishSends(ctx, store.Finish{At: sentAt, Results: results}); err != nil {
			t.Fatal(err)
		}
		if err := db.RecordHoldouts(ctx, sentAt, holdouts); err != nil {
			t.Fatal(err)
		}
		if err := db.RecordHoldouts(ctx, sentAt, holdouts[:10]); err != nil { // idempotent
			t.Fatal(err)
		}
		q := store.LiftQuery{Query: "SELECT openid, created_at AS at FROM orders WHERE openid IN (:openids)", Window: 7 * 24 * time.Hour}
		rep, err := db.Lift(ctx, db.Facts(), "promo", q, t0, t0.Add(48*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		check := func(g store.GroupStat, users int, rate float64) {
			t.Helper()
			if g.Users != users || math.Abs(g.Rate-rate) > 1e-9 || rate < g.Low || rate > g.High {
				t.Errorf("%s = %+v, want %d users at rate %v within [low, high]", g.Group, g, users, rate)
			}
		}
		check(rep.Sent, nSent, rateSent)
		check(rep.HeldOut, nHeld, rateHeld)
		if !rep.DiffKnown || math.Abs(rep.Diff-0.2) > 1e-9 || rep.DiffLow > 0.2 || rep.DiffHigh < 0.2 || rep.DiffLow <= 0 {
			t.Errorf("diff = %v [%v, %v]", rep.Diff, rep.DiffLow, rep.DiffHigh)
		}
		// 2000 credits for 0.2*2000 = 400 extra conversions: 5 each.
		if rep.Credits != nSent || !rep.PerExtraKnown || math.Abs(rep.CreditsPerExtra-5) > 1e-9 {
			t.Errorf("credits = %d, per extra = %v (%v)", rep.Credits, rep.CreditsPerExtra, rep.PerExtraKnown)
		}
		// A range without the run: empty groups, no difference.
		empty, err := db.Lift(ctx, db.Facts(), "promo", q, t0.Add(72*time.Hour), t0.Add(96*time.Hour))
		if err != nil || empty.Sent.Users != 0 || empty.DiffKnown {
			t.Errorf("empty range: %+v, %v", empty, err)
		}
		for _, bad := range []store.LiftQuery{
			{Query: "SELECT openid, created_at AS at FROM orders", Window: time.Hour},
			{Query: q.Query},
			{Query: "SELECT 1 AS openid, created_at AS at FROM orders WHERE openid IN (:openids)", Window: time.Hour},
		} {
			if _, err := db.Lift(ctx, db.Facts(), "promo", bad, t0, t0.Add(48*time.Hour)); wxcampaign.ErrorCode(err) != wxcampaign.EINVALID {
				t.Errorf("bad query %+v: %v, want EINVALID", bad, err)
			}
		}
	})
}
