package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	wx "github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/store"
)

// afterGrants is a time for --at after the grants a test imports now
// (preview --at does not see grants made later) and outside the test
// campaign's quiet hours: 10:00 in Shanghai tomorrow.
func afterGrants() string {
	sh := time.FixedZone("CST", 8*3600)
	y, m, d := time.Now().In(sh).Date()
	return time.Date(y, m, d+1, 10, 0, 0, 0, sh).Format(time.RFC3339)
}

// TestPreviewCreatesNoFile is issue 12 item 15: a preview in a fresh
// folder creates no database file; the missing file is a clear error.
func TestPreviewCreatesNoFile(t *testing.T) {
	dir := t.TempDir()
	camp := filepath.Join(dir, "c.yaml")
	must(t, os.WriteFile(camp, []byte(campaignYAML), 0o644))
	cfg := filepath.Join(dir, "wxcampaign.yaml")
	must(t, os.WriteFile(cfg, []byte("database: {dsn: "+filepath.Join(dir, "wxcampaign.db")+"}\n"), 0o644))
	before, _ := os.ReadDir(dir)
	code, out, errOut := run(t, nil, "preview", "--config", cfg, camp)
	if code != 1 || !strings.Contains(errOut, "does not exist") || !strings.Contains(errOut, "creates no file") {
		t.Errorf("exit %d\n%s\n%s\nwant exit 1 saying the database does not exist", code, out, errOut)
	}
	after, _ := os.ReadDir(dir)
	if len(after) != len(before) {
		t.Errorf("preview created files: %v (before %v)", after, before)
	}
}

// TestPreviewAtIsAPointInTimeForGrants is issue 12 item 15: preview --at T
// does not look at grants made after T.
func TestPreviewAtIsAPointInTimeForGrants(t *testing.T) {
	for name, mk := range drivers(t) {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t, mk(t))
			ctx := context.Background()
			cfg, err := loadConfig(w.cfgPath, func(k string) string { return w.env[k] }, 0)
			must(t, err)
			db, err := store.Open(ctx, cfg.Database)
			must(t, err)
			defer db.Close()
			at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.FixedZone("CST", 8*3600))
			for i, g := range []struct {
				openid string
				when   time.Time
			}{{"before", at.Add(-time.Hour)}, {"at", at}, {"after", at.Add(time.Hour)}} {
				r := wx.SubscriptionResult{OpenID: g.openid, Scene: "add_to_cart", BusNo: "p1", ExtraVariableMap: map[string]any{"saved_price": "15"},
					AgreeTemplateIDs: []string{"tplPriceDrop0000000000000000000000000000001"}, RequestID: "r" + string(rune('0'+i))}
				if _, err := db.RecordSubscription(ctx, r, g.when); err != nil {
					t.Fatal(err)
				}
			}
			camp := filepath.Join(w.dir, "campaigns", "price-drop.yaml")
			code, out, errOut := run(t, w.env, "preview", "--config", w.cfgPath, "--format", "json", "--at", at.Format(time.RFC3339), camp)
			if code != 0 {
				t.Fatalf("preview: exit %d\n%s\n%s", code, out, errOut)
			}
			var seen []string
			sc := bufio.NewScanner(strings.NewReader(out))
			for sc.Scan() {
				var line map[string]any
				must(t, json.Unmarshal(sc.Bytes(), &line))
				if id, ok := line["openid"].(string); ok {
					seen = append(seen, id)
				}
			}
			slices.Sort(seen)
			if strings.Join(seen, ",") != "at,before" {
				t.Errorf("preview --at looked at %v, want the grants made by then: [at before]", seen)
			}
			// Without --at, now: every grant.
			code, out, _ = run(t, w.env, "preview", "--config", w.cfgPath, "--format", "json", camp)
			if code != 0 || strings.Count(out, `"openid"`) != 3 {
				t.Errorf("preview now: exit %d, %d grants, want 3\n%s", code, strings.Count(out, `"openid"`), out)
			}
		})
	}
}
