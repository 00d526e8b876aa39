package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/wxcampaign/wxcampaign/campaigns"
	"github.com/wxcampaign/wxcampaign/demo"
	"github.com/wxcampaign/wxcampaign/store"
)

func demoCmd(g *globals) *cobra.Command {
	var dbPath, dir string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "The whole job on embedded SQLite: demo data, ~10,000 grants, the simulator in process, a preview and a send of each example campaign",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := g.config()
			if err != nil {
				return err
			}
			if dir == "" {
				dir = cfg.Campaigns
			}
			loc, _ := time.LoadLocation(cfg.Timezone)
			cs, err := campaigns.LoadPaths([]string{dir}, campaigns.Defaults{Location: loc, State: cfg.WeChat.State, Lang: cfg.WeChat.Lang})
			if err != nil {
				return &exitError{code: 1, err: fmt.Errorf("campaigns %s:\n%w", dir, err)}
			}
			if dbPath == "" {
				tmp, err := os.MkdirTemp("", "wxcampaign-demo-")
				if err != nil {
					return &exitError{code: 1, err: err}
				}
				defer os.RemoveAll(tmp)
				dbPath = filepath.Join(tmp, "demo.db")
			} else {
				for _, suffix := range []string{"", "-wal", "-shm"} {
					_ = os.Remove(dbPath + suffix)
				}
			}
			start := time.Now()
			_, err = demo.Run(cmd.Context(), demo.Options{
				Store: store.Config{Driver: "sqlite", DSN: dbPath}, Campaigns: cs, Out: g.stdout,
				Logger: g.logger(Config{Log: LogConfig{Level: "warning", Format: "text"}}),
			})
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			fmt.Fprintf(g.stdout, "\ndemo finished in %s\n", time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
	cmd.Flags().StringVar(&dbPath, "db", "", "SQLite file to (re)create for the demo (default: a temporary file, removed after)")
	cmd.Flags().StringVar(&dir, "campaigns", "", "campaigns directory (default: the config's campaigns, configs/campaigns)")
	return cmd
}
