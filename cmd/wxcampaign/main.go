// Command wxcampaign is the one binary of the engine: validate campaign
// files, migrate the store, import grants, preview and send campaigns, run
// the daemon (scheduler and HTTP API), run the WeChat simulator and a demo.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"

	"github.com/wxcampaign/wxcampaign/campaigns"
	"github.com/wxcampaign/wxcampaign/engine"
	"github.com/wxcampaign/wxcampaign/store"
	"github.com/wxcampaign/wxcampaign/wechat"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
}

// exitError carries a process exit code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

// Main runs the command line args and returns the exit code: 0 success,
// 1 failure (invalid campaigns, a run that could not run), 2 usage errors.
// Tests call it with a temporary database and port 0.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	g := &globals{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	root := &cobra.Command{
		Use:           "wxcampaign",
		Short:         "Scheduled campaigns and reminders for WeChat subscription messages",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&g.configPath, "config", "", "engine config file (default: built-in defaults on embedded SQLite)")
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	prof := addProfileFlags(root) // hidden --cpuprofile, --memprofile
	root.AddCommand(validateCmd(g), migrateCmd(g), grantsCmd(g), previewCmd(g), sendCmd(g), runCmd(g), wxsimCmd(g), demoCmd(g), benchCmd(g))
	root.AddCommand(templatesCmd(g))
	err := root.ExecuteContext(ctx)
	if perr := prof.stop(); perr != nil {
		fmt.Fprintln(stderr, "wxcampaign: profile:", perr)
	}
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(stderr, "wxcampaign:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "wxcampaign:", err)
	if isUsage(err) {
		return 2
	}
	return 1
}

func isUsage(err error) bool {
	s := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand", "accepts ", "requires at least", "invalid argument", "flag needs an argument"} {
		if strings.Contains(s, p) {
			return true
		}
	}
	return false
}

// globals are what every command shares.
type globals struct {
	configPath string
	stdin      io.Reader
	stdout     io.Writer
	stderr     io.Writer
	getenv     func(string) string
}

func (g *globals) config() (Config, error) {
	cfg, err := loadConfig(g.configPath, g.getenv)
	if err != nil {
		return cfg, &exitError{code: 2, err: err}
	}
	return cfg, nil
}

func (g *globals) logger(cfg Config) *logrus.Logger {
	l := logrus.New()
	l.SetOutput(g.stderr)
	if lvl, err := logrus.ParseLevel(cfg.Log.Level); err == nil {
		l.SetLevel(lvl)
	}
	if cfg.Log.Format == "json" {
		l.SetFormatter(&logrus.JSONFormatter{})
	}
	return l
}

// app is the wired engine of one command.
type app struct {
	cfg   Config
	log   *logrus.Logger
	db    *store.DB
	facts *store.Facts
	own   bool // facts has its own connection to close
	loc   *time.Location
}

// open wires the store; migrate applies migrations when the config allows
// it (preview passes false: it writes nothing).
func (g *globals) open(ctx context.Context, cfg Config, migrate bool) (*app, error) {
	a := &app{cfg: cfg, log: g.logger(cfg)}
	loc, err := time.LoadLocation(cfg.Timezone)
	if err != nil {
		return nil, err
	}
	a.loc = loc
	a.db, err = store.Open(ctx, cfg.Database)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if migrate && cfg.autoMigrate() {
		if _, err := a.db.Migrate(ctx); err != nil {
			a.db.Close()
			return nil, fmt.Errorf("migrate store: %w", err)
		}
	} else if v, err := a.db.SchemaVersion(ctx); err != nil || v == 0 {
		a.db.Close()
		return nil, fmt.Errorf("the store (%s) has no schema yet: run `wxcampaign migrate` first", cfg.Database.Driver)
	}
	if cfg.Facts != nil {
		a.facts, err = store.OpenFacts(ctx, *cfg.Facts)
		if err != nil {
			a.db.Close()
			return nil, fmt.Errorf("open facts database: %w", err)
		}
		a.own = true
	} else {
		a.facts = a.db.Facts()
	}
	if ff := cfg.FactsFile; ff != nil && ff.Timezone != "" {
		loc, _ := time.LoadLocation(ff.Timezone)
		a.facts.SetLocation(loc)
	}
	return a, nil
}

func (a *app) Close() {
	if a.own {
		a.facts.Close()
	}
	a.db.Close()
}

func (a *app) defaults() campaigns.Defaults {
	return campaigns.Defaults{Location: a.loc, State: a.cfg.WeChat.State, Lang: a.cfg.WeChat.Lang, Pages: a.cfg.WeChat.Pages}
}

func (a *app) client(m *engine.Metrics) (*wechat.Client, error) {
	w := a.cfg.WeChat
	if w.AppID == "" || w.Secret == "" {
		return nil, errors.New("wechat.appid and wechat.secret are required to send (set them in the config or WXC_WECHAT_APPID / WXC_WECHAT_SECRET)")
	}
	return wechat.New(wechat.Config{
		BaseURL: w.BaseURL, AppID: w.AppID, Secret: w.Secret, Timeout: w.Timeout,
		Tokens: a.db, Logger: a.log, OnTokenRefresh: m.CountTokenRefresh,
	})
}

func (a *app) engine(sender engine.Sender, m *engine.Metrics) (*engine.Engine, error) {
	w := a.cfg.WeChat
	return engine.New(engine.Config{
		AppID: w.AppID, State: w.State, Lang: w.Lang, Rate: w.Rate, Concurrency: w.Concurrency,
		MaxAttempts: w.MaxAttempts, RetryBase: w.RetryBase, Ambiguous: engine.AmbiguousPolicy(w.Ambiguous), ReconcileGrace: w.ReconcileGrace,
		Lease: a.cfg.Engine.Lease, Logger: a.log, Metrics: m,
	}, a.db, a.facts, sender)
}
