package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/wxcampaign/wxcampaign/api"
	"github.com/wxcampaign/wxcampaign/campaigns"
	"github.com/wxcampaign/wxcampaign/store"
)

// reportCmd is `report CAMPAIGN`: the campaign's lift, from its
// conversion query, comparing the users it sent to with those its holdout
// kept unsent.
func reportCmd(g *globals) *cobra.Command {
	var from, to, format string
	cmd := &cobra.Command{
		Use:   "report CAMPAIGN [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--format table|json]",
		Short: "Lift of a campaign: conversions of the users sent to against the held-out users, with a 95% interval",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			a, err := g.openCmd(cmd.Context(), false)
			if err != nil {
				return err
			}
			cfg := a.cfg
			defer a.Close()
			cs, err := campaigns.LoadPaths([]string{cfg.Campaigns}, a.defaults())
			if err != nil {
				return &exitError{code: 1, err: fmt.Errorf("campaigns %s:\n%w", cfg.Campaigns, err)}
			}
			var c *campaigns.Campaign
			for _, x := range cs {
				if x.Name == args[0] {
					c = x
				}
			}
			switch {
			case c == nil:
				return &exitError{code: 1, err: fmt.Errorf("no campaign %q in %s", args[0], cfg.Campaigns)}
			case c.Conversion == nil:
				return &exitError{code: 1, err: fmt.Errorf("campaign %q has no conversion: add conversion.query and conversion.window to %s", c.Name, c.File)}
			}
			if from == "" {
				from = time.Now().In(a.loc).AddDate(0, 0, -29).Format(time.DateOnly)
			}
			start, end, err := api.DayRange(from, to, time.Now(), a.loc)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			rep, err := a.db.Lift(cmd.Context(), a.facts, c.Name, store.LiftQuery{Query: c.Conversion.Query, Window: c.Conversion.Window}, start, end)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			if format == "json" {
				return writeJSONTo(g.stdout, rep)
			}
			writeLift(g, rep, a.loc)
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "first day of sends and holdouts (default: 29 days before --to)")
	cmd.Flags().StringVar(&to, "to", "", "last day, inclusive (default: today)")
	cmd.Flags().StringVar(&format, "format", "table", "output format: table or json")
	return cmd
}

// writeLift prints a lift report as a table.
func writeLift(g *globals, rep store.LiftReport, loc *time.Location) {
	w := g.stdout
	fmt.Fprintf(w, "campaign %s, %s to %s (%s), conversion window %s\n", rep.Campaign, rep.From.In(loc).Format(time.DateOnly),
		rep.To.In(loc).AddDate(0, 0, -1).Format(time.DateOnly), loc, store.FormatWindow(rep.Window))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tUSERS\tCONVERSIONS\tRATE\t95% INTERVAL")
	for _, gs := range []store.GroupStat{rep.Sent, rep.HeldOut} {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.2f%%\t[%.2f%%, %.2f%%]\n", gs.Group, gs.Users, gs.Conversions, 100*gs.Rate, 100*gs.Low, 100*gs.High)
	}
	tw.Flush()
	switch {
	case rep.Sent.Users == 0:
		fmt.Fprintln(w, "difference: unknown (no message of the campaign in the range)")
		return
	case rep.HeldOut.Users == 0:
		fmt.Fprintln(w, "difference: unknown (no user held out in the range: set holdout: on the campaign to measure lift)")
		return
	}
	fmt.Fprintf(w, "difference: %+.2f points, 95%% interval [%+.2f, %+.2f]\n", 100*rep.Diff, 100*rep.DiffLow, 100*rep.DiffHigh)
	if rep.PerExtraKnown {
		fmt.Fprintf(w, "credits spent: %d, %.1f per extra conversion (%.1f extra)\n", rep.Credits, rep.CreditsPerExtra, rep.ExtraConversions)
	} else {
		fmt.Fprintf(w, "credits spent: %d, no extra conversion measured\n", rep.Credits)
	}
}
