package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
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
			cfg, err := g.config()
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
// the HTTP server. SIGHUP reloads the campaigns; a bad set keeps the old.
func (g *globals) daemon(ctx context.Context, cfg Config) error {
	a, err := g.open(ctx, cfg, true)
	if err != nil {
		return err
	}
	defer a.Close()
	log := a.log
	cs, err := campaigns.LoadPaths([]string{cfg.Campaigns}, a.defaults())
	if err != nil {
		return fmt.Errorf("campaigns %s:\n%w", cfg.Campaigns, err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := engine.NewMetrics(reg)
	client, err := a.client(m)
	if err != nil {
		return err
	}
	eng, err := a.engine(client, m)
	if err != nil {
		return err
	}
	cs = a.checked(ctx, client, cs)
	cat := campaigns.NewCatalog(cs)
	srv, err := api.New(api.Config{Tokens: cfg.HTTP.Tokens, MaxTemplates: cfg.HTTP.MaxTemplates, MaxTemplatesPerResult: cfg.HTTP.MaxTemplatesPerResult,
		MaxBody: cfg.HTTP.MaxBody, PushToken: cfg.WeChat.PushToken},
		api.Deps{Subs: a.db, Catalog: cat, Sessions: client, Logger: log, Deliveries: a.db, Registerer: reg,
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
		return fmt.Errorf("http api: %w (set http.token or %s)", err, envHTTPToken)
	}
	ln, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.HTTP.Listen, err)
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	defer a.startTemplateRefresh(ctx, client, hup)() // templates.refresh: a changed registry reloads like SIGHUP
	hs := api.NewHTTPServer(ln.Addr().String(), srv.Handler())
	httpErr := make(chan error, 1)
	go func() { httpErr <- hs.Serve(ln) }()
	fmt.Fprintf(g.stdout, "listening on http://%s\n", ln.Addr())

	sched := engine.NewScheduler(eng)
	sched.Start(ctx)
	sched.Apply(cs)
	log.WithField("campaigns", len(cs)).WithField("listen", ln.Addr().String()).Info("wxcampaign running")

	for {
		select {
		case <-hup:
			next, err := campaigns.LoadPaths([]string{cfg.Campaigns}, a.defaults())
			if err != nil {
				log.WithError(err).Error("reload: campaigns invalid, keeping the current set")
				continue
			}
			next = a.checked(ctx, client, next)
			cat.Set(next)
			sched.Apply(next)
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
	return ok
}
