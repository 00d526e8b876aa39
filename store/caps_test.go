package store_test

import (
	"context"
	"fmt"
	"slices"
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
	req := func(ref, openid, tmpl string, l ...store.Limit) store.CapRequest {
		return store.CapRequest{Ref: ref, OpenID: openid, TemplateID: tmpl, Limits: l}
	}
	steps := []struct {
		name string
		reqs []store.CapRequest
		want []string
		used [][]int // per request, per limit (CheckCaps before the take)
	}{
		{"user_template only does not count for user",
			[]store.CapRequest{req("1", "a", "T1", ut), req("2", "a", "T2", ut), req("3", "a", "T3", u), req("4", "a", "T1", ut, u)},
			[]string{"", "", "", "capped: user_template 1/1h"},
			[][]int{{0}, {0}, {0}, {1, 1}}},
		{"user only does not count for user_template",
			[]store.CapRequest{req("5", "b", "T1", u), req("6", "b", "T1", ut, u), req("7", "b", "T2", u)},
			[]string{"", "", "capped: user 2/1h"},
			[][]int{{0}, {0, 1}, {2}}},
		{"template across users, only template takes count",
			[]store.CapRequest{req("8", "c", "T9", tp), req("9", "d", "T9", ut), req("10", "e", "T9", tp, ut), req("11", "f", "T9", tp)},
			[]string{"", "", "", "capped: template 2/1h"},
			[][]int{{0}, {0}, {1, 0}, {2}}},
	}
	eachDriver(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		for _, s := range steps {
			chkL, usage, err := db.CheckCaps(ctx, t0, s.reqs)
			if err != nil {
				t.Fatal(err)
			}
			chk, _ := capText(chkL, nil)
			got := must[[]string](t)(capText(db.TakeCaps(ctx, t0, s.reqs)))
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
		// One row per take, whatever its number of limits.
		var n int
		if err := db.SQLX().GetContext(ctx, &n, "SELECT COUNT(*) FROM cap_takes"); err != nil || n != 8 {
			t.Errorf("cap_takes rows = %d (%v), want 8", n, err)
		}
		// Outside the window nothing counts.
		if got := must[[]string](t)(capText(db.TakeCaps(ctx, t0.Add(h), []store.CapRequest{req("12", "a", "T1", ut, u), req("13", "f", "T9", tp)}))); !slices.Equal(got, []string{"", ""}) {
			t.Errorf("after the window: %q", got)
		}
	})
}

// TestCapsMigration06: takes written by the old schema (one row per scope
// key) count the same after migration 00006, and 00006 migrates down.
func TestCapsMigration06(t *testing.T) {
	h := time.Hour
	lim := []store.Limit{{Scope: store.ScopeUserTemplate, Max: 1, Window: h}, {Scope: store.ScopeUser, Max: 3, Window: h}, {Scope: store.ScopeTemplate, Max: 2, Window: h}}
	eachDriver(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		take := func(ref, openid, tmpl string) string {
			return must[[]string](t)(capText(db.TakeCaps(ctx, t0, []store.CapRequest{{Ref: ref, OpenID: openid, TemplateID: tmpl, Limits: lim}})))[0]
		}
		if r := take("1", "a", "T1"); r != "" {
			t.Fatalf("first take: %q", r)
		}
		dialect := goose.DialectSQLite3
		if db.Driver() == store.MySQL {
			dialect = goose.DialectMySQL
		}
		mfs, _ := store.Migrations(db.Driver())
		p, err := goose.NewProvider(dialect, db.SQLX().DB, mfs, goose.WithDisableGlobalRegistry(true))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.DownTo(ctx, 5); err != nil {
			t.Fatalf("down to 5: %v", err)
		}
		var keys []string
		if err := db.SQLX().SelectContext(ctx, &keys, "SELECT scope_key FROM cap_takes ORDER BY scope_key"); err != nil {
			t.Fatal(err)
		}
		if want := []string{"t|T1", "ut|a|T1", "u|a"}; !slices.Equal(keys, want) {
			t.Errorf("old rows after down = %q, want %q", keys, want)
		}
		// An old-schema take of user a on T2 (user and template T2 only).
		ts := t0.Format("2006-01-02 15:04:05.000000")
		for _, k := range []string{"u|a", "t|T2"} {
			if _, err := db.SQLX().ExecContext(ctx, db.SQLX().Rebind("INSERT INTO cap_takes (scope_key, ref, taken_at) VALUES (?, ?, ?)"), k, "old", ts); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := db.Migrate(ctx); err != nil {
			t.Fatalf("up: %v", err)
		}
		_, usage, err := db.CheckCaps(ctx, t0, []store.CapRequest{{Ref: "x", OpenID: "a", TemplateID: "T1", Limits: lim}, {Ref: "y", OpenID: "b", TemplateID: "T2", Limits: lim}})
		if err != nil {
			t.Fatal(err)
		}
		got := [][]int{{usage[0][0].Used, usage[0][1].Used, usage[0][2].Used}, {usage[1][0].Used, usage[1][1].Used, usage[1][2].Used}}
		if want := [][]int{{1, 2, 1}, {0, 0, 1}}; !slices.EqualFunc(got, want, slices.Equal) {
			t.Errorf("usage after migration = %v, want %v", got, want)
		}
		if err := db.ReturnCaps(ctx, []string{"old"}); err != nil {
			t.Fatal(err)
		}
		if r := take("2", "a", "T2"); r != "" {
			t.Errorf("after returning the old take: %q", r)
		}
	})
}

// capText writes TakeCaps' and CheckCaps' answers as "" (taken) or
// "capped: <limit>", with the reason code checked against the scope.
func capText(ls []*store.Limit, err error) ([]string, error) {
	out := make([]string, len(ls))
	for i, l := range ls {
		if l != nil {
			out[i] = "capped: " + l.String()
			if want := wxcampaign.Reason("capped_" + l.Scope); l.Reason() != want {
				return nil, fmt.Errorf("limit %s: reason %s, want %s", l, l.Reason(), want)
			}
		}
	}
	return out, err
}
