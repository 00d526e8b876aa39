package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/wxcampaign/wxcampaign/api"
)

// statsCmd is `stats subscriptions`: accept, reject, ban and filter counts
// per day, source, scene and template, as GET /v1/stats/subscriptions.
func statsCmd(g *globals) *cobra.Command {
	stats := &cobra.Command{Use: "stats", Short: "Statistics of the ledger"}
	var from, to, format string
	subs := &cobra.Command{
		Use:   "subscriptions [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--format table|json]",
		Short: "Accept, reject, ban and filter counts per day, scene and template (days in the config's timezone)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			a, err := g.openCmd(cmd.Context(), false)
			if err != nil {
				return err
			}
			defer a.Close()
			start, end, err := api.DayRange(from, to, time.Now(), a.loc)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			rows, err := a.db.SubscriptionStats(cmd.Context(), start, end, a.loc)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			if format == "json" {
				out := api.StatsResponse{From: start.Format(time.DateOnly), To: end.AddDate(0, 0, -1).Format(time.DateOnly), Zone: a.loc.String(), Rows: []api.StatsRow{}}
				for _, r := range rows {
					out.Rows = append(out.Rows, api.StatsRow{SubscriptionStat: r, Total: r.Total(), AcceptRate: r.AcceptRate()})
				}
				return writeJSONTo(g.stdout, out)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "DAY\tSOURCE\tSCENE\tTEMPLATE\tACCEPT\tREJECT\tBAN\tFILTER\tACCEPT RATE")
			for _, r := range rows {
				scene := r.Scene
				if scene == "" {
					scene = "-"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%.1f%%\n", r.Day, r.Source, scene, r.TemplateID, r.Accept, r.Reject, r.Ban, r.Filter, 100*r.AcceptRate())
			}
			tw.Flush()
			fmt.Fprintf(g.stdout, "%d row(s), %s to %s (%s)\n", len(rows), start.Format(time.DateOnly), end.AddDate(0, 0, -1).Format(time.DateOnly), a.loc)
			return nil
		},
	}
	subs.Flags().StringVar(&from, "from", "", "first day (default: six days before --to)")
	subs.Flags().StringVar(&to, "to", "", "last day, inclusive (default: today)")
	subs.Flags().StringVar(&format, "format", "table", "output format: table or json")
	stats.AddCommand(subs)
	return stats
}
