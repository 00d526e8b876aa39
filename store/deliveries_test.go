package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/store"
)

func TestRecordDeliveries(t *testing.T) {
	d := func(id int64) store.Delivery {
		return store.Delivery{MsgID: id, OpenID: "u1", TemplateID: "A", Status: "success", SentAt: t0}
	}
	eachDriver(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		steps := []struct {
			name string
			ds   []store.Delivery
			want int
		}{
			{"new", []store.Delivery{d(1), d(2)}, 2},
			{"repeated push", []store.Delivery{d(1), d(2)}, 0},
			{"repeated within the call", []store.Delivery{d(3), d(3), d(1)}, 1},
			{"empty", nil, 0},
		}
		for _, s := range steps {
			n, err := db.RecordDeliveries(ctx, t0, s.ds)
			if err != nil || n != s.want {
				t.Errorf("%s: RecordDeliveries = %d, %v; want %d", s.name, n, err, s.want)
			}
		}
		// A repeated push with other fields changes nothing.
		changed := d(1)
		changed.ErrCode, changed.SentAt = 43101, t0.Add(-time.Hour)
		if n, err := db.RecordDeliveries(ctx, t0, []store.Delivery{changed}); err != nil || n != 0 {
			t.Errorf("changed repeat = %d, %v", n, err)
		}
		if got := must[int64](t)(db.MatchDelivery(ctx, "u1", "A", t0)); got != 1 {
			t.Errorf("after changed repeat, match = %d, want 1 (the first push stays)", got)
		}
		for _, bad := range []store.Delivery{{OpenID: "u", TemplateID: "A"}, {MsgID: 9, TemplateID: "A"}, {MsgID: 9, OpenID: "u"}} {
			n, err := db.RecordDeliveries(ctx, t0, []store.Delivery{d(10), bad})
			if wxcampaign.ErrorCode(err) != wxcampaign.EINVALID || n != 0 {
				t.Errorf("bad %+v: %d, %v; want EINVALID", bad, n, err)
			}
		}
		if got := must[int64](t)(db.MatchDelivery(ctx, "u1", "A", t0)); got != 1 {
			t.Errorf("a rejected call stored something: match = %d", got)
		}
	})
}

func TestMatchDelivery(t *testing.T) {
	eachDriver(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		sec := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }
		must[int](t)(db.RecordDeliveries(ctx, t0, []store.Delivery{
			{MsgID: 500, OpenID: "u1", TemplateID: "A", SentAt: sec(2)},
			{MsgID: 400, OpenID: "u1", TemplateID: "A", SentAt: sec(1)},
			{MsgID: 300, OpenID: "u1", TemplateID: "A", SentAt: sec(1)},
			{MsgID: 600, OpenID: "u1", TemplateID: "A", SentAt: sec(3), ErrCode: 43101, Status: "Failed:user refuse to accept the msg"},
			{MsgID: 700, OpenID: "u2", TemplateID: "A", SentAt: sec(5)},
			{MsgID: 800, OpenID: "u1", TemplateID: "B", SentAt: sec(5)},
		}))
		tests := []struct {
			name, openid, tmpl string
			since              time.Time
			want               int64
		}{
			{"oldest first, then lowest msgid", "u1", "A", t0, 300},
			{"since is inclusive", "u1", "A", sec(1), 300},
			{"since respected", "u1", "A", sec(1).Add(time.Microsecond), 500},
			{"ErrCode != 0 ignored", "u1", "A", sec(3), 0},
			{"other user", "u2", "A", t0, 700},
			{"other template", "u1", "B", t0, 800},
			{"no delivery", "u3", "A", t0, 0},
		}
		for _, tc := range tests {
			if got := must[int64](t)(db.MatchDelivery(ctx, tc.openid, tc.tmpl, tc.since)); got != tc.want {
				t.Errorf("%s: MatchDelivery(%s, %s) = %d, want %d", tc.name, tc.openid, tc.tmpl, got, tc.want)
			}
		}

		// A msgid a send_log row holds is no longer matched.
		ids := seed(t, db, "A", 2)
		var atts []store.Attempt
		for _, id := range ids {
			atts = append(atts, store.Attempt{Campaign: "c", Occurrence: t0, GrantID: id, OpenID: "u1", TemplateID: "A", Holder: "h"})
		}
		begin(t, db, t0, atts)
		finish := func(id, msgid int64) {
			t.Helper()
			if err := finishSends(ctx, db, sec(10), []store.Result{{Campaign: "c", Occurrence: t0, GrantID: id, Holder: "h",
				Outcome: wxcampaign.Sent, Reason: wxcampaign.ReasonOK, MsgID: msgid, Consume: true, Retain: true}}); err != nil {
				t.Fatal(err)
			}
		}
		finish(ids[0], 300)
		if got := must[int64](t)(db.MatchDelivery(ctx, "u1", "A", t0)); got != 400 {
			t.Errorf("after 300 recorded: match = %d, want 400", got)
		}
		finish(ids[1], 400)
		if got := must[int64](t)(db.MatchDelivery(ctx, "u1", "A", t0)); got != 500 {
			t.Errorf("after 400 recorded: match = %d, want 500", got)
		}
	})
}

// TestSettleStale: a holder dies mid-send; StaleInflight gives the row's
// start and the grant's kind; FinishSends by the dead holder's name settles
// it with the matched msgid: the one-time credit is consumed, the long-term
// grant (no Consume) is left active.
func TestSettleStale(t *testing.T) {
	eachDriver(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		one := seed(t, db, "A", 1)[0]
		if _, err := db.RecordSubscription(ctx, longTerm(sub("lt", "u9", "LT")), t0); err != nil {
			t.Fatal(err)
		}
		lt := must[[]wxcampaign.Grant](t)(db.ListAvailable(ctx, "LT", 0, 1, t0))[0].ID
		lease := t0.Add(time.Minute)
		if _, _, err := db.AcquireRun(ctx, "c", t0, "dead", t0, lease); err != nil {
			t.Fatal(err)
		}
		started := t0.Add(time.Second)
		begin(t, db, started, []store.Attempt{
			{Campaign: "c", Occurrence: t0, GrantID: one, OpenID: "u0", TemplateID: "A", Holder: "dead", Kind: wxcampaign.LongTerm /* ignored */},
			{Campaign: "c", Occurrence: t0, GrantID: lt, OpenID: "u9", TemplateID: "LT", Holder: "dead"},
		})
		stale := must[[]store.Attempt](t)(db.StaleInflight(ctx, lease, 10))
		if len(stale) != 2 {
			t.Fatalf("stale = %+v", stale)
		}
		kinds := map[int64]wxcampaign.Kind{one: wxcampaign.OneTime, lt: wxcampaign.LongTerm}
		for _, a := range stale {
			if a.Kind != kinds[a.GrantID] || !a.StartedAt.Equal(started) || a.Holder != "dead" {
				t.Errorf("stale attempt %+v: want kind %s, started %v", a, kinds[a.GrantID], started)
			}
		}
		must[int](t)(db.RecordDeliveries(ctx, lease, []store.Delivery{
			{MsgID: 11, OpenID: "u0", TemplateID: "A", SentAt: started.Truncate(time.Second)},
			{MsgID: 12, OpenID: "u9", TemplateID: "LT", SentAt: started.Truncate(time.Second)},
		}))
		var res []store.Result
		for _, a := range stale {
			msgid := must[int64](t)(db.MatchDelivery(ctx, a.OpenID, a.TemplateID, a.StartedAt.Add(-5*time.Second)))
			if msgid == 0 {
				t.Fatalf("no delivery matched for %+v", a)
			}
			res = append(res, store.Result{Campaign: a.Campaign, Occurrence: a.Occurrence, GrantID: a.GrantID, Holder: a.Holder,
				Outcome: wxcampaign.Sent, Reason: wxcampaign.ReasonConfirmed, MsgID: msgid, Consume: a.Kind == wxcampaign.OneTime, Retain: true})
		}
		if err := finishSends(ctx, db, lease, res); err != nil {
			t.Fatal(err)
		}
		if st := must[store.GrantState](t)(db.GetGrant(ctx, one)); st.Status != store.StatusConsumed || st.InFlightBy != "" {
			t.Errorf("one-time after settle: %q in flight by %q, want consumed", st.Status, st.InFlightBy)
		}
		if st := must[store.GrantState](t)(db.GetGrant(ctx, lt)); st.Status != store.StatusActive {
			t.Errorf("long-term after settle: %q, want active", st.Status)
		}
		if st := must[[]store.Attempt](t)(db.StaleInflight(ctx, lease, 10)); len(st) != 0 {
			t.Errorf("still stale: %+v", st)
		}
		msgids := map[int64]int64{}
		for _, e := range must[[]store.LogEntry](t)(db.SendLog(ctx, "c", 10)) {
			if e.Status != string(wxcampaign.Sent) {
				t.Errorf("log entry %+v, want sent", e)
			}
			msgids[e.GrantID] = e.MsgID
		}
		if msgids[one] != 11 || msgids[lt] != 12 {
			t.Errorf("msgids %v", msgids)
		}
		for _, a := range stale {
			if got := must[int64](t)(db.MatchDelivery(ctx, a.OpenID, a.TemplateID, t0)); got != 0 {
				t.Errorf("msgid %d matched again", got)
			}
		}
	})
}

// TestFinishSendsReasonRoundTrip: reasons with quotes, backslashes, control
// characters and Chinese reach the send log's detail unchanged (MySQL
// binds them as parameters of a derived table); the reason code is stored
// as it is.
func TestFinishSendsReasonRoundTrip(t *testing.T) {
	reasons := []string{`failed: 47003 "thing1" \ x`, "failed: 中文 <&> \n\t", "tab\tnewline\nquote'\"", ""}
	eachDriver(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		ids := seed(t, db, "A", len(reasons))
		var atts []store.Attempt
		var res []store.Result
		for i, id := range ids {
			atts = append(atts, store.Attempt{Campaign: "c", Occurrence: t0, GrantID: id, OpenID: "u", TemplateID: "A", Holder: "h"})
			res = append(res, store.Result{Campaign: "c", Occurrence: t0, GrantID: id, Holder: "h", Outcome: wxcampaign.Failed, Reason: wxcampaign.ReasonWeChat47003, Detail: reasons[i], MsgID: int64(i), Retain: true})
		}
		begin(t, db, t0, atts)
		if err := finishSends(ctx, db, t0, res); err != nil {
			t.Fatal(err)
		}
		got := map[int64]store.LogEntry{}
		for _, e := range must[[]store.LogEntry](t)(db.SendLog(ctx, "c", 10)) {
			got[e.GrantID] = e
		}
		for i, id := range ids {
			if e := got[id]; e.Detail != reasons[i] || e.Reason != string(wxcampaign.ReasonWeChat47003) || e.MsgID != int64(i) || e.Status != "failed" {
				t.Errorf("grant %d: %+v, want detail %q msgid %d", id, e, reasons[i], i)
			}
		}
	})
}

// TestFailStreaks: a grant whose latest n attempts in a campaign all failed
// with one reason has a streak; a sent attempt, another reason or another
// campaign breaks or does not count.
func TestFailStreaks(t *testing.T) {
	eachDriver(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		ids := seed(t, db, "A", 4)
		occ := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Hour) }
		attempt := func(campaign string, i int, id int64, res store.Result) {
			t.Helper()
			begin(t, db, occ(i), []store.Attempt{{Campaign: campaign, Occurrence: occ(i), GrantID: id, OpenID: "u", TemplateID: "A", Holder: "h"}})
			res.Campaign, res.Occurrence, res.GrantID, res.Holder, res.Retain = campaign, occ(i), id, "h", true
			if err := finishSends(ctx, db, occ(i), []store.Result{res}); err != nil {
				t.Fatal(err)
			}
		}
		page := store.Result{Outcome: wxcampaign.Failed, Reason: wxcampaign.ReasonWeChat41030, Detail: "41030 invalid page"}
		value := store.Result{Outcome: wxcampaign.Failed, Reason: wxcampaign.ReasonWeChat47003, Detail: "47003 x"}
		sent := store.Result{Outcome: wxcampaign.Sent, Reason: wxcampaign.ReasonOK}
		// ids[0]: 3 page failures. ids[1]: 2 page failures, then 47003.
		// ids[2]: page, sent (long-term style), page, page. ids[3]: 3
		// page failures, one of them in another campaign.
		for i, r := range []store.Result{page, page, page} {
			attempt("c", i, ids[0], r)
		}
		for i, r := range []store.Result{page, page, value} {
			attempt("c", i, ids[1], r)
		}
		for i, r := range []store.Result{page, sent, page, page} {
			attempt("c", i, ids[2], r)
		}
		attempt("c", 0, ids[3], page)
		attempt("other", 1, ids[3], page)
		attempt("c", 2, ids[3], page)
		got := must[map[int64]store.Streak](t)(db.FailStreaks(ctx, "c", ids, 3))
		want := map[int64]store.Streak{ids[0]: {Reason: wxcampaign.ReasonWeChat41030, Detail: "41030 invalid page", Runs: 3}}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("streaks of 3 = %v, want %v", got, want)
		}
		got = must[map[int64]store.Streak](t)(db.FailStreaks(ctx, "c", ids, 2))
		if len(got) != 3 || got[ids[1]].Runs != 0 || got[ids[2]].Runs != 2 || got[ids[3]].Runs != 2 {
			t.Errorf("streaks of 2 = %v, want ids[0], ids[2] and ids[3]", got)
		}
	})
}
