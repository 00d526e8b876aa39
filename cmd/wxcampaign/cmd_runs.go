package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	wx "github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/campaigns"
	"github.com/wxcampaign/wxcampaign/console"
	"github.com/wxcampaign/wxcampaign/engine"
	"github.com/wxcampaign/wxcampaign/store"
)

func runsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "runs",
		Short: "Run records: list, show, and retry a stopped run from its checkpoint",
	}
	var limit int
	var beforeID int64
	var format string
	list := &cobra.Command{
		Use:   "list [CAMPAIGN]",
		Short: "Runs, newest first (--before ID for the next page)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			a, err := g.openCmd(cmd.Context(), true)
			if err != nil {
				return err
			}
			defer a.Close()
			f := store.RunFilter{Limit: limit, BeforeID: beforeID}
			if len(args) == 1 {
				f.Campaign = args[0]
			}
			runs, err := a.db.RunsPage(cmd.Context(), f)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			if format == "json" {
				return writeJSON(g, runs)
			}
			tw := tabwriter.NewWriter(g.stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tCAMPAIGN\tOCCURRENCE\tSTATUS\tSENT\tSKIPPED\tDEFERRED\tFAILED\tDURATION\tCHECKPOINT")
			for _, r := range runs {
				d := ""
				if r.Report != nil {
					d = r.Report.Duration.Round(time.Millisecond).String()
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\t%d\n", r.ID, r.Campaign, r.Occurrence.In(a.loc).Format(time.RFC3339),
					r.State(), r.Report.Count("sent"), r.Report.Count("skipped"), r.Report.Count("deferred"), r.Report.Count("failed"), d, r.Checkpoint)
			}
			tw.Flush()
			if len(runs) == f.Limit && len(runs) > 0 {
				fmt.Fprintf(g.stdout, "next page: --before %d\n", runs[len(runs)-1].ID)
			}
			return nil
		},
	}
	list.Flags().IntVar(&limit, "limit", 20, "runs per page")
	list.Flags().Int64Var(&beforeID, "before", 0, "only runs with an id below this (the next page)")
	list.Flags().StringVar(&format, "format", "table", "table or json")

	var showFormat string
	show := &cobra.Command{
		Use:   "show ID",
		Short: "One run: counts per outcome and reason, errors, checkpoint, duration, rate, replicas",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(showFormat); err != nil {
				return err
			}
			id, err := parseRunID(args[0])
			if err != nil {
				return err
			}
			a, err := g.openCmd(cmd.Context(), true)
			if err != nil {
				return err
			}
			defer a.Close()
			r, err := a.db.GetRunByID(cmd.Context(), id)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			if showFormat == "json" {
				return writeJSON(g, r)
			}
			printRun(g, r, a.loc)
			return nil
		},
	}
	show.Flags().StringVar(&showFormat, "format", "table", "table or json")

	rf := &runFlags{format: "table"}
	retry := &cobra.Command{
		Use:   "retry ID",
		Short: "Resume a stopped run from its checkpoint (the occurrence runs again; nothing recorded is sent twice)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := rf.checkFormat(); err != nil {
				return err
			}
			id, err := parseRunID(args[0])
			if err != nil {
				return err
			}
			return g.retryRun(cmd.Context(), id, rf.format)
		},
	}
	retry.Flags().StringVar(&rf.format, "format", "table", "table or json")
	cmd.AddCommand(list, show, retry)
	return cmd
}

// campaignsCmd is `campaigns pause|resume NAME`.
func campaignsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "campaigns",
		Short: "Pause or resume a campaign on every replica (stored; honoured at the next tick)",
	}
	var reason, by string
	pause := &cobra.Command{
		Use:   "pause NAME",
		Short: "Pause a campaign: every replica skips its ticks until resumed",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := g.openCmd(cmd.Context(), true)
			if err != nil {
				return err
			}
			defer a.Close()
			changed, err := a.db.PauseCampaign(cmd.Context(), args[0], g.actor(by), reason, time.Now())
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			if !changed {
				fmt.Fprintf(g.stdout, "%s was already paused\n", args[0])
				return nil
			}
			fmt.Fprintf(g.stdout, "paused %s (every replica skips its next ticks)\n", args[0])
			return nil
		},
	}
	pause.Flags().StringVar(&reason, "reason", "", "why (shown in the console and the audit table)")
	pause.Flags().StringVar(&by, "by", "", "who (default cli:$USER)")
	resume := &cobra.Command{
		Use:   "resume NAME",
		Short: "Resume a paused campaign",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := g.openCmd(cmd.Context(), true)
			if err != nil {
				return err
			}
			defer a.Close()
			changed, err := a.db.ResumeCampaign(cmd.Context(), args[0], g.actor(by), time.Now())
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			if !changed {
				fmt.Fprintf(g.stdout, "%s was not paused\n", args[0])
				return nil
			}
			fmt.Fprintf(g.stdout, "resumed %s\n", args[0])
			return nil
		},
	}
	resume.Flags().StringVar(&by, "by", "", "who (default cli:$USER)")
	cmd.AddCommand(pause, resume)
	return cmd
}

func (g *globals) actor(by string) string {
	if by != "" {
		return by
	}
	if u := g.getenv("USER"); u != "" {
		return "cli:" + u
	}
	return "cli"
}

// openCmd reads the config and opens its store for a command (migrated
// when migrate is set and the config allows); a store that cannot be
// opened is exit code 1.
func (g *globals) openCmd(ctx context.Context, migrate bool) (*app, error) {
	cfg, err := g.config()
	if err != nil {
		return nil, err
	}
	a, err := g.open(ctx, cfg, migrate)
	if err != nil {
		return nil, &exitError{code: 1, err: err}
	}
	return a, nil
}

func checkFormat(f string) error {
	if f != "table" && f != "json" {
		return &exitError{code: 2, err: fmt.Errorf("--format %q: want table or json", f)}
	}
	return nil
}

func parseRunID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, &exitError{code: 2, err: fmt.Errorf("run id %q: want a positive number (see `wxcampaign runs list`)", s)}
	}
	return id, nil
}

func writeJSON(g *globals, v any) error {
	enc := json.NewEncoder(g.stdout)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func printRun(g *globals, r store.Run, loc *time.Location) {
	w := g.stdout
	fmt.Fprintf(w, "run %d  campaign %s  occurrence %s\n", r.ID, r.Campaign, r.Occurrence.In(loc).Format(time.RFC3339))
	fmt.Fprintf(w, "status %s  checkpoint %d (last grant id whose send is recorded)\n", r.State(), r.Checkpoint)
	fmt.Fprintf(w, "lease %s until %s\n", r.Holder, r.LeaseUntil.In(loc).Format(time.RFC3339))
	if ok, why := r.Retryable(time.Now()); ok && r.Status != store.RunRunning {
		fmt.Fprintf(w, "retry: wxcampaign runs retry %d\n", r.ID)
	} else if why != "" {
		fmt.Fprintln(w, "retry:", why)
	}
	rep := r.Report
	if rep == nil {
		fmt.Fprintln(w, "no report (the run has not finished an attempt)")
		return
	}
	fmt.Fprintf(w, "attempts %d  grants looked at %d  duration %s  %.1f messages/s  finished %s\n", rep.Attempts, rep.Looked,
		rep.Duration.Round(time.Millisecond), rep.Rate, r.FinishedAt.In(loc).Format(time.RFC3339))
	fmt.Fprintln(w, "replicas:", strings.Join(rep.Replicas, ", "))
	outs := make([]string, 0, len(rep.Counts))
	for o, n := range rep.Counts {
		outs = append(outs, fmt.Sprintf("%s %d", o, n))
	}
	sort.Strings(outs)
	fmt.Fprintln(w, "outcomes:", strings.Join(outs, ", "))
	type rc struct {
		r string
		n int
	}
	var rs []rc
	for k, n := range rep.Reasons {
		rs = append(rs, rc{k, n})
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].n > rs[j].n || rs[i].n == rs[j].n && rs[i].r < rs[j].r })
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for _, x := range rs {
		fmt.Fprintf(tw, "  %d\t%s\n", x.n, x.r)
	}
	tw.Flush()
	for _, e := range rep.Errors {
		fmt.Fprintln(w, "error:", e)
	}
}

// recordRun stores one attempt's report with its run; a run that never
// took the lease (already run, a preview) has none.
func (a *app) recordRun(ctx context.Context, sum engine.Summary, err error, replica string) {
	if sum.DryRun || errors.Is(err, engine.ErrAlreadyRun) || sum.Status == "" || sum.Status == "error" {
		return
	}
	// Bounded: a store outage must not hold the scheduler's next tick.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	rerr := a.db.RecordRunReport(rctx, sum.Campaign, sum.Occurrence, console.Report(sum, replica), time.Now())
	if rerr != nil && wx.ErrorCode(rerr) != wx.ENOTFOUND {
		a.log.WithError(rerr).WithField("campaign", sum.Campaign).Warn("record run report")
	}
}

// findCampaign loads the campaigns directory and returns the one named.
func (a *app) findCampaign(name string) (*campaigns.Campaign, error) {
	cs, err := campaigns.LoadPaths([]string{a.cfg.Campaigns}, a.defaults())
	if err != nil {
		return nil, fmt.Errorf("campaigns %s:\n%w", a.cfg.Campaigns, err)
	}
	for _, c := range cs {
		if c.Name == name {
			return c, nil
		}
	}
	return nil, fmt.Errorf("campaign %q is not in %s", name, a.cfg.Campaigns)
}

// retryRun is `runs retry ID`: it checks WeChat like send, reopens the run
// at its checkpoint and runs the occurrence again in this process.
func (g *globals) retryRun(ctx context.Context, id int64, format string) error {
	a, err := g.openCmd(ctx, true)
	if err != nil {
		return err
	}
	defer a.Close()
	r, err := a.db.GetRunByID(ctx, id)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	if ok, why := r.Retryable(time.Now()); !ok {
		return &exitError{code: 1, err: errors.New(why)}
	}
	c, err := a.findCampaign(r.Campaign)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	client, err := a.client(nil)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	if _, err := client.Token(ctx); err != nil {
		return &exitError{code: 1, err: fmt.Errorf("WeChat: %w", err)}
	}
	if _, bad := a.checkAgainstAccount(ctx, client, []*campaigns.Campaign{c}); len(bad) > 0 {
		return &exitError{code: 1, err: fmt.Errorf("campaign does not match the account's templates:\n%w", bad)}
	}
	eng, err := a.engine(client, nil)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	if r, err = a.db.ReopenRun(ctx, id, time.Now()); err != nil {
		return &exitError{code: 1, err: err}
	}
	_ = a.db.AddAudit(ctx, store.AuditEntry{At: time.Now(), Actor: g.actor(""), Action: "retry",
		Target: fmt.Sprintf("run %d (%s %s)", id, r.Campaign, r.Occurrence.Format(time.RFC3339)), Detail: fmt.Sprintf("from checkpoint %d", r.Checkpoint)})
	out := newReporter(g.stdout, format, 0, false)
	out.loc = c.Location
	sum, err := eng.Run(ctx, c, engine.Options{At: r.Occurrence, Report: out.report})
	a.recordRun(ctx, sum, err, eng.Holder())
	out.finish(sum)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	return nil
}

// htmlPreview collects a preview for `preview --html FILE`.
type htmlPreview struct {
	col  *console.Collector
	next func(engine.GrantReport)
}

func newHTMLPreview(c *campaigns.Campaign, at time.Time, next func(engine.GrantReport)) *htmlPreview {
	if at.IsZero() {
		at = time.Now().In(c.Location)
	}
	return &htmlPreview{col: console.NewCollector(c, console.Template{}, at, 100, 0, nil), next: next}
}

func (h *htmlPreview) report(g engine.GrantReport) {
	h.next(g)
	h.col.Report(g)
}

// write writes the self-contained page (styles inline, no script, nothing
// fetched) to path.
func (h *htmlPreview) write(path string, runErr error) error {
	var b strings.Builder
	if err := console.WritePreviewHTML(&b, h.col.Finish(runErr)); err != nil {
		return err
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("preview --html: %w", err)
	}
	return nil
}
