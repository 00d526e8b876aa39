package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wxcampaign/wxcampaign/store"
	"github.com/wxcampaign/wxcampaign/store/storetest"
)

// TestRunsRetry: a run stopped by a missing fact table is listed, shown and,
// once the table exists, retried from its checkpoint (issue 12 item 5); a
// second retry of the finished run is refused.
func TestRunsRetry(t *testing.T) {
	for name, mk := range drivers(t) {
		t.Run(name, func(t *testing.T) {
			cfg := mk(t)
			w := newWorld(t, cfg)
			db := openDB(t, cfg)
			ctx := context.Background()
			lines := `{"openId":"u1","scene":"add_to_cart","busNo":"p1","extraVariableMap":{"saved_price":"15.00"},"agreeTemplateIds":["tplPriceDrop0000000000000000000000000000001"],"rejectTemplateIds":[],"requestId":"r1"}
{"openId":"u2","scene":"add_to_cart","busNo":"p1","extraVariableMap":{"saved_price":"20.00"},"agreeTemplateIds":["tplPriceDrop0000000000000000000000000000001"],"rejectTemplateIds":[],"requestId":"r2"}
`
			file := w.dir + "/grants.jsonl"
			must(t, writeFile(file, lines))
			if code, out, errOut := run(t, w.env, "grants", "import", "--config", w.cfgPath, file); code != 0 {
				t.Fatalf("import: %d %s %s", code, out, errOut)
			}
			w.sim.AddCredits("u1", "tplPriceDrop0000000000000000000000000000001", 1)
			w.sim.AddCredits("u2", "tplPriceDrop0000000000000000000000000000001", 1)
			_, err := db.SQLX().ExecContext(ctx, "ALTER TABLE products RENAME TO products_gone")
			must(t, err)
			camp := w.dir + "/campaigns/price-drop.yaml"
			at := "2026-11-22T10:00:00+08:00"
			code, out, errOut := run(t, w.env, "send", "--config", w.cfgPath, "--at", at, camp)
			if code != 1 || !strings.Contains(errOut, "products") {
				t.Fatalf("send without the table: exit %d\n%s\n%s", code, out, errOut)
			}
			// Today's defect: the occurrence can never run again.
			if code, _, errOut := run(t, w.env, "send", "--config", w.cfgPath, "--at", at, camp); code != 0 || !strings.Contains(errOut, "already ran") {
				t.Fatalf("second send: exit %d %s", code, errOut)
			}
			code, out, errOut = run(t, w.env, "runs", "list", "--config", w.cfgPath, "--format", "json")
			var runs []store.Run
			if code != 0 || json.Unmarshal([]byte(out), &runs) != nil || len(runs) != 1 || runs[0].Summary != "stopped" {
				t.Fatalf("runs list: exit %d\n%s\n%s", code, out, errOut)
			}
			id := strconv.FormatInt(runs[0].ID, 10)
			rep := runs[0].Report
			if rep == nil || rep.Attempts != 1 || len(rep.Errors) != 1 || !strings.Contains(rep.Errors[0], "products") || len(rep.Replicas) != 1 {
				t.Fatalf("report of the stopped run: %+v", rep)
			}
			code, out, _ = run(t, w.env, "runs", "show", "--config", w.cfgPath, id)
			for _, want := range []string{"status stopped", "checkpoint 0", "runs retry " + id, "error: ", "products"} {
				if code != 0 || !strings.Contains(out, want) {
					t.Errorf("runs show lacks %q (exit %d):\n%s", want, code, out)
				}
			}

			_, err = db.SQLX().ExecContext(ctx, "ALTER TABLE products_gone RENAME TO products")
			must(t, err)
			code, out, errOut = run(t, w.env, "runs", "retry", "--config", w.cfgPath, id)
			if code != 0 || !strings.Contains(out, "sent 2") || len(w.sim.Messages()) != 2 {
				t.Fatalf("retry: exit %d, %d messages\n%s\n%s", code, len(w.sim.Messages()), out, errOut)
			}
			code, out, _ = run(t, w.env, "runs", "show", "--config", w.cfgPath, id)
			for _, want := range []string{"status done", "attempts 2", "sent 2", "run " + id + " finished (done)"} {
				if code != 0 || !strings.Contains(out, want) {
					t.Errorf("runs show after retry lacks %q:\n%s", want, out)
				}
			}
			if code, _, errOut := run(t, w.env, "runs", "retry", "--config", w.cfgPath, id); code != 1 || !strings.Contains(errOut, "nothing to retry") || len(w.sim.Messages()) != 2 {
				t.Fatalf("retry of a done run: exit %d %s", code, errOut)
			}
			if code, _, errOut := run(t, w.env, "runs", "show", "--config", w.cfgPath, "x"); code != 2 || !strings.Contains(errOut, `run id "x"`) {
				t.Errorf("runs show x: exit %d %s", code, errOut)
			}
			if code, _, errOut := run(t, w.env, "runs", "show", "--config", w.cfgPath, "999"); code != 1 || !strings.Contains(errOut, "run 999") {
				t.Errorf("runs show 999: exit %d %s", code, errOut)
			}
		})
	}
}

func TestCampaignsPauseResume(t *testing.T) {
	for name, mk := range drivers(t) {
		t.Run(name, func(t *testing.T) {
			cfg := mk(t)
			w := newWorld(t, cfg)
			env := map[string]string{"USER": "alice"}
			for k, v := range w.env {
				env[k] = v
			}
			steps := []struct {
				args []string
				want string
			}{
				{[]string{"campaigns", "pause", "--reason", "stock count", "price-drop"}, "paused price-drop"},
				{[]string{"campaigns", "pause", "price-drop"}, "already paused"},
				{[]string{"campaigns", "resume", "price-drop"}, "resumed price-drop"},
				{[]string{"campaigns", "resume", "price-drop"}, "was not paused"},
			}
			db := openDB(t, cfg)
			for i, s := range steps {
				code, out, errOut := run(t, env, append(s.args, "--config", w.cfgPath)...)
				if code != 0 || !strings.Contains(out, s.want) {
					t.Fatalf("%v: exit %d %q %s", s.args, code, out, errOut)
				}
				if i == 0 {
					p, ok, err := db.CampaignPaused(context.Background(), "price-drop")
					if err != nil || !ok || p.PausedBy != "cli:alice" || p.Reason != "stock count" || time.Since(p.PausedAt) > time.Minute {
						t.Fatalf("stored pause = %+v %v %v", p, ok, err)
					}
				}
			}
			audit, err := db.AuditPage(context.Background(), 0, 10)
			if err != nil || len(audit) != 4 || audit[0].Actor != "cli:alice" {
				t.Fatalf("audit = %+v %v", audit, err)
			}
		})
	}
}

func openDB(t *testing.T, cfg store.Config) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func writeFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o644) }

func TestPreviewHTML(t *testing.T) {
	w := newWorld(t, storetest.SQLite(t))
	line := `{"openId":"u1","scene":"add_to_cart","busNo":"p1","extraVariableMap":{"saved_price":"15.00"},"agreeTemplateIds":["tplPriceDrop0000000000000000000000000000001"],"rejectTemplateIds":[],"requestId":"r1"}` + "\n" +
		`{"openId":"u2","scene":"add_to_cart","busNo":"p2","extraVariableMap":{"saved_price":"15.00"},"agreeTemplateIds":["tplPriceDrop0000000000000000000000000000001"],"rejectTemplateIds":[],"requestId":"r2"}` + "\n"
	file := w.dir + "/g.jsonl"
	must(t, writeFile(file, line))
	if code, _, errOut := run(t, w.env, "grants", "import", "--config", w.cfgPath, file); code != 0 {
		t.Fatal(errOut)
	}
	out := w.dir + "/preview.html"
	code, _, errOut := run(t, w.env, "preview", "--config", w.cfgPath, "--at", afterGrants(), "--html", out, w.dir+"/campaigns/price-drop.yaml")
	if code != 0 {
		t.Fatalf("preview --html: exit %d %s", code, errOut)
	}
	b, err := os.ReadFile(out)
	must(t, err)
	page := string(b)
	for _, want := range []string{`class="card"`, "咖啡豆", "进入小程序查看", "pages/goods/detail?id=p1", "rule_false", "<style>"} {
		if !strings.Contains(page, want) {
			t.Errorf("preview.html lacks %q", want)
		}
	}
	for _, bad := range []string{"<script", "http://", "https://", `src=`, `<link`} {
		if strings.Contains(page, bad) {
			t.Errorf("preview.html is not self-contained: has %q", bad)
		}
	}
}

func TestConsoleTokensConfig(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, yaml, env, want string
	}{
		{"bad role", "console:\n  tokens:\n    - {name: al, token: secret-token-0123456789, role: admin}\n", "", `console.tokens[0] (al): role "admin": want viewer or operator`},
		{"short", "console:\n  tokens:\n    - {name: al, token: short, role: viewer}\n", "", "console.tokens[0] (al): token must be at least 16 characters"},
		{"twice", "", "al:viewer:secret-token-0123456789,al:operator:secret-token-9876543210", `console.tokens[1]: name "al" is used twice`},
		{"env shape", "", "al-secret-token-0123456789", "console.tokens: item 1: want name:role:token (from WXC_CONSOLE_TOKENS)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".yaml")
			must(t, os.WriteFile(path, []byte("database: {driver: sqlite, dsn: "+filepath.Join(dir, "x.db")+"}\n"+c.yaml), 0o644))
			code, _, errOut := run(t, map[string]string{"WXC_CONSOLE_TOKENS": c.env}, "runs", "list", "--config", path)
			if code != 2 || !strings.Contains(errOut, c.want) {
				t.Fatalf("exit %d, %q; want 2 and %q", code, errOut, c.want)
			}
			if strings.Contains(errOut, "secret-token") {
				t.Error("the error shows a token")
			}
			if _, err := os.Stat(filepath.Join(dir, "x.db")); err == nil {
				t.Error("the store was opened before the config was checked")
			}
		})
	}
}
