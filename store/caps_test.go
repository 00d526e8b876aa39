package store_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/store"
)

// TestCapsScopes: a take counts only for the scopes of the limits it was
// taken with, template limits count across users, and a batch sees its own
// earlier takes in order.
func TestCapsScopes(t *testing.T) {
	h := time.Hour
	ut := store.Limit{Scope: store.ScopeUserTemplate, Max: 1, Window: h}
	u := store.Limit{Scope: store.ScopeUser, Max: 2, Window: h}
	tp := store.Limit{Scope: store.ScopeTemplate, Max: 2, Window: h}
	req := func(ref, openid, tmpl string, l ...store.Limit) capReq {
		return capReq{Ref: ref, OpenID: openid, TemplateID: tmpl, Limits: l}
	}
	steps := []struct {
		name string
		reqs []capReq
		want []string
		used [][]int // per request, per limit (CheckCaps before the take)
	}{
		{"user_template only does not count for user",
			[]capReq{req("1", "a", "T1", ut), req("2", "a", "T2", ut), req("3", "a", "T3", u), req("4", "a", "T1", ut, u)},
			[]string{"", "", "", "capped: user_template 1/1h"},
			[][]int{{0}, {0}, {0}, {1, 1}}},
		{"user only does not count for user_template",
			[]capReq{req("5", "b", "T1", u), req("6", "b", "T1", ut, u), req("7", "b", "T2", u)},
			[]string{"", "", "capped: user 2/1h"},
			[][]int{{0}, {0, 1}, {2}}},
		{"template across users, only template takes count",
			[]capReq{req("8", "c", "T9", tp), req("9", "d", "T9", ut), req("10", "e", "T9", tp, ut), req("11", "f", "T9", tp)},
			[]string{"", "", "", "capped: template 2/1h"},
			[][]int{{0}, {0}, {1, 0}, {2}}},
	}
	eachDriver(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		ct := newCapTaker(t, db)
		for _, s := range steps {
			chkL, usage, err := db.CheckCaps(ctx, t0, creqs(s.reqs))
			if err != nil {
				t.Fatal(err)
			}
			chk := capText(chkL)
			got := ct.take(t0, s.reqs...)
			if !slices.Equal(got, s.want) || !slices.Equal(chk, s.want) {
				t.Errorf("%s: TakeCaps %q, CheckCaps %q, want %q", s.name, got, chk, s.want)
			}
			for i, us := range usage {
				for j, cu := range us {
					if cu.Used != s.used[i][j] {
						t.Errorf("%s: request %d limit %s used %d, want %d", s.name, i, cu.Limit, cu.Used, s.used[i][j])
					}
				}
			}
		}
		// One send log row per take, whatever its number of limits.
		var n int
		if err := db.SQLX().GetContext(ctx, &n, "SELECT COUNT(*) FROM send_log WHERE scopes <> 0"); err != nil || n != 8 {
			t.Errorf("takes = %d (%v), want 8", n, err)
		}
		// Outside the window nothing counts.
		if got := ct.take(t0.Add(h), req("12", "a", "T1", ut, u), req("13", "f", "T9", tp)); !slices.Equal(got, []string{"", ""}) {
			t.Errorf("after the window: %q", got)
		}
	})
}

// TestCapsMigration09: cap takes made before migration 00009 (cap_takes
// rows with the engine's ref campaign|occurrence|grant) count after it on
// their send log rows; a take whose send never got a row (a claim lost in a
// crash) no longer counts; 00009 migrates down.
func TestCapsMigration09(t *testing.T) {
	h := time.Hour
	lim := []store.Limit{{Scope: store.ScopeUserTemplate, Max: 1, Window: h}, {Scope: store.ScopeUser, Max: 3, Window: h}, {Scope: store.ScopeTemplate, Max: 2, Window: h}}
	eachDriver(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		p := migrations(t, db)
		if _, err := p.DownTo(ctx, 6); err != nil {
			t.Fatalf("down to 6: %v", err)
		}
		ts := t0.Format("2006-01-02 15:04:05.000000")
		exec := func(q string, args ...any) {
			t.Helper()
			if _, err := db.SQLX().ExecContext(ctx, db.SQLX().Rebind(q), args...); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		// Grant 1 of a on T1 sent with a user_template+user take; grant 2
		// of b on T1 sent with a template take; grant 3 of a on T2 taken
		// and never begun (lost); grant 4 of a on T1 sent without caps.
		for _, r := range []struct {
			grant        int
			openid, tmpl string
			scopes       int
			row, take    bool
		}{{1, "a", "T1", 3, true, true}, {2, "b", "T1", 4, true, true}, {3, "a", "T2", 3, false, true}, {4, "a", "T1", 0, true, false}} {
			if r.row {
				exec("INSERT INTO send_log (campaign, occurrence, grant_id, openid, template_id, holder, status, token, started_at) VALUES (?, ?, ?, ?, ?, 'h', 'sent', 'tok', ?)",
					"c", ts, r.grant, r.openid, r.tmpl, ts)
			}
			if r.take {
				exec("INSERT INTO cap_takes (openid, template_id, scopes, ref, taken_at) VALUES (?, ?, ?, ?, ?)",
					r.openid, r.tmpl, r.scopes, fmt.Sprintf("c|%d|%d", t0.Unix(), r.grant), ts)
			}
		}
		if _, err := db.Migrate(ctx); err != nil {
			t.Fatalf("up: %v", err)
		}
		_, usage, err := db.CheckCaps(ctx, t0.Add(time.Minute), []store.CapRequest{{OpenID: "a", TemplateID: "T1", Limits: lim}, {OpenID: "a", TemplateID: "T2", Limits: lim}})
		if err != nil {
			t.Fatal(err)
		}
		got := [][]int{{usage[0][0].Used, usage[0][1].Used, usage[0][2].Used}, {usage[1][0].Used, usage[1][1].Used, usage[1][2].Used}}
		if want := [][]int{{1, 1, 1}, {0, 1, 0}}; !slices.EqualFunc(got, want, slices.Equal) {
			t.Errorf("usage after migration = %v, want %v", got, want)
		}
		if _, err := p.DownTo(ctx, 6); err != nil {
			t.Fatalf("down to 6 again: %v", err)
		}
		if _, err := db.Migrate(ctx); err != nil {
			t.Fatalf("up again: %v", err)
		}
	})
}

// capReq is one send's caps as the tests write it: Ref names the send (the
// same Ref is the same grant and occurrence).
type capReq struct {
	Ref, OpenID, TemplateID string
	Limits                  []store.Limit
}

func creqs(rs []capReq) []store.CapRequest {
	out := make([]store.CapRequest, len(rs))
	for i, r := range rs {
		out[i] = store.CapRequest{OpenID: r.OpenID, TemplateID: r.TemplateID, Limits: r.Limits}
	}
	return out
}

// capTaker takes caps the way the engine does: it marks one send in flight
// per request (BeginSends with the limits), on a grant recorded for each
// new Ref; its cap take is the send log row.
type capTaker struct {
	t      testing.TB
	db     *store.DB
	grants map[string]int64
}

func newCapTaker(t testing.TB, db *store.DB) *capTaker {
	return &capTaker{t: t, db: db, grants: map[string]int64{}}
}

func (c *capTaker) grant(r capReq) int64 {
	c.t.Helper()
	if id, ok := c.grants[r.Ref]; ok {
		return id
	}
	ctx := context.Background()
	if _, err := c.db.RecordSubscription(ctx, sub("cap-"+r.Ref, r.OpenID, r.TemplateID), t0); err != nil {
		c.t.Fatal(err)
	}
	var id int64
	if err := c.db.SQLX().GetContext(ctx, &id, "SELECT MAX(id) FROM grants"); err != nil {
		c.t.Fatal(err)
	}
	c.grants[r.Ref] = id
	return id
}

func (c *capTaker) attempts(rs []capReq) []store.Attempt {
	atts := make([]store.Attempt, len(rs))
	for i, r := range rs {
		atts[i] = store.Attempt{Campaign: "caps", Occurrence: t0, GrantID: c.grant(r), OpenID: r.OpenID, TemplateID: r.TemplateID, Holder: "h", Limits: r.Limits}
	}
	return atts
}

// take returns per request "" (taken now or by an earlier call with the
// same Ref) or "capped: <limit>", checking the reason code against the
// limit's scope.
func (c *capTaker) take(at time.Time, rs ...capReq) []string {
	c.t.Helper()
	out, err := c.takeErr(at, rs...)
	if err != nil {
		c.t.Fatal(err)
	}
	return out
}

func (c *capTaker) takeErr(at time.Time, rs ...capReq) ([]string, error) {
	bs, err := c.db.BeginSends(context.Background(), store.Mark{At: at, Attempts: c.attempts(rs)})
	if err != nil {
		return nil, err
	}
	out := make([]string, len(bs))
	for i, b := range bs {
		switch {
		case b.Marked, b.Reason == wxcampaign.ReasonAlreadyAttempted:
		case b.Reason == wxcampaign.Reason("capped_"+strings.SplitN(b.Detail, " ", 2)[0]):
			out[i] = "capped: " + b.Detail
		default:
			out[i] = fmt.Sprintf("%s: %s", b.Reason, b.Detail)
		}
	}
	return out, nil
}

// giveBack ends the sends of refs as "nothing sent": their rows go, and
// their takes with them.
func (c *capTaker) giveBack(refs ...string) {
	c.t.Helper()
	var res []store.Result
	for _, r := range refs {
		res = append(res, store.Result{Campaign: "caps", Occurrence: t0, GrantID: c.grants[r], Holder: "h", Outcome: wxcampaign.Deferred, Reason: wxcampaign.ReasonRetriesExhausted})
	}
	if _, err := c.db.FinishSends(context.Background(), store.Finish{At: t0, Results: res}); err != nil {
		c.t.Fatal(err)
	}
}

// capText writes CheckCaps' answers as "" or "capped: <limit>".
func capText(ls []*store.Limit) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		if l != nil {
			out[i] = "capped: " + l.String()
		}
	}
	return out
}

// TestCapsOutcomeKeepsOrGivesBack: a send's cap take stays while it is in
// flight and after it was sent or may have been (unknown); a send WeChat
// refused (failed, row kept) or that proved nothing went out (row deleted)
// gives it back. The counts read scopes alone (migration 00015), so
// FinishSends must clear them on a failure.
func TestCapsOutcomeKeepsOrGivesBack(t *testing.T) {
	h := time.Hour
	ut := store.Limit{Scope: store.ScopeUserTemplate, Max: 1, Window: h}
	cases := []struct {
		outcome wxcampaign.Outcome
		retain  bool
		capped  bool // a second send of the same user and template is capped
	}{
		{"", false, true}, // still in flight
		{wxcampaign.Sent, true, true},
		{wxcampaign.Unknown, true, true},
		{wxcampaign.Failed, true, false},
		{wxcampaign.Failed, false, false},
	}
	eachDriver(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		ct := newCapTaker(t, db)
		for i, c := range cases {
			openid := fmt.Sprintf("keep-%d", i)
			first := capReq{Ref: openid + "-1", OpenID: openid, TemplateID: "T", Limits: []store.Limit{ut}}
			if got := ct.take(t0, first); got[0] != "" {
				t.Fatalf("%d: first send %q", i, got[0])
			}
			if c.outcome != "" {
				r := store.Result{Campaign: "caps", Occurrence: t0, GrantID: ct.grant(first), Holder: "h",
					Outcome: c.outcome, Retain: c.retain, Consume: c.outcome != wxcampaign.Failed}
				if c.outcome == wxcampaign.Failed {
					r.Reason = wxcampaign.ReasonWeChat43101
				}
				if n, err := db.FinishSends(ctx, store.Finish{At: t0, Results: []store.Result{r}}); err != nil || n != 1 {
					t.Fatalf("%d: FinishSends %d, %v", i, n, err)
				}
			}
			second := capReq{Ref: openid + "-2", OpenID: openid, TemplateID: "T", Limits: []store.Limit{ut}}
			chk, _, err := db.CheckCaps(ctx, t0.Add(time.Minute), creqs([]capReq{second}))
			if err != nil {
				t.Fatal(err)
			}
			got := ct.take(t0.Add(time.Minute), second)
			if capped := got[0] != ""; capped != c.capped || (capText(chk)[0] != "") != c.capped {
				t.Errorf("%s retain=%v: second send %q, CheckCaps %q, want capped=%v", c.outcome, c.retain, got[0], capText(chk)[0], c.capped)
			}
		}
	})
}

// TestCapsMigration15: before 00015 a failed row kept its scopes and the
// counts filtered on status; after it the failed row's scopes are 0 and a
// row in flight without inflight_grant is a send in doubt (unknown); the
// sent row still counts; 00015 migrates down and up again.
func TestCapsMigration15(t *testing.T) {
	ut := []store.Limit{{Scope: store.ScopeUserTemplate, Max: 1, Window: time.Hour}}
	eachDriver(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		p := migrations(t, db)
		if _, err := p.DownTo(ctx, 14); err != nil {
			t.Fatalf("down to 14: %v", err)
		}
		ts := t0.Format("2006-01-02 15:04:05.000000")
		for _, r := range []struct {
			grant          int
			openid, status string
			inflight       any
		}{{1, "failed", "failed", nil}, {2, "sent", "sent", nil}, {3, "doubt", "inflight", nil}} {
			if _, err := db.SQLX().ExecContext(ctx, db.SQLX().Rebind("INSERT INTO send_log (campaign, occurrence, grant_id, openid, template_id, holder, status, token, started_at, scopes, inflight_grant) VALUES ('c', ?, ?, ?, 'T', 'h', ?, 'tok', ?, 1, ?)"),
				ts, r.grant, r.openid, r.status, ts, r.inflight); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := db.Migrate(ctx); err != nil {
			t.Fatalf("up: %v", err)
		}
		chk, _, err := db.CheckCaps(ctx, t0.Add(time.Minute), []store.CapRequest{
			{OpenID: "failed", TemplateID: "T", Limits: ut}, {OpenID: "sent", TemplateID: "T", Limits: ut}, {OpenID: "doubt", TemplateID: "T", Limits: ut}})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := capText(chk), []string{"", "capped: user_template 1/1h", "capped: user_template 1/1h"}; !slices.Equal(got, want) {
			t.Errorf("after 00015: %q, want %q", got, want)
		}
		var status string
		if err := db.SQLX().GetContext(ctx, &status, "SELECT status FROM send_log WHERE grant_id = 3"); err != nil || status != "unknown" {
			t.Errorf("row in flight without inflight_grant: %q (%v), want unknown", status, err)
		}
		if _, err := p.DownTo(ctx, 14); err != nil {
			t.Fatalf("down to 14 again: %v", err)
		}
		if _, err := db.Migrate(ctx); err != nil {
			t.Fatalf("up again: %v", err)
		}
	})
}

// TestCapStripesExist: on MySQL the 1,024 stripe lock rows exist after
// migration 00016, in the form the takes lock them: takes of 64 new users
// create no lock row.
func TestCapStripesExist(t *testing.T) {
	eachDriver(t, func(t *testing.T, db *store.DB) {
		if db.Driver() != store.MySQL {
			t.Skip("SQLite takes no lock rows")
		}
		ctx := context.Background()
		count := func() int {
			var n int
			if err := db.SQLX().GetContext(ctx, &n, "SELECT COUNT(*) FROM cap_keys WHERE scope_key LIKE 'u#%'"); err != nil {
				t.Fatal(err)
			}
			return n
		}
		if n := count(); n != 1024 {
			t.Fatalf("%d stripe rows, want 1024", n)
		}
		ct := newCapTaker(t, db)
		ut := []store.Limit{{Scope: store.ScopeUserTemplate, Max: 1, Window: time.Hour}}
		var reqs []capReq
		for i := range 64 {
			reqs = append(reqs, capReq{Ref: fmt.Sprint("stripe-", i), OpenID: fmt.Sprint("oStripe", i), TemplateID: "T", Limits: ut})
		}
		for i, got := range ct.take(t0, reqs...) {
			if got != "" {
				t.Fatalf("take %d: %q", i, got)
			}
		}
		if n := count(); n != 1024 {
			t.Errorf("%d stripe rows after the takes, want 1024 (a take created one: the migration's form differs)", n)
		}
	})
}

// TestCapsManyUsers: the counts of a group of 300 users (read in several
// statements of at most 128 keys) are each user's own.
func TestCapsManyUsers(t *testing.T) {
	ut := []store.Limit{{Scope: store.ScopeUserTemplate, Max: 2, Window: time.Hour}}
	eachDriver(t, func(t *testing.T, db *store.DB) {
		ct := newCapTaker(t, db)
		var reqs []capReq
		for i := range 300 {
			reqs = append(reqs, capReq{Ref: fmt.Sprint("many-", i), OpenID: fmt.Sprintf("oMany%03d", i), TemplateID: "T", Limits: ut})
		}
		// Every third user has one take before the check.
		var first []capReq
		for i := 0; i < len(reqs); i += 3 {
			first = append(first, reqs[i])
		}
		for i, got := range ct.take(t0, first...) {
			if got != "" {
				t.Fatalf("take %d: %q", i, got)
			}
		}
		_, usage, err := db.CheckCaps(context.Background(), t0.Add(time.Minute), creqs(reqs))
		if err != nil {
			t.Fatal(err)
		}
		for i, u := range usage {
			want := 0
			if i%3 == 0 {
				want = 1
			}
			if u[0].Used != want {
				t.Errorf("user %d: used %d, want %d", i, u[0].Used, want)
			}
		}
	})
}

// migrations is a goose provider of db's migrations, to move its schema to
// a version.
func migrations(t testing.TB, db *store.DB) *goose.Provider {
	t.Helper()
	dialect := goose.DialectSQLite3
	if db.Driver() == store.MySQL {
		dialect = goose.DialectMySQL
	}
	mfs, err := store.Migrations(db.Driver())
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(dialect, db.SQLX().DB, mfs, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	return p
}
