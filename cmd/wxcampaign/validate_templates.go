package main

import (
	"context"
	"fmt"

	"github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/campaigns"
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

// accountTemplates fetches the account's template list (getTemplateList)
// as campaigns.TemplateInfo.
func accountTemplates(ctx context.Context, c *wechat.Client) ([]campaigns.TemplateInfo, error) {
	ts, err := c.Templates(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]campaigns.TemplateInfo, 0, len(ts))
	for _, t := range ts {
		keys := make([]string, len(t.Keys))
		for i, k := range t.Keys {
			keys[i] = k.Key
		}
		out = append(out, campaigns.TemplateInfo{ID: t.ID, Kind: t.Kind(), Keys: keys, Enums: t.Enums})
	}
	return out, nil
}

// checkAgainstAccount checks cs against the account's templates before
// anything is sent. It returns the campaigns that match; the problems of the
// others are in the ErrorList. When the list cannot be fetched the check is
// skipped with a warning: sending then fails on the first message instead.
func (a *app) checkAgainstAccount(ctx context.Context, c *wechat.Client, cs []*campaigns.Campaign) ([]*campaigns.Campaign, campaigns.ErrorList) {
	if !a.cfg.WeChat.checkTemplates() {
		return cs, nil
	}
	ts, err := accountTemplates(ctx, c)
	if err != nil {
		a.log.WithError(err).Warn("could not fetch the account's template list: campaigns not checked against it")
		return cs, nil
	}
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
