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
	"github.com/wxcampaign/wxcampaign/wechat/wxsender"
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
	root.AddCommand(pruneCmd(g), backupCmd(g), restoreCmd(g), pausesCmd(g))
	root.AddCommand(runsCmd(g), campaignsCmd(g))
	root.AddCommand(statsCmd(g), reportCmd(g))
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

// config loads and validates the config file before anything is contacted:
// any problem is exit code 2. needs adds what the command requires
// (credentials to send, a token for the API).
func (g *globals) config(needs ...need) (Config, error) {
	var n need
	for _, x := range needs {
		n |= x
	}
	cfg, err := loadConfig(g.configPath, g.getenv, n)
	if isConfigError(err) {
		return cfg, &exitError{code: 2, err: fmt.Errorf("invalid config:\n%w", err)}
	}
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
	// ledger, when set, is the store the engine sees instead of db (a
	// preview --at sees the grants as of that time).
	ledger engine.Store
}

// open wires the store; migrate applies migrations when the config allows
// it.
func (g *globals) open(ctx context.Context, cfg Config, migrate bool) (*app, error) {
	return g.openStore(ctx, cfg, migrate, false)
}

// openReadOnly wires the store for a command that writes nothing (preview):
// an SQLite file is opened read-only and a missing one is an error, not a
// new file.
func (g *globals) openReadOnly(ctx context.Context, cfg Config) (*app, error) {
	return g.openStore(ctx, cfg, false, true)
}

func (g *globals) openStore(ctx context.Context, cfg Config, migrate, readOnly bool) (*app, error) {
	a := &app{cfg: cfg, log: g.logger(cfg)}
	loc, err := time.LoadLocation(cfg.Timezone)
	if err != nil {
		return nil, err
	}
	a.loc = loc
	if readOnly {
		a.db, err = store.OpenReadOnly(ctx, cfg.Database)
		if errors.Is(err, store.ErrNoDatabase) {
			return nil, fmt.Errorf("open store: %w: nothing to preview yet (a preview creates no file); import grants or run `wxcampaign migrate` first", err)
		}
	} else {
		a.db, err = store.Open(ctx, cfg.Database)
	}
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
	if err := a.facts.Configure(cfg.factsConfig()); err != nil {
		a.Close()
		return nil, fmt.Errorf("facts: %w", err)
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
	wc := a.cfg.wechatConfig()
	wc.Tokens, wc.Logger, wc.OnTokenRefresh = a.db, a.log, m.CountTokenRefresh
	return wechat.New(wc)
}

func (a *app) engine(client *wechat.Client, m *engine.Metrics) (*engine.Engine, error) {
	var sender engine.Sender
	if client != nil {
		sender = wxsender.New(client)
	}
	ec := a.cfg.engineConfig()
	ec.Logger, ec.Metrics = a.log, m
	var st engine.Store = a.db
	if a.ledger != nil {
		st = a.ledger
	}
	return engine.New(ec, st, a.facts, sender)
}
