package main

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/wxcampaign/wxcampaign/cmd/wxcampaign/internal/configfile"
)

// TestConfigEveryErrorWithPosition is issue 12 item 10: every problem of
// the engine config is reported as file:line:col: key: message, all of
// them, exit 2, before the store or WeChat is contacted.
func TestConfigEveryErrorWithPosition(t *testing.T) {
	dir := t.TempDir()
	var wechatCalls atomic.Int64
	wx := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wechatCalls.Add(1)
		http.Error(w, "no", http.StatusTeapot)
	}))
	defer wx.Close()
	db := filepath.Join(dir, "store.db")
	body := `database:
  driver: sqlite
  dsn: ` + db + `
wechat:
  base_url: ` + wx.URL + `
  appid: wxapp
  secret: s
  state: production
  rate: -1
  concurrency: -5
  retry_bse: 1s
engine:
  lease: 2ns
log:
  level: verbose
timezone: Local
http:
  max_templates: 10
`
	path := filepath.Join(dir, "wxcampaign.yaml")
	must(t, os.WriteFile(path, []byte(body), 0o644))
	camp := filepath.Join(dir, "c.yaml")
	must(t, os.WriteFile(camp, []byte(campaignYAML), 0o644))
	for _, cmd := range [][]string{{"send", camp}, {"preview", camp}, {"run"}, {"migrate"}} {
		code, _, errOut := run(t, map[string]string{envHTTPToken: "tok"}, append([]string{cmd[0], "--config", path}, cmd[1:]...)...)
		want := []string{
			path + ":8:10: wechat.state: must be developer, trial or formal, got \"production\"",
			path + ":9:9: wechat.rate: must be 0 (unlimited) or a positive number",
			path + ":10:16: wechat.concurrency: must be 0 (default 64) or more, got -5",
			path + ":11:3: wechat.retry_bse: unknown key (did you mean retry_base?)",
			path + ":13:10: engine.lease: must be 0 (default 2m) or at least 1s, got 2ns",
			path + ":15:10: log.level: unknown level \"verbose\"",
			path + ":16:11: timezone: unknown time zone \"Local\"",
			path + ":18:18: http.max_templates: must be between 1 and 5",
		}
		if code != 2 {
			t.Errorf("%s: exit %d, want 2\n%s", cmd[0], code, errOut)
		}
		lines := strings.Split(strings.TrimSpace(errOut), "\n")
		if len(lines) != len(want)+1 {
			t.Errorf("%s: %d lines, want a header and %d problems:\n%s", cmd[0], len(lines), len(want), errOut)
			continue
		}
		for i, w := range want {
			if !strings.HasPrefix(lines[i+1], w) {
				t.Errorf("%s: line %d\n got %s\nwant %s...", cmd[0], i+1, lines[i+1], w)
			}
		}
		if strings.Contains(errOut, "MaxTemplates") {
			t.Errorf("%s: a Go field name in %s", cmd[0], errOut)
		}
	}
	if n := wechatCalls.Load(); n != 0 {
		t.Errorf("WeChat was contacted %d times", n)
	}
	if _, err := os.Stat(db); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the store was opened: %v", err)
	}
}

// TestConfigProblems: one problem per file, at its position, exit 2.
func TestConfigProblems(t *testing.T) {
	tests := []struct {
		name, body string
		env        map[string]string
		args       []string
		want       string // after the file name
	}{
		{"negative lease", "engine:\n  lease: -1s\n", nil, nil, ":2:10: engine.lease: must be 0 (default 2m) or at least 1s, got -1s"},
		{"duration text", "wechat:\n  timeout: fast\n", nil, nil, `:2:12: wechat.timeout: expected a duration such as 500ms, 5s, 2m or 1h30m, got "fast"`},
		{"integer text", "wechat: {concurrency: many}\n", nil, nil, `:1:23: wechat.concurrency: expected an integer, got "many"`},
		{"unknown top key", "databse: {driver: sqlite}\n", nil, nil, ":1:1: databse: unknown key (did you mean database?)"},
		{"unknown facts key", "facts:\n  timezon: UTC\n", nil, nil, ":2:3: facts.timezon: unknown key (did you mean timezone?)"},
		{"repeated key", "log: {level: info}\nlog: {level: debug}\n", nil, nil, ":2:1: log: repeated key (first at line 1)"},
		{"bad ambiguous", "wechat: {ambiguous: maybe}\n", nil, nil, `:1:21: wechat.ambiguous: unknown policy "maybe": want consume, retry or reconcile`},
		{"bad facts timeout", "facts: {timeout: -2s}\n", nil, nil, ":1:18: facts.timeout: must be at least 1ms"},
		{"bad base url", "wechat: {base_url: 'ftp://x'}\n", nil, nil, `:1:20: wechat.base_url: must be an http(s) URL`},
		{"mysql without dsn", "database: {driver: mysql, dsn: ''}\n", nil, nil, ":1:32: database.dsn: required for mysql"},
		{"env driver", "log: {level: info}\n", map[string]string{envDatabaseDriver: "oracle"}, nil, `: database.driver: unknown driver "oracle": want sqlite or mysql (from WXC_DATABASE_DRIVER)`},
		{"syntax", "wechat: {rate: 1\n", nil, nil, ":2:1: invalid YAML"},
		{"not a mapping", "- a\n- b\n", nil, nil, ":1:1: the config must be a mapping of keys, got a list"},
		{"send needs a secret", "wechat: {appid: wx1}\n", nil, []string{"send", "x.yaml"}, ":1:1: wechat.secret: required to send"},
		{"run needs a token", "wechat: {appid: wx1, secret: s}\n", nil, []string{"run"}, ": http.token: required by run"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.yaml")
			must(t, os.WriteFile(path, []byte(tt.body), 0o644))
			args := tt.args
			if args == nil {
				args = []string{"validate", "x.yaml"}
			}
			code, _, errOut := run(t, tt.env, append([]string{args[0], "--config", path}, args[1:]...)...)
			lines := strings.Split(strings.TrimSpace(errOut), "\n")
			if code != 2 || len(lines) != 2 || !strings.HasPrefix(lines[1], path+tt.want) {
				t.Errorf("exit %d\n got %s\nwant one problem: %s%s", code, errOut, path, tt.want)
			}
		})
	}
}

// TestExampleConfigIsValid: configs/wxcampaign.yaml, which lists every key,
// loads without a problem, and every key of the config is in it.
func TestExampleConfigIsValid(t *testing.T) {
	path := filepath.Join(repoRoot(t), "configs", "wxcampaign.yaml")
	data, err := os.ReadFile(path)
	must(t, err)
	if _, err := parseConfig(path, data, func(string) string { return "" }, 0); err != nil {
		t.Fatal(err)
	}
	// Every key, commented out or not, appears in the example.
	text := string(data)
	for _, key := range []string{"driver", "dsn", "max_open_conns", "auto_migrate", "timezone", "timeout",
		"base_url", "appid", "secret", "state", "lang", "rate", "concurrency", "max_attempts", "retry_base",
		"ambiguous", "reconcile_grace", "push_token", "check_templates", "campaigns", "listen", "token", "tokens",
		"max_templates", "max_body", "level", "format", "lease"} {
		if !regexp.MustCompile(`(?m)^#?\s*` + key + `:`).MatchString(text) {
			t.Errorf("configs/wxcampaign.yaml does not list %s", key)
		}
	}
	if !strings.Contains(text, "consume") || !strings.Contains(text, "retry") || !strings.Contains(text, "reconcile") {
		t.Error("the example does not list every ambiguous policy")
	}
}

// FuzzParseConfig: the config loader never panics, and every problem it
// reports names the file (with a position when it has one).
func FuzzParseConfig(f *testing.F) {
	if data, err := os.ReadFile("../../configs/wxcampaign.yaml"); err == nil {
		f.Add(data)
	}
	for _, s := range []string{
		"", "wechat: {rate: -1}\n", "engine: {lease: 2ns}\n", "a: &x [*x]\n", "facts:\n  dsn: x\n  timeout: 1h\n",
		"http: {tokens: [a, '', {b: c}]}\n", "wechat: {check_templates: maybe}\n", "--- \n---\n", "log: !!binary aGk=\n",
		"database: {max_open_conns: 99999999999999999999}\n", "<<: {a: 1}\n",
	} {
		f.Add([]byte(s))
	}
	line := regexp.MustCompile(`^f\.yaml(:\d+:\d+)?: `)
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := parseConfig("f.yaml", data, func(string) string { return "" }, needSend|needAPI)
		if err == nil {
			return
		}
		var ce *configfile.Error
		if !errors.As(err, &ce) {
			t.Fatalf("%T %v", err, err)
		}
		for _, l := range strings.Split(err.Error(), "\n") {
			if !line.MatchString(l) {
				t.Fatalf("problem without the file: %q", l)
			}
		}
	})
}

// TestDocsListEveryVariable is issue 12 item 18: docs/operations.md lists
// every environment variable the binary reads, README says how to keep the
// demo database, and docs/campaigns.md says how to create fact tables on
// SQLite, how to give the simulator credits and in which zone zone-less
// times are read.
func TestDocsListEveryVariable(t *testing.T) {
	read := func(p string) string {
		b, err := os.ReadFile(filepath.Join(repoRoot(t), p))
		must(t, err)
		return string(b)
	}
	ops, readme, camps := read("docs/operations.md"), read("README.md"), read("docs/campaigns.md")
	for _, v := range []string{envDatabaseDriver, envDatabaseDSN, envFactsDSN, envAppID, envSecret, envBaseURL, envHTTPToken, envPushToken} {
		if !strings.Contains(ops, "`"+v+"`") {
			t.Errorf("docs/operations.md does not list %s", v)
		}
	}
	if !strings.Contains(readme, "demo --db") {
		t.Error("README does not say how to keep the demo database (demo --db)")
	}
	for _, want := range []string{"wxcampaign migrate", "CREATE TABLE", "/admin/credits", "facts.timezone"} {
		if !strings.Contains(camps, want) {
			t.Errorf("docs/campaigns.md lacks %q", want)
		}
	}
}
