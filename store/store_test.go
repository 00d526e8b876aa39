package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/internal/testenv"
	"github.com/wxcampaign/wxcampaign/store"
)

var t0 = time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)

// eachDriver runs fn on a fresh store of each driver (testenv.EachDB).
var eachDriver = testenv.EachDB

func sub(req, openid string, agree ...string) wxcampaign.SubscriptionResult {
	return wxcampaign.SubscriptionResult{OpenID: openid, Scene: "cart", BusNo: "sku-1",
		ExtraVariableMap: map[string]any{"price": 12.5}, AgreeTemplateIDs: agree, RequestID: req}
}

// longTerm marks every agreed id of r long-term.
func longTerm(r wxcampaign.SubscriptionResult) wxcampaign.SubscriptionResult {
	r.LongTermTemplateIDs = r.AgreeTemplateIDs
	return r
}

func must[T any](t testing.TB) func(v T, err error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func TestMigrateIdempotent(t *testing.T) {
	eachDriver(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		n, err := db.Migrate(ctx)
		if err != nil || n != 0 {
			t.Fatalf("second Migrate = %d, %v; want 0, nil", n, err)
		}
		v, err := db.SchemaVersion(ctx)
		if err != nil || v < 1 {
			t.Fatalf("SchemaVersion = %d, %v", v, err)
		}
	})
}

func TestRecordSubscription(t *testing.T) {
	// The caller decides the kinds: ids starting with LT are long-term.
	withKinds := func(r wxcampaign.SubscriptionResult) wxcampaign.SubscriptionResult {
		for _, id := range r.AgreeTemplateIDs {
			if strings.HasPrefix(id, "LT") {
				r.LongTermTemplateIDs = append(r.LongTermTemplateIDs, id)
			}
		}
		return r
	}
	eachDriver(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		tests := []struct {
			name string
			r    wxcampaign.SubscriptionResult
			want store.RecordResult
		}{
			{"two one-time", sub("r1", "u1", "A", "B"), store.RecordResult{Credits: 2}},
			{"accepts add up", sub("r2", "u1", "A"), store.RecordResult{Credits: 1}},
			{"repeated request id", sub("r1", "u1", "A", "B"), store.RecordResult{Duplicate: true}},
			{"long-term", sub("r3", "u1", "LT1"), store.RecordResult{LongTerm: 1}},
			{"marked long-term", func() wxcampaign.SubscriptionResult {
				r := sub("r4", "u2", "X")
				r.LongTermTemplateIDs = []string{"X"}
				return r
			}(), store.RecordResult{LongTerm: 1}},
			{"reject ban filter", wxcampaign.SubscriptionResult{OpenID: "u3", RequestID: "r5", RejectTemplateIDs: []string{"A"},
				BanTemplateIDs: []string{"B"}, FilterTemplateIDs: []string{"C"}}, store.RecordResult{Rejected: 3}},
			{"repeated id counts once", sub("r7", "u4", "D", "D", "D"), store.RecordResult{Credits: 1}},
			{"same request id, other content", sub("r7", "u4", "E"), store.RecordResult{Duplicate: true, Conflict: true}},
			{"same request id, same content reordered", sub("r1", "u1", "B", "A"), store.RecordResult{Duplicate: true}},
			{"another user's long-term", sub("r8", "u5", "LT1"), store.RecordResult{LongTerm: 1}},
		}
		for _, tc := range tests {
			got, err := db.RecordSubscription(ctx, withKinds(tc.r), t0)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if got != tc.want {
				t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
			}
		}
		counts := map[string]int{"A": 2, "B": 1, "LT1": 2, "X": 1, "C": 0, "D": 1, "E": 0}
		for tmpl, want := range counts {
			if n := must[int](t)(db.CountAvailable(ctx, tmpl, t0)); n != want {
				t.Errorf("CountAvailable(%s) = %d, want %d", tmpl, n, want)
			}
		}
		gs := must[[]wxcampaign.Grant](t)(db.ListAvailable(ctx, "A", 0, 10, t0))
		if len(gs) != 2 || gs[0].OpenID != "u1" || gs[0].Scene != "cart" || gs[0].BizNo != "sku-1" ||
			gs[0].Vars["price"] != 12.5 || !gs[0].GrantedAt.Equal(t0) || gs[0].Kind != wxcampaign.OneTime || gs[0].ID >= gs[1].ID {
			t.Errorf("ListAvailable(A) = %+v", gs)
		}

		// A reject of a long-term template revokes the user's long-term grants.
		rej := wxcampaign.SubscriptionResult{OpenID: "u1", RequestID: "r6", RejectTemplateIDs: []string{"LT1", "A"}}
		if _, err := db.RecordSubscription(ctx, rej, t0); err != nil {
			t.Fatal(err)
		}
		if n := must[int](t)(db.CountAvailable(ctx, "LT1", t0)); n != 1 {
			t.Errorf("after reject: LT1 available = %d, want 1 (u5's: a reject revokes the rejecting user's only)", n)
		}
		if n := must[int](t)(db.CountAvailable(ctx, "A", t0)); n != 2 {
			t.Errorf("after reject: one-time credits A = %d, want 2 (a reject does not take back credits)", n)
		}

		// Invalid results are EINVALID.
		_, err := db.RecordSubscription(ctx, wxcampaign.SubscriptionResult{OpenID: "u"}, t0)
		if wxcampaign.ErrorCode(err) != wxcampaign.EINVALID {
			t.Errorf("invalid result: err = %v, want code invalid", err)
		}
	})
}

func TestRecordSubscriptionConcurrentDuplicate(t *testing.T) {
	eachDriver(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		const n = 10
		var wg sync.WaitGroup
		res := make([]store.RecordResult, n)
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				res[i], errs[i] = db.RecordSubscription(ctx, sub("same", "u1", "A"), t0)
			})
		}
		wg.Wait()
		fresh := 0
		for i := range n {
			if errs[i] != nil {
				t.Fatal(errs[i])
			}
			if !res[i].Duplicate {
				fresh++
			}
		}
		if fresh != 1 {
			t.Errorf("%d calls recorded the same requestId, want 1", fresh)
		}
		if c := must[int](t)(db.CountAvailable(ctx, "A", t0)); c != 1 {
			t.Errorf("credits = %d, want 1", c)
		}
	})
}

// seed records n one-time grants of template for users u0..u(n-1).
func seed(t testing.TB, db *store.DB, template string, n int) []int64 {
	t.Helper()
	ctx := context.Background()
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `{"openId":"u%d","agreeTemplateIds":[%q],"requestId":"%s-%d"}`+"\n", i, template, template, i)
	}
	rep, err := db.Import(ctx, strings.NewReader(b.String()), store.ImportOptions{Now: func() time.Time { return t0 }})
	if err != nil || rep.Credits != n {
		t.Fatalf("seed: %+v, %v", rep, err)
	}
	var ids []int64
	for after := int64(0); ; {
		gs, err := db.ListAvailable(ctx, template, after, 5000, t0)
		if err != nil {
			t.Fatal(err)
		}
		if len(gs) == 0 {
			return ids
		}
		for _, g := range gs {
			ids = append(ids, g.ID)
		}
		after = gs[len(gs)-1].ID
	}
}

func TestListAvailableKeyset(t *testing.T) {
	eachDriver(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		ids := seed(t, db, "A", 25)
		if len(ids) != 25 || !slices.IsSorted(ids) {
			t.Fatalf("ids = %v", ids)
		}
		var paged []int64
		for after := int64(0); ; {
			gs := must[[]wxcampaign.Grant](t)(db.ListAvailable(ctx, "A", after, 7, t0))
			if len(gs) == 0 {
				break
			}
			if len(gs) > 7 {
				t.Fatalf("page of %d > limit 7", len(gs))
			}
			for _, g := range gs {
				paged = append(paged, g.ID)
			}
			after = gs[len(gs)-1].ID
		}
		if !slices.Equal(paged, ids) {
			t.Errorf("paged %v, want %v", paged, ids)
		}
	})
}

// TestRepeatUsers: the users holding two or more grants of the template,
// used or not, and nobody else.
func TestRepeatUsers(t *testing.T) {
	eachDriver(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		subs := []wxcampaign.SubscriptionResult{
			sub("r1", "oOnce", "A"),
			sub("r2", "oTwice", "A"),
			sub("r3", "oTwice", "A"),
			sub("r4", "oOtherTpl", "A"),
			sub("r5", "oOtherTpl", "B"),
			sub("r6", "oThrice", "A"),
			sub("r7", "oThrice", "A"),
			sub("r8", "oThrice", "A"),
		}
		for _, s := range subs {
			if _, err := db.RecordSubscription(ctx, s, t0); err != nil {
				t.Fatal(err)
			}
		}
		got := must[[]string](t)(db.RepeatUsers(ctx, "A"))
		slices.Sort(got)
		if want := []string{"oThrice", "oTwice"}; !slices.Equal(got, want) {
			t.Errorf("RepeatUsers(A) = %v, want %v", got, want)
		}
		if got := must[[]string](t)(db.RepeatUsers(ctx, "B")); len(got) != 0 {
			t.Errorf("RepeatUsers(B) = %v, want none", got)
		}
	})
}

// TestGetGrantMissing: an unknown grant id is ENOTFOUND.
func TestGetGrantMissing(t *testing.T) {
	eachDriver(t, func(t *testing.T, db *store.DB) {
		if _, err := db.GetGrant(context.Background(), 1<<40); wxcampaign.ErrorCode(err) != wxcampaign.ENOTFOUND {
			t.Errorf("GetGrant(missing) err = %v", err)
		}
	})
}

func TestSendLifecycle(t *testing.T) {
	eachDriver(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		ids := seed(t, db, "A", 4)
		if _, err := db.RecordSubscription(ctx, longTerm(sub("lt", "u9", "LT")), t0); err != nil {
			t.Fatal(err)
		}
		lt := must[[]wxcampaign.Grant](t)(db.ListAvailable(ctx, "LT", 0, 1, t0))[0].ID
		all := append(slices.Clone(ids), lt)
		occ := t0.Truncate(time.Hour)
		var atts []store.Attempt
		for _, id := range all {
			atts = append(atts, store.Attempt{Campaign: "c", Occurrence: occ, GrantID: id, OpenID: "u", TemplateID: "A", Holder: "h"})
		}
		mk := store.Mark{At: t0, Token: store.NewMarkToken(), Attempts: atts}
		for range 2 { // a call repeated with its token has the same answer
			bs := must[[]store.Begun](t)(db.BeginSends(ctx, mk))
			var got []int64
			for i, b := range bs {
				if b.Marked {
					got = append(got, atts[i].GrantID)
				}
			}
			if !slices.Equal(got, all) {
				t.Fatalf("BeginSends = %v, want %v", got, all)
			}
		}
		// A second attempt at the same (campaign, occurrence, grant) is
		// refused, and so is another send of a grant in flight.
		bs := must[[]store.Begun](t)(db.BeginSends(ctx, store.Mark{At: t0, Attempts: atts[:2]}))
		if bs[0].Marked || bs[0].Reason != wxcampaign.ReasonAlreadyAttempted {
			t.Fatalf("second BeginSends = %+v, want already attempted", bs)
		}
		other := atts[len(atts)-1] // the long-term grant, at another occurrence
		other.Occurrence = occ.Add(time.Hour)
		bs = must[[]store.Begun](t)(db.BeginSends(ctx, store.Mark{At: t0, Attempts: []store.Attempt{other}}))
		if bs[0].Marked || bs[0].Reason != wxcampaign.ReasonInFlightElsewhere {
			t.Fatalf("other occurrence while in flight = %+v, want in flight elsewhere", bs)
		}
		if m := must[map[int64]bool](t)(db.SentBefore(ctx, "c", all)); len(m) != len(all) {
			t.Errorf("SentBefore with inflight rows = %v (inflight may have arrived)", m)
		}
		res := []store.Result{
			{Campaign: "c", Occurrence: occ, GrantID: ids[0], Holder: "h", Outcome: wxcampaign.Sent, Reason: wxcampaign.ReasonOK, MsgID: 77, Consume: true, Retain: true},
			{Campaign: "c", Occurrence: occ, GrantID: ids[1], Holder: "h", Outcome: wxcampaign.Failed, Reason: wxcampaign.ReasonWeChat43101, Consume: true, Retain: true},
			{Campaign: "c", Occurrence: occ, GrantID: ids[2], Holder: "h", Outcome: wxcampaign.Deferred, Reason: wxcampaign.ReasonQuotaPaused, Retain: false},
			{Campaign: "c", Occurrence: occ, GrantID: ids[3], Holder: "h", Outcome: wxcampaign.Failed, Reason: wxcampaign.ReasonWeChat47003, Detail: "47003 thing1", Retain: true},
			{Campaign: "c", Occurrence: occ, GrantID: lt, Holder: "h", Outcome: wxcampaign.Sent, Reason: wxcampaign.ReasonOK, MsgID: 78, Retain: true},
		}
		for i, want := range []int{len(res), 0} { // idempotent: the second settles nothing
			n, err := db.FinishSends(ctx, store.Finish{At: t0.Add(time.Second), Results: res})
			if err != nil || n != want {
				t.Fatalf("FinishSends %d: settled %d (%v), want %d", i, n, err, want)
			}
		}
		// Once the long-term grant's send is finished, another occurrence
		// is a different send.
		if got := begin(t, db, t0, []store.Attempt{other, other}); !slices.Equal(got, []int64{lt}) {
			t.Fatalf("other occurrence = %v", got)
		}
		// Settled grants are out of flight; the long-term grant's send at
		// the other occurrence, just begun, holds it.
		wantStatus := map[int64]string{ids[0]: "consumed", ids[1]: "consumed", ids[2]: "active", ids[3]: "active", lt: "active"}
		for id, want := range wantStatus {
			wantBy := ""
			if id == lt {
				wantBy = "h"
			}
			st := must[store.GrantState](t)(db.GetGrant(ctx, id))
			if st.Status != want || st.InFlightBy != wantBy {
				t.Errorf("grant %d: status %q in flight by %q, want %q in flight by %q", id, st.Status, st.InFlightBy, want, wantBy)
			}
		}
		if n := must[int](t)(db.CountAvailable(ctx, "A", t0)); n != 2 {
			t.Errorf("available A = %d, want 2", n)
		}
		counts := must[map[string]int](t)(db.OutcomeCounts(ctx, "c"))
		if want := map[string]int{"sent": 2, "failed": 2, "inflight": 1}; fmt.Sprint(counts) != fmt.Sprint(want) { // inflight: lt at the other occurrence
			t.Errorf("OutcomeCounts = %v, want %v", counts, want)
		}
		log := must[[]store.LogEntry](t)(db.SendLog(ctx, "c", 10))
		if len(log) != 5 || log[0].Status != "inflight" {
			t.Fatalf("SendLog = %+v", log)
		}
		var sent store.LogEntry
		for _, e := range log {
			if e.GrantID == ids[0] && e.Occurrence.Equal(occ) {
				sent = e
			}
		}
		if sent.Status != "sent" || sent.MsgID != 77 || !sent.At.Equal(t0.Add(time.Second)) {
			t.Errorf("sent entry = %+v", sent)
		}
		m := must[map[int64]bool](t)(db.SentBefore(ctx, "c", all))
		if !m[ids[0]] || m[ids[1]] || m[ids[2]] || !m[lt] {
			t.Errorf("SentBefore = %v", m)
		}
		// The deferred attempt's row is gone: it can be begun again.
		again := atts[2]
		if got := begin(t, db, t0, []store.Attempt{again}); !slices.Equal(got, []int64{ids[2]}) {
			t.Errorf("re-begin deferred = %v", got)
		}
		// Long-term with grant gone is revoked.
		if err := finishSends(ctx, db, t0, []store.Result{{Campaign: "c", Occurrence: other.Occurrence, GrantID: lt, Holder: "h", Outcome: wxcampaign.Failed, Consume: true, Retain: true}}); err != nil {
			t.Fatal(err)
		}
		if st := must[store.GrantState](t)(db.GetGrant(ctx, lt)); st.Status != "revoked" {
			t.Errorf("long-term consumed -> %q, want revoked", st.Status)
		}
	})
}

// TestStaleInflight: a send in flight is stale when its run is not live:
// the run's lease ran out, or another holder took the run over.
func TestStaleInflight(t *testing.T) {
	eachDriver(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		ids := seed(t, db, "A", 3)
		lease := t0.Add(time.Minute)
		for _, c := range []string{"c", "d"} {
			if _, ok, err := db.AcquireRun(ctx, c, t0, "alive", t0, lease); err != nil || !ok {
				t.Fatalf("acquire %s: %v %v", c, ok, err)
			}
		}
		begin(t, db, t0, []store.Attempt{
			{Campaign: "c", Occurrence: t0, GrantID: ids[0], OpenID: "u0", TemplateID: "A", Holder: "dead"},
			{Campaign: "c", Occurrence: t0, GrantID: ids[1], OpenID: "u1", TemplateID: "A", Holder: "alive"},
			{Campaign: "e", Occurrence: t0, GrantID: ids[2], OpenID: "u2", TemplateID: "A", Holder: "gone"},
		})
		stale := func(at time.Time) []int64 {
			var out []int64
			for _, a := range must[[]store.Attempt](t)(db.StaleInflight(ctx, at, 10)) {
				out = append(out, a.GrantID)
			}
			return out
		}
		if got := stale(t0); !slices.Equal(got, []int64{ids[0], ids[2]}) {
			t.Errorf("stale before the lease's end = %v, want %v (holder replaced, run gone)", got, []int64{ids[0], ids[2]})
		}
		st := must[[]store.Attempt](t)(db.StaleInflight(ctx, t0, 1))
		if len(st) != 1 || st[0].Holder != "dead" || !st[0].Occurrence.Equal(t0) || st[0].OpenID != "u0" || !st[0].StartedAt.Equal(t0) {
			t.Errorf("stale = %+v", st)
		}
		if got := stale(lease); len(got) != 3 {
			t.Errorf("stale after the lease = %v, want all 3", got)
		}
	})
}

func TestCaps(t *testing.T) {
	day := 24 * time.Hour
	ut := store.Limit{Scope: store.ScopeUserTemplate, Max: 1, Window: day}
	u := store.Limit{Scope: store.ScopeUser, Max: 2, Window: 7 * day}
	eachDriver(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		ct := newCapTaker(t, db)
		req := func(ref, openid, tmpl string) capReq {
			return capReq{Ref: ref, OpenID: openid, TemplateID: tmpl, Limits: []store.Limit{ut, u}}
		}
		steps := []struct {
			at   time.Time
			reqs []capReq
			want []string
		}{
			{t0, []capReq{req("1", "a", "T1"), req("2", "a", "T1"), req("3", "a", "T2"), req("4", "b", "T1")},
				[]string{"", "capped: user_template 1/24h", "", ""}},
			{t0.Add(time.Hour), []capReq{req("1", "a", "T1")}, []string{"capped: user_template 1/24h"}}, // the same send again
			{t0.Add(day), []capReq{req("5", "a", "T1")}, []string{"capped: user 2/7d"}},
			{t0.Add(7 * day), []capReq{req("6", "a", "T1")}, []string{""}},
		}
		for i, s := range steps {
			chkL, usage, err := db.CheckCaps(ctx, s.at, creqs(s.reqs))
			if err != nil {
				t.Fatal(err)
			}
			chk := capText(chkL)
			got := ct.take(s.at, s.reqs...)
			if !slices.Equal(chk, s.want) || !slices.Equal(got, s.want) {
				t.Errorf("step %d: BeginSends %q, CheckCaps %q, want %q", i, got, chk, s.want)
			}
			if len(usage) != len(s.reqs) {
				t.Errorf("step %d: usage %v", i, usage)
			}
		}
		// Usage explains: a has 1 in the 7-day window (ref 6 at t0+7d).
		_, usage, _ := db.CheckCaps(ctx, t0.Add(7*day), creqs([]capReq{req("x", "a", "T1")}))
		if usage[0][0].Used != 1 || usage[0][1].Used != 1 {
			t.Errorf("usage = %+v", usage)
		}
		// A send that proved nothing was sent gives its take back.
		ct.giveBack("6")
		if got := ct.take(t0.Add(7*day), req("7", "a", "T1")); got[0] != "" {
			t.Errorf("after giving back: %q", got)
		}
		if _, err := db.BeginSends(ctx, store.Mark{At: t0, Attempts: []store.Attempt{{Campaign: "c", Occurrence: t0, GrantID: 1, Limits: []store.Limit{{Scope: "planet", Max: 1, Window: day}}}}}); wxcampaign.ErrorCode(err) != wxcampaign.EINVALID {
			t.Errorf("bad scope: %v", err)
		}
	})
}

// TestCapsConcurrent: 50 concurrent attempts against a cap of 3 per window
// take exactly 3.
func TestCapsConcurrent(t *testing.T) {
	eachDriver(t, func(t *testing.T, db *store.DB) {
		lim := []store.Limit{{Scope: store.ScopeUser, Max: 3, Window: time.Hour}, {Scope: store.ScopeUserTemplate, Max: 100, Window: time.Hour}}
		ct := newCapTaker(t, db)
		reqs := make([]capReq, 50)
		for i := range reqs {
			reqs[i] = capReq{Ref: fmt.Sprint("ref", i), OpenID: "u", TemplateID: fmt.Sprint("T", i%4), Limits: lim}
			ct.grant(reqs[i])
		}
		var wg sync.WaitGroup
		got := make([]string, 50)
		errs := make([]error, 50)
		for i := range 50 {
			wg.Go(func() {
				r, err := ct.takeErr(t0.Add(time.Duration(i)*time.Millisecond), reqs[i])
				errs[i] = err
				if err == nil {
					got[i] = r[0]
				}
			})
		}
		wg.Wait()
		taken := 0
		for i := range 50 {
			if errs[i] != nil {
				t.Fatalf("attempt %d: %v", i, errs[i])
			}
			if got[i] == "" {
				taken++
			} else if got[i] != "capped: user 3/1h" {
				t.Errorf("attempt %d: %q", i, got[i])
			}
		}
		if taken != 3 {
			t.Errorf("taken %d, want exactly 3", taken)
		}
	})
}

func TestRuns(t *testing.T) {
	eachDriver(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		occ := t0
		lease := t0.Add(time.Minute)
		r, ok, err := db.AcquireRun(ctx, "c", occ, "p1", t0, lease)
		if err != nil || !ok || r.Holder != "p1" || r.Status != "running" || r.Checkpoint != 0 {
			t.Fatalf("first acquire = %+v %v %v", r, ok, err)
		}
		if _, ok, _ := db.AcquireRun(ctx, "c", occ, "p2", t0.Add(time.Second), lease); ok {
			t.Fatal("p2 took a live lease")
		}
		if _, ok, _ := db.AcquireRun(ctx, "c", occ, "p1", t0.Add(time.Second), lease); !ok {
			t.Fatal("p1 could not re-acquire its own run")
		}
		if err := db.Checkpoint(ctx, "c", occ, "p1", 42); err != nil {
			t.Fatal(err)
		}
		if err := db.Checkpoint(ctx, "c", occ, "p1", 7); err != nil { // never moves back
			t.Fatal(err)
		}
		if err := db.ExtendRun(ctx, "c", occ, "p1", lease); err != nil { // same value: still held
			t.Fatal(err)
		}
		// p1 dies; p2 takes over after the lease and keeps the checkpoint.
		r, ok, err = db.AcquireRun(ctx, "c", occ, "p2", lease, lease.Add(time.Minute))
		if err != nil || !ok || r.Holder != "p2" || r.Checkpoint != 42 {
			t.Fatalf("take-over = %+v %v %v", r, ok, err)
		}
		for name, err := range map[string]error{
			"extend":     db.ExtendRun(ctx, "c", occ, "p1", lease.Add(time.Hour)),
			"checkpoint": db.Checkpoint(ctx, "c", occ, "p1", 50),
			"finish":     db.FinishRun(ctx, "c", occ, "p1", "x"),
		} {
			if !errors.Is(err, store.ErrLeaseLost) {
				t.Errorf("p1 %s after take-over: %v, want ErrLeaseLost", name, err)
			}
		}
		if err := db.FinishRun(ctx, "c", occ, "p2", "sent 3"); err != nil {
			t.Fatal(err)
		}
		if err := db.FinishRun(ctx, "c", occ, "p2", "sent 3"); err != nil {
			t.Errorf("second FinishRun: %v", err)
		}
		r, ok, err = db.AcquireRun(ctx, "c", occ, "p3", lease.Add(time.Hour), lease.Add(2*time.Hour))
		if err != nil || ok || r.Status != "done" || r.Summary != "sent 3" {
			t.Errorf("acquire done run = %+v %v %v", r, ok, err)
		}
		runs := must[[]store.Run](t)(db.ListRuns(ctx, "c", 10))
		if len(runs) != 1 || !runs[0].Occurrence.Equal(occ) {
			t.Errorf("ListRuns = %+v", runs)
		}
		if _, err := db.GetRun(ctx, "nope", occ); wxcampaign.ErrorCode(err) != wxcampaign.ENOTFOUND {
			t.Errorf("GetRun(missing) = %v", err)
		}
	})
}

func TestRunsConcurrentAcquire(t *testing.T) {
	eachDriver(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		var wg sync.WaitGroup
		oks := make([]bool, 8)
		for i := range 8 {
			wg.Go(func() {
				_, ok, err := db.AcquireRun(ctx, "c", t0, fmt.Sprint("p", i), t0, t0.Add(time.Minute))
				if err != nil {
					t.Error(err)
				}
				oks[i] = ok
			})
		}
		wg.Wait()
		n := 0
		for _, ok := range oks {
			if ok {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d holders acquired one run, want 1", n)
		}
	})
}

func TestPauses(t *testing.T) {
	eachDriver(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if u, _, err := db.PausedUntil(ctx, "quota", t0); err != nil || !u.IsZero() {
			t.Fatalf("unpaused = %v %v", u, err)
		}
		end := t0.Add(14 * time.Hour)
		if err := db.SetPause(ctx, "quota", t0.Add(time.Hour), "45009"); err != nil {
			t.Fatal(err)
		}
		if err := db.SetPause(ctx, "quota", end, "45009 daily quota"); err != nil {
			t.Fatal(err)
		}
		u, reason, err := db.PausedUntil(ctx, "quota", t0)
		if err != nil || !u.Equal(end) || reason != "45009 daily quota" {
			t.Errorf("paused = %v %q %v", u, reason, err)
		}
		if u, _, _ := db.PausedUntil(ctx, "quota", end); !u.IsZero() {
			t.Errorf("still paused at its end: %v", u)
		}
	})
}

func TestTokens(t *testing.T) {
	eachDriver(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if tok, _, err := db.LoadToken(ctx, "wx1"); err != nil || tok != "" {
			t.Fatalf("empty load = %q %v", tok, err)
		}
		ok1 := must[bool](t)(db.TryTokenLease(ctx, "wx1", "p1", t0, t0.Add(10*time.Second)))
		ok2 := must[bool](t)(db.TryTokenLease(ctx, "wx1", "p2", t0.Add(time.Second), t0.Add(10*time.Second)))
		if !ok1 || ok2 {
			t.Fatalf("lease p1=%v p2=%v, want true false", ok1, ok2)
		}
		secret := strings.Repeat("T", 600)
		exp := t0.Add(2 * time.Hour)
		if err := db.SaveToken(ctx, "wx1", secret, exp); err != nil {
			t.Fatal(err)
		}
		tok, e, err := db.LoadToken(ctx, "wx1")
		if err != nil || tok != secret || !e.Equal(exp) {
			t.Fatalf("load = %d chars %v %v", len(tok), e, err)
		}
		// Saving ends the lease: p2 may refresh next time.
		if !must[bool](t)(db.TryTokenLease(ctx, "wx1", "p2", t0.Add(time.Second), t0.Add(time.Minute))) {
			t.Error("lease not free after SaveToken")
		}
		if err := db.DropToken(ctx, "wx1", "other"); err != nil {
			t.Fatal(err)
		}
		if tok, _, _ := db.LoadToken(ctx, "wx1"); tok != secret {
			t.Error("DropToken of another token dropped the current one")
		}
		if err := db.DropToken(ctx, "wx1", secret); err != nil {
			t.Fatal(err)
		}
		if tok, _, _ := db.LoadToken(ctx, "wx1"); tok != "" {
			t.Error("token not dropped")
		}
		// Errors never carry the token.
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := db.SaveToken(cctx, "wx1", secret, exp); err == nil || strings.Contains(err.Error(), secret) {
			t.Errorf("SaveToken on cancelled ctx: %v", err)
		}
	})
}

func TestFacts(t *testing.T) {
	eachDriver(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		x := db.SQLX()
		ddl := "CREATE TABLE products (id VARCHAR(20) PRIMARY KEY, price DECIMAL(10,2), stock INT, launched DATETIME, day DATE, on_sale BOOLEAN, note VARCHAR(50))"
		if _, err := x.ExecContext(ctx, ddl); err != nil {
			t.Fatal(err)
		}
		launch := time.Date(2025, 2, 3, 4, 5, 6, 0, time.UTC)
		if _, err := x.ExecContext(ctx, "INSERT INTO products VALUES ('p1', 9.90, 3, ?, ?, 1, 'a:keys'), ('p2', 12.00, 0, NULL, NULL, 0, NULL), ('p3', 1, 1, NULL, NULL, 0, NULL)",
			launch.Format("2006-01-02 15:04:05"), "2025-02-03"); err != nil {
			t.Fatal(err)
		}
		f := db.Facts()
		defer f.Close()
		rows, err := f.Query(ctx, "SELECT id, price, stock, launched, day, on_sale, note, ':keys' AS lit FROM products WHERE id IN (:keys) ORDER BY id", []any{"p1", "p2"})
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 2 {
			t.Fatalf("rows = %v", rows)
		}
		p1, p2 := rows[0], rows[1]
		checks := []struct {
			name      string
			got, want any
		}{
			{"id", p1["id"], "p1"},
			{"price", p1["price"], 9.9},
			{"stock", p1["stock"], int64(3)},
			{"launched", p1["launched"], launch},
			{"day", p1["day"], time.Date(2025, 2, 3, 0, 0, 0, 0, time.UTC)},
			{"note", p1["note"], "a:keys"},
			{"lit", p1["lit"], ":keys"},
			{"null", p2["launched"], nil},
			{"null note", p2["note"], nil},
		}
		for _, c := range checks {
			if fmt.Sprintf("%T %v", c.got, c.got) != fmt.Sprintf("%T %v", c.want, c.want) {
				t.Errorf("%s = %T %v, want %T %v", c.name, c.got, c.got, c.want, c.want)
			}
		}
		if db.Driver() == store.SQLite && p1["on_sale"] != true {
			t.Errorf("on_sale = %T %v, want bool true", p1["on_sale"], p1["on_sale"])
		}
		if rows, err := f.Query(ctx, "SELECT id FROM products WHERE id IN (:keys)", nil); err != nil || rows != nil {
			t.Errorf("no keys = %v %v", rows, err)
		}
		if _, err := f.Query(ctx, "SELEC nonsense", nil); err == nil {
			t.Error("bad SQL: no error")
		}
	})
}

func TestRecordSubscriptions(t *testing.T) {
	eachDriver(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if _, err := db.RecordSubscription(ctx, sub("old", "u0", "A"), t0); err != nil {
			t.Fatal(err)
		}
		rs := []wxcampaign.SubscriptionResult{sub("n1", "u1", "A", "B"), sub("old", "u0", "A"), sub("n1", "u1", "A"),
			{OpenID: "u2", RequestID: "n2", RejectTemplateIDs: []string{"A"}}}
		got, err := db.RecordSubscriptions(ctx, rs, t0)
		if err != nil {
			t.Fatal(err)
		}
		// n1 repeated with other ids is a conflict: a retry carries the same content.
		want := []store.RecordResult{{Credits: 2}, {Duplicate: true}, {Duplicate: true, Conflict: true}, {Rejected: 1}}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("got %+v, want %+v", got, want)
		}
		bad := append(rs, wxcampaign.SubscriptionResult{OpenID: "x"})
		if _, err := db.RecordSubscriptions(ctx, bad, t0); wxcampaign.ErrorCode(err) != wxcampaign.EINVALID {
			t.Errorf("invalid element: %v", err)
		}
		if n := must[int](t)(db.CountAvailable(ctx, "A", t0)); n != 2 {
			t.Errorf("credits A = %d, want 2", n)
		}
	})
}

func TestFinishSendsAndCheckpoint(t *testing.T) {
	eachDriver(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		occ := t0
		ids := seed(t, db, "A", 3)
		if _, ok, err := db.AcquireRun(ctx, "c", occ, "p1", t0, t0.Add(time.Minute)); err != nil || !ok {
			t.Fatalf("acquire: %v %v", ok, err)
		}
		var atts []store.Attempt
		for _, id := range ids {
			atts = append(atts, store.Attempt{Campaign: "c", Occurrence: occ, GrantID: id, OpenID: "o", TemplateID: "A", Holder: "p1"})
		}
		begin(t, db, t0, atts)
		res := func(id int64, msgid int64) []store.Result {
			return []store.Result{{Campaign: "c", Occurrence: occ, GrantID: id, Holder: "p1", Outcome: wxcampaign.Sent, Reason: wxcampaign.ReasonOK, MsgID: msgid, Consume: true, Retain: true}}
		}
		tests := []struct {
			name     string
			holder   string
			id       int64
			last     int64
			wantErr  error
			wantCkpt int64
		}{
			{"moves the checkpoint", "p1", ids[0], ids[0], nil, ids[0]},
			{"never moves back", "p1", ids[1], ids[0] - 1, nil, ids[0]},
			{"lease lost still records", "p2", ids[2], ids[2], store.ErrLeaseLost, ids[0]},
		}
		for i, tc := range tests {
			_, err := db.FinishSends(ctx, store.Finish{At: t0.Add(time.Second), Results: res(tc.id, int64(100+i)),
				Checkpoint: &store.Checkpoint{Campaign: "c", Occurrence: occ, Holder: tc.holder, LastGrantID: tc.last}})
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("%s: err = %v, want %v", tc.name, err, tc.wantErr)
			}
			if r := must[store.Run](t)(db.GetRun(ctx, "c", occ)); r.Checkpoint != tc.wantCkpt {
				t.Errorf("%s: checkpoint %d, want %d", tc.name, r.Checkpoint, tc.wantCkpt)
			}
			if st := must[store.GrantState](t)(db.GetGrant(ctx, tc.id)); st.Status != store.StatusConsumed || st.InFlightBy != "" {
				t.Errorf("%s: grant %q in flight by %q, want consumed, not in flight", tc.name, st.Status, st.InFlightBy)
			}
		}
		if n := must[map[string]int](t)(db.OutcomeCounts(ctx, "c")); n["sent"] != 3 || n[store.StatusInflight] != 0 {
			t.Errorf("outcomes %v, want 3 sent", n)
		}
	})
}

// begin marks atts in flight and returns the grant ids it marked.
func begin(t testing.TB, db *store.DB, at time.Time, atts []store.Attempt) []int64 {
	t.Helper()
	bs, err := db.BeginSends(context.Background(), store.Mark{At: at, Attempts: atts})
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for i, b := range bs {
		if b.Marked {
			ids = append(ids, atts[i].GrantID)
		}
	}
	return ids
}

// finishSends records res at at, without a checkpoint.
func finishSends(ctx context.Context, db *store.DB, at time.Time, res []store.Result) error {
	_, err := db.FinishSends(ctx, store.Finish{At: at, Results: res})
	return err
}
