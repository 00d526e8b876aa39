package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxcampaign/wxcampaign/store"
	"github.com/wxcampaign/wxcampaign/wechat/wxsim"
)

// TestValidateTemplates: validate --templates checks the campaigns against a
// template list in the simulator's format, printing file:line:col: message
// and exiting 1 on a mismatch.
func TestValidateTemplates(t *testing.T) {
	root := repoRoot(t)
	dir := t.TempDir()
	write := func(name, content string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	camp := write("ship.yaml", `name: ship
schedule: "@every 5m"
template:
  id: T-SHIP
  kind: one_time
when: "true"
data:
  thing1: grant.biz_no
  enum2: grant.scene
enums:
  enum2: [shipped, lost]
`)
	broken := write("broken.yaml", "name: broken\n")
	good := write("good.yaml", `templates:
  - {id: T-SHIP, keys: [thing1, enum2], enums: {enum2: [shipped, delivered, lost]}}
`)
	wrong := write("wrong.yaml", `- id: T-SHIP
  kind: long_term
  keys: [thing1, enum2, time3]
  enums: {enum2: [shipped, delivered]}
`)
	examples := filepath.Join(root, "configs/templates.yaml")
	tests := []struct {
		name       string
		args       []string
		code       int
		wantOut    string   // substring of stdout
		wantErr    []string // exact stderr lines
		errContain string   // substring of stderr, when the lines are not listed
	}{
		{"examples match", []string{"--templates", examples, filepath.Join(root, "configs/campaigns")}, 0,
			"ok: 4 campaign(s) valid, templates match", nil, ""},
		{"default kind is one_time", []string{"--templates", good, camp}, 0, "ok: 1 campaign(s) valid", nil, ""},
		{"without --templates nothing is checked", []string{camp}, 0, "ok: 1 campaign(s) valid\n", nil, ""},
		{"mismatch", []string{"--templates", wrong, camp}, 1, "", []string{
			camp + ":5:9: template.kind is one_time, but template T-SHIP is long_term in the account's template list",
			camp + ":7:1: data: missing key time3 of template T-SHIP (its keys: thing1, enum2, time3)",
			camp + `:11:20: enums.enum2: "lost" is not an enum value of template T-SHIP (its values: shipped, delivered)`,
		}, ""},
		{"unknown template", []string{"--templates", examples, camp}, 1, "", []string{
			camp + ":4:7: template T-SHIP is not in the account's template list",
		}, ""},
		{"load errors and template errors together", []string{"--templates", examples, broken, camp}, 1, "", nil,
			camp + ":4:7: template T-SHIP is not in the account's template list"},
		{"unreadable templates file", []string{"--templates", filepath.Join(dir, "missing.yaml"), camp}, 1, "", nil,
			"wxcampaign: --templates: wxsim: load templates"},
		{"invalid templates file", []string{"--templates", write("bad.yaml", "- {id: X, keys: [colour1]}\n"), camp}, 1, "", nil,
			"--templates: wxsim: load templates"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := run(t, nil, append([]string{"validate"}, tt.args...)...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, out, errOut)
			}
			if !strings.Contains(out, tt.wantOut) {
				t.Errorf("stdout %q, want it to contain %q", out, tt.wantOut)
			}
			if tt.wantErr != nil {
				if got := strings.Split(strings.TrimRight(errOut, "\n"), "\n"); strings.Join(got, "\n") != strings.Join(tt.wantErr, "\n") {
					t.Errorf("stderr\n got %q\nwant %q", got, tt.wantErr)
				}
			}
			if !strings.Contains(errOut, tt.errContain) {
				t.Errorf("stderr %q, want it to contain %q", errOut, tt.errContain)
			}
			if tt.code == 0 && errOut != "" {
				t.Errorf("stderr on success: %q", errOut)
			}
		})
	}
}

// regWorld is a simulator serving the example templates plus test ones, a
// SQLite store and a config pointing at both; swap changes the templates the
// simulator lists.
type regWorld struct {
	dir, cfgPath string
	env          map[string]string
	handler      atomic.Pointer[http.Handler]
	sim          atomic.Pointer[wxsim.Server] // the simulator serving now
}

const regSecret = "s3cr3t-of-the-registry-test"

// shipTemplates are the test templates: T-SHIP (one-time, with an enum and
// a short_thing key) and T-LONG (long-term).
func shipTemplates(extraKey bool) []wxsim.TemplateDef {
	ship := wxsim.TemplateDef{ID: "T-SHIP", Title: "发货通知", Kind: "one_time",
		Keys:   []string{"thing1", "enum2", "short_thing3"},
		Labels: map[string]string{"thing1": "订单号", "enum2": "物流状态", "short_thing3": "备注"},
		Enums:  map[string][]string{"enum2": {"已发货", "已签收"}}}
	if extraKey {
		ship.Keys = append(ship.Keys, "time4")
	}
	long := ship
	long.ID, long.Title, long.Kind, long.Keys = "T-LONG", "提醒", "long_term", ship.Keys[:3]
	return []wxsim.TemplateDef{ship, long}
}

func newRegWorld(t *testing.T, extraConfig string) *regWorld {
	t.Helper()
	w := &regWorld{dir: t.TempDir(), env: map[string]string{envSecret: regSecret}}
	w.swap(t, false)
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) { (*w.handler.Load()).ServeHTTP(rw, r) }))
	t.Cleanup(srv.Close)
	must(t, os.MkdirAll(filepath.Join(w.dir, "campaigns"), 0o755))
	w.cfgPath = filepath.Join(w.dir, "wxcampaign.yaml")
	conf := fmt.Sprintf(`database: {driver: sqlite, dsn: %q}
wechat: {base_url: %q, appid: wxregapp, concurrency: 2, retry_base: 1ms}
campaigns: %q
http: {token: test-api-token}
%s`, filepath.Join(w.dir, "wxcampaign.db"), srv.URL, filepath.Join(w.dir, "campaigns"), extraConfig)
	must(t, os.WriteFile(w.cfgPath, []byte(conf), 0o644))
	return w
}

// swap makes the simulator list the example templates and the test ones;
// with extraKey T-SHIP has a fourth key.
func (w *regWorld) swap(t *testing.T, extraKey bool) {
	t.Helper()
	defs, err := wxsim.LoadTemplates(filepath.Join(repoRoot(t), "configs/templates.yaml"))
	must(t, err)
	sim, err := wxsim.New(wxsim.Config{AppID: "wxregapp", Secret: regSecret, LooseCredits: true, Templates: append(defs, shipTemplates(extraKey)...)})
	must(t, err)
	h := sim.Handler()
	w.sim.Store(sim)
	w.handler.Store(&h)
}

func (w *regWorld) write(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(w.dir, name)
	must(t, os.WriteFile(p, []byte(body), 0o644))
	return p
}

// TestTemplatesSyncList: `templates sync` stores the simulator's
// getTemplateList (titles, kinds, labels, enum values); `templates list`
// prints it as a table or JSON; a second sync changes nothing.
func TestTemplatesSyncList(t *testing.T) {
	w := newRegWorld(t, "")
	code, _, errOut := run(t, w.env, "templates", "list", "--config", w.cfgPath)
	if code != 1 || !strings.Contains(errOut, "no store at") {
		t.Errorf("list before any sync: exit %d %q", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(w.dir, "wxcampaign.db")); err == nil {
		t.Error("templates list created the store")
	}
	if code, out, errOut := run(t, w.env, "migrate", "--config", w.cfgPath); code != 0 {
		t.Fatalf("migrate: exit %d %s%s", code, out, errOut)
	}
	code, _, errOut = run(t, w.env, "templates", "list", "--config", w.cfgPath)
	if code != 1 || !strings.Contains(errOut, "no templates synced for wxregapp yet") {
		t.Errorf("list on a migrated store before any sync: exit %d %q", code, errOut)
	}
	code, out, errOut := run(t, w.env, "templates", "sync", "--config", w.cfgPath)
	if code != 0 || !strings.Contains(out, "synced 6 template(s) for wxregapp") || !strings.Contains(out, "6 added, 0 changed, 0 removed, 0 unchanged") {
		t.Fatalf("sync: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = run(t, w.env, "templates", "sync", "--config", w.cfgPath)
	if code != 0 || !strings.Contains(out, "0 added, 0 changed, 0 removed, 6 unchanged") {
		t.Errorf("second sync: exit %d %s", code, out)
	}
	code, out, errOut = run(t, w.env, "templates", "list", "--config", w.cfgPath)
	if code != 0 {
		t.Fatalf("list: exit %d %s", code, errOut)
	}
	for _, want := range []string{
		"6 template(s) for wxregapp",
		"ID ", "KIND ", "TITLE ", "KEYS",
		"bDmywsp2oEHjwAadTGKkUJ-eJEiMiOf7H-dZ8wjfw6c  one_time", "商品降价提醒", "thing1(商品名称) amount2(现价) amount3(原价) thing4(温馨提示)",
		"uADOMWfzyYDtnQvmgJ4doSCIcC4d4ST-60hIDDrUZvw  long_term", "预约开始提醒",
		"T-SHIP", "发货通知", "thing1(订单号) enum2(物流状态)[已发货|已签收] short_thing3(备注)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("list lacks %q:\n%s%s", want, out, errOut)
		}
	}
	code, out, _ = run(t, w.env, "templates", "list", "--format", "json", "--config", w.cfgPath)
	var reg store.Registry
	if code != 0 || json.Unmarshal([]byte(out), &reg) != nil || len(reg.Templates) != 6 || reg.SyncedAt.IsZero() {
		t.Fatalf("list json: exit %d %s", code, out)
	}
	ship := reg.Templates[4]
	if ship.ID != "T-SHIP" || ship.Kind != "one_time" || ship.Title != "发货通知" || len(ship.Keys) != 3 ||
		ship.Keys[1].Label != "物流状态" || strings.Join(ship.Keys[1].Enum, ",") != "已发货,已签收" || ship.Keys[2].Type != "short_thing" {
		t.Errorf("T-SHIP = %+v", ship)
	}
	if example := reg.Templates[0].Keys[0]; example.Label != "活动名称" || example.Example != "周末亲子市集" {
		t.Errorf("first key of the first example template = %+v", example)
	}
	if code, _, errOut := run(t, w.env, "templates", "list", "--format", "xml", "--config", w.cfgPath); code != 2 || !strings.Contains(errOut, "--format") {
		t.Errorf("bad format: exit %d %q", code, errOut)
	}
	if strings.Contains(out, regSecret) {
		t.Error("the secret appears in the output")
	}
}

// TestValidateAgainstRegistry: after a sync from the simulator, validate
// --config checks the example campaigns against the registry, and reports
// each kind of mismatch at its position.
func TestValidateAgainstRegistry(t *testing.T) {
	w := newRegWorld(t, "")
	examples := filepath.Join(repoRoot(t), "configs/campaigns")
	// Before any sync: a note, and the campaigns are still validated.
	code, out, errOut := run(t, w.env, "validate", "--config", w.cfgPath, examples)
	if code != 0 || !strings.Contains(errOut, "not checked against the template registry") || !strings.Contains(out, "ok: 4 campaign(s) valid\n") {
		t.Fatalf("before sync: exit %d\n%s%s", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(w.dir, "wxcampaign.db")); err == nil {
		t.Error("validate created the store")
	}
	if code, out, errOut := run(t, w.env, "templates", "sync", "--config", w.cfgPath); code != 0 {
		t.Fatalf("sync: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = run(t, w.env, "validate", "--config", w.cfgPath, examples)
	if code != 0 || !strings.Contains(out, "ok: 4 campaign(s) valid, templates match the registry of wxregapp synced ") || errOut != "" {
		t.Fatalf("examples: exit %d\n%s%s", code, out, errOut)
	}

	const ship = `name: ship
schedule: "@every 5m"
template:
  id: T-SHIP
  kind: one_time
  page: '"pages/order/detail?id=" + grant.biz_no'
when: "true"
data:
  thing1: grant.biz_no
  enum2: grant.scene
  short_thing3: '"配送中"'
`
	tests := []struct {
		name    string
		old     string // replaced in ship by new
		new     string
		wantErr string // the one error line, after "FILE:"
	}{
		{"matches", "", "", ""},
		{"unknown template id", "id: T-SHIP", "id: T-GONE", "4:7: template T-GONE is not in the account's template list"},
		{"kind mismatch", "id: T-SHIP\n  kind: one_time\n  page: '\"pages/order/detail?id=\" + grant.biz_no'",
			"id: T-LONG\n  kind: one_time\n  page: '\"pages/order/detail?id=\" + grant.biz_no'",
			"5:9: template.kind is one_time, but template T-LONG is long_term in the account's template list"},
		{"missing key", "  short_thing3: '\"配送中\"'\n", "",
			"8:1: data: missing key short_thing3 of template T-SHIP (its keys: thing1, enum2, short_thing3)"},
		{"extra key", "  short_thing3: '\"配送中\"'\n", "  short_thing3: '\"配送中\"'\n  thing4: '\"多余\"'\n",
			"12:3: data key thing4 is not a key of template T-SHIP (its keys: thing1, enum2, short_thing3)"},
		{"key type differs", "  short_thing3:", "  thing3:",
			"11:3: data key thing3: template T-SHIP has short_thing3, of type short_thing, not thing (its keys: thing1, enum2, short_thing3)"},
		{"enum value outside the list", "  short_thing3: '\"配送中\"'\n", "  short_thing3: '\"配送中\"'\nenums:\n  enum2: [已发货, 丢失]\n",
			`13:16: enums.enum2: "丢失" is not an enum value of template T-SHIP (its values: 已发货, 已签收)`},
		{"enum literal outside the list", "enum2: grant.scene", `enum2: 'grant.scene == "x" ? "已发货" : "丢失"'`,
			`10:10: data.enum2: "丢失" can never be sent: not one of the enum values (已发货, 已签收) (enum values of template T-SHIP)`},
		{"short_thing literal too long", `short_thing3: '"配送中"'`, `short_thing3: '"正在配送中了"'`,
			"11:18: data.short_thing3: constant can never be sent: longer than 5 characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := ship
			if tt.old != "" {
				if !strings.Contains(body, tt.old) {
					t.Fatalf("%q not in the campaign", tt.old)
				}
				body = strings.Replace(body, tt.old, tt.new, 1)
			}
			camp := w.write(t, "ship.yaml", body)
			code, out, errOut := run(t, w.env, "validate", "--config", w.cfgPath, camp)
			if tt.wantErr == "" {
				if code != 0 || errOut != "" {
					t.Fatalf("exit %d\n%s%s", code, out, errOut)
				}
				return
			}
			if got := strings.TrimRight(errOut, "\n"); code != 1 || got != camp+":"+tt.wantErr {
				t.Errorf("exit %d, stderr\n got %q\nwant %q", code, got, camp+":"+tt.wantErr)
			}
		})
	}
}

// TestPagesConfig: with wechat.pages, validate refuses a campaign whose
// page path is known and not listed; a bad wechat.pages is a config error.
func TestPagesConfig(t *testing.T) {
	w := newRegWorld(t, "")
	cfg := w.write(t, "pages.yaml", fmt.Sprintf("database: {driver: sqlite, dsn: %q}\nwechat: {appid: wxregapp, pages: [pages/order/detail, /pages/index/index]}\n", filepath.Join(w.dir, "x.db")))
	camp := w.write(t, "ship.yaml", `name: ship
schedule: "@every 5m"
template:
  id: T-SHIP
  kind: one_time
  page: '"pages/goods/detail?id=" + grant.biz_no'
when: "true"
data:
  thing1: grant.biz_no
`)
	code, _, errOut := run(t, w.env, "validate", "--config", cfg, camp)
	want := camp + `:6:10: template.page: "pages/goods/detail" is not a page of the mini program (wechat.pages)`
	if code != 1 || !strings.Contains(errOut, want) {
		t.Errorf("exit %d %q, want %q", code, errOut, want)
	}
	for _, bad := range []string{"pages/a?x=1", "pages/a b", `""`} {
		p := w.write(t, "bad.yaml", "wechat:\n  pages:\n    - "+bad+"\n")
		if code, _, errOut := run(t, w.env, "validate", "--config", p, camp); code != 2 || !strings.Contains(errOut, "wechat.pages[0]") {
			t.Errorf("pages %s: exit %d %q", bad, code, errOut)
		}
	}
	p := w.write(t, "bad.yaml", "templates: {refresh: -1s}\n")
	if code, _, errOut := run(t, w.env, "validate", "--config", p, camp); code != 2 || !strings.Contains(errOut, "templates.refresh") {
		t.Errorf("refresh -1s: exit %d %q", code, errOut)
	}
}

// TestDaemonTemplatesRefresh: run syncs the registry on start and every
// templates.refresh; when the account's templates change so that a campaign
// no longer matches, it is unscheduled (and named), and scheduled again when
// they match again.
func TestDaemonTemplatesRefresh(t *testing.T) {
	w := newRegWorld(t, "templates: {refresh: 1s}\n")
	must(t, os.WriteFile(filepath.Join(w.dir, "campaigns", "ship.yaml"), []byte(`name: ship
schedule: "@every 1h"
template:
  id: T-SHIP
  kind: one_time
scenes: [order_paid]
when: "true"
data:
  thing1: grant.biz_no
  enum2: grant.scene
  short_thing3: '"配送中"'
`), 0o644))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, errb := &syncBuffer{}, &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"run", "--config", w.cfgPath, "--listen", "127.0.0.1:0"}, strings.NewReader(""), out, errb,
			func(k string) string { return w.env[k] })
	}()
	waitFor := func(what func() bool) {
		t.Helper()
		for deadline := time.Now().Add(15 * time.Second); !what(); time.Sleep(20 * time.Millisecond) {
			select {
			case code := <-done:
				t.Fatalf("daemon exited %d:\n%s\n%s", code, out, errb)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out:\n%s\n%s", out, errb)
			}
		}
	}
	waitFor(func() bool { return strings.Contains(out.String(), "listening on") })
	// The start synced the registry.
	code, listOut, _ := run(t, w.env, "templates", "list", "--config", w.cfgPath)
	if code != 0 || !strings.Contains(listOut, "T-SHIP") {
		t.Fatalf("registry after start: exit %d\n%s", code, listOut)
	}
	// T-SHIP gains a key: the campaign no longer matches.
	w.swap(t, true)
	waitFor(func() bool {
		return strings.Contains(errb.String(), "missing key time4 of template T-SHIP") && strings.Contains(out.String(), "reloaded 0 campaign(s)")
	})
	if !strings.Contains(errb.String(), "ship.yaml:8:1") || !strings.Contains(errb.String(), "not scheduled") {
		t.Errorf("the mismatch is not named with its position:\n%s", errb)
	}
	// Back as it was: scheduled again.
	w.swap(t, false)
	waitFor(func() bool { return strings.Contains(out.String(), "reloaded 1 campaign(s)") })
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errb)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("daemon did not stop")
	}
	if strings.Contains(out.String()+errb.String(), regSecret) {
		t.Error("the secret appears in the daemon's output")
	}
}

// TestSendBadGrantDataFailsThatGrantOnly: a page built from a grant variable
// of 1,100 characters, and an enum value outside the registry's list, each
// fail their grant at render time (render invalid naming page or the key),
// before any call; the other grant is sent and the run completes.
func TestSendBadGrantDataFailsThatGrantOnly(t *testing.T) {
	w := newRegWorld(t, "")
	camp := w.write(t, "ship.yaml", `name: ship
schedule: "@every 1h"
template:
  id: T-SHIP
  kind: one_time
  page: '"pages/order/detail?note=" + grant.vars.note'
when: "true"
data:
  thing1: grant.biz_no
  enum2: grant.vars.status
  short_thing3: '"配送中"'
`)
	long := strings.Repeat("长", 1100)
	var lines []string
	for i, g := range []struct{ openid, note, status string }{
		{"u-ok", "fast", "已发货"},
		{"u-long-page", long, "已发货"},
		{"u-bad-enum", "fast", "丢失"},
	} {
		lines = append(lines, fmt.Sprintf(`{"openId":%q,"scene":"order_paid","busNo":"o%d","extraVariableMap":{"note":%q,"status":%q},"agreeTemplateIds":["T-SHIP"],"rejectTemplateIds":[],"requestId":"r%d"}`,
			g.openid, i, g.note, g.status, i))
	}
	file := w.write(t, "grants.jsonl", strings.Join(lines, "\n")+"\n")
	if code, out, errOut := run(t, w.env, "grants", "import", "--config", w.cfgPath, file); code != 0 {
		t.Fatalf("import: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut := run(t, w.env, "send", "--config", w.cfgPath, "--format", "table", camp)
	if code != 0 {
		t.Fatalf("send: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"status done",
		"render invalid: page: longer than 1024 bytes",
		"render invalid: enum2: not one of the enum values",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("send output lacks %q:\n%s", want, out)
		}
	}
	msgs := w.sim.Load().Messages()
	if len(msgs) != 1 || msgs[0].ToUser != "u-ok" || msgs[0].Page != "pages/order/detail?note=fast" || msgs[0].Data["enum2"] != "已发货" {
		t.Fatalf("delivered %+v, want one message to u-ok", msgs)
	}
}

// TestSendChecksStoredRegistryWhenWeChatFails: when getTemplateList fails,
// send checks against the stored registry (with a warning) and still
// refuses a campaign that does not match it; with no stored registry it
// sends unchecked, with a warning.
func TestSendChecksStoredRegistryWhenWeChatFails(t *testing.T) {
	const bad = `name: ship
schedule: "@every 1h"
template:
  id: T-SHIP
  kind: one_time
when: "true"
data:
  thing1: grant.biz_no
  enum2: '"已发货"'
`
	failList := func(w *regWorld) {
		next := *w.handler.Load()
		h := http.Handler(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, "/wxaapi/newtmpl/gettemplate") {
				rw.Header().Set("Content-Type", "application/json")
				fmt.Fprint(rw, `{"errcode":-1,"errmsg":"system error"}`)
				return
			}
			next.ServeHTTP(rw, r)
		}))
		w.handler.Store(&h)
	}

	w := newRegWorld(t, "")
	if code, out, errOut := run(t, w.env, "templates", "sync", "--config", w.cfgPath); code != 0 {
		t.Fatalf("sync: exit %d\n%s%s", code, out, errOut)
	}
	failList(w)
	camp := w.write(t, "ship.yaml", bad)
	code, _, errOut := run(t, w.env, "send", "--config", w.cfgPath, camp)
	if code != 1 || !strings.Contains(errOut, "checking the campaigns against the stored one") ||
		!strings.Contains(errOut, camp+":7:1: data: missing key short_thing3 of template T-SHIP") {
		t.Fatalf("with a stored registry: exit %d\n%s", code, errOut)
	}

	fresh := newRegWorld(t, "")
	failList(fresh)
	camp = fresh.write(t, "ship.yaml", bad)
	code, _, errOut = run(t, fresh.env, "send", "--config", fresh.cfgPath, camp)
	if code != 0 || !strings.Contains(errOut, "no template registry: campaigns not checked") {
		t.Fatalf("without a registry: exit %d\n%s", code, errOut)
	}
}

// TestPreviewUsesStoredRegistry: preview refuses a campaign that does not
// match the stored registry as send would, and renders with the registry's
// enum values, without calling WeChat.
func TestPreviewUsesStoredRegistry(t *testing.T) {
	w := newRegWorld(t, "")
	camp := w.write(t, "ship.yaml", `name: ship
schedule: "@every 1h"
template:
  id: T-SHIP
  kind: one_time
when: "true"
data:
  thing1: grant.biz_no
  enum2: grant.vars.status
`)
	// Before a sync: nothing to check against, preview runs.
	if code, out, errOut := run(t, w.env, "migrate", "--config", w.cfgPath); code != 0 {
		t.Fatalf("migrate: exit %d %s%s", code, out, errOut)
	}
	if code, out, errOut := run(t, w.env, "preview", "--config", w.cfgPath, camp); code != 0 {
		t.Fatalf("preview before sync: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := run(t, w.env, "templates", "sync", "--config", w.cfgPath); code != 0 {
		t.Fatalf("sync: exit %d\n%s%s", code, out, errOut)
	}
	requests := w.sim.Load().Stats().Requests
	code, _, errOut := run(t, w.env, "preview", "--config", w.cfgPath, camp)
	if code != 1 || !strings.Contains(errOut, camp+":7:1: data: missing key short_thing3 of template T-SHIP") {
		t.Fatalf("preview after sync: exit %d\n%s", code, errOut)
	}
	if got := w.sim.Load().Stats().Requests; got != requests {
		t.Errorf("preview called WeChat %d times", got-requests)
	}
}
