package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
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

	"github.com/wxcampaign/wxcampaign/internal/testenv"
	"github.com/wxcampaign/wxcampaign/store"
	"github.com/wxcampaign/wxcampaign/store/storetest"
	"github.com/wxcampaign/wxcampaign/wechat/wxsim"
)

// syncBuffer is a goroutine-safe bytes.Buffer for a daemon's output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// run calls Main and returns the exit code, stdout and stderr.
func run(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, strings.NewReader(""), &out, &errb, func(k string) string { return env[k] })
	return code, out.String(), errb.String()
}

func TestValidate(t *testing.T) {
	root := repoRoot(t)
	code, out, errOut := run(t, nil, "validate", filepath.Join(root, "configs/campaigns"))
	if code != 0 {
		t.Fatalf("validate examples: exit %d\n%s%s", code, out, errOut)
	}
	pos := regexp.MustCompile(`^\S+\.yaml:\d+:\d+: .+`)
	entries, err := os.ReadDir(filepath.Join(root, "campaigns/testdata/invalid"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		path := filepath.Join(root, "campaigns/testdata/invalid", e.Name())
		t.Run(e.Name(), func(t *testing.T) {
			code, _, errOut := run(t, nil, "validate", path)
			if code != 1 {
				t.Fatalf("exit %d, want 1", code)
			}
			lines := strings.Split(strings.TrimSpace(errOut), "\n")
			if e.IsDir() && strings.HasPrefix(lines[0], path+": ") {
				return // a directory's problem has no line (empty-dir)
			}
			if len(lines) == 0 || !pos.MatchString(lines[0]) {
				t.Fatalf("want file:line:col: message, got %q", errOut)
			}
		})
	}
	if code, _, _ := run(t, nil, "validate"); code != 2 {
		t.Errorf("validate with no path: exit %d, want 2", code)
	}
}

func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("demo in -short mode")
	}
	root := repoRoot(t)
	code, out, errOut := run(t, nil, "demo", "--campaigns", filepath.Join(root, "configs/campaigns"))
	if code != 0 {
		t.Fatalf("demo: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"== price-drop", "== order-unpaid", "the simulator received", "demo finished"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	m := regexp.MustCompile(`the simulator received (\d+) messages`).FindStringSubmatch(out)
	if m == nil || m[1] == "0" {
		t.Errorf("demo delivered nothing:\n%s", out)
	}
}

// world is a store, a simulator and a config file pointing at both.
type world struct {
	cfgPath string
	sim     *wxsim.Server
	env     map[string]string
	dir     string
}

const campaignYAML = `name: price-drop
schedule: "*/10 * * * *"
timezone: Asia/Shanghai
template:
  id: tplPriceDrop0000000000000000000000000000001
  kind: one_time
  page: ` + testenv.PriceDropPage + `
` + testenv.PriceDropRule + testenv.PriceDropData2 + `limits:
  - {scope: user_template, max: 1, window: 24h}
quiet_hours: {from: "22:00", to: "08:00", action: defer}
`

func newWorld(t *testing.T, cfg store.Config) *world {
	t.Helper()
	dir := t.TempDir()
	w := &world{dir: dir, env: map[string]string{envSecret: "s3cr3t-of-the-test-app"}}
	sim, err := wxsim.New(wxsim.Config{AppID: "wxtestapp", Secret: "s3cr3t-of-the-test-app", Templates: []wxsim.TemplateDef{
		{ID: "tplPriceDrop0000000000000000000000000000001", Kind: "one_time", Keys: []string{"thing1", "amount2"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	w.sim = sim
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	cdir := filepath.Join(dir, "campaigns")
	must(t, os.MkdirAll(cdir, 0o755))
	must(t, os.WriteFile(filepath.Join(cdir, "price-drop.yaml"), []byte(campaignYAML), 0o644))
	db := storetest.Open(t, cfg)
	ctx := context.Background()
	for _, q := range []string{
		testenv.ProductsDDL,
		`INSERT INTO products VALUES ('p1','咖啡豆',12.50,5),('p2','燕麦片',30.00,5),('p3','耳机',99.00,0)`,
	} {
		if _, err := db.SQLX().ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	w.cfgPath = filepath.Join(dir, "wxcampaign.yaml")
	conf := fmt.Sprintf(`database: {driver: %s, dsn: %q}
wechat: {base_url: %q, appid: wxtestapp, concurrency: 4, retry_base: 1ms}
campaigns: %q
http: {token: test-api-token}
`, cfg.Driver, cfg.DSN, srv.URL, cdir)
	must(t, os.WriteFile(w.cfgPath, []byte(conf), 0o644))
	return w
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func drivers(t *testing.T) map[string]func(testing.TB) store.Config {
	return map[string]func(testing.TB) store.Config{"sqlite": storetest.SQLite, "mysql": storetest.MySQL}
}

func TestImportPreviewSend(t *testing.T) {
	for name, mk := range drivers(t) {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t, mk(t))
			lines := []string{
				`{"openId":"u1","scene":"add_to_cart","busNo":"p1","extraVariableMap":{"saved_price":"15.00"},"agreeTemplateIds":["tplPriceDrop0000000000000000000000000000001"],"rejectTemplateIds":[],"requestId":"r1"}`,
				`{"openId":"u2","scene":"add_to_cart","busNo":"p2","extraVariableMap":{"saved_price":"29.00"},"agreeTemplateIds":["tplPriceDrop0000000000000000000000000000001"],"rejectTemplateIds":[],"requestId":"r2"}`,
				`{"openId":"u3","scene":"add_to_cart","busNo":"p3","extraVariableMap":{"saved_price":"150"},"agreeTemplateIds":["tplPriceDrop0000000000000000000000000000001"],"rejectTemplateIds":[],"requestId":"r3"}`,
				`{"openId": 12}`,
				`{"openId":"u4","scene":"add_to_cart","busNo":"p1","extraVariableMap":{"saved_price":"20"},"agreeTemplateIds":["tplPriceDrop0000000000000000000000000000001"],"rejectTemplateIds":[],"requestId":"r4"}`,
			}
			file := filepath.Join(w.dir, "grants.jsonl")
			must(t, os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o644))
			code, out, errOut := run(t, w.env, "grants", "import", "--config", w.cfgPath, file)
			if code != 1 || !strings.Contains(out, "4 imported") || !strings.Contains(errOut, "grants.jsonl:4:") {
				t.Fatalf("import: exit %d\n%s\n%s", code, out, errOut)
			}
			for _, u := range []string{"u1", "u2", "u4"} {
				w.sim.AddCredits(u, "tplPriceDrop0000000000000000000000000000001", 1)
			}
			camp := filepath.Join(w.dir, "campaigns", "price-drop.yaml")
			at := afterGrants()

			code, out, errOut = run(t, w.env, "preview", "--config", w.cfgPath, "--format", "json", "--at", at, camp)
			if code != 0 {
				t.Fatalf("preview: exit %d\n%s\n%s", code, out, errOut)
			}
			got := map[string]string{}
			sc := bufio.NewScanner(strings.NewReader(out))
			var summary bool
			for sc.Scan() {
				var line map[string]any
				must(t, json.Unmarshal(sc.Bytes(), &line))
				if _, ok := line["summary"]; ok {
					summary = true
					continue
				}
				got[line["openid"].(string)] = line["outcome"].(string) + ": " + line["reason"].(string)
			}
			want := map[string]string{"u1": "sent: ok", "u2": "skipped: rule_false", "u3": "skipped: rule_false", "u4": "sent: ok"}
			if !summary || fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("preview = %v (summary %v), want %v", got, summary, want)
			}
			if n := len(w.sim.Messages()); n != 0 {
				t.Fatalf("preview delivered %d messages", n)
			}

			code, out, errOut = run(t, w.env, "send", "--config", w.cfgPath, "--at", at, camp)
			if code != 0 || !strings.Contains(out, "sent 2") {
				t.Fatalf("send: exit %d\n%s\n%s", code, out, errOut)
			}
			msgs := w.sim.Messages()
			if len(msgs) != 2 {
				t.Fatalf("delivered %d, want 2", len(msgs))
			}
			for _, m := range msgs {
				if m.Data["amount2"] != "¥12.50" || m.Data["thing1"] != "咖啡豆" || m.Page != "pages/goods/detail?id=p1" {
					t.Errorf("message %+v", m)
				}
			}
			// The same tick again sends nothing.
			code, _, errOut = run(t, w.env, "send", "--config", w.cfgPath, "--at", at, camp)
			if code != 0 || !strings.Contains(errOut, "already ran") || len(w.sim.Messages()) != 2 {
				t.Fatalf("second send: exit %d %s, %d messages", code, errOut, len(w.sim.Messages()))
			}
			if strings.Contains(out+errOut, "s3cr3t-of-the-test-app") {
				t.Fatal("the secret appears in the output")
			}
		})
	}
}

func TestSendFailsWhenWeChatUnreachable(t *testing.T) {
	w := newWorld(t, storetest.SQLite(t))
	conf, _ := os.ReadFile(w.cfgPath)
	conf = regexp.MustCompile(`base_url: "[^"]+"`).ReplaceAll(conf, []byte(`base_url: "http://127.0.0.1:1"`))
	must(t, os.WriteFile(w.cfgPath, conf, 0o644))
	code, _, errOut := run(t, w.env, "send", "--config", w.cfgPath, filepath.Join(w.dir, "campaigns", "price-drop.yaml"))
	if code == 0 || !strings.Contains(errOut, "WeChat") {
		t.Fatalf("exit %d, %s", code, errOut)
	}
	if strings.Contains(errOut, "s3cr3t-of-the-test-app") {
		t.Fatal("the secret appears in the error")
	}
}

func TestDaemonAPI(t *testing.T) {
	w := newWorld(t, storetest.SQLite(t))
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	errb := &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"run", "--config", w.cfgPath, "--listen", "127.0.0.1:0"}, strings.NewReader(""), out, errb,
			func(k string) string { return w.env[k] })
	}()
	var base string
	re := regexp.MustCompile(`listening on (http://\S+)`)
	for deadline := time.Now().Add(15 * time.Second); base == ""; {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			base = m[1]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon did not start:\n%s\n%s", out, errb)
		}
		select {
		case code := <-done:
			t.Fatalf("daemon exited %d:\n%s", code, errb)
		case <-time.After(20 * time.Millisecond):
		}
	}
	call := func(method, path, token, body string) (int, string) {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	sub := `{"openId":"u9","scene":"add_to_cart","busNo":"p1","extraVariableMap":{"saved_price":"15"},"agreeTemplateIds":["tplPriceDrop0000000000000000000000000000001"],"rejectTemplateIds":[],"requestId":"api-1"}`
	cases := []struct {
		method, path, token, body string
		status                    int
		contains                  string
	}{
		{"GET", "/healthz", "", "", 200, "ok"},
		{"POST", "/v1/subscriptions", "", sub, 401, "error"},
		{"POST", "/v1/subscriptions", "wrong", sub, 401, "error"},
		{"POST", "/v1/subscriptions", "test-api-token", `{"openId":`, 400, "error"},
		{"POST", "/v1/subscriptions", "test-api-token", `{"openId":"u9","colour":1}`, 400, "colour"},
		{"POST", "/v1/subscriptions", "test-api-token", sub, 201, `"credits":1`},
		{"POST", "/v1/subscriptions", "test-api-token", sub, 200, `"duplicate":true`},
		{"GET", "/v1/scenes/add_to_cart/templates", "test-api-token", "", 200, "tplPriceDrop0000000000000000000000000000001"},
		{"GET", "/v1/scenes/nowhere/templates", "test-api-token", "", 200, "[]"},
		{"GET", "/metrics", "", "", 200, "go_goroutines"},
	}
	for _, c := range cases {
		status, body := call(c.method, c.path, c.token, c.body)
		if status != c.status || !strings.Contains(body, c.contains) {
			t.Errorf("%s %s (token %q): %d %s, want %d containing %q", c.method, c.path, c.token, status, body, c.status, c.contains)
		}
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("daemon exit %d:\n%s", code, errb)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("daemon did not stop on cancel")
	}
	if strings.Contains(out.String()+errb.String(), "test-api-token") || strings.Contains(errb.String(), "s3cr3t") {
		t.Fatal("a secret appears in the daemon's output")
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"unknown-key.yaml":    "databse: {driver: sqlite}\n",
		"bad-driver.yaml":     "database: {driver: oracle}\n",
		"bad-zone.yaml":       "timezone: Mars/Olympus\n",
		"bad-facts-zone.yaml": "facts: {timezone: Mars/Olympus}\n",
	} {
		p := filepath.Join(dir, name)
		must(t, os.WriteFile(p, []byte(body), 0o644))
		code, _, errOut := run(t, nil, "migrate", "--config", p)
		if code != 2 || !strings.Contains(errOut, "config") {
			t.Errorf("%s: exit %d %q, want 2 with a config error", name, code, errOut)
		}
	}
}

func TestSendRefusesCampaignNotMatchingAccountTemplates(t *testing.T) {
	w := newWorld(t, storetest.SQLite(t))
	camp := filepath.Join(w.dir, "campaigns", "price-drop.yaml")
	body := strings.Replace(campaignYAML, "  amount2: money(product.price)\n", "  amount2: money(product.price)\n  thing9: '\"多余\"'\n", 1)
	must(t, os.WriteFile(camp, []byte(body), 0o644))
	code, _, errOut := run(t, w.env, "send", "--config", w.cfgPath, camp)
	if code != 1 || !strings.Contains(errOut, "thing9 is not a key of template") || !strings.Contains(errOut, "price-drop.yaml:") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if n := len(w.sim.Messages()); n != 0 {
		t.Fatalf("%d messages sent", n)
	}
}

func TestDaemonReloadOnSIGHUP(t *testing.T) {
	w := newWorld(t, storetest.SQLite(t))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, errb := &syncBuffer{}, &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"run", "--config", w.cfgPath, "--listen", "127.0.0.1:0"}, strings.NewReader(""), out, errb,
			func(k string) string { return w.env[k] })
	}()
	re := regexp.MustCompile(`listening on (http://\S+)`)
	var base string
	waitFor := func(what func() bool) {
		t.Helper()
		for deadline := time.Now().Add(15 * time.Second); !what(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out:\n%s\n%s", out, errb)
			}
		}
	}
	waitFor(func() bool {
		m := re.FindStringSubmatch(out.String())
		if m != nil {
			base = m[1]
		}
		return m != nil
	})
	scene := func(name string) string {
		req, _ := http.NewRequest("GET", base+"/v1/scenes/"+name+"/templates", nil)
		req.Header.Set("Authorization", "Bearer test-api-token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	camp := filepath.Join(w.dir, "campaigns", "price-drop.yaml")
	// A bad file: the reload is refused and the old set keeps serving.
	must(t, os.WriteFile(camp, []byte(strings.Replace(campaignYAML, "scenes: [add_to_cart]", "scenes: [add_to_cart]\ncolour: red", 1)), 0o644))
	must(t, syscall.Kill(os.Getpid(), syscall.SIGHUP))
	waitFor(func() bool { return strings.Contains(errb.String(), "keeping the current set") })
	if !strings.Contains(errb.String(), "price-drop.yaml:") || !strings.Contains(scene("add_to_cart"), "tplPriceDrop") {
		t.Fatalf("bad reload: %s / %s", errb, scene("add_to_cart"))
	}
	// A good file with another scene: the catalog follows.
	must(t, os.WriteFile(camp, []byte(strings.Replace(campaignYAML, "scenes: [add_to_cart]", "scenes: [checkout]", 1)), 0o644))
	must(t, syscall.Kill(os.Getpid(), syscall.SIGHUP))
	waitFor(func() bool { return strings.Contains(out.String(), "reloaded 1 campaign(s)") })
	if !strings.Contains(scene("checkout"), "tplPriceDrop") || strings.Contains(scene("add_to_cart"), "tplPriceDrop") {
		t.Fatalf("after reload: checkout %s, add_to_cart %s", scene("checkout"), scene("add_to_cart"))
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d: %s", code, errb)
	}
}

func TestPreviewExplainsOneUser(t *testing.T) {
	w := newWorld(t, storetest.SQLite(t))
	file := filepath.Join(w.dir, "grants.jsonl")
	must(t, os.WriteFile(file, []byte(`{"openId":"u1","scene":"add_to_cart","busNo":"p1","extraVariableMap":{"saved_price":"15.00"},"agreeTemplateIds":["tplPriceDrop0000000000000000000000000000001"],"rejectTemplateIds":[],"requestId":"r1"}
{"openId":"u2","scene":"add_to_cart","busNo":"p2","extraVariableMap":{"saved_price":"29.00"},"agreeTemplateIds":["tplPriceDrop0000000000000000000000000000001"],"rejectTemplateIds":[],"requestId":"r2"}
`), 0o644))
	if code, out, errOut := run(t, w.env, "grants", "import", "--config", w.cfgPath, file); code != 0 {
		t.Fatalf("import: %s %s", out, errOut)
	}
	camp := filepath.Join(w.dir, "campaigns", "price-drop.yaml")
	code, out, errOut := run(t, w.env, "preview", "--config", w.cfgPath, "--at", afterGrants(), "--openid", "u2", camp)
	if code != 0 {
		t.Fatalf("preview: exit %d %s", code, errOut)
	}
	for _, want := range []string{`"openid": "u2"`, `"outcome": "skipped"`, `"reason": "rule_false"`, `"price": 30`, `"when": false`, `"product": "p2"`, "outside quiet hours"} {
		if !strings.Contains(out, want) {
			t.Errorf("explanation lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, `"openid": "u1"`) {
		t.Errorf("explanation shows another user:\n%s", out)
	}
	_, out, _ = run(t, w.env, "preview", "--config", w.cfgPath, "--at", afterGrants(), "--openid", "u1", camp)
	for _, want := range []string{`"outcome": "sent"`, `"scope": "user_template"`, `"used": 0`, `"ok": true`, `"amount2": "¥12.50"`} {
		if !strings.Contains(out, want) {
			t.Errorf("explanation of u1 lacks %s:\n%s", want, out)
		}
	}
}
