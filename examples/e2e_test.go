// Package examples_test runs the example mini program client and backend
// against the real daemon: the reference subscribe flow, end to end.
package examples_test

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
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wxcampaign/wxcampaign/store/storetest"
	"github.com/wxcampaign/wxcampaign/wechat/wxsim"
)

const (
	appID    = "wxexampleapp01"
	secret   = "example-secret-0123456789"
	apiToken = "example-api-token"
	tPrice   = "tplExamplePriceDrop000000000000000000000001"
	tStock   = "tplExampleRestock00000000000000000000000002"
	tLong    = "tplExampleService00000000000000000000000003"
)

// Two one-time campaigns and a long-term one share the scene 加入购物车;
// the offer must carry the one-time ids only (WeChat refuses a mix).
var campaignFiles = map[string]string{
	"price-drop.yaml": `name: price-drop
schedule: "0 0 1 1 *"
template:
  id: ` + tPrice + `
  kind: one_time
  page: '"pages/goods/goods?id=" + grant.biz_no'
scenes: [加入购物车]
when: num(grant.vars.saved_price) > 0
data:
  thing1: grant.vars.goods_name
  amount2: money(num(grant.vars.saved_price))
`,
	"restock.yaml": `name: restock
schedule: "0 0 1 1 *"
template:
  id: ` + tStock + `
  kind: one_time
scenes: [加入购物车]
when: "true"
data:
  thing1: '"到货了: " + grant.vars.goods_name'
`,
	"service.yaml": `name: service
schedule: "0 0 1 1 *"
template:
  id: ` + tLong + `
  kind: long_term
scenes: [加入购物车]
when: "true"
data:
  thing1: '"服务通知"'
`,
}

// user is one simulated mini program user: what the goods page shows and
// what the user taps in the popup.
type user struct {
	OpenID  string            `json:"openId"`
	Goods   map[string]string `json:"goods"`
	Choices map[string]string `json:"choices"`
}

var users = []user{
	{"oUserAcceptBoth", goods("p1", "咖啡豆", "15.00"), map[string]string{tPrice: "accept", tStock: "acceptWithAlert"}},
	{"oUserPriceOnly", goods("p2", "燕麦片", "29.90"), map[string]string{tPrice: "accept", tStock: "reject"}},
	{"oUserStockOnly", goods("p3", "耳机", "99.00"), map[string]string{tPrice: "reject", tStock: "acceptWithAudio"}},
	{"oUserRejectAll", goods("p1", "咖啡豆", "15.00"), map[string]string{tPrice: "reject", tStock: "reject"}},
	{"oUserBanFilter", goods("p2", "燕麦片", "29.90"), map[string]string{tPrice: "ban", tStock: "filter"}},
}

func goods(id, name, price string) map[string]string {
	return map[string]string{"id": id, "name": name, "price": price}
}

// TestMiniProgramClientEndToEnd runs examples/miniprogram (the goods page
// and utils/subscribe.js, wx stubbed) under Node, through
// examples/backend, against the wxcampaign daemon on SQLite; then a
// campaign run against the simulator delivers exactly to the users who
// accepted, with the variables the client sent. The simulator gives
// credits loosely, so a send to a user who did not accept would show.
func TestMiniProgramClientEndToEnd(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("node is required for the example client's end-to-end test under CI=true")
		}
		t.Skip("node is not installed")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "wxcampaign")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/wxcampaign").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}

	sim, err := wxsim.New(wxsim.Config{AppID: appID, Secret: secret, LooseCredits: true, Templates: []wxsim.TemplateDef{
		{ID: tPrice, Kind: "one_time", Keys: []string{"thing1", "amount2"}},
		{ID: tStock, Kind: "one_time", Keys: []string{"thing1"}},
		{ID: tLong, Kind: "long_term", Keys: []string{"thing1"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	simSrv := httptest.NewServer(sim.Handler())
	t.Cleanup(simSrv.Close)

	cdir := filepath.Join(dir, "campaigns")
	must(t, os.MkdirAll(cdir, 0o755))
	for name, body := range campaignFiles {
		must(t, os.WriteFile(filepath.Join(cdir, name), []byte(body), 0o644))
	}
	db := storetest.SQLite(t)
	cfgPath := filepath.Join(dir, "wxcampaign.yaml")
	must(t, os.WriteFile(cfgPath, fmt.Appendf(nil, `database: {driver: sqlite, dsn: %q}
wechat: {base_url: %q, appid: %s, concurrency: 4, retry_base: 1ms}
campaigns: %q
log: {level: warning}
`, db.DSN, simSrv.URL, appID, cdir), 0o644))
	env := append(os.Environ(), "WXC_WECHAT_SECRET="+secret, "WXC_HTTP_TOKEN="+apiToken)

	// The daemon on SQLite.
	daemon, daemonOut := start(t, bin, env, "run", "--config", cfgPath, "--listen", "127.0.0.1:0")
	engineURL := waitListening(t, daemon, daemonOut)
	if status, body := get(t, engineURL+"/readyz"); status != 200 {
		t.Fatalf("/readyz: %d %s", status, body)
	}

	// The example backend, holding the API token.
	backend, backendOut := start(t, node, append(os.Environ(), "WXC_URL="+engineURL, "WXC_API_TOKEN="+apiToken, "PORT=0"), "backend/server.js")
	backendURL := waitListening(t, backend, backendOut)

	// The mini program client, one tap per user.
	usersJSON, _ := json.Marshal(users)
	client := exec.Command(node, "testdata/run-client.js")
	client.Env = append(os.Environ(), "BACKEND_URL="+backendURL, "USERS="+string(usersJSON), `LONG_TERM=["`+tLong+`"]`)
	var clientErr bytes.Buffer
	client.Stderr = &clientErr
	out, err := client.Output()
	if err != nil {
		t.Fatalf("client: %v\nstdout:\n%s\nstderr:\n%s\nbackend:\n%s", err, out, &clientErr, backendOut)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	n := 0
	for sc.Scan() {
		var line struct {
			OpenID  string         `json:"openId"`
			Offered []string       `json:"offered"`
			Report  map[string]any `json:"reported"`
		}
		must(t, json.Unmarshal(sc.Bytes(), &line))
		n++
		if !slices.Equal(line.Offered, []string{tPrice, tStock}) {
			t.Errorf("%s was offered %v, want the two one-time templates in file order, no long-term id", line.OpenID, line.Offered)
		}
		if line.Report["triggerAct"] != "加入购物车" {
			t.Errorf("%s reported %v", line.OpenID, line.Report)
		}
	}
	if n != len(users) {
		t.Fatalf("client printed %d results, want %d:\n%s", n, len(users), out)
	}

	// Stop the daemon (the grants are in SQLite), then run each campaign.
	must(t, daemon.Process.Signal(syscall.SIGTERM))
	if err := waitExit(daemon, 15*time.Second); err != nil {
		t.Fatalf("daemon: %v\n%s", err, daemonOut)
	}
	for _, c := range []string{"price-drop.yaml", "restock.yaml"} {
		send := exec.Command(bin, "send", "--config", cfgPath, filepath.Join(cdir, c))
		send.Env = env
		if out, err := send.CombinedOutput(); err != nil {
			t.Fatalf("send %s: %v\n%s", c, err, out)
		}
	}

	got := map[string]string{}
	for _, m := range sim.Messages() {
		key := m.ToUser + " " + m.TemplateID
		if _, dup := got[key]; dup {
			t.Errorf("two messages for %s", key)
		}
		got[key] = fmt.Sprintf("%s|%s|%s", m.Data["thing1"], m.Data["amount2"], m.Page)
	}
	want := map[string]string{
		"oUserAcceptBoth " + tPrice: "咖啡豆|¥15.00|pages/goods/goods?id=p1",
		"oUserAcceptBoth " + tStock: "到货了: 咖啡豆||",
		"oUserPriceOnly " + tPrice:  "燕麦片|¥29.90|pages/goods/goods?id=p2",
		"oUserStockOnly " + tStock:  "到货了: 耳机||",
	}
	if fmt.Sprint(sorted(got)) != fmt.Sprint(sorted(want)) {
		t.Errorf("delivered:\n%s\nwant:\n%s", strings.Join(sorted(got), "\n"), strings.Join(sorted(want), "\n"))
	}
	if strings.Contains(backendOut.String()+daemonOut.String(), apiToken) || strings.Contains(daemonOut.String(), secret) {
		t.Error("a secret appears in the output of the daemon or the backend")
	}
}

func sorted(m map[string]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+" => "+v)
	}
	sort.Strings(out)
	return out
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// syncBuffer is a goroutine-safe buffer for a process's output.
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

// start starts a process that is killed at cleanup if still running.
func start(t *testing.T, name string, env []string, args ...string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	out := &syncBuffer{}
	c := exec.Command(name, args...)
	c.Env, c.Stdout, c.Stderr = env, out, out
	must(t, c.Start())
	done := make(chan struct{})
	go func() { _ = c.Wait(); close(done) }()
	exited[c] = done
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			_ = c.Process.Kill()
			<-done
		}
	})
	return c, out
}

// exited closes when the process of a start ends (test goroutine only).
var exited = map[*exec.Cmd]chan struct{}{}

func waitExit(c *exec.Cmd, d time.Duration) error {
	select {
	case <-exited[c]:
		if !c.ProcessState.Success() {
			return fmt.Errorf("exit %s", c.ProcessState)
		}
		return nil
	case <-time.After(d):
		return fmt.Errorf("did not exit within %v", d)
	}
}

var listening = regexp.MustCompile(`listening on (http://\S+)`)

func waitListening(t *testing.T, c *exec.Cmd, out *syncBuffer) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if m := listening.FindStringSubmatch(out.String()); m != nil {
			return m[1]
		}
		select {
		case <-exited[c]:
			t.Fatalf("%s exited: %s\n%s", c.Path, c.ProcessState, out)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not start:\n%s", c.Path, out)
		}
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
