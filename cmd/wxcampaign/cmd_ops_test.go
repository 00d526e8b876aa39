package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wxcampaign/wxcampaign/store"
	"github.com/wxcampaign/wxcampaign/store/storetest"
	"github.com/wxcampaign/wxcampaign/wechat/wxsim"
)

func TestValidateDSTAndEmpty(t *testing.T) {
	dir := t.TempDir()
	camp := `name: ny-night
schedule: "30 2 * * *"
timezone: America/New_York
template: {id: tplNight, kind: one_time}
when: "true"
data: {thing1: '"hello"'}
`
	must(t, os.WriteFile(filepath.Join(dir, "ny.yaml"), []byte(camp), 0o644))
	code, out, errOut := run(t, nil, "validate", dir)
	if code != 0 || !strings.Contains(out, "ok: 1 campaign(s) valid") {
		t.Fatalf("validate: exit %d\n%s%s", code, out, errOut)
	}
	want := regexp.MustCompile(`ny\.yaml: warning: schedule "30 2 \* \* \*" in America/New_York: 20\d\d-03-\d\d 02:30 does not exist \(clocks go forward\): it runs at 03:00 EDT`)
	if !want.MatchString(errOut) {
		t.Errorf("no DST warning:\n%s", errOut)
	}
	// Shanghai has no DST: no warning.
	must(t, os.WriteFile(filepath.Join(dir, "ny.yaml"), []byte(strings.Replace(camp, "America/New_York", "Asia/Shanghai", 1)), 0o644))
	if code, _, errOut := run(t, nil, "validate", dir); code != 0 || errOut != "" {
		t.Errorf("Shanghai: exit %d, %q", code, errOut)
	}

	empty := t.TempDir()
	must(t, os.WriteFile(filepath.Join(empty, "README.md"), []byte("no campaigns here"), 0o644))
	code, out, errOut = run(t, nil, "validate", empty)
	if code != 1 || !strings.Contains(errOut, empty+": no campaign files") || strings.Contains(out, "ok") {
		t.Errorf("empty dir: exit %d\n%s%s", code, out, errOut)
	}
}

// startDaemon runs `run` with cfgPath until the test ends; it returns the
// base URL and the outputs.
func startDaemon(t *testing.T, env map[string]string, cfgPath string) (string, *syncBuffer, *syncBuffer, func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out, errb := &syncBuffer{}, &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"run", "--config", cfgPath, "--listen", "127.0.0.1:0"}, strings.NewReader(""), out, errb,
			func(k string) string { return env[k] })
	}()
	var once sync.Once
	code := 0
	stop := func() int {
		once.Do(func() {
			cancel()
			code = <-done
		})
		return code
	}
	t.Cleanup(func() { stop() })
	re := regexp.MustCompile(`listening on (http://\S+)`)
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			return m[1], out, errb, stop
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon did not start:\n%s\n%s", out, errb)
		}
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer test-api-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestDaemonEmptyReload: a SIGHUP with an empty campaigns directory keeps
// the current set, logs an error and counts it; with campaigns.allow_empty
// the set empties.
func TestDaemonEmptyReload(t *testing.T) {
	w := newWorld(t, storetest.SQLite(t))
	base, out, errb, stop := startDaemon(t, w.env, w.cfgPath)
	camp := filepath.Join(w.dir, "campaigns", "price-drop.yaml")
	must(t, os.Remove(camp))
	must(t, syscall.Kill(os.Getpid(), syscall.SIGHUP))
	waitUntil(t, "the refusal", func() bool { return strings.Contains(errb.String(), "holds no campaign file") })
	if !strings.Contains(errb.String(), "level=error") || strings.Contains(out.String(), "reloaded") {
		t.Errorf("refusal not logged as an error:\n%s\n%s", out, errb)
	}
	if !strings.Contains(get(t, base+"/v1/scenes/add_to_cart/templates"), "tplPriceDrop") {
		t.Errorf("the campaign was unscheduled")
	}
	if m := get(t, base+"/metrics"); !strings.Contains(m, `wxcampaign_campaign_reloads_total{result="empty"} 1`) {
		t.Errorf("metrics lack the refused reload")
	}
	if code := stop(); code != 0 {
		t.Fatalf("exit %d", code)
	}

	// Starting on an empty directory is refused too ...
	if code, _, errOut := run(t, w.env, "run", "--config", w.cfgPath, "--listen", "127.0.0.1:0"); code != 1 || !strings.Contains(errOut, "no campaign files") {
		t.Errorf("start on an empty dir: exit %d %s", code, errOut)
	}
	// ... unless allowed; then a reload to an empty set empties it.
	conf, _ := os.ReadFile(w.cfgPath)
	conf = regexp.MustCompile(`campaigns: ("[^"]+")`).ReplaceAll(conf, []byte(`campaigns: {dir: $1, allow_empty: true}`))
	must(t, os.WriteFile(w.cfgPath, conf, 0o644))
	must(t, os.WriteFile(camp, []byte(campaignYAML), 0o644))
	base, out, errb, _ = startDaemon(t, w.env, w.cfgPath)
	must(t, os.Remove(camp))
	must(t, syscall.Kill(os.Getpid(), syscall.SIGHUP))
	waitUntil(t, "the empty reload", func() bool { return strings.Contains(out.String(), "reloaded 0 campaign(s)") })
	if strings.Contains(get(t, base+"/v1/scenes/add_to_cart/templates"), "tplPriceDrop") {
		t.Errorf("allow_empty: the campaign is still served")
	}
	if !strings.Contains(errb.String(), "every campaign is unscheduled") {
		t.Errorf("the empty set is not logged:\n%s", errb)
	}
}

func TestPausesCmd(t *testing.T) {
	w := newWorld(t, storetest.SQLite(t))
	cfg, err := loadConfig(w.cfgPath, func(string) string { return "" }, 0)
	must(t, err)
	db, err := store.Open(context.Background(), cfg.Database)
	must(t, err)
	must(t, db.SetPause(context.Background(), "quota:wxtestapp", time.Now().Add(5*time.Hour), "45009: daily quota reached"))
	db.Close()
	code, out, errOut := run(t, w.env, "pauses", "list", "--config", w.cfgPath)
	if code != 0 || !regexp.MustCompile(`quota:wxtestapp\s+\S+\s+active\s+45009: daily quota reached`).MatchString(out) {
		t.Fatalf("list: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, _ := run(t, w.env, "pauses", "clear", "--config", w.cfgPath, "wxother"); code != 0 || !strings.Contains(out, "no pause for appid wxother") {
		t.Errorf("clear another appid: exit %d %s", code, out)
	}
	if code, out, _ := run(t, w.env, "pauses", "clear", "--config", w.cfgPath, "wxtestapp"); code != 0 || out != "cleared quota:wxtestapp\n" {
		t.Errorf("clear: exit %d %q", code, out)
	}
	if code, out, _ := run(t, w.env, "pauses", "list", "--config", w.cfgPath); code != 0 || out != "no pauses\n" {
		t.Errorf("list after clear: exit %d %q", code, out)
	}
}

func TestPruneCmd(t *testing.T) {
	w := newWorld(t, storetest.SQLite(t))
	for _, bad := range []string{"1h", "soon", "-3d"} {
		if code, _, errOut := run(t, w.env, "prune", "--config", w.cfgPath, "--before", bad); code != 2 {
			t.Errorf("--before %s: exit %d %s", bad, code, errOut)
		}
	}
	code, out, errOut := run(t, w.env, "prune", "--config", w.cfgPath, "--before", "90d")
	if code != 0 || !strings.Contains(out, "prune: deleted 0 rows") {
		t.Fatalf("prune: exit %d\n%s%s", code, out, errOut)
	}
}

// TestBackupRestoreCmd: `backup` while `send` runs writes a consistent
// store; after `restore` (refused while the store is open) and a lease's
// wait, `send` of the same occurrence resumes on it: every grant the backup
// recorded as sent is never sent again, those it holds in flight follow the
// ambiguous-send policy, the others are sent again (what a restore loses).
func TestBackupRestoreCmd(t *testing.T) {
	const n = 1500
	dir := t.TempDir()
	sim, err := wxsim.New(wxsim.Config{AppID: "wxtestapp", Secret: "s3cr3t", LooseCredits: true,
		Templates: []wxsim.TemplateDef{{ID: "tplBackup", Kind: "one_time", Keys: []string{"thing1"}}},
		Faults:    wxsim.Faults{Latency: 3 * time.Millisecond}})
	must(t, err)
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	cdir := filepath.Join(dir, "campaigns")
	must(t, os.MkdirAll(cdir, 0o755))
	camp := filepath.Join(cdir, "backup.yaml")
	must(t, os.WriteFile(camp, []byte("name: backup\nschedule: \"0 9 * * *\"\ntemplate: {id: tplBackup, kind: one_time}\nwhen: \"true\"\ndata: {thing1: '\"hello\"'}\nbatch_size: 50\n"), 0o644))
	dbPath := filepath.Join(dir, "wxcampaign.db")
	cfgPath := filepath.Join(dir, "wxcampaign.yaml")
	must(t, os.WriteFile(cfgPath, []byte(fmt.Sprintf("database: {driver: sqlite, dsn: %q}\nwechat: {base_url: %q, appid: wxtestapp, concurrency: 4, retry_base: 1ms}\ncampaigns: %q\nengine: {lease: 1s}\n",
		dbPath, srv.URL, cdir)), 0o644))
	env := map[string]string{envSecret: "s3cr3t"}
	var lines strings.Builder
	for i := range n {
		fmt.Fprintf(&lines, `{"openId":"u%d","agreeTemplateIds":["tplBackup"],"requestId":"r%d"}`+"\n", i, i)
	}
	grants := filepath.Join(dir, "grants.jsonl")
	must(t, os.WriteFile(grants, []byte(lines.String()), 0o644))
	if code, out, errOut := run(t, env, "grants", "import", "--config", cfgPath, grants); code != 0 {
		t.Fatalf("import: exit %d\n%s%s", code, out, errOut)
	}

	at := "2026-11-22T09:00:00+08:00"
	sent := make(chan int, 1)
	go func() {
		code, _, _ := run(t, env, "send", "--config", cfgPath, "--at", at, camp)
		sent <- code
	}()
	waitUntil(t, "sends", func() bool { return len(sim.Messages()) >= n/4 })
	file := filepath.Join(dir, "backup.db")
	code, out, errOut := run(t, env, "backup", "--config", cfgPath, file)
	if code != 0 || !strings.Contains(out, "backup: wrote "+file) {
		t.Fatalf("backup: exit %d\n%s%s", code, out, errOut)
	}
	if code := <-sent; code != 0 {
		t.Fatalf("send: exit %d", code)
	}
	if got := len(sim.Messages()); got != n {
		t.Fatalf("first send delivered %d, want %d", got, n)
	}

	// The restore is refused while a process has the store open.
	held, err := store.Open(context.Background(), store.Config{Driver: store.SQLite, DSN: dbPath})
	must(t, err)
	if code, _, errOut := run(t, env, "restore", "--config", cfgPath, file); code != 1 || !strings.Contains(errOut, "in use") {
		t.Errorf("restore while open: exit %d %s", code, errOut)
	}
	held.Close()
	code, out, errOut = run(t, env, "restore", "--config", cfgPath, file)
	if code != 0 || !strings.Contains(out, "restored from "+file) || !strings.Contains(out, ".before-restore-") {
		t.Fatalf("restore: exit %d\n%s%s", code, out, errOut)
	}

	db, err := store.Open(context.Background(), store.Config{Driver: store.SQLite, DSN: dbPath})
	must(t, err)
	var recorded, inflight []string
	must(t, db.SQLX().Select(&recorded, "SELECT openid FROM send_log WHERE status = 'sent'"))
	must(t, db.SQLX().Select(&inflight, "SELECT openid FROM send_log WHERE status = 'inflight'"))
	db.Close()
	if len(recorded) == 0 || len(recorded) >= n {
		t.Fatalf("the backup recorded %d sends of %d: not taken mid-send", len(recorded), n)
	}
	// Resume: the run's lease (1s) ends, the same occurrence resumes.
	time.Sleep(1500 * time.Millisecond)
	if code, out, errOut := run(t, env, "send", "--config", cfgPath, "--at", at, camp); code != 0 {
		t.Fatalf("resume: exit %d\n%s%s", code, out, errOut)
	}
	per := map[string]int{}
	for _, m := range sim.Messages() {
		per[m.ToUser]++
	}
	// Sent in the backup: never again. No row in the backup: sent again.
	// In flight in the backup: settled by the ambiguous-send policy
	// (consume: "unknown", not sent again).
	known := map[string]bool{}
	for _, u := range recorded {
		known[u] = true
		if per[u] != 1 {
			t.Errorf("%s, recorded sent in the backup, got %d messages", u, per[u])
		}
	}
	for _, u := range inflight {
		known[u] = true
		if per[u] != 1 {
			t.Errorf("%s, in flight in the backup (consume), got %d messages", u, per[u])
		}
	}
	again := 0
	for u, k := range per {
		if !known[u] {
			again++
			if k != 2 {
				t.Errorf("%s, unrecorded in the backup, got %d messages, want 2", u, k)
			}
		}
	}
	if len(per) != n || len(sim.Messages()) != n+again {
		t.Errorf("after resume: %d users, %d messages; want %d users, %d messages", len(per), len(sim.Messages()), n, n+again)
	}
	t.Logf("backup mid-send: %d of %d sends recorded sent, %d in flight; the resumed run sent %d again", len(recorded), n, len(inflight), again)
}

func TestOpsConfig(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		yaml, want string
	}{
		{"campaigns: {dir: x, allow_emtpy: true}\n", `c.yaml:1:12: campaigns: unknown key "allow_emtpy"`},
		{"retention: {keep: 1h}\n", "c.yaml:1:19: retention.keep: must be 0 (keep everything) or at least 24h0m0s"},
		{"retention: {keep: 720h, batch: -1}\n", "c.yaml:1:32: retention.batch: must be positive, got -1"},
	}
	for _, c := range cases {
		p := filepath.Join(dir, "c.yaml")
		must(t, os.WriteFile(p, []byte(c.yaml), 0o644))
		if _, err := loadConfig(p, func(string) string { return "" }, 0); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.yaml, err, c.want)
		}
	}
	p := filepath.Join(dir, "c.yaml")
	must(t, os.WriteFile(p, []byte("campaigns: {dir: camps, allow_empty: true}\nretention: {keep: 2160h}\n"), 0o644))
	cfg, err := loadConfig(p, func(string) string { return "" }, 0)
	if err != nil || cfg.Campaigns != "camps" || !cfg.CampaignsFile.AllowEmpty || cfg.Retention.Keep != 2160*time.Hour {
		t.Errorf("mapping: %+v %v", cfg, err)
	}
	must(t, os.WriteFile(p, []byte("campaigns: camps\n"), 0o644))
	if cfg, err := loadConfig(p, func(string) string { return "" }, 0); err != nil || cfg.Campaigns != "camps" || cfg.CampaignsFile.AllowEmpty {
		t.Errorf("string: %+v %v", cfg, err)
	}
	if cfg, err := loadConfig("", func(string) string { return "" }, 0); err != nil || cfg.Campaigns != "configs/campaigns" {
		t.Errorf("default: %q %v", cfg.Campaigns, err)
	}
}

// TestDaemonRetention: with retention.keep the daemon prunes on its own.
func TestDaemonRetention(t *testing.T) {
	w := newWorld(t, storetest.SQLite(t))
	cfg, err := loadConfig(w.cfgPath, func(string) string { return "" }, 0)
	must(t, err)
	db, err := store.Open(context.Background(), cfg.Database)
	must(t, err)
	defer db.Close()
	must(t, db.SetPause(context.Background(), "quota:old", time.Now().Add(-72*time.Hour), "45009"))
	conf, _ := os.ReadFile(w.cfgPath)
	must(t, os.WriteFile(w.cfgPath, append(conf, []byte("retention: {keep: 48h, interval: 200ms}\n")...), 0o644))
	_, _, errb, _ := startDaemon(t, w.env, w.cfgPath)
	waitUntil(t, "a prune", func() bool { return strings.Contains(errb.String(), "pruned history") })
	if ps, err := db.ListPauses(context.Background()); err != nil || len(ps) != 0 {
		t.Errorf("the old pause is still there: %+v %v", ps, err)
	}
}
