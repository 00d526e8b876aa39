package engine_test

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	wx "github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/campaigns"
	"github.com/wxcampaign/wxcampaign/engine"
	"github.com/wxcampaign/wxcampaign/internal/testenv"
	"github.com/wxcampaign/wxcampaign/store"
	"github.com/wxcampaign/wxcampaign/store/storetest"
	"github.com/wxcampaign/wxcampaign/wechat"
	"github.com/wxcampaign/wxcampaign/wechat/wxsender"
	"github.com/wxcampaign/wxcampaign/wechat/wxsim"
)

// The end-to-end tests build the whole engine: a fresh migrated store on
// each driver, business fact tables in it, the WeChat simulator over
// loopback TCP, the real WeChat client and campaigns parsed from YAML.

const (
	e2eAppID  = "wxe2e00000000001"
	e2eSecret = "e2e-secret-never-logged"
)

// shanghai is the campaigns' zone.
var shanghai = mustZone("Asia/Shanghai")

func mustZone(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

// at is a wall-clock time in Shanghai on a fixed test day.
func at(day, hour, minute int) time.Time {
	return time.Date(2024, 6, day, hour, minute, 0, 0, shanghai)
}

// clock is the engine's injectable clock; tests set it to each run's time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// eachDriver runs fn against a fresh store on SQLite and on MariaDB
// (testenv.EachDriver).
var eachDriver = testenv.EachDriver

// world is one engine wired to its own store and simulator.
type world struct {
	t     *testing.T
	ctx   context.Context
	db    *store.DB
	sim   *wxsim.Server
	srv   *httptest.Server
	clock *clock
	eng   *engine.Engine
	log   *logrus.Logger
	// timeout is the WeChat client's per-request timeout of the engines
	// newEngine builds; 5s unless a test sets it.
	timeout time.Duration
}

// newWorld opens a fresh store of nc's driver, starts a simulator knowing
// tpls and builds an engine with the test configuration.
func newWorld(t *testing.T, nc storetest.NamedConfig, tpls ...wxsim.TemplateDef) *world {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	db := nc.Open(t)
	sim, err := wxsim.New(wxsim.Config{AppID: e2eAppID, Secret: e2eSecret, Templates: tpls})
	if err != nil {
		t.Fatalf("wxsim: %v", err)
	}
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	log := logrus.New()
	log.SetOutput(io.Discard)
	w := &world{t: t, ctx: ctx, db: db, sim: sim, srv: srv, clock: &clock{t: at(3, 10, 0)}, log: log, timeout: 5 * time.Second}
	w.eng = w.newEngine("e2e-a")
	return w
}

// newEngine builds another engine (another "process") on the same store,
// simulator and clock, with its own WeChat client and lease holder id.
func (w *world) newEngine(holder string) *engine.Engine {
	w.t.Helper()
	return w.newEngineOn(holder, w.db)
}

// newEngineOn is newEngine on st, a wrapper of the world's store.
func (w *world) newEngineOn(holder string, st engine.Store) *engine.Engine {
	w.t.Helper()
	client, err := wechat.New(wechat.Config{BaseURL: w.srv.URL, AppID: e2eAppID, Secret: e2eSecret, Tokens: w.db,
		Holder: holder, Logger: w.log, Timeout: w.timeout})
	if err != nil {
		w.t.Fatalf("wechat client: %v", err)
	}
	eng, err := engine.New(engine.Config{Holder: holder, AppID: e2eAppID, RetryBase: time.Millisecond, Concurrency: 8,
		Lease: 30 * time.Second, Now: w.clock.Now, Logger: w.log}, st, w.db.Facts(), wxsender.New(client))
	if err != nil {
		w.t.Fatalf("engine: %v", err)
	}
	return eng
}

// exec runs statements on the store's database (business fact tables).
func (w *world) exec(stmt string, args ...any) {
	w.t.Helper()
	if _, err := w.db.SQLX().ExecContext(w.ctx, stmt, args...); err != nil {
		w.t.Fatalf("exec %q: %v", stmt, err)
	}
}

// sqlTime is a DATETIME literal in UTC, the way fact tables store times.
func sqlTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") }

// subscribe records one accepted subscription (a grant) in the store and,
// when credit is true, gives the user the matching one-time credit in the
// simulator, as WeChat would. It returns the new grant's id.
func (w *world) subscribe(openid, tpl, bizNo string, vars map[string]any, credit bool) int64 {
	w.t.Helper()
	before := w.maxGrantID()
	reqID := fmt.Sprintf("req-%s-%s-%s-%d", openid, tpl, bizNo, before+1)
	_, err := w.db.RecordSubscription(w.ctx, wx.SubscriptionResult{OpenID: openid, Scene: "e2e", BusNo: bizNo,
		ExtraVariableMap: vars, AgreeTemplateIDs: []string{tpl}, RequestID: reqID}, at(1, 12, 0))
	if err != nil {
		w.t.Fatalf("record subscription: %v", err)
	}
	if credit {
		w.sim.AddCredits(openid, tpl, 1)
	}
	id := w.maxGrantID()
	if id <= before {
		w.t.Fatalf("record subscription %s: no grant created", reqID)
	}
	return id
}

func (w *world) maxGrantID() int64 {
	w.t.Helper()
	var id int64
	if err := w.db.SQLX().GetContext(w.ctx, &id, "SELECT COALESCE(MAX(id), 0) FROM grants"); err != nil {
		w.t.Fatalf("max grant id: %v", err)
	}
	return id
}

// runResult is what one Run returned and reported.
type runResult struct {
	sum     engine.Summary
	reports []engine.GrantReport
	err     error
}

// reason returns the report of grant id.
func (r runResult) report(id int64) (engine.GrantReport, bool) {
	for _, g := range r.reports {
		if g.GrantID == id {
			return g, true
		}
	}
	return engine.GrantReport{}, false
}

// run runs c at when with eng (the world's engine when nil), the clock set
// to when, collecting every grant report.
func (w *world) run(eng *engine.Engine, c *campaigns.Campaign, when time.Time, dry bool) runResult {
	w.t.Helper()
	if eng == nil {
		eng = w.eng
	}
	w.clock.Set(when)
	return runWith(w.ctx, eng, c, engine.Options{At: when, DryRun: dry})
}

// runWith runs c with opt, collecting the reports.
func runWith(ctx context.Context, eng *engine.Engine, c *campaigns.Campaign, opt engine.Options) runResult {
	var res runResult
	opt.Report = func(r engine.GrantReport) { res.reports = append(res.reports, r) }
	res.sum, res.err = eng.Run(ctx, c, opt)
	return res
}

// runStopped runs c at T on an engine of its own (holder) over a hookStore
// that arm sets up: arm's hooks call stop, the SIGTERM, at the point of
// the run the test chooses. It returns the run and the store's counts.
func (w *world) runStopped(holder string, c *campaigns.Campaign, T time.Time, arm func(hs *hookStore, stop func())) (runResult, *hookStore) {
	ctx, cancel := context.WithCancel(w.ctx)
	defer cancel()
	hs := &hookStore{DB: w.db}
	arm(hs, cancel)
	return runWith(ctx, w.newEngineOn(holder, hs), c, engine.Options{At: T}), hs
}

// mustRun is run that fails the test on an error.
func (w *world) mustRun(c *campaigns.Campaign, when time.Time) runResult {
	w.t.Helper()
	r := w.run(nil, c, when, false)
	if r.err != nil {
		w.t.Fatalf("run %s at %s: %v (summary %+v)", c.Name, when.Format(time.DateTime), r.err, r.sum)
	}
	return r
}

// available returns the ids of the grants of tpl available at the clock.
func (w *world) available(tpl string) []int64 {
	w.t.Helper()
	gs, err := w.db.ListAvailable(w.ctx, tpl, 0, 100000, w.clock.Now())
	if err != nil {
		w.t.Fatalf("list available: %v", err)
	}
	ids := make([]int64, len(gs))
	for i, g := range gs {
		ids[i] = g.ID
	}
	return ids
}

// recipients returns the sorted openids the simulator delivered tpl to,
// with repeats (a repeat is a duplicate delivery).
func (w *world) recipients(tpl string) []string {
	var out []string
	for _, m := range w.sim.Messages() {
		if m.TemplateID == tpl {
			out = append(out, m.ToUser)
		}
	}
	sort.Strings(out)
	return out
}

// messageTo returns the one message delivered to openid of tpl.
func (w *world) messageTo(openid, tpl string) wxsim.Delivered {
	w.t.Helper()
	var got []wxsim.Delivered
	for _, m := range w.sim.MessagesTo(openid) {
		if m.TemplateID == tpl {
			got = append(got, m)
		}
	}
	if len(got) != 1 {
		w.t.Fatalf("messages of %s to %s: got %d, want 1", tpl, openid, len(got))
	}
	return got[0]
}

// parseCampaign parses a campaign file written in the test.
func parseCampaign(t testing.TB, src string) *campaigns.Campaign {
	t.Helper()
	c, err := campaigns.Parse("e2e.yaml", []byte(src), campaigns.Defaults{Location: shanghai})
	if err != nil {
		t.Fatalf("parse campaign: %v\n%s", err, src)
	}
	return c
}

// simTemplate describes c's template to the simulator: the keys it renders.
func simTemplate(c *campaigns.Campaign) wxsim.TemplateDef {
	d := wxsim.TemplateDef{ID: c.Template.ID, Title: c.Name, Kind: string(c.Template.Kind)}
	for _, f := range c.Data {
		d.Keys = append(d.Keys, f.Key)
	}
	return d
}

// sorted returns a sorted copy.
func sorted(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}

// equalSets fails unless got and want hold the same strings (with repeats).
func equalSets(t testing.TB, what string, got, want []string) {
	t.Helper()
	g, w := sorted(got), sorted(want)
	if !slices.Equal(g, w) {
		t.Errorf("%s:\n got  %v\n want %v", what, g, w)
	}
}

// noDuplicates fails if a (openid, template) got more messages than allowed
// by credits: with one credit per grant, a repeat is a double delivery.
func noDuplicates(t testing.TB, sim *wxsim.Server) {
	t.Helper()
	seen := map[string]int{}
	for _, m := range sim.Messages() {
		seen[m.ToUser+"|"+m.TemplateID]++
	}
	for k, n := range seen {
		if n > 1 {
			t.Errorf("%s got %d messages, want at most 1", k, n)
		}
	}
}

// tableDump returns the full content of every table of the store, one
// string per table, so that a test can tell that nothing was written.
func (w *world) tableDump() map[string]string {
	w.t.Helper()
	var tables []string
	q := "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
	if w.db.Driver() == store.MySQL {
		q = "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() ORDER BY table_name"
	}
	if err := w.db.SQLX().SelectContext(w.ctx, &tables, q); err != nil {
		w.t.Fatalf("list tables: %v", err)
	}
	out := map[string]string{}
	for _, tb := range tables {
		rows, err := w.db.SQLX().QueryxContext(w.ctx, "SELECT * FROM "+tb)
		if err != nil {
			w.t.Fatalf("dump %s: %v", tb, err)
		}
		var lines []string
		for rows.Next() {
			vals, err := rows.SliceScan()
			if err != nil {
				w.t.Fatalf("dump %s: %v", tb, err)
			}
			var b strings.Builder
			for _, v := range vals {
				if bs, ok := v.([]byte); ok {
					v = string(bs)
				}
				fmt.Fprintf(&b, "%v\x1f", v)
			}
			lines = append(lines, b.String())
		}
		if err := rows.Err(); err != nil {
			w.t.Fatalf("dump %s: %v", tb, err)
		}
		rows.Close()
		sort.Strings(lines)
		out[tb] = fmt.Sprintf("%d rows\n%s", len(lines), strings.Join(lines, "\n"))
	}
	return out
}

// hookStore is the world's store with a hook before BeginSends, to stop a
// run at a chosen point.
type hookStore struct {
	*store.DB
	mu           sync.Mutex
	beginCalls   int
	beforeBegin  func(call int)
	beginErr     error // when set, every BeginSends fails with it
	beforeFinish func(call int)
	finishes     int // FinishSends calls
	checkpoints  int // of which moved the checkpoint
}

func (h *hookStore) FinishSends(ctx context.Context, f store.Finish) (int, error) {
	h.mu.Lock()
	h.finishes++
	n := h.finishes
	if f.Checkpoint != nil {
		h.checkpoints++
	}
	h.mu.Unlock()
	if h.beforeFinish != nil {
		h.beforeFinish(n)
	}
	return h.DB.FinishSends(ctx, f)
}

func (h *hookStore) BeginSends(ctx context.Context, m store.Mark) ([]store.Begun, error) {
	h.mu.Lock()
	h.beginCalls++
	n := h.beginCalls
	h.mu.Unlock()
	if h.beforeBegin != nil {
		h.beforeBegin(n)
	}
	if h.beginErr != nil {
		return nil, h.beginErr
	}
	return h.DB.BeginSends(ctx, m)
}

// count runs a COUNT(*) query.
func (w *world) count(q string, args ...any) int {
	w.t.Helper()
	var n int
	if err := w.db.SQLX().GetContext(w.ctx, &n, q, args...); err != nil {
		w.t.Fatalf("%s: %v", q, err)
	}
	return n
}
