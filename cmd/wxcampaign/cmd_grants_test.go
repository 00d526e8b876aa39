package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/store"
	"github.com/wxcampaign/wxcampaign/store/storetest"
)

const promoYAML = `name: promo
schedule: "0 * * * *"
template: {id: T-promo, kind: one_time}
when: "true"
data: {thing1: '"hi"'}
holdout: 5%
conversion:
  query: SELECT openid, created_at AS at FROM orders WHERE openid IN (:openids)
  window: 7d
`

const plainYAML = `name: plain
schedule: "0 * * * *"
template: {id: T-plain, kind: one_time}
when: "true"
data: {thing1: '"hi"'}
`

// TestGrantsStatsReport seeds a ledger and runs grants show, stats
// subscriptions and report on every driver.
func TestGrantsStatsReport(t *testing.T) {
	for name, mk := range drivers(t) {
		t.Run(name, func(t *testing.T) {
			cfg := mk(t)
			dir := t.TempDir()
			cdir := filepath.Join(dir, "campaigns")
			must(t, os.MkdirAll(cdir, 0o755))
			must(t, os.WriteFile(filepath.Join(cdir, "promo.yaml"), []byte(promoYAML), 0o644))
			must(t, os.WriteFile(filepath.Join(cdir, "plain.yaml"), []byte(plainYAML), 0o644))
			cfgPath := filepath.Join(dir, "wxcampaign.yaml")
			must(t, os.WriteFile(cfgPath, []byte(fmt.Sprintf("database: {driver: %s, dsn: %q}\ncampaigns: %q\ntimezone: Asia/Shanghai\n", cfg.Driver, cfg.DSN, cdir)), 0o644))
			db := storetest.Open(t, cfg)
			ctx := context.Background()
			// Shanghai 2025-03-01 10:00.
			t0 := time.Date(2025, 3, 1, 2, 0, 0, 0, time.UTC)
			for i, r := range []wxcampaign.SubscriptionResult{
				{OpenID: "u1", Scene: "cart", AgreeTemplateIDs: []string{"T-promo"}, RequestID: "a"},
				{OpenID: "u1", Scene: "cart", AgreeTemplateIDs: []string{"T-promo"}, RejectTemplateIDs: []string{"T-plain"}, RequestID: "b"},
				{OpenID: "u2", Scene: "cart", AgreeTemplateIDs: []string{"T-promo"}, RequestID: "c"},
			} {
				if _, err := db.RecordSubscription(ctx, r, t0.Add(time.Duration(i)*time.Minute)); err != nil {
					t.Fatal(err)
				}
			}
			gs, err := db.ListAvailable(ctx, "T-promo", 0, 10, t0)
			if err != nil || len(gs) != 3 {
				t.Fatalf("grants: %v, %v", gs, err)
			}
			sentAt := t0.Add(time.Hour)
			if _, err := db.BeginSends(ctx, store.Mark{At: sentAt, Attempts: []store.Attempt{{Campaign: "promo", Occurrence: sentAt, GrantID: gs[0].ID, OpenID: "u1", TemplateID: "T-promo", Holder: "h"}}}); err != nil {
				t.Fatal(err)
			}
			if _, err := db.FinishSends(ctx, store.Finish{At: sentAt, Results: []store.Result{{Campaign: "promo", Occurrence: sentAt, GrantID: gs[0].ID, Holder: "h", Outcome: wxcampaign.Sent, Reason: wxcampaign.ReasonOK, MsgID: 4242, Consume: true, Retain: true}}}); err != nil {
				t.Fatal(err)
			}
			must(t, db.RecordHoldouts(ctx, sentAt, []store.Holdout{{Campaign: "promo", Occurrence: sentAt, OpenID: "u2", TemplateID: "T-promo"}}))
			for _, q := range []string{
				"CREATE TABLE orders (openid VARCHAR(64), created_at DATETIME)",
				"INSERT INTO orders VALUES ('u1', '" + sentAt.Add(time.Hour).Format(time.DateTime) + "')",
			} {
				if _, err := db.SQLX().ExecContext(ctx, q); err != nil {
					t.Fatal(err)
				}
			}

			code, out, errOut := run(t, nil, "grants", "show", "--config", cfgPath, "u1")
			if code != 0 || !strings.Contains(out, "T-promo") || !strings.Contains(out, "2025-03-01 11:00 promo (sent)") || !strings.Contains(out, "T-plain") {
				t.Errorf("grants show: exit %d\n%s%s", code, out, errOut)
			}
			code, out, _ = run(t, nil, "grants", "show", "--config", cfgPath, "--format", "json", "u1")
			var shown struct {
				Templates []wxcampaign.Balance `json:"templates"`
			}
			if code != 0 || json.Unmarshal([]byte(out), &shown) != nil || len(shown.Templates) != 2 || shown.Templates[1].Credits != 1 || shown.Templates[1].LastSent.MsgID != 4242 {
				t.Errorf("grants show json: exit %d\n%s", code, out)
			}

			code, out, errOut = run(t, nil, "stats", "subscriptions", "--config", cfgPath, "--from", "2025-03-01", "--to", "2025-03-01")
			if code != 0 || !strings.Contains(out, "2025-03-01  result  cart   T-promo   3") || !strings.Contains(out, "2 row(s)") {
				t.Errorf("stats: exit %d\n%s%s", code, out, errOut)
			}

			code, out, errOut = run(t, nil, "report", "--config", cfgPath, "--from", "2025-03-01", "--to", "2025-03-01", "promo")
			if code != 0 || !strings.Contains(out, "sent      1      1            100.00%") || !strings.Contains(out, "held_out  1      0            0.00%") ||
				!strings.Contains(out, "difference: +100.00 points") || !strings.Contains(out, "credits spent: 1, 1.0 per extra conversion") {
				t.Errorf("report: exit %d\n%s%s", code, out, errOut)
			}
			code, out, _ = run(t, nil, "report", "--config", cfgPath, "--from", "2025-03-01", "--to", "2025-03-01", "--format", "json", "promo")
			var rep store.LiftReport
			if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || rep.Sent.Conversions != 1 || rep.HeldOut.Users != 1 {
				t.Errorf("report json: exit %d\n%s", code, out)
			}

			for _, c := range []struct {
				args []string
				code int
				msg  string
			}{
				{[]string{"report", "nope"}, 1, `no campaign "nope"`},
				{[]string{"report", "plain"}, 1, `campaign "plain" has no conversion`},
				{[]string{"report", "--from", "yesterday", "promo"}, 2, `from "yesterday": want a day as YYYY-MM-DD`},
				{[]string{"stats", "subscriptions", "--format", "xml"}, 2, `--format "xml": want table or json`},
				{[]string{"grants", "show", ""}, 1, "openid is required"},
			} {
				code, out, errOut := run(t, nil, append([]string{c.args[0], "--config", cfgPath}, c.args[1:]...)...)
				if code != c.code || !strings.Contains(errOut, c.msg) {
					t.Errorf("%v: exit %d, want %d with %q\n%s%s", c.args, code, c.code, c.msg, out, errOut)
				}
			}
		})
	}
}

// TestPreviewExplainsReserve: a preview of one campaign file applies the
// reserves of the configured campaigns directory and says why.
func TestPreviewExplainsReserve(t *testing.T) {
	cfg := storetest.SQLite(t)
	dir := t.TempDir()
	cdir := filepath.Join(dir, "campaigns")
	must(t, os.MkdirAll(cdir, 0o755))
	shared := "template: {id: T-shared, kind: one_time}\nwhen: \"true\"\ndata: {thing1: '\"hi\"'}\n"
	must(t, os.WriteFile(filepath.Join(cdir, "reminder.yaml"), []byte("name: reminder\nschedule: \"*/5 * * * *\"\npriority: 10\nreserve: 1\n"+shared), 0o644))
	promo := filepath.Join(cdir, "promo.yaml")
	must(t, os.WriteFile(promo, []byte("name: promo\nschedule: \"0 10 * * *\"\n"+shared), 0o644))
	cfgPath := filepath.Join(dir, "wxcampaign.yaml")
	must(t, os.WriteFile(cfgPath, []byte(fmt.Sprintf("database: {driver: %s, dsn: %q}\ncampaigns: %q\n", cfg.Driver, cfg.DSN, cdir)), 0o644))
	db := storetest.Open(t, cfg)
	for i, u := range []string{"one", "two", "two"} {
		if _, err := db.RecordSubscription(context.Background(), wxcampaign.SubscriptionResult{OpenID: u, AgreeTemplateIDs: []string{"T-shared"}, RequestID: fmt.Sprint("r", i)}, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errOut := run(t, nil, "preview", "--config", cfgPath, "--format", "json", promo)
	if code != 0 {
		t.Fatalf("preview: exit %d\n%s%s", code, out, errOut)
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var l map[string]any
		must(t, json.Unmarshal([]byte(line), &l))
		if id, ok := l["openid"].(string); ok && got[id] == "" {
			got[id] = fmt.Sprint(l["reason"], ": ", l["detail"])
		}
	}
	if got["one"] != "reserved_for_priority: 1 credit(s) left; the last 1 kept for reminder (higher priority)" || got["two"] != "ok: <nil>" {
		t.Errorf("preview = %v", got)
	}
}
