package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/campaigns"
	"github.com/wxcampaign/wxcampaign/keyword"
	"github.com/wxcampaign/wxcampaign/store"
	"github.com/wxcampaign/wxcampaign/wechat"
	"github.com/wxcampaign/wxcampaign/wechat/wxsim"
)

// loadTemplateInfos reads a templates file in the simulator's format (the
// file `wxcampaign wxsim --templates` serves) as the account's template list
// for campaigns.CheckTemplates. A template without a kind is one_time, as in
// the simulator.
func loadTemplateInfos(path string) ([]campaigns.TemplateInfo, error) {
	defs, err := wxsim.LoadTemplates(path)
	if err != nil {
		return nil, fmt.Errorf("--templates: %w", err)
	}
	out := make([]campaigns.TemplateInfo, 0, len(defs))
	for _, d := range defs {
		kind := wxcampaign.Kind(d.Kind)
		if kind == "" {
			kind = wxcampaign.OneTime
		}
		out = append(out, campaigns.TemplateInfo{ID: d.ID, Kind: kind, Keys: d.Keys, Enums: d.Enums})
	}
	return out, nil
}

// registryInfos turns the stored registry into the template list
// campaigns.CheckTemplates takes.
func registryInfos(reg store.Registry) []campaigns.TemplateInfo {
	out := make([]campaigns.TemplateInfo, 0, len(reg.Templates))
	for _, t := range reg.Templates {
		ti := campaigns.TemplateInfo{ID: t.ID, Kind: t.Kind, Keys: make([]string, len(t.Keys))}
		for i, k := range t.Keys {
			ti.Keys[i] = k.Key
			if len(k.Enum) > 0 {
				if ti.Enums == nil {
					ti.Enums = map[string][]string{}
				}
				ti.Enums[k.Key] = k.Enum
			}
		}
		out = append(out, ti)
	}
	return out
}

// currentRegistry syncs the registry from WeChat and returns it. When
// WeChat cannot be reached it falls back to the stored registry, with a
// warning; ok is false when there is none.
func (a *app) currentRegistry(ctx context.Context, c *wechat.Client) (store.Registry, bool) {
	reg, _, err := a.syncTemplates(ctx, c)
	if err == nil {
		return reg, true
	}
	stored, serr := a.db.Templates(ctx, a.cfg.WeChat.AppID)
	if serr != nil || !stored.Synced() {
		a.log.WithError(err).Warn("no template registry: campaigns not checked against the account's templates")
		return store.Registry{}, false
	}
	a.log.WithError(err).WithField("synced_at", stored.SyncedAt.Format(time.RFC3339)).
		Warn("could not sync the template registry: checking the campaigns against the stored one")
	return stored, true
}

// checkAgainstAccount checks cs against the current template registry
// (synced from WeChat now, or the stored one when WeChat cannot be reached)
// before anything is sent. It returns the campaigns that match; the
// problems of the others are in the ErrorList, file:line:col each. With no
// registry at all the check is skipped with a warning: sending then fails
// on the first message instead.
func (a *app) checkAgainstAccount(ctx context.Context, c *wechat.Client, cs []*campaigns.Campaign) ([]*campaigns.Campaign, campaigns.ErrorList) {
	if !a.cfg.WeChat.checkTemplates() {
		return cs, nil
	}
	reg, ok := a.currentRegistry(ctx, c)
	if !ok {
		return cs, nil
	}
	return checkEach(cs, registryInfos(reg))
}

// checkStoredRegistry checks c against the stored registry of wechat.appid,
// without calling WeChat and without writing (preview): nil when it
// matches, when there is no registry or when check_templates is off. A
// campaign without enums takes the registry's enum values, as in send.
func (a *app) checkStoredRegistry(ctx context.Context, c *campaigns.Campaign) campaigns.ErrorList {
	if !a.cfg.WeChat.checkTemplates() || a.cfg.WeChat.AppID == "" {
		return nil
	}
	reg, err := a.db.Templates(ctx, a.cfg.WeChat.AppID)
	if err != nil || !reg.Synced() {
		return nil
	}
	return campaigns.CheckTemplates([]*campaigns.Campaign{c}, registryInfos(reg))
}

// checkEach checks each campaign on its own: the ones that match, and the
// problems of the others.
func checkEach(cs []*campaigns.Campaign, ts []campaigns.TemplateInfo) ([]*campaigns.Campaign, campaigns.ErrorList) {
	var ok []*campaigns.Campaign
	var all campaigns.ErrorList
	for _, cp := range cs {
		if errs := campaigns.CheckTemplates([]*campaigns.Campaign{cp}, ts); len(errs) > 0 {
			all = append(all, errs...)
			continue
		}
		ok = append(ok, cp)
	}
	return ok, all
}

// validateRegistry is the template list `validate --config` checks against:
// the registry stored for wechat.appid. ok is false, with a note on w, when
// there is none (no appid, a store that cannot be opened, never synced).
func (g *globals) validateRegistry(ctx context.Context, cfg Config, w io.Writer) (ts []campaigns.TemplateInfo, synced time.Time, ok bool) {
	if cfg.WeChat.AppID == "" {
		fmt.Fprintln(w, "note: wechat.appid is not set: campaigns not checked against the template registry")
		return nil, time.Time{}, false
	}
	if path, missing := sqliteMissing(cfg); missing {
		fmt.Fprintf(w, "note: no store at %s: campaigns not checked against the template registry\n", path)
		return nil, time.Time{}, false
	}
	a, err := g.open(ctx, cfg, false)
	if err != nil {
		fmt.Fprintf(w, "note: template registry not reachable (%v): campaigns not checked against it\n", err)
		return nil, time.Time{}, false
	}
	defer a.Close()
	reg, err := a.db.Templates(ctx, cfg.WeChat.AppID)
	if err != nil {
		fmt.Fprintf(w, "note: template registry not readable (%v): campaigns not checked against it\n", err)
		return nil, time.Time{}, false
	}
	if !reg.Synced() {
		fmt.Fprintf(w, "note: no templates synced for %s (run `wxcampaign templates sync`): campaigns not checked against them\n", cfg.WeChat.AppID)
		return nil, time.Time{}, false
	}
	return registryInfos(reg), reg.SyncedAt, true
}

// sqliteMissing reports whether the store is a SQLite file that does not
// exist: opening it would create it, and a read-only command writes nothing.
func sqliteMissing(cfg Config) (string, bool) {
	if cfg.Database.Driver != store.SQLite {
		return "", false
	}
	path, _, _ := strings.Cut(strings.TrimPrefix(cfg.Database.DSN, "file:"), "?")
	_, err := os.Stat(path)
	return path, err != nil
}

// checkTemplatesConfig checks templates.refresh and wechat.pages.
func checkTemplatesConfig(cfg Config) error {
	if cfg.Templates.Refresh < 0 || cfg.Templates.Refresh > 0 && cfg.Templates.Refresh < time.Second {
		return fmt.Errorf("config: templates.refresh %s: want at least 1s (default 1h)", cfg.Templates.Refresh)
	}
	for i, p := range cfg.WeChat.Pages {
		if strings.Contains(p, "?") {
			return fmt.Errorf("config: wechat.pages[%d] %q: list the path without a query", i, p)
		}
		if err := keyword.CheckPage(strings.TrimLeft(p, "/")); err != nil || strings.TrimLeft(p, "/") == "" {
			reason := "empty"
			if err != nil {
				reason = err.Error()
			}
			return fmt.Errorf("config: wechat.pages[%d] %q: %s", i, p, reason)
		}
	}
	return nil
}
