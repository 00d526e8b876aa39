package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/wxcampaign/wxcampaign/store"
	"github.com/wxcampaign/wxcampaign/wechat"
)

// templatesCmd is `wxcampaign templates sync|list`: the template registry,
// the account's getTemplateList kept in the store.
func templatesCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "templates",
		Short: "The template registry: the account's templates (getTemplateList) kept in the store",
	}
	cmd.AddCommand(templatesSyncCmd(g), templatesListCmd(g))
	return cmd
}

func templatesSyncCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "sync",
		Short: "Fetch the account's templates from WeChat (getTemplateList) into the store",
		Long: `Fetch the account's templates from WeChat (getTemplateList) into the store:
id, title, kind (type 2 one_time, 3 long_term), keys in order with the labels
of content ("商品名称:{{thing1.DATA}}"), example values, enum values and the
time of the sync. The new list replaces the stored one. "run" does the same
on start and every templates.refresh.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := g.openCmd(cmd.Context(), true)
			if err != nil {
				return err
			}
			defer a.Close()
			client, err := a.client(nil)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			reg, res, err := a.syncTemplates(cmd.Context(), client)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			fmt.Fprintf(g.stdout, "synced %d template(s) for %s at %s: %d added, %d changed, %d removed, %d unchanged\n",
				len(reg.Templates), reg.AppID, reg.SyncedAt.In(a.loc).Format(time.RFC3339), res.Added, res.Changed, res.Removed, res.Unchanged)
			return nil
		},
	}
}

func templatesListCmd(g *globals) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "list [--format table|json]",
		Short: "Print the template registry as last synced",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "table" && format != "json" {
				return &exitError{code: 2, err: fmt.Errorf("--format %q: want table or json", format)}
			}
			cfg, err := g.config()
			if err != nil {
				return err
			}
			if cfg.WeChat.AppID == "" {
				return &exitError{code: 2, err: fmt.Errorf("wechat.appid is required: the registry is kept per appid (set it in the config or %s)", envAppID)}
			}
			if path, missing := sqliteMissing(cfg); missing {
				return &exitError{code: 1, err: fmt.Errorf("no store at %s: run `wxcampaign templates sync` first", path)}
			}
			a, err := g.open(cmd.Context(), cfg, false)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			defer a.Close()
			reg, err := a.db.Templates(cmd.Context(), cfg.WeChat.AppID)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			if format == "json" {
				enc := json.NewEncoder(g.stdout)
				enc.SetEscapeHTML(false)
				enc.SetIndent("", "  ")
				return enc.Encode(reg)
			}
			if !reg.Synced() {
				fmt.Fprintf(g.stderr, "no templates synced for %s yet: run `wxcampaign templates sync`\n", reg.AppID)
				return &exitError{code: 1}
			}
			printRegistry(g.stdout, reg, a.loc)
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "table", "table or json")
	return cmd
}

// printRegistry writes the registry as a table: one line per template, its
// keys as key(label) with the enum values of enum keys.
func printRegistry(w io.Writer, reg store.Registry, loc *time.Location) {
	fmt.Fprintf(w, "%d template(s) for %s, synced %s\n", len(reg.Templates), reg.AppID, reg.SyncedAt.In(loc).Format(time.RFC3339))
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tKIND\tTITLE\tKEYS")
	for _, t := range reg.Templates {
		keys := make([]string, len(t.Keys))
		for i, k := range t.Keys {
			keys[i] = k.Key
			if k.Label != "" && k.Label != k.Key {
				keys[i] += "(" + k.Label + ")"
			}
			if len(k.Enum) > 0 {
				keys[i] += "[" + strings.Join(k.Enum, "|") + "]"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.ID, t.Kind, t.Title, strings.Join(keys, " "))
	}
	tw.Flush()
}

// registryTemplates converts getTemplateList's templates for the store.
func registryTemplates(ts []wechat.Template) []store.Template {
	out := make([]store.Template, 0, len(ts))
	for _, t := range ts {
		st := store.Template{ID: t.ID, Title: t.Title, Kind: t.Kind(), Content: t.Content, Example: t.Example,
			Keys: make([]store.TemplateKey, 0, len(t.Keys))}
		for _, k := range t.Keys {
			st.Keys = append(st.Keys, store.TemplateKey{Key: k.Key, Type: k.Type, Label: k.Name, Example: k.Example, Enum: t.Enums[k.Key]})
		}
		out = append(out, st)
	}
	return out
}

// syncTemplates fetches the account's templates and stores them as the
// registry of wechat.appid.
func (a *app) syncTemplates(ctx context.Context, c *wechat.Client) (store.Registry, store.SyncResult, error) {
	ts, err := c.Templates(ctx)
	if err != nil {
		return store.Registry{}, store.SyncResult{}, fmt.Errorf("templates sync: getTemplateList: %w", err)
	}
	now := time.Now()
	res, err := a.db.SyncTemplates(ctx, a.cfg.WeChat.AppID, registryTemplates(ts), now)
	if err != nil {
		return store.Registry{}, store.SyncResult{}, fmt.Errorf("templates sync: %w", err)
	}
	reg, err := a.db.Templates(ctx, a.cfg.WeChat.AppID)
	if err != nil {
		return store.Registry{}, store.SyncResult{}, fmt.Errorf("templates sync: %w", err)
	}
	return reg, res, nil
}

// startTemplateRefresh syncs the registry every templates.refresh and, when
// the account's templates changed, asks for a reload of the campaigns (as
// SIGHUP does), which checks them against the new registry: a campaign that
// no longer matches stops, one that now matches starts. It returns a stop
// function that waits for the loop to end. Without check_templates it does
// nothing.
func (a *app) startTemplateRefresh(ctx context.Context, c *wechat.Client, reload chan<- os.Signal) (stop func()) {
	every := a.cfg.Templates.refresh()
	if !a.cfg.WeChat.checkTemplates() || every <= 0 {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			reg, res, err := a.syncTemplates(ctx, c)
			if err != nil {
				if ctx.Err() == nil {
					a.log.WithError(err).Warn("templates refresh failed: keeping the registry and the campaigns as they are")
				}
				continue
			}
			if res.Added+res.Changed+res.Removed == 0 {
				a.log.WithField("templates", len(reg.Templates)).Debug("templates refresh: no change")
				continue
			}
			a.log.WithField("added", res.Added).WithField("changed", res.Changed).WithField("removed", res.Removed).
				Info("templates refresh: the account's templates changed, reloading the campaigns")
			select {
			case reload <- reloadSignal{}:
			default: // a reload is already pending
			}
		}
	}()
	return func() { cancel(); wg.Wait() }
}

// reloadSignal asks the daemon's reload loop to reload the campaigns.
type reloadSignal struct{}

func (reloadSignal) String() string { return "templates changed" }

// Signal implements os.Signal.
func (reloadSignal) Signal() {}
