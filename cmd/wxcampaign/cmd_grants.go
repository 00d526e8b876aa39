package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/campaigns"
)

// grantsShowCmd is `grants show OPENID`: the user's balance per template,
// the same figures as GET /v1/users/{openid}/grants.
func grantsShowCmd(g *globals) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "show OPENID",
		Short: "Show a user's grants per template: credits left, long-term state, last message, rejects and bans",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			a, err := g.openCmd(cmd.Context(), false)
			if err != nil {
				return err
			}
			defer a.Close()
			bs, err := a.db.Balances(cmd.Context(), args[0], time.Now())
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			if format == "json" {
				if bs == nil {
					bs = []wxcampaign.Balance{}
				}
				return writeJSONTo(g.stdout, map[string]any{"openid": args[0], "templates": bs})
			}
			if len(bs) == 0 {
				fmt.Fprintf(g.stdout, "%s: no grants and no answers recorded\n", args[0])
				return nil
			}
			writeBalances(g.stdout, bs, a.loc)
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "table", "output format: table or json")
	return cmd
}

// writeBalances prints balances as a table, times in loc.
func writeBalances(w io.Writer, bs []wxcampaign.Balance, loc *time.Location) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TEMPLATE\tKIND\tCREDITS\tRESERVED\tUSED\tLONG-TERM\tLAST SENT\tREJECTED\tBANNED")
	at := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.In(loc).Format("2006-01-02 15:04")
	}
	for _, b := range bs {
		last := "-"
		if b.LastSent != nil {
			last = fmt.Sprintf("%s %s (%s)", at(b.LastSent.At), b.LastSent.Campaign, b.LastSent.Status)
		}
		lt := b.LongTerm
		if lt == "" {
			lt = "-"
		}
		rej, ban := at(b.RejectedAt), at(b.BannedAt)
		if !b.RejectedAt.IsZero() && !b.RejectedAt.After(b.LastAcceptAt) {
			rej += " (accepted since)"
		}
		if !b.BannedAt.IsZero() && !b.Banned() {
			ban += " (accepted since)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\n", b.TemplateID, b.Kind, b.Credits, b.Reserved, b.Consumed, lt, last, rej, ban)
	}
	tw.Flush()
}

// writeJSONTo writes v as indented JSON.
func writeJSONTo(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return &exitError{code: 1, err: err}
	}
	return nil
}

// linkReserves gives c, loaded from its own file for preview or send, the
// reserves of the campaigns it runs with: those of the configured campaigns
// directory (a file there with c's name is c itself). A directory that does
// not load contributes the campaigns that do.
func (a *app) linkReserves(c *campaigns.Campaign) {
	others, _ := campaigns.LoadPaths([]string{a.cfg.Campaigns}, a.defaults())
	set := []*campaigns.Campaign{c}
	for _, o := range others {
		if o.Name != c.Name {
			set = append(set, o)
		}
	}
	campaigns.LinkReserves(set)
}
