package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/wxcampaign/wxcampaign/campaigns"
	"github.com/wxcampaign/wxcampaign/store"
)

func migrateCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Apply the store's schema migrations (idempotent)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := g.config()
			if err != nil {
				return err
			}
			db, err := store.Open(cmd.Context(), cfg.Database)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			defer db.Close()
			n, err := db.Migrate(cmd.Context())
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			fmt.Fprintf(g.stdout, "migrate: %d migration(s) applied (%s)\n", n, db.Driver())
			return nil
		},
	}
}

func grantsCmd(g *globals) *cobra.Command {
	grants := &cobra.Command{Use: "grants", Short: "Manage grants"}
	var allOrNothing bool
	var batch int
	imp := &cobra.Command{
		Use:   "import FILE.jsonl",
		Short: "Import subscription results, one JSON object per line; bad lines are reported by number",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := g.openCmd(cmd.Context(), true)
			if err != nil {
				return err
			}
			cfg := a.cfg
			defer a.Close()
			f, err := os.Open(args[0])
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			defer f.Close()
			// Long-term template ids come from the campaigns, when there are any.
			var cat *campaigns.Catalog
			if cs, err := campaigns.LoadPaths([]string{cfg.Campaigns}, a.defaults()); err == nil {
				cat = campaigns.NewCatalog(cs)
			} else {
				cat = campaigns.NewCatalog(nil)
			}
			in, bar := g.importProgress(f)
			rep, err := a.db.Import(cmd.Context(), in, store.ImportOptions{AllOrNothing: allOrNothing, BatchSize: batch, KindOf: cat.KindOf})
			bar.finish()
			for _, b := range rep.Bad {
				fmt.Fprintf(g.stderr, "%s:%d: %s\n", args[0], b.Line, b.Err)
			}
			fmt.Fprintf(g.stdout, "import: %d lines, %d imported, %d duplicate requests, %d credits, %d bad, %d blank\n",
				rep.Lines, rep.Imported, rep.Duplicates, rep.Credits, len(rep.Bad), rep.Blank)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			if len(rep.Bad) > 0 {
				return &exitError{code: 1}
			}
			return nil
		},
	}
	imp.Flags().BoolVar(&allOrNothing, "all-or-nothing", false, "import nothing if any line is bad")
	imp.Flags().IntVar(&batch, "batch", 0, "rows per INSERT (default: the store's)")
	grants.AddCommand(imp, grantsShowCmd(g))
	return grants
}
