package store_test

import (
	"context"
	"slices"
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
		must[[]int64](t)(db.Reserve(ctx, "h", ids, t0, t0.Add(time.Minute)))
		var atts []store.Attempt
		for _, id := range ids {
			atts = append(atts, store.Attempt{Campaign: "c", Occurrence: t0, GrantID: id, OpenID: "u1", TemplateID: "A", Holder: "h"})
		}
		must[[]int64](t)(db.BeginSends(ctx, t0, atts))
		finish := func(id, msgid int64) {
			t.Helper()
			if err := db.FinishSends(ctx, sec(10), []store.Result{{Campaign: "c", Occurrence: t0, GrantID: id, Holder: "h",
				Outcome: wxcampaign.Sent, Reason: "sent", MsgID: msgid, Consume: true, Retain: true}}); err != nil {
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
// grant (no Consume) is left as it is, even reserved by a live holder.
func TestSettleStale(t *testing.T) {
	eachDriver(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		one := seed(t, db, "A", 1)[0]
		if _, err := db.RecordSubscription(ctx, longTerm(sub("lt", "u9", "LT")), t0); err != nil {
			t.Fatal(err)
		}
		lt := must[[]wxcampaign.Grant](t)(db.ListAvailable(ctx, "LT", 0, 1, t0))[0].ID
		lease := t0.Add(time.Minute)
		must[[]int64](t)(db.Reserve(ctx, "dead", []int64{one, lt}, t0, lease))
		started := t0.Add(time.Second)
		must[[]int64](t)(db.BeginSends(ctx, started, []store.Attempt{
			{Campaign: "c", Occurrence: t0, GrantID: one, OpenID: "u0", TemplateID: "A", Holder: "dead", Kind: wxcampaign.LongTerm /* ignored */},
			{Campaign: "c", Occurrence: t0, GrantID: lt, OpenID: "u9", TemplateID: "LT", Holder: "dead"},
		}))
		// The long-term grant is reserved again by a live run after the lease.
		if got := must[[]int64](t)(db.Reserve(ctx, "alive", []int64{lt}, lease, lease.Add(time.Hour))); !slices.Equal(got, []int64{lt}) {
			t.Fatalf("re-reserve long-term = %v", got)
		}
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
				Outcome: wxcampaign.Sent, Reason: "sent (delivery event)", MsgID: msgid, Consume: a.Kind == wxcampaign.OneTime, Retain: true})
		}
		if err := db.FinishSends(ctx, lease, res); err != nil {
			t.Fatal(err)
		}
		if st := must[store.GrantState](t)(db.GetGrant(ctx, one)); st.Status != store.StatusConsumed || st.ReservedBy != "" {
			t.Errorf("one-time after settle: %q reserved by %q, want consumed", st.Status, st.ReservedBy)
		}
		if st := must[store.GrantState](t)(db.GetGrant(ctx, lt)); st.Status != store.StatusActive || st.ReservedBy != "alive" {
			t.Errorf("long-term after settle: %q reserved by %q, want active, still reserved by alive", st.Status, st.ReservedBy)
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
// characters and Chinese reach the send log unchanged (MySQL passes them
// through JSON_TABLE).
func TestFinishSendsReasonRoundTrip(t *testing.T) {
	reasons := []string{`failed: 47003 "thing1" \ x`, "failed: 中文 <&> \n\t", "tab\tnewline\nquote'\"", ""}
	eachDriver(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		ids := seed(t, db, "A", len(reasons))
		var atts []store.Attempt
		var res []store.Result
		for i, id := range ids {
			atts = append(atts, store.Attempt{Campaign: "c", Occurrence: t0, GrantID: id, OpenID: "u", TemplateID: "A", Holder: "h"})
			res = append(res, store.Result{Campaign: "c", Occurrence: t0, GrantID: id, Holder: "h", Outcome: wxcampaign.Failed, Reason: reasons[i], MsgID: int64(i), Retain: true})
		}
		must[[]int64](t)(db.BeginSends(ctx, t0, atts))
		if err := db.FinishSends(ctx, t0, res); err != nil {
			t.Fatal(err)
		}
		got := map[int64]store.LogEntry{}
		for _, e := range must[[]store.LogEntry](t)(db.SendLog(ctx, "c", 10)) {
			got[e.GrantID] = e
		}
		for i, id := range ids {
			if e := got[id]; e.Reason != reasons[i] || e.MsgID != int64(i) || e.Status != "failed" {
				t.Errorf("grant %d: %+v, want reason %q msgid %d", id, e, reasons[i], i)
			}
		}
	})
}
