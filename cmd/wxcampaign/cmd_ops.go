package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"

	"github.com/wxcampaign/wxcampaign/campaigns"
	"github.com/wxcampaign/wxcampaign/engine"
	"github.com/wxcampaign/wxcampaign/store"
)

// minRetention is the least history `prune` and retention.keep may keep:
// runs in progress, misfire catch-up (at most a day late) and reconcile
// need the last day.
const minRetention = 24 * time.Hour

// maxCapWindow is the longest limit window a campaign can set (366d): the
// cap takes kept when the campaigns cannot be read.
const maxCapWindow = 366 * 24 * time.Hour

// quotaPausePrefix is the key prefix of the engine's shared 45009 pause
// ("quota:" + appid).
const quotaPausePrefix = "quota:"

var daysRE = regexp.MustCompile(`^([0-9]{1,5})d(.*)$`)

// parseAge reads a duration such as 90d, 2160h or 7d12h.
func parseAge(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	var days time.Duration
	if m := daysRE.FindStringSubmatch(s); m != nil {
		n, _ := strconv.Atoi(m[1])
		days, s = time.Duration(n)*24*time.Hour, m[2]
		if s == "" {
			s = "0s"
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a duration such as 90d, 2160h or 7d12h", s)
	}
	return days + d, nil
}

// longestWindow is the longest limit window of cs.
func longestWindow(cs []*campaigns.Campaign) time.Duration {
	var w time.Duration
	for _, c := range cs {
		for _, l := range c.Limits {
			w = max(w, l.Window)
		}
	}
	return w
}

// pruneOptions are the cut-offs of a prune at now keeping keep: cap takes
// stay for the longest window in use as well.
func pruneOptions(now time.Time, keep, window time.Duration, batch int) store.PruneOptions {
	return store.PruneOptions{Before: now.Add(-keep), CapsBefore: now.Add(-max(keep, window)), Batch: batch}
}

// loadCampaignSet loads the campaigns directory of cfg. A directory
// without campaign files is an error unless campaigns.allow_empty is set.
func loadCampaignSet(cfg Config, d campaigns.Defaults) ([]*campaigns.Campaign, error) {
	cs, err := campaigns.LoadPaths([]string{cfg.Campaigns}, d)
	var list campaigns.ErrorList
	if cfg.CampaignsFile.AllowEmpty && errors.As(err, &list) && len(list) == 1 && errors.Is(list[0], campaigns.ErrNoCampaigns) {
		return nil, nil
	}
	return cs, err
}

// dstWarnings notes, one line each, the schedules whose occurrences a
// daylight saving transition of the next 12 months skips or repeats (they
// run once anyway: docs/campaigns.md).
func dstWarnings(w io.Writer, cs []*campaigns.Campaign, now time.Time) {
	for _, c := range cs {
		for _, n := range engine.DSTNotes(c.Cron, c.Location, now, now.AddDate(1, 0, 0)) {
			fmt.Fprintf(w, "%s: warning: schedule %q in %s: %s\n", c.File, c.Schedule, c.Timezone, n)
		}
	}
}

// reloads counts campaign reloads by result: ok, invalid, empty (an empty
// set refused).
type reloads struct{ c *prometheus.CounterVec }

func newReloads(reg prometheus.Registerer) reloads {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wxcampaign_campaign_reloads_total",
		Help: "Campaign reloads (SIGHUP) by result: ok, invalid (kept the current set), empty (no campaign file: kept the current set)."},
		[]string{"result"})
	reg.MustRegister(c)
	for _, r := range []string{"ok", "invalid", "empty"} {
		c.WithLabelValues(r)
	}
	return reloads{c}
}

// reload loads the set for a SIGHUP; ok false means keep the current set
// (the problem is logged and counted).
func (r reloads) reload(log logrus.FieldLogger, cfg Config, d campaigns.Defaults) (cs []*campaigns.Campaign, ok bool) {
	cs, err := loadCampaignSet(cfg, d)
	switch {
	case errors.Is(err, campaigns.ErrNoCampaigns):
		r.c.WithLabelValues("empty").Inc()
		log.WithField("dir", cfg.Campaigns).Error("reload: the campaigns directory holds no campaign file, keeping the current set (set campaigns.allow_empty: true to allow an empty set)")
		return nil, false
	case err != nil:
		r.c.WithLabelValues("invalid").Inc()
		log.WithError(err).Error("reload: campaigns invalid, keeping the current set")
		return nil, false
	}
	r.c.WithLabelValues("ok").Inc()
	if len(cs) == 0 {
		log.WithField("dir", cfg.Campaigns).Warn("reload: no campaign (campaigns.allow_empty): every campaign is unscheduled")
	}
	return cs, true
}

// retain prunes the store every cfg.Retention.Interval while ctx lasts,
// keeping cfg.Retention.Keep of history and the cap takes of the longest
// window of the current campaigns. Transactions are small and spaced so
// that sends go on.
func (a *app) retain(ctx context.Context, current func() []*campaigns.Campaign) {
	r := a.cfg.Retention
	if r.Keep <= 0 {
		return
	}
	every := r.Interval
	if every <= 0 {
		every = 24 * time.Hour
	}
	log := a.log.WithField("job", "retention")
	t := time.NewTimer(min(time.Minute, every)) // not in the way of the start
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		opt := pruneOptions(time.Now(), r.Keep, longestWindow(current()), r.Batch)
		opt.Pause = 10 * time.Millisecond
		start := time.Now()
		rep, err := a.db.Prune(ctx, opt)
		if err != nil && ctx.Err() == nil {
			log.WithError(err).WithField("deleted", rep.String()).Error("prune failed")
		} else if err == nil {
			log.WithField("deleted", rep.String()).WithField("rows", rep.Total()).WithField("took", time.Since(start).Round(time.Millisecond).String()).Info("pruned history")
		}
		t.Reset(every)
	}
}

func pruneCmd(g *globals) *cobra.Command {
	var before string
	var batch int
	cmd := &cobra.Command{
		Use:   "prune --before DURATION",
		Short: "Delete history older than DURATION (90d, 2160h) that no run or limit needs",
		Long: `Delete history older than DURATION: the send log, delivery events,
subscription events and request ids, used-up and revoked grants, finished
runs and ended pauses; cap takes older than the longest limit window of the
campaigns as well. Kept whatever their age: active grants, sends in flight,
the latest sent row of a long-term grant per campaign (repeat: once), the
latest run of each campaign. Small transactions: safe while the daemon runs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			keep, err := parseAge(before)
			if err != nil {
				return &exitError{code: 2, err: fmt.Errorf("--before: %w", err)}
			}
			if keep < minRetention {
				return &exitError{code: 2, err: fmt.Errorf("--before %s: keep at least %s", before, minRetention)}
			}
			if batch < 0 {
				return &exitError{code: 2, err: fmt.Errorf("--batch %d: want a positive number", batch)}
			}
			a, err := g.openCmd(cmd.Context(), true)
			if err != nil {
				return err
			}
			cfg := a.cfg
			defer a.Close()
			window := maxCapWindow
			if cs, err := loadCampaignSet(cfg, a.defaults()); err == nil {
				window = longestWindow(cs)
			} else {
				fmt.Fprintf(g.stderr, "prune: campaigns %s not readable, keeping cap takes of the longest possible window (366d): %v\n", cfg.Campaigns, firstLine(err))
			}
			opt := pruneOptions(time.Now(), keep, window, batch)
			rep, err := a.db.Prune(cmd.Context(), opt)
			fmt.Fprintf(g.stdout, "prune: deleted %d rows older than %s (cap takes older than %s): %s\n",
				rep.Total(), opt.Before.UTC().Format(time.RFC3339), opt.CapsBefore.UTC().Format(time.RFC3339), rep)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&before, "before", "", "delete what is older than this (e.g. 90d, 2160h; at least 24h)")
	cmd.Flags().IntVar(&batch, "batch", 1000, "rows deleted per transaction")
	_ = cmd.MarkFlagRequired("before")
	return cmd
}

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

func backupCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "backup FILE",
		Short: "Write a consistent copy of the SQLite store to FILE, while the daemon runs",
		Long: `Write a consistent copy of the embedded SQLite store to the new file
FILE (SQLite's VACUUM INTO: one snapshot, read without stopping the sends).
On MySQL/MariaDB use mariadb-dump --single-transaction (docs/operations.md).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := g.config()
			if err != nil {
				return err
			}
			if cfg.Database.Driver != store.SQLite {
				return &exitError{code: 1, err: store.ErrBackupMySQL}
			}
			a, err := g.open(cmd.Context(), cfg, false)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			defer a.Close()
			start := time.Now()
			if err := a.db.Backup(cmd.Context(), args[0]); err != nil {
				return &exitError{code: 1, err: err}
			}
			v, err := store.CheckBackup(cmd.Context(), args[0])
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			fi, _ := os.Stat(args[0])
			fmt.Fprintf(g.stdout, "backup: wrote %s (%d bytes, schema version %d) in %s\n", args[0], fi.Size(), v, time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
}

func restoreCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "restore FILE",
		Short: "Replace the SQLite store with the backup FILE (stop the daemon first)",
		Long: `Replace the embedded SQLite store with the backup FILE, after checking it
(integrity, schema). Refused while any process has the store open: stop the
daemon first, restore, start it. The current store is kept next to it as
<db>.before-restore-<time>. Everything recorded after the backup was taken
is lost: see docs/operations.md for what that means for sends.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cfg, err := g.config()
			if err != nil {
				return err
			}
			if cfg.Database.Driver != store.SQLite {
				return &exitError{code: 1, err: store.ErrBackupMySQL}
			}
			v, err := store.CheckBackup(ctx, args[0])
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			path := cfg.Database.DSN
			if path == "" {
				path = store.DefaultSQLitePath
			}
			var kept string
			if _, err := os.Stat(path); err == nil {
				kept, err = keepCurrent(ctx, cfg.Database, path)
				if err != nil {
					return &exitError{code: 1, err: err}
				}
			}
			if err := store.Restore(ctx, cfg.Database, args[0]); err != nil {
				if kept != "" {
					_ = os.Remove(kept)
				}
				return &exitError{code: 1, err: err}
			}
			fmt.Fprintf(g.stdout, "restore: %s restored from %s (schema version %d)\n", path, args[0], v)
			if kept != "" {
				fmt.Fprintf(g.stdout, "restore: the store as it was is in %s\n", kept)
			}
			return nil
		},
	}
}

// keepCurrent backs the current store up next to it before a restore.
func keepCurrent(ctx context.Context, cfg store.Config, path string) (string, error) {
	db, err := store.Open(ctx, cfg)
	if err != nil {
		return "", err
	}
	kept := path + ".before-restore-" + time.Now().UTC().Format("20060102T150405")
	err = db.Backup(ctx, kept)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	return kept, err
}

func pausesCmd(g *globals) *cobra.Command {
	pauses := &cobra.Command{Use: "pauses", Short: "The shared sending pauses (the quota pause after WeChat's 45009)"}
	list := &cobra.Command{
		Use:   "list",
		Short: "List the pauses: key, until when, why",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := g.openCmd(cmd.Context(), true)
			if err != nil {
				return err
			}
			defer a.Close()
			ps, err := a.db.ListPauses(cmd.Context())
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			if len(ps) == 0 {
				fmt.Fprintln(g.stdout, "no pauses")
				return nil
			}
			now := time.Now()
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "KEY\tUNTIL\tSTATE\tREASON")
			for _, p := range ps {
				state := "active"
				if !p.Until.After(now) {
					state = "ended"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Key, p.Until.In(a.loc).Format(time.RFC3339), state, p.Reason)
			}
			return tw.Flush()
		},
	}
	clear := &cobra.Command{
		Use:   "clear [APPID]",
		Short: "End the quota pause of APPID (every pause without APPID) for every process",
		Long: `End the quota pause of APPID, or every pause without APPID, for every
process on the store: the next run sends again. Use it after WeChat's 45009
once the quota is back (a quota raise, or a reset earlier than midnight in
Asia/Shanghai).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := g.openCmd(cmd.Context(), true)
			if err != nil {
				return err
			}
			defer a.Close()
			var keys []string
			if len(args) == 1 {
				keys = []string{quotaPausePrefix + args[0]}
			}
			gone, err := a.db.ClearPauses(cmd.Context(), keys...)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			if len(gone) == 0 {
				if len(args) == 1 {
					fmt.Fprintf(g.stdout, "no pause for appid %s\n", args[0])
				} else {
					fmt.Fprintln(g.stdout, "no pauses")
				}
				return nil
			}
			for _, k := range gone {
				fmt.Fprintf(g.stdout, "cleared %s\n", k)
			}
			return nil
		},
	}
	pauses.AddCommand(list, clear)
	return pauses
}
