package reliability

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/wxcampaign/wxcampaign/store"
	"github.com/wxcampaign/wxcampaign/store/storetest"
	"github.com/wxcampaign/wxcampaign/wechat/wxsim"
)

// binPath is the wxcampaign binary built once for the process-level tests.
var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "wxc-reliability-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "wxcampaign")
	build := exec.Command("go", "build", "-o", binPath, "../cmd/wxcampaign")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build wxcampaign:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const (
	templateID = "tplReliability000000000000000000000000000001"
	appID      = "wxreliability01"
	appSecret  = "reliability-secret-0123456789"
	pushToken  = "reliability-push-token"
)

const campaignYAML = `name: reliable-drop
schedule: "@every 1s"
timezone: Asia/Shanghai
template:
  id: ` + templateID + `
  kind: one_time
  page: '"pages/goods/detail?id=" + grant.biz_no + "&g=" + str(grant.id)'
facts:
  product:
    query: SELECT id, name, price, stock FROM products WHERE id IN (:keys)
    key: grant.biz_no
    column: id
when: product != nil && product.price < num(grant.vars.saved_price)
data:
  thing1: product.name
  amount2: money(product.price)
per_user_per_run: 0
batch_size: %d
%s`

// world is one MariaDB database with n eligible grants (and n/10
// ineligible ones), a simulator with a credit per grant, and a config file
// for engine processes.
type world struct {
	t        *testing.T
	dir      string
	cfg      store.Config
	db       *store.DB
	sim      *wxsim.Server
	simURL   string
	cfgPath  string
	campaign string
	eligible map[int64]bool // grant ids that must be delivered exactly once
	driver   string         // store.MySQL or store.SQLite
	reqs     *requestLog    // every send request that reached the simulator
}

type worldOpts struct {
	grants   int
	users    int // distinct openids, grants spread round-robin (0: one grant per user)
	logLevel string
	batch    int
	lease    string
	extraCfg string // more YAML for the engine config
	wechat   string // more keys of the engine config's wechat map, e.g. "ambiguous: reconcile"
	push     bool   // the simulator pushes delivery events to a receiver writing to the store
	sim      func(*wxsim.Config)
	driver   string // store.SQLite or store.MySQL (the default)
	campaign string // more YAML for the campaign file, e.g. limits
	conc     int    // wechat.concurrency, default 16
	// binImport imports the grants with `wxcampaign grants import` (the
	// binary is built without -race: much faster for large worlds).
	binImport bool
}

func newWorld(t *testing.T, o worldOpts) *world {
	t.Helper()
	if o.batch == 0 {
		o.batch = 200
	}
	if o.lease == "" {
		o.lease = "2s"
	}
	if o.users == 0 {
		o.users = o.grants + o.grants/10
	}
	if o.conc == 0 {
		o.conc = 16
	}
	if o.logLevel == "" {
		o.logLevel = "warning"
	}
	w := &world{t: t, dir: t.TempDir(), eligible: map[int64]bool{}, driver: o.driver, reqs: newRequestLog()}
	products := `CREATE TABLE products (id VARCHAR(64) PRIMARY KEY, name VARCHAR(100), price DECIMAL(10,2), stock INT)`
	switch o.driver {
	case store.SQLite:
		w.cfg = storetest.SQLite(t)
		products = `CREATE TABLE products (id TEXT PRIMARY KEY, name TEXT, price REAL, stock INTEGER)`
	case "", store.MySQL:
		w.driver, w.cfg = store.MySQL, storetest.MySQL(t)
	default:
		t.Fatalf("world: unknown driver %q", o.driver)
	}
	w.db = storetest.Open(t, w.cfg)
	ctx := context.Background()
	exec1 := func(q string, args ...any) {
		if _, err := w.db.SQLX().ExecContext(ctx, q, args...); err != nil {
			t.Fatal(err)
		}
	}
	exec1(products)
	var vals []string
	for i := range 100 {
		vals = append(vals, fmt.Sprintf("('p%03d','商品%d号',10.00,5)", i, i))
	}
	exec1("INSERT INTO products VALUES " + strings.Join(vals, ","))

	scfg := wxsim.Config{AppID: appID, Secret: appSecret,
		Templates: []wxsim.TemplateDef{{ID: templateID, Kind: "one_time", Keys: []string{"thing1", "amount2"}}}}
	if o.push {
		recv := httptest.NewServer(pushReceiver(t, w.db))
		t.Cleanup(recv.Close)
		scfg.PushURL, scfg.PushToken = recv.URL+"/wechat/push", pushToken
	}
	if o.sim != nil {
		o.sim(&scfg)
	}
	sim, err := wxsim.New(scfg)
	if err != nil {
		t.Fatal(err)
	}
	w.sim = sim
	t.Cleanup(func() { _ = sim.Close() })
	srv := httptest.NewServer(w.reqs.wrap(sim.Handler()))
	t.Cleanup(srv.Close)
	w.simURL = srv.URL

	campDir := filepath.Join(w.dir, "campaigns")
	if err := os.MkdirAll(campDir, 0o755); err != nil {
		t.Fatal(err)
	}
	w.campaign = filepath.Join(campDir, "reliable-drop.yaml")
	if err := os.WriteFile(w.campaign, fmt.Appendf(nil, campaignYAML, o.batch, o.campaign), 0o644); err != nil {
		t.Fatal(err)
	}
	w.cfgPath = filepath.Join(w.dir, "wxcampaign.yaml")
	conf := fmt.Sprintf(`database: {driver: %s, dsn: %q, auto_migrate: false}
wechat: {base_url: %q, appid: %q, concurrency: %d, retry_base: 5ms, timeout: 1s, %s}
campaigns: %q
engine: {lease: %s}
log: {level: %s, format: json}
%s`, w.driver, w.cfg.DSN, w.simURL, appID, o.conc, o.wechat, campDir, o.lease, o.logLevel, o.extraCfg)
	if err := os.WriteFile(w.cfgPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	var lines bytes.Buffer
	total := o.grants + o.grants/10
	for i := range total {
		openid := fmt.Sprintf("u%06d", i%o.users)
		saved := "20.00"
		if i >= o.grants {
			saved = "5.00" // price 10 is not below: never eligible
		}
		sim.AddCredits(openid, templateID, 1)
		fmt.Fprintf(&lines, `{"openId":%q,"scene":"add_to_cart","busNo":"p%03d","extraVariableMap":{"saved_price":%q},"agreeTemplateIds":[%q],"rejectTemplateIds":[],"requestId":"req-%d"}`+"\n",
			openid, i%100, saved, templateID, i)
	}
	if o.binImport {
		file := filepath.Join(w.dir, "grants.jsonl")
		if err := os.WriteFile(file, lines.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		c, out := w.cmd("import", "grants", "import", "--config", w.cfgPath, file)
		if err := c.Run(); err != nil || !strings.Contains(out.String(), fmt.Sprintf(" %d imported,", total)) {
			t.Fatalf("grants import: %v\n%s", err, out)
		}
	} else {
		rep, err := w.db.Import(ctx, &lines, store.ImportOptions{})
		if err != nil || rep.Imported != total {
			t.Fatalf("import: %+v %v", rep, err)
		}
	}
	var ids []int64
	if err := w.db.SQLX().SelectContext(ctx, &ids, `SELECT id FROM grants WHERE vars LIKE '%20.00%'`); err != nil || len(ids) != o.grants {
		t.Fatalf("eligible grants: %d, %v", len(ids), err)
	}
	for _, id := range ids {
		w.eligible[id] = true
	}
	return w
}

// cmd returns an engine process (not started) with its output in logs.
func (w *world) cmd(name string, args ...string) (*exec.Cmd, *bytes.Buffer) {
	c := exec.Command(binPath, args...)
	c.Env = append(os.Environ(), "WXC_WECHAT_SECRET="+appSecret, "WXC_HTTP_TOKEN=reliability-api-token")
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	return c, &out
}

// send runs `send --at at` to completion and returns its JSON summary.
func (w *world) send(at string) (map[string]any, string, error) {
	c, out := w.cmd("send", "send", "--config", w.cfgPath, "--format", "json", "--at", at, w.campaign)
	err := c.Run()
	var sum map[string]any
	for _, line := range strings.Split(out.String(), "\n") {
		var m map[string]map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["summary"] != nil {
			sum = m["summary"]
		}
	}
	return sum, out.String(), err
}

// verify checks the promise: every eligible grant delivered exactly once,
// nothing else delivered, and the ledger agrees.
func (w *world) verify() (delivered, dups int) {
	t := w.t
	t.Helper()
	count := map[int64]int{}
	for _, m := range w.sim.Messages() {
		u, err := url.Parse(m.Page)
		id, err2 := strconv.ParseInt(u.Query().Get("g"), 10, 64)
		if err != nil || err2 != nil || m.TemplateID != templateID || m.Data["amount2"] != "¥10.00" {
			t.Errorf("bad message %+v", m)
			continue
		}
		count[id]++
	}
	var missing, extra int
	for id := range w.eligible {
		switch n := count[id]; {
		case n == 0:
			missing++
		case n > 1:
			dups += n - 1
		}
	}
	for id := range count {
		if !w.eligible[id] {
			extra++
		}
	}
	delivered = len(w.sim.Messages())
	if missing > 0 || dups > 0 || extra > 0 {
		t.Errorf("delivery log: %d eligible grants, %d messages, %d missing, %d duplicates, %d for ineligible grants",
			len(w.eligible), delivered, missing, dups, extra)
	}
	ctx := context.Background()
	var consumed, inflight, consumedIneligible int
	q := w.db.SQLX()
	for _, c := range []struct {
		dst *int
		q   string
	}{
		{&consumed, `SELECT COUNT(*) FROM grants WHERE status = 'consumed'`},
		{&inflight, `SELECT COUNT(*) FROM send_log WHERE status = 'inflight'`},
		{&consumedIneligible, `SELECT COUNT(*) FROM grants WHERE status = 'consumed' AND vars LIKE '%5.00%'`},
	} {
		if err := q.GetContext(ctx, c.dst, c.q); err != nil {
			t.Fatal(err)
		}
	}
	if consumed != len(w.eligible) || inflight != 0 || consumedIneligible != 0 {
		t.Errorf("ledger: %d consumed (want %d), %d send-log rows in flight, %d ineligible consumed",
			consumed, len(w.eligible), inflight, consumedIneligible)
	}
	return delivered, dups
}

// requestLog counts every subscribeMessage.send request that reached the
// simulator (its body read in full), whatever the simulator then answered:
// per grant (the g= parameter of the page) and per (openid, template).
type requestLog struct {
	mu     sync.Mutex
	grants map[int64]int
	pairs  map[[2]string]int
	total  int
}

func newRequestLog() *requestLog {
	return &requestLog{grants: map[int64]int{}, pairs: map[[2]string]int{}}
}

// wrap counts the send requests on their way to next.
func (l *requestLog) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/cgi-bin/message/subscribe/send" {
			next.ServeHTTP(rw, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			// The sender died while writing: the request never arrived.
			http.Error(rw, "body: "+err.Error(), http.StatusBadRequest)
			return
		}
		var req struct {
			ToUser     string `json:"touser"`
			TemplateID string `json:"template_id"`
			Page       string `json:"page"`
		}
		if json.Unmarshal(body, &req) == nil {
			var grant int64
			if u, err := url.Parse(req.Page); err == nil {
				grant, _ = strconv.ParseInt(u.Query().Get("g"), 10, 64)
			}
			l.mu.Lock()
			l.total++
			l.grants[grant]++
			l.pairs[[2]string{req.ToUser, req.TemplateID}]++
			l.mu.Unlock()
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(rw, r)
	})
}

// snapshot copies the counts.
func (l *requestLog) snapshot() (grants map[int64]int, pairs map[[2]string]int, total int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	grants = make(map[int64]int, len(l.grants))
	for k, v := range l.grants {
		grants[k] = v
	}
	pairs = make(map[[2]string]int, len(l.pairs))
	for k, v := range l.pairs {
		pairs[k] = v
	}
	return grants, pairs, l.total
}
