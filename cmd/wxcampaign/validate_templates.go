package main

import (
	"fmt"

	"github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/campaigns"
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
