package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/wxcampaign/wxcampaign/api"
	"github.com/wxcampaign/wxcampaign/campaigns"
	"github.com/wxcampaign/wxcampaign/engine"
	"github.com/wxcampaign/wxcampaign/wechat"
)

func runCmd(g *globals) *cobra.Command {
	var listen string
	cmd := &cobra.Command{
		Use:   "run",
		Short: "The daemon: scheduler over the campaigns directory, HTTP API, /healthz, /metrics",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := g.config(needSend, needAPI)
			if err != nil {
				return err
			}
			if listen != "" {
				cfg.HTTP.Listen = listen
			}
			if err := g.daemon(cmd.Context(), cfg); err != nil {
				return &exitError{code: 1, err: err}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "", "HTTP listen address (overrides http.listen; port 0 picks a free port)")
	return cmd
}

// daemon runs until ctx ends (SIGTERM/SIGINT): then it stops scheduling,
// lets the sends in flight finish, releases unsent reservations and closes
// the HTTP server. SIGHUP reloads the campaigns; a bad set keeps the old,
// and so does an empty one unless campaigns.allow_empty. With retention.keep
// set it prunes history every retention.interval.
func (g *globals) daemon(ctx context.Context, cfg Config) error {
	a, err := g.open(ctx, cfg, true)
	if err != nil {
		return err
	}
	defer a.Close()
	log := a.log
	cs, err := loadCampaignSet(cfg, a.defaults())
	if err != nil {
		return fmt.Errorf("campaigns %s:\n%w", cfg.Campaigns, err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := engine.NewMetrics(reg)
	rl := newReloads(reg)
	client, err := a.client(m)
	if err != nil {
		return err
	}
	if err := checkCredentials(ctx, client, cfg.WeChat); err != nil {
		return err
	}
	eng, err := a.engine(client, m)
	if err != nil {
		return err
	}
	cs = a.checked(ctx, client, cs)
	cat := campaigns.NewCatalog(cs)
	apiCfg := cfg.apiConfig()
	apiCfg.Location = a.loc // days of /v1/stats/subscriptions
	srv, err := api.New(apiCfg,
		api.Deps{Subs: a.db, Catalog: cat, Sessions: client, Logger: log, Deliveries: a.db, Registerer: reg,
			Balances: a.db, Schedules: cat, Stats: a.db, Popups: a.db,
			Ready: api.HealthChecks(map[string]func(context.Context) error{
				"store": func(ctx context.Context) error { return a.db.SQLX().PingContext(ctx) },
				"campaigns": func(context.Context) error {
					if cat.Len() == 0 {
						return errors.New("no campaign loaded")
					}
					return nil
				},
			}),
			Metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{})})
	if err != nil {
		return fmt.Errorf("http api: %w", err)
	}
	ln, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.HTTP.Listen, err)
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	defer a.startTemplateRefresh(ctx, client, hup)() // templates.refresh: a changed registry reloads like SIGHUP
	var current atomic.Pointer[[]*campaigns.Campaign]
	current.Store(&cs) // the loaded set, for the console and the retention job
	con, retries, err := a.newConsole(ctx, eng, func() []*campaigns.Campaign { return *current.Load() })
	if err != nil {
		return err
	}
	handler := srv.Handler()
	if con != nil {
		con.SetCampaigns(cs)
		if cfg.Console.Listen == "" {
			handler = con.Mount(handler)
		}
	}
	handler = httpMetrics(reg, handler)
	hs := api.NewHTTPServer(ln.Addr().String(), handler)
	httpErr := make(chan error, 1)
	go func() { httpErr <- hs.Serve(ln) }()
	fmt.Fprintf(g.stdout, "listening on http://%s\n", ln.Addr())
	if con != nil && cfg.Console.Listen != "" {
		cln, err := net.Listen("tcp", cfg.Console.Listen)
		if err != nil {
			return fmt.Errorf("listen %s (console.listen): %w", cfg.Console.Listen, err)
		}
		cs := api.NewHTTPServer(cln.Addr().String(), con.Handler())
		go func() { httpErr <- cs.Serve(cln) }()
		defer cs.Close()
		fmt.Fprintf(g.stdout, "console on http://%s\n", cln.Addr())
	}
	defer retries.Wait()

	sched := engine.NewScheduler(eng)
	sched.SetHooks(a.hooks(eng))
	sched.Start(ctx)
	sched.Apply(cs)
	rctx, rstop := context.WithCancel(ctx)
	retained := make(chan struct{})
	go func() {
		defer close(retained)
		a.retain(rctx, func() []*campaigns.Campaign { return *current.Load() })
	}()
	defer func() { rstop(); <-retained }()
	log.WithField("campaigns", len(cs)).WithField("listen", ln.Addr().String()).Info("wxcampaign running")

	for {
		select {
		case <-hup:
			next, ok := rl.reload(log, cfg, a.defaults())
			if !ok {
				continue
			}
			next = a.checked(ctx, client, next)
			cat.Set(next)
			sched.Apply(next)
			current.Store(&next)
			if con != nil {
				con.SetCampaigns(next)
			}
			log.WithField("campaigns", len(next)).Info("reloaded campaigns")
			fmt.Fprintf(g.stdout, "reloaded %d campaign(s)\n", len(next))
		case err := <-httpErr:
			sched.Stop()
			return fmt.Errorf("http server: %w", err)
		case <-ctx.Done():
			log.Info("shutting down: draining runs")
			sched.Stop()
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			log.Info("stopped")
			return nil
		}
	}
}

// checked drops (and logs) the campaigns that do not match the account's
// templates: they would fail on every send.
func (a *app) checked(ctx context.Context, c *wechat.Client, cs []*campaigns.Campaign) []*campaigns.Campaign {
	ok, bad := a.checkAgainstAccount(ctx, c, cs)
	for _, e := range bad {
		a.log.WithField("error", e.Error()).Error("campaign does not match the account's templates: not scheduled")
	}
	campaigns.LinkReserves(ok) // a campaign not scheduled reserves nothing
	return ok
}
