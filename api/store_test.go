package api_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/api"
	"github.com/wxcampaign/wxcampaign/store"
	"github.com/wxcampaign/wxcampaign/store/storetest"
	"github.com/wxcampaign/wxcampaign/wechat"
)

// Compile-time checks: the store records subscriptions and the WeChat
// client exchanges login codes, as the daemon wires them.
var (
	_ api.Subscriptions      = (*store.DB)(nil)
	_ api.BatchSubscriptions = (*store.DB)(nil) // group commit
	_ api.Sessions           = (*wechat.Client)(nil)
)

// setupStore serves the API over a real, migrated store.
func setupStore(t *testing.T, cfg store.Config) (*env, *store.DB) {
	t.Helper()
	db := storetest.Open(t, cfg)
	e := setup(t, func(_ *api.Config, d *api.Deps) { d.Subs = db })
	return e, db
}

// nasty are hostile strings: SQL injection, quotes, backslashes, LIKE
// wildcards, emoji (4-byte UTF-8), CJK, combining marks, control characters.
var nasty = []string{
	`'; DROP TABLE grants; --`,
	`" OR 1=1 -- 😀`,
	`Robert'); DELETE FROM subscription_requests WHERE ('1'='1`,
	`\'\\%_\x00`,
	"😀👍🏽🇨🇳 价格降了",
	"e\u0301 \t tab\nnewline",
	"1' UNION SELECT openid FROM grants #",
}

// printable drops the characters a scene may not have.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) && r != '/' {
			return r
		}
		return -1
	}, s)
}

type grantRow struct {
	OpenID     string  `db:"openid"`
	TemplateID string  `db:"template_id"`
	Kind       string  `db:"kind"`
	Scene      string  `db:"scene"`
	BizNo      string  `db:"biz_no"`
	Vars       *string `db:"vars"`
	RequestID  string  `db:"request_id"`
}

func TestStoreVerbatim(t *testing.T) {
	for _, d := range storetest.Drivers(t) {
		t.Run(d.Name, func(t *testing.T) {
			e, db := setupStore(t, d.Config)
			for i, s := range nasty {
				res := wxcampaign.SubscriptionResult{
					OpenID:            "o" + s,
					Scene:             "s" + truncate(printable(s), 60), // scenes take no control characters
					BusNo:             "b" + s,
					ExtraVariableMap:  map[string]any{s: s, "n": json.Number("12345678901234567890.5"), "nested": map[string]any{"k" + s: []any{s, true, nil}}},
					AgreeTemplateIDs:  []string{"T-price" + s, "T-long"},
					RejectTemplateIDs: []string{"R" + s},
					RequestID:         fmt.Sprintf("%d%s", i, s),
				}
				body, err := json.Marshal(res)
				if err != nil {
					t.Fatal(err)
				}
				r := e.do(t, "POST", "/v1/subscriptions", bearer(token), strings.NewReader(string(body)))
				if r.status != 201 || r.body["credits"] != 1.0 || r.body["longTerm"] != 1.0 || r.body["rejected"] != 1.0 {
					t.Fatalf("%q: %d %s, want 201 with 1 credit, 1 long-term, 1 rejected", s, r.status, r.raw)
				}

				var rows []grantRow
				if err := db.SQLX().Select(&rows, "SELECT openid, template_id, kind, scene, biz_no, vars, request_id FROM grants WHERE request_id = ? ORDER BY id", res.RequestID); err != nil {
					t.Fatal(err)
				}
				if len(rows) != 2 {
					t.Fatalf("%q: %d grant rows, want 2", s, len(rows))
				}
				for j, g := range rows {
					want := grantRow{OpenID: res.OpenID, TemplateID: res.AgreeTemplateIDs[j], Kind: string(catalog.KindOf(res.AgreeTemplateIDs[j])), Scene: res.Scene, BizNo: res.BusNo, RequestID: res.RequestID}
					got := g
					got.Vars = nil
					if got != want {
						t.Errorf("%q: stored %+v, want %+v", s, got, want)
					}
					if g.Vars == nil {
						t.Fatalf("%q: vars not stored", s)
					}
					var vars, sent map[string]any
					if err := json.Unmarshal([]byte(*g.Vars), &vars); err != nil {
						t.Fatalf("%q: stored vars %q: %v", s, *g.Vars, err)
					}
					_ = json.Unmarshal(body, &struct {
						V *map[string]any `json:"extraVariableMap"`
					}{&sent})
					if !reflect.DeepEqual(vars, sent) {
						t.Errorf("%q: vars %v, want %v", s, vars, sent)
					}
					if !strings.Contains(*g.Vars, "12345678901234567890.5") {
						t.Errorf("%q: the number was not stored exactly: %s", s, *g.Vars)
					}
				}
				var ev struct {
					OpenID     string `db:"openid"`
					TemplateID string `db:"template_id"`
					Result     string `db:"result"`
				}
				if err := db.SQLX().Get(&ev, "SELECT openid, template_id, result FROM subscription_events WHERE request_id = ?", res.RequestID); err != nil {
					t.Fatalf("%q: reject event: %v", s, err)
				}
				if ev.OpenID != res.OpenID || ev.TemplateID != res.RejectTemplateIDs[0] || ev.Result != store.EventReject {
					t.Errorf("%q: event %+v", s, ev)
				}

				// The same requestId again: nothing new.
				r = e.do(t, "POST", "/v1/subscriptions", bearer(token), strings.NewReader(string(body)))
				if r.status != 200 || r.body["duplicate"] != true || r.body["credits"] != 0.0 {
					t.Fatalf("%q duplicate: %d %s", s, r.status, r.raw)
				}
			}
			var n int
			if err := db.SQLX().Get(&n, "SELECT COUNT(*) FROM grants"); err != nil {
				t.Fatalf("grants table after the injections: %v", err)
			}
			if n != 2*len(nasty) {
				t.Errorf("%d grants, want %d", n, 2*len(nasty))
			}
			if err := db.SQLX().Get(&n, "SELECT COUNT(*) FROM subscription_requests"); err != nil || n != len(nasty) {
				t.Errorf("subscription_requests: %d rows (%v), want %d", n, err, len(nasty))
			}
			var at any
			if err := db.SQLX().Get(&at, "SELECT MIN(granted_at) FROM grants"); err != nil {
				t.Fatal(err)
			}
			switch v := at.(type) {
			case time.Time:
				if !v.Equal(fixedNow) {
					t.Errorf("granted_at %v, want the injected clock %v", v, fixedNow)
				}
			case string, []byte:
				if s := fmt.Sprintf("%s", v); !strings.HasPrefix(strings.Replace(s, "T", " ", 1), "2025-03-01 12:00:00") {
					t.Errorf("granted_at %q, want the injected clock %v", s, fixedNow)
				}
			default:
				t.Errorf("granted_at scanned as %T", at)
			}
		})
	}
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	for len(s) > n {
		r := []rune(s)
		s = string(r[:len(r)-1])
	}
	return s
}
