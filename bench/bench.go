// Package bench is the end-to-end benchmark behind `wxcampaign bench`: on
// MariaDB and against the WeChat simulator in a separate process it
// generates N grants over a products table with a known eligible share,
// imports them, previews the price-drop campaign and sends it at each
// simulator latency, every step as a child process of the wxcampaign binary
// measured for wall time, CPU and peak RSS; then it runs the one-at-a-time
// baseline a team would write from WeChat's samples, checks every count,
// and writes a table (results.md) with the targets.
package bench

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"gopkg.in/yaml.v3"

	"github.com/wxcampaign/wxcampaign/campaigns"
	"github.com/wxcampaign/wxcampaign/store"
	"github.com/wxcampaign/wxcampaign/wechat/wxsim"
)

// DefaultServerDSN is used when Config.ServerDSN is empty.
const DefaultServerDSN = "root@tcp(127.0.0.1:3306)/test"

// The simulator's credentials: a benchmark-only pair, passed to the child
// processes in the environment.
const (
	appID     = "wxbench000000001"
	appSecret = "bench-secret-not-for-production"
)

// Config configures a benchmark. Zero fields take the defaults of `wxcampaign bench`.
type Config struct {
	Binary      string          // the wxcampaign executable the phases run as (required)
	Driver      string          // the store: "mysql" (default, the server at ServerDSN) or "sqlite" (a file in Out)
	ServerDSN   string          // MariaDB server; default DefaultServerDSN
	Database    string          // the database created (and dropped) per size; default wxc_bench
	Force       bool            // drop an existing Database even when it lacks the benchmark's marker table
	Keep        bool            // keep the database and the grants file
	Sizes       []int           // grant counts, one full run each; default 1,000,000
	Products    int             // default 100,000 (at least 10)
	Eligible    float64         // share of grants the rule holds for; default 0.3
	Latencies   []time.Duration // simulator latencies; default 0 and 50ms
	Concurrency int             // sends in flight; 0 = ConcurrencyFor(latency)
	Baseline    time.Duration   // how long the baseline runs per latency; default 20s, negative = skip
	Wire        time.Duration   // at most this long per wire-ceiling run; default 10s, negative = skip
	Phases      []string        // any of import (always run), preview, send (with its wire ceiling and baseline); default all
	Campaign    string          // the price-drop campaign; default configs/campaigns/price-drop.yaml
	BatchSize   int             // override the campaign's batch_size (an experiment knob); 0 = the file's
	At          time.Time       // the campaign's run time (--at); default today 10:30 in its zone
	Out         string          // results folder (required)
	Profile     bool            // CPU and heap profiles of preview and send into Out/profiles
	Log         io.Writer       // progress lines; nil = none
	Now         func() time.Time
}

// ConcurrencyFor sizes the sends in flight for a simulator latency: enough
// for 10,000 messages/s by Little's law (latency x rate), at least 64,
// rounded up to a power of two: 64 at 0 ms, 512 at 50 ms.
func ConcurrencyFor(latency time.Duration) int {
	need := int(latency.Seconds()*10000 + 0.5)
	c := 64
	for c < need {
		c *= 2
	}
	return c
}

// Row is one measured phase.
type Row struct {
	Phase       string        `json:"phase"` // import, preview, send, baseline
	N           int           `json:"n"`     // grants in the store
	Latency     time.Duration `json:"latency"`
	Concurrency int           `json:"concurrency,omitempty"`
	Count       int           `json:"count"` // grants imported or looked at; messages sent
	Wall        time.Duration `json:"wall"`
	Rate        float64       `json:"rate"` // Count per second of Wall
	Unit        string        `json:"unit"`
	P50         time.Duration `json:"p50,omitempty"`
	P99         time.Duration `json:"p99,omitempty"`
	PeakRSS     int64         `json:"peak_rss_kib,omitempty"` // the child process
	CPU         time.Duration `json:"cpu"`                    // the child process (baseline: this process)
	DBCPU       time.Duration `json:"db_cpu,omitempty"`       // the MariaDB server over the phase (every client, background threads)
	SimCPU      time.Duration `json:"sim_cpu,omitempty"`      // the simulator process over the phase
	// What the server did for the benchmark's own connections
	// (USER_STATISTICS of the benchmark's user; absent when unavailable).
	Conn     *ConnStats `json:"conn,omitempty"`
	Batches  int        `json:"batches,omitempty"`   // send: batches the run walked (N / batch_size, rounded up)
	Commits  int64      `json:"commits,omitempty"`   // COMMIT statements over the phase (the whole server's Com_commit)
	WireRate float64    `json:"wire_rate,omitempty"` // send: the wire ceiling's rate at the same latency and concurrency
	Note     string     `json:"note,omitempty"`
}

// ConnStats is what the database server did for the benchmark's own
// connections over a phase.
type ConnStats struct {
	CPU        time.Duration `json:"cpu"`        // the connection threads' CPU
	RowsRead   int64         `json:"rows_read"`  // rows read
	Inserted   int64         `json:"inserted"`   // rows inserted
	Updated    int64         `json:"updated"`    // rows updated
	Deleted    int64         `json:"deleted"`    // rows deleted
	Statements int64         `json:"statements"` // every statement: SELECT, writes, transaction control, SET
}

// RowOps is the rows written: inserted, updated and deleted.
func (c *ConnStats) RowOps() int64 { return c.Inserted + c.Updated + c.Deleted }

// Check is one correctness check of a run.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// Result is what a benchmark measured and checked.
type Result struct {
	Driver  string  `json:"driver"` // the store: mysql or sqlite
	Machine string  `json:"machine"`
	Command string  `json:"command"`
	Rows    []Row   `json:"rows"`
	Checks  []Check `json:"checks"`
}

// ErrCheckFailed is returned (wrapped) by Run when a count was wrong.
var ErrCheckFailed = errors.New("bench: a correctness check failed")

// Failed returns the failed checks.
func (r *Result) Failed() []Check {
	var out []Check
	for _, c := range r.Checks {
		if !c.OK {
			out = append(out, c)
		}
	}
	return out
}

type runner struct {
	cfg             Config
	res             *Result
	env             []string
	dbPID           int
	dsn             string // the bench database, as the children connect (the benchmark's user)
	adminDSN        string // the bench database, as the server DSN's user
	admin           *sql.DB
	user            string // the benchmark's MySQL user, "" when unavailable
	restoreUserstat bool
	db              *sql.DB
	camp            *campaigns.Campaign
	templates       string
	campDir         string
	at              string
	log             io.Writer
}

func (c *Config) defaults() error {
	if c.Binary == "" {
		return errors.New("bench: Config.Binary (the wxcampaign executable) is required")
	}
	if c.Out == "" {
		return errors.New("bench: Config.Out is required")
	}
	if c.ServerDSN == "" {
		c.ServerDSN = DefaultServerDSN
	}
	switch c.Driver {
	case "":
		c.Driver = store.MySQL
	case store.MySQL, store.SQLite:
	default:
		return fmt.Errorf("bench: driver %q: want mysql or sqlite", c.Driver)
	}
	if c.Database == "" {
		c.Database = "wxc_bench"
	}
	for _, r := range c.Database {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return fmt.Errorf("bench: database name %q: want [a-z0-9_]", c.Database)
		}
	}
	if len(c.Sizes) == 0 {
		c.Sizes = []int{1_000_000}
	}
	for _, n := range c.Sizes {
		if n <= 0 {
			return fmt.Errorf("bench: size %d: want > 0", n)
		}
	}
	if c.Products == 0 {
		c.Products = 100_000
	}
	if c.Products < 10 {
		return fmt.Errorf("bench: %d products: want at least 10", c.Products)
	}
	if c.Eligible == 0 {
		c.Eligible = 0.3
	}
	if c.Eligible < 0 || c.Eligible > 1 {
		return fmt.Errorf("bench: eligible share %v: want 0..1", c.Eligible)
	}
	if len(c.Latencies) == 0 {
		c.Latencies = []time.Duration{0, 50 * time.Millisecond}
	}
	if c.Baseline == 0 {
		c.Baseline = 20 * time.Second
	}
	if c.Wire == 0 {
		c.Wire = 10 * time.Second
	}
	for _, p := range c.Phases {
		if p != "import" && p != "preview" && p != "send" {
			return fmt.Errorf("bench: phase %q: want import, preview or send", p)
		}
	}
	if c.Campaign == "" {
		c.Campaign = filepath.Join("configs", "campaigns", "price-drop.yaml")
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// Run runs the benchmark for every size and returns the measurements. It
// writes results.md (and results.json) into cfg.Out even when a check
// fails; a failed check makes the error wrap ErrCheckFailed.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg, log: cfg.Log, res: &Result{Driver: cfg.Driver}}
	closeAdmin := func() {
		if r.admin != nil {
			r.dropUser(ctx, r.user)
			r.admin.Close()
		}
	}
	if err := r.setup(ctx); err != nil {
		closeAdmin()
		return nil, err
	}
	defer closeAdmin()
	r.res.Machine = r.machine(ctx)
	var runErr error
	for _, n := range cfg.Sizes {
		if err := r.size(ctx, n); err != nil {
			runErr = err
			break
		}
	}
	r.res.Machine += fmt.Sprintf("; load average at the end %s", loadAvg())
	if err := r.write(); err != nil && runErr == nil {
		runErr = err
	}
	if runErr != nil {
		return r.res, runErr
	}
	if f := r.res.Failed(); len(f) > 0 {
		return r.res, fmt.Errorf("%w: %s: %s", ErrCheckFailed, f[0].Name, f[0].Detail)
	}
	return r.res, nil
}

func (r *runner) logf(format string, args ...any) {
	fmt.Fprintf(r.log, "bench: "+format+"\n", args...)
}

func (r *runner) check(name string, ok bool, format string, args ...any) {
	c := Check{Name: name, OK: ok, Detail: fmt.Sprintf(format, args...)}
	r.res.Checks = append(r.res.Checks, c)
	mark := "ok  "
	if !ok {
		mark = "FAIL"
	}
	r.logf("check %s %s: %s", mark, name, c.Detail)
}

// connect opens the admin connection to the MySQL server and makes the
// benchmark's user; for SQLite it only names the file.
func (r *runner) connect(ctx context.Context) error {
	cfg := r.cfg
	if cfg.Driver == store.SQLite {
		r.dsn = filepath.Join(cfg.Out, cfg.Database+".db")
		return nil
	}
	sc, err := mysql.ParseDSN(cfg.ServerDSN)
	if err != nil {
		return errors.New("bench: the MariaDB DSN does not parse")
	}
	sc.DBName = ""
	r.admin, err = sql.Open("mysql", sc.FormatDSN())
	if err != nil {
		return fmt.Errorf("bench: mariadb: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := r.admin.PingContext(pctx); err != nil {
		r.admin.Close()
		r.admin = nil
		return fmt.Errorf("bench: MariaDB is not reachable: %w", err)
	}
	sc.DBName = cfg.Database
	r.adminDSN = sc.FormatDSN()
	user, pass, why := r.benchUser(ctx)
	if user != "" {
		r.user, sc.User, sc.Passwd = user, user, pass
	} else {
		r.logf("no per-connection statistics: %s", why)
	}
	r.dsn = sc.FormatDSN()
	var pidFile string
	_ = r.admin.QueryRowContext(pctx, "SELECT @@pid_file").Scan(&pidFile) // empty when unknown
	if r.dbPID = findServer(pidFile); r.dbPID == 0 {
		r.logf("no database server CPU: the server's process is not found on this machine")
	}
	return nil
}

// setup connects to the server, loads the campaign and writes the files
// the children read.
func (r *runner) setup(ctx context.Context) error {
	cfg := r.cfg
	if err := os.MkdirAll(filepath.Join(cfg.Out, "campaigns"), 0o755); err != nil {
		return fmt.Errorf("bench: out: %w", err)
	}
	if err := r.connect(ctx); err != nil {
		return err
	}

	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		return fmt.Errorf("bench: zone: %w", err)
	}
	r.camp, err = campaigns.LoadFile(cfg.Campaign, campaigns.Defaults{Location: loc, State: "formal", Lang: "zh_CN"})
	if err != nil {
		return fmt.Errorf("bench: campaign: %w", err)
	}
	src, err := os.ReadFile(cfg.Campaign)
	if err != nil {
		return fmt.Errorf("bench: campaign: %w", err)
	}
	if cfg.BatchSize > 0 {
		src = withBatchSize(src, cfg.BatchSize)
		r.camp.BatchSize = cfg.BatchSize
	}
	r.campDir = filepath.Join(cfg.Out, "campaigns")
	if err := os.WriteFile(filepath.Join(r.campDir, filepath.Base(cfg.Campaign)), src, 0o644); err != nil {
		return fmt.Errorf("bench: campaign: %w", err)
	}
	def := wxsim.TemplateDef{ID: r.camp.Template.ID, Title: r.camp.Description, Kind: string(r.camp.Template.Kind), Enums: r.camp.Enums}
	for _, f := range r.camp.Data {
		def.Keys = append(def.Keys, f.Key)
	}
	tb, err := yaml.Marshal(map[string]any{"templates": []wxsim.TemplateDef{def}})
	if err != nil {
		return fmt.Errorf("bench: templates: %w", err)
	}
	r.templates = filepath.Join(cfg.Out, "templates.yaml")
	if err := os.WriteFile(r.templates, tb, 0o644); err != nil {
		return fmt.Errorf("bench: templates: %w", err)
	}
	at := cfg.At
	if at.IsZero() {
		// 10:30 tomorrow: after the import (a preview --at T looks only at
		// grants made by T) and outside any quiet hours.
		n := cfg.Now().In(r.camp.Location)
		at = time.Date(n.Year(), n.Month(), n.Day()+1, 10, 30, 0, 0, r.camp.Location)
	}
	r.at = at.Format(time.RFC3339)
	// Secrets and the DSN go to the children in the environment, never in
	// a file or on a command line.
	r.env = append(os.Environ(), "WXC_DATABASE_DSN="+r.dsn, "WXC_WECHAT_APPID="+appID, "WXC_WECHAT_SECRET="+appSecret,
		"WXC_DATABASE_DRIVER="+cfg.Driver, "WXC_FACTS_DSN=", "WXC_WECHAT_BASE_URL=")
	return r.writeConfig(0, "http://127.0.0.1:1")
}

// cfgPath is the engine config of the children for a concurrency (0: the
// one without a simulator).
func (r *runner) cfgPath(conc int) string {
	return filepath.Join(r.cfg.Out, fmt.Sprintf("wxcampaign-c%d.yaml", conc))
}

func (r *runner) writeConfig(conc int, base string) error {
	c := conc
	if c == 0 {
		c = 64
	}
	text := fmt.Sprintf(`# written by wxcampaign bench; the DSN and the secret come from the environment
database:
  driver: %s
wechat:
  base_url: %s
  rate: 0
  concurrency: %d
  timeout: 10s
  max_attempts: 5
  retry_base: 100ms
campaigns: %s
timezone: Asia/Shanghai
log:
  level: warn
`, r.cfg.Driver, base, c, r.campDir)
	if err := os.WriteFile(r.cfgPath(conc), []byte(text), 0o644); err != nil {
		return fmt.Errorf("bench: config: %w", err)
	}
	return nil
}

func (r *runner) machine(ctx context.Context) string {
	if r.admin == nil {
		return fmt.Sprintf("%d CPUs (%s/%s), %s, SQLite (modernc.org/sqlite, in the engine's process); load average at the start %s",
			runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), loadAvg())
	}
	var ver string
	_ = r.admin.QueryRowContext(ctx, "SELECT VERSION()").Scan(&ver)
	// The settings that move the import's and the preview's figures
	// (docs/operations.md, "Server settings"); -1 when unreadable.
	pool, redo, autoinc := int64(-1<<20), int64(-1<<20), -1
	_ = r.admin.QueryRowContext(ctx, "SELECT @@innodb_buffer_pool_size, @@innodb_log_file_size, @@innodb_autoinc_lock_mode").Scan(&pool, &redo, &autoinc)
	return fmt.Sprintf("%d CPUs (%s/%s), %s, MariaDB %s (innodb_buffer_pool_size %d MB, innodb_log_file_size %d MB, innodb_autoinc_lock_mode %d); load average at the start %s",
		runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), ver, pool>>20, redo>>20, autoinc, loadAvg())
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// size runs every phase for n grants on a fresh database.
func (r *runner) size(ctx context.Context, n int) error {
	cfg := r.cfg
	r.logf("== %d grants over %d products, eligible share %v", n, cfg.Products, cfg.Eligible)
	if err := r.freshDatabase(ctx); err != nil {
		return err
	}
	if !cfg.Keep {
		defer r.dropDatabase(ctx)
	}
	closeDB, err := r.openDB(ctx)
	if err != nil {
		return err
	}
	defer closeDB()
	if _, _, err := r.child(ctx, 0, "migrate", "--config", r.cfgPath(0)); err != nil {
		return err
	}
	if err := createProducts(ctx, r.db, cfg.Products); err != nil {
		return err
	}
	file := filepath.Join(cfg.Out, fmt.Sprintf("grants-%d.jsonl", n))
	if err := writeGrants(file, n, cfg.Products, cfg.Eligible, r.camp.Template.ID); err != nil {
		return err
	}
	if !cfg.Keep {
		defer os.Remove(file)
	}
	want := eligibleCount(n, cfg.Eligible)

	// Import.
	r.logf("import %d grants", n)
	out, m, err := r.child(ctx, 0, "grants", "import", "--config", r.cfgPath(0), file)
	if err != nil {
		return err
	}
	var lines, imported, dups, credits, bad, blank int
	_, perr := fmt.Sscanf(strings.TrimSpace(string(out)), "import: %d lines, %d imported, %d duplicate requests, %d credits, %d bad, %d blank",
		&lines, &imported, &dups, &credits, &bad, &blank)
	r.check(fmt.Sprintf("import %d", n), perr == nil && imported == n && credits == n && bad == 0,
		"imported %d, credits %d, bad %d of %d lines (%s)", imported, credits, bad, lines, strings.TrimSpace(string(out)))
	r.add(Row{Phase: "import", N: n, Count: imported, Unit: "grants/s"}, m)

	if cfg.phase("preview") {
		r.logf("preview %d grants", n)
		args := append(r.profileArgs(fmt.Sprintf("preview-%d", n)), "preview", "--config", r.cfgPath(0), "--at", r.at, "--format", "table", "--limit", "0", r.campaignFile())
		out, m, err = r.child(ctx, 0, args...)
		if err != nil {
			return err
		}
		pv, perr := parsePreview(out)
		r.check(fmt.Sprintf("preview %d", n), perr == nil && pv.Looked == n && pv.Counts["sent"] == want,
			"looked at %d, would send %d, want %d of %d (%v)", pv.Looked, pv.Counts["sent"], want, n, perr)
		r.add(Row{Phase: "preview", N: n, Count: pv.Looked, Unit: "grants/s", Note: fmt.Sprintf("engine run %s", pv.Duration)}, m)
	}

	for _, lat := range cfg.Latencies {
		if !cfg.phase("send") {
			break
		}
		var wire Row
		if cfg.Wire > 0 {
			if wire, err = r.wireRun(ctx, n, lat, want); err != nil {
				return err
			}
		}
		if err := r.send(ctx, n, lat, want, wire.Rate); err != nil {
			return err
		}
		if cfg.Baseline > 0 && cfg.Driver == store.MySQL {
			if err := r.baselineRun(ctx, n, lat); err != nil {
				return err
			}
		}
	}
	return nil
}

// phase reports whether the phase p runs (every phase when Phases is empty).
func (c *Config) phase(p string) bool {
	return len(c.Phases) == 0 || slices.Contains(c.Phases, p)
}

func (r *runner) campaignFile() string {
	return filepath.Join(r.campDir, filepath.Base(r.cfg.Campaign))
}

func (r *runner) profileArgs(name string) []string {
	if !r.cfg.Profile {
		return nil
	}
	dir := filepath.Join(r.cfg.Out, "profiles")
	_ = os.MkdirAll(dir, 0o755)
	return []string{"--cpuprofile", filepath.Join(dir, name+".cpu.pprof"), "--memprofile", filepath.Join(dir, name+".mem.pprof")}
}

// add completes a row with its measure, appends it and returns it.
func (r *runner) add(row Row, m measure) Row {
	row.Wall, row.CPU, row.PeakRSS, row.DBCPU = m.Wall, m.CPU, m.MaxRSS, m.DBCPU
	if u := m.Conn; u.valid {
		row.Conn = &ConnStats{CPU: time.Duration(u.CPU * float64(time.Second)), RowsRead: u.RowsRead, Inserted: u.RowsInserted,
			Updated: u.RowsUpdated, Deleted: u.RowsDeleted, Statements: u.statements()}
	}
	row.Commits = m.DB.Commits
	if db := m.DB.String(); db != "" {
		row.Note = strings.TrimPrefix(row.Note+"; "+db, "; ")
	}
	if s := m.Wall.Seconds(); s > 0 {
		row.Rate = float64(row.Count) / s
	}
	r.res.Rows = append(r.res.Rows, row)
	r.logf("%-8s N=%d latency=%v: %d in %s = %.0f %s, p50 %v p99 %v, peak RSS %.1f MB, CPU %.2fs, DB CPU %.2fs",
		row.Phase, row.N, row.Latency, row.Count, row.Wall.Round(time.Millisecond), row.Rate, row.Unit, row.P50, row.P99,
		float64(row.PeakRSS)/1024, row.CPU.Seconds(), row.DBCPU.Seconds())
	return row
}

// reset puts the store back to the state right after the import: every
// grant active and free, no send log (the caps' takes), runs, pauses or
// cached token. cap_keys stays: it holds lock rows only, the cap stripes
// made by migration 00016.
func (r *runner) reset(ctx context.Context) error {
	empty := "TRUNCATE TABLE "
	if r.cfg.Driver == store.SQLite {
		empty = "DELETE FROM "
	}
	var qs []string
	for _, t := range []string{"send_log", "runs", "pauses", "tokens"} {
		qs = append(qs, empty+t)
	}
	qs = append(qs, "UPDATE grants SET status = 'active', consumed_at = NULL WHERE status <> 'active'")
	for _, q := range qs {
		if _, err := r.db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("bench: reset: %w", err)
		}
	}
	return nil
}

func (r *runner) concurrency(lat time.Duration) int {
	if r.cfg.Concurrency > 0 {
		return r.cfg.Concurrency
	}
	return ConcurrencyFor(lat)
}

// write stores results.md and results.json in Out.
func (r *runner) write() error {
	r.res.Command = r.command()
	if err := os.WriteFile(filepath.Join(r.cfg.Out, "results.md"), []byte(r.res.Markdown()), 0o644); err != nil {
		return fmt.Errorf("bench: results: %w", err)
	}
	j, err := json.MarshalIndent(r.res, "", "  ")
	if err != nil {
		return fmt.Errorf("bench: results: %w", err)
	}
	if err := os.WriteFile(filepath.Join(r.cfg.Out, "results.json"), j, 0o644); err != nil {
		return fmt.Errorf("bench: results: %w", err)
	}
	return nil
}

func (r *runner) command() string {
	c := r.cfg
	var sizes, lats []string
	for _, n := range c.Sizes {
		sizes = append(sizes, strconv.Itoa(n))
	}
	for _, l := range c.Latencies {
		lats = append(lats, l.String())
	}
	s := "wxcampaign bench "
	if c.Driver == store.SQLite {
		s += "--driver sqlite "
	}
	s += fmt.Sprintf("--sizes %s --products %d --eligible %v --latency %s --baseline-seconds %d",
		strings.Join(sizes, ","), c.Products, c.Eligible, strings.Join(lats, ","), int(c.Baseline.Seconds()))
	if c.Concurrency > 0 {
		s += fmt.Sprintf(" --concurrency %d", c.Concurrency)
	}
	if len(c.Phases) > 0 {
		s += " --phases " + strings.Join(c.Phases, ",")
	}
	if c.Wire != 10*time.Second {
		s += fmt.Sprintf(" --wire-seconds %d", max(0, int(c.Wire.Seconds())))
	}
	if c.BatchSize > 0 {
		s += fmt.Sprintf(" --batch-size %d", c.BatchSize)
	}
	if c.Profile {
		s += " --profile"
	}
	return s
}

// withBatchSize sets the top-level batch_size of a campaign file.
func withBatchSize(src []byte, n int) []byte {
	lines := strings.Split(string(src), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "batch_size:") {
			lines[i] = fmt.Sprintf("batch_size: %d", n)
			return []byte(strings.Join(lines, "\n"))
		}
	}
	return []byte(strings.TrimRight(string(src), "\n") + fmt.Sprintf("\nbatch_size: %d\n", n))
}
