package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/wxcampaign/wxcampaign/campaigns"
	"github.com/wxcampaign/wxcampaign/engine"
)

func validateCmd(g *globals) *cobra.Command {
	var templates string
	cmd := &cobra.Command{
		Use:   "validate [--templates FILE] PATH...",
		Short: "Check campaign files and directories; errors as file:line:col: message",
		Long: `Check campaign files and directories; errors as file:line:col: message.

Every campaign is also checked against the account's template list: with
--templates FILE against that file (the simulator's templates format, as
served by "wxcampaign wxsim --templates"), offline; else, with --config,
against the template registry in the store ("wxcampaign templates sync")
when there is one. The template id must be listed, the kind must match, the
data keys must be exactly the template's keys with the same types, and enum
values (listed under enums, or literals a data expression can result in)
must be the template's. With wechat.pages in the config, a page whose path is
known must be one of them.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := g.config()
			if err != nil {
				return err
			}
			var ts []campaigns.TemplateInfo
			against := "" // what the campaigns are checked against; "": nothing
			if templates != "" {
				if ts, err = loadTemplateInfos(templates); err != nil {
					return &exitError{code: 1, err: err}
				}
				against = templates
			} else if g.configPath != "" {
				var synced time.Time
				var ok bool
				if ts, synced, ok = g.validateRegistry(cmd.Context(), cfg, g.stderr); ok {
					against = fmt.Sprintf("the registry of %s synced %s", cfg.WeChat.AppID, synced.Format(time.RFC3339))
				}
			}
			loc, _ := time.LoadLocation(cfg.Timezone)
			cs, err := campaigns.LoadPaths(args, campaigns.Defaults{Location: loc, State: cfg.WeChat.State, Lang: cfg.WeChat.Lang, Pages: cfg.WeChat.Pages})
			var list campaigns.ErrorList
			if err != nil && !errors.As(err, &list) {
				fmt.Fprintln(g.stderr, err)
				return &exitError{code: 1}
			}
			if against != "" {
				// Only the campaigns that loaded: a broken file has its
				// errors already.
				list = append(list, campaigns.CheckTemplates(cs, ts)...)
			}
			if len(list) > 0 {
				for _, e := range list {
					fmt.Fprintln(g.stderr, e.Error())
				}
				return &exitError{code: 1}
			}
			if against != "" {
				fmt.Fprintf(g.stdout, "ok: %d campaign(s) valid, templates match %s\n", len(cs), against)
				return nil
			}
			fmt.Fprintf(g.stdout, "ok: %d campaign(s) valid\n", len(cs))
			return nil
		},
	}
	cmd.Flags().StringVar(&templates, "templates", "", "check the campaigns against this template list (the simulator's templates file) instead of the registry")
	return cmd
}

// runFlags are the flags of preview and send.
type runFlags struct {
	at     string
	format string
	limit  int
	openid string
}

func (f *runFlags) time(loc *time.Location) (time.Time, error) {
	if f.at == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, f.at)
	if err != nil {
		return t, &exitError{code: 2, err: fmt.Errorf("--at %q: want RFC3339, e.g. 2026-11-22T10:00:00+08:00", f.at)}
	}
	return t.In(loc), nil
}

func (f *runFlags) checkFormat() error {
	if f.format != "table" && f.format != "json" {
		return &exitError{code: 2, err: fmt.Errorf("--format %q: want table or json", f.format)}
	}
	return nil
}

// openRun is the common start of preview and send: flags, config, store
// (migrated when migrate), the campaign file and the run's time.
func (g *globals) openRun(ctx context.Context, f *runFlags, path string, migrate bool) (*app, *campaigns.Campaign, time.Time, error) {
	if err := f.checkFormat(); err != nil {
		return nil, nil, time.Time{}, err
	}
	cfg, err := g.config()
	if err != nil {
		return nil, nil, time.Time{}, err
	}
	a, err := g.open(ctx, cfg, migrate)
	if err != nil {
		return nil, nil, time.Time{}, &exitError{code: 1, err: err}
	}
	c, err := campaigns.LoadFile(path, a.defaults())
	if err != nil {
		a.Close()
		return nil, nil, time.Time{}, &exitError{code: 1, err: fmt.Errorf("invalid campaign:\n%w", err)}
	}
	at, err := f.time(c.Location)
	if err != nil {
		a.Close()
		return nil, nil, time.Time{}, err
	}
	return a, c, at, nil
}

func previewCmd(g *globals) *cobra.Command {
	f := &runFlags{}
	cmd := &cobra.Command{
		Use:   "preview CAMPAIGN.yaml",
		Short: "Dry run: what would be sent, per user, and why not (no reservation, no send, no write)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, c, at, err := g.openRun(cmd.Context(), f, args[0], false)
			if err != nil {
				return err
			}
			defer a.Close()
			if bad := a.checkStoredRegistry(cmd.Context(), c); len(bad) > 0 { // as send would refuse it
				return &exitError{code: 1, err: fmt.Errorf("campaign does not match the account's templates:\n%w", bad)}
			}
			eng, err := a.engine(nil, nil)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			out := newReporter(g.stdout, f.format, f.limit, true)
			out.loc = c.Location
			if f.openid != "" {
				out.explain = true
			}
			sum, err := eng.Run(cmd.Context(), c, engine.Options{At: at, DryRun: true, OpenID: f.openid, Explain: f.openid != "", Report: out.report})
			out.finish(sum)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&f.at, "at", "", "evaluate as if at this time (RFC3339); default now")
	cmd.Flags().StringVar(&f.format, "format", "table", "table or json (JSON Lines, then a summary line)")
	cmd.Flags().IntVar(&f.limit, "limit", 20, "table: how many grants to list")
	cmd.Flags().StringVar(&f.openid, "openid", "", "explain one user: every fact, the rule's value, each cap")
	return cmd
}

func sendCmd(g *globals) *cobra.Command {
	f := &runFlags{}
	cmd := &cobra.Command{
		Use:   "send CAMPAIGN.yaml",
		Short: "Run a campaign once now (or as if at --at) and print a summary",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, c, at, err := g.openRun(cmd.Context(), f, args[0], true)
			if err != nil {
				return err
			}
			defer a.Close()
			client, err := a.client(nil)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			// Fail before touching any grant when WeChat is unreachable or
			// the credentials are wrong.
			if _, err := client.Token(cmd.Context()); err != nil {
				return &exitError{code: 1, err: fmt.Errorf("WeChat: %w", err)}
			}
			if _, bad := a.checkAgainstAccount(cmd.Context(), client, []*campaigns.Campaign{c}); len(bad) > 0 {
				return &exitError{code: 1, err: fmt.Errorf("campaign does not match the account's templates:\n%w", bad)}
			}
			eng, err := a.engine(client, nil)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			out := newReporter(g.stdout, f.format, 0, false)
			out.loc = c.Location
			sum, err := eng.Run(cmd.Context(), c, engine.Options{At: at, Report: out.report})
			out.finish(sum)
			if errors.Is(err, engine.ErrAlreadyRun) {
				fmt.Fprintln(g.stderr, "wxcampaign: this occurrence already ran: nothing sent")
				return nil
			}
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&f.at, "at", "", "run as if at this time (RFC3339): the occurrence key and the rule's now")
	cmd.Flags().StringVar(&f.format, "format", "table", "table or json")
	return cmd
}

// reporter prints grant reports and the summary of a run.
type reporter struct {
	w       io.Writer
	format  string
	limit   int
	preview bool
	explain bool
	loc     *time.Location
	rows    []engine.GrantReport
	enc     *json.Encoder
}

func newReporter(w io.Writer, format string, limit int, preview bool) *reporter {
	r := &reporter{w: w, format: format, limit: limit, preview: preview}
	if format == "json" {
		r.enc = json.NewEncoder(w)
		r.enc.SetEscapeHTML(false)
	}
	return r
}

func (r *reporter) report(g engine.GrantReport) {
	if r.format == "json" {
		if r.preview {
			_ = r.enc.Encode(g)
		}
		return
	}
	if r.explain || len(r.rows) < r.limit {
		r.rows = append(r.rows, g)
	}
}

func (r *reporter) finish(s engine.Summary) {
	if r.format == "json" {
		_ = r.enc.Encode(map[string]any{"summary": s})
		return
	}
	w := r.w
	mode := "run"
	if s.DryRun {
		mode = "preview (dry run: nothing reserved, sent or written; \"sent\" = would be sent)"
	}
	occ := s.Occurrence
	if r.loc != nil {
		occ = occ.In(r.loc)
	}
	fmt.Fprintf(w, "campaign %s  occurrence %s  %s\n", s.Campaign, occ.Format(time.RFC3339), mode)
	fmt.Fprintf(w, "status %s  grants looked at %d  duration %s", s.Status, s.Looked, s.Duration.Round(time.Millisecond))
	if !s.DryRun {
		fmt.Fprintf(w, "  %.0f messages/s", s.PerSecond)
	}
	fmt.Fprintln(w)
	if s.Error != "" {
		fmt.Fprintln(w, "error:", s.Error)
	}
	outs := make([]string, 0, len(s.Counts))
	for o, n := range s.Counts {
		outs = append(outs, fmt.Sprintf("%s %d", o, n))
	}
	sort.Strings(outs)
	fmt.Fprintln(w, "outcomes:", strings.Join(outs, ", "))
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for _, rc := range s.SortedReasons() {
		fmt.Fprintf(tw, "  %d\t%s\n", rc.Count, rc.Reason)
	}
	tw.Flush()
	if len(r.rows) == 0 {
		return
	}
	fmt.Fprintln(w)
	if r.explain {
		for _, g := range r.rows {
			b, _ := json.MarshalIndent(g, "", "  ")
			fmt.Fprintln(w, string(b))
		}
		return
	}
	tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GRANT\tOPENID\tOUTCOME\tREASON\tDATA\tPAGE")
	for _, g := range r.rows {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", g.GrantID, g.OpenID, g.Outcome, g.Reason, fmtData(g.Data), g.Page)
	}
	tw.Flush()
}

func fmtData(d map[string]string) string {
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + d[k]
	}
	return strings.Join(parts, " ")
}
