package engine

import (
	"sync/atomic"

	wx "github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/api"
	"github.com/wxcampaign/wxcampaign/campaigns"
)

// Catalog answers which templates to offer in a scene from the loaded
// campaigns; Set swaps the campaigns atomically (SIGHUP reload).
type Catalog struct{ v atomic.Pointer[catalogData] }

type catalogData struct {
	scenes map[string][]api.SceneTemplate
	kinds  map[string]wx.Kind
}

var _ api.Catalog = (*Catalog)(nil)

// NewCatalog returns a catalog of cs.
func NewCatalog(cs []*campaigns.Campaign) *Catalog {
	c := &Catalog{}
	c.Set(cs)
	return c
}

// Set replaces the campaigns.
func (c *Catalog) Set(cs []*campaigns.Campaign) {
	d := &catalogData{scenes: map[string][]api.SceneTemplate{}, kinds: map[string]wx.Kind{}}
	seen := map[string]bool{}
	for _, cp := range cs {
		d.kinds[cp.Template.ID] = cp.Template.Kind
		if !cp.Enabled {
			continue
		}
		for _, sc := range cp.Scenes {
			if seen[sc+"|"+cp.Template.ID] {
				continue
			}
			seen[sc+"|"+cp.Template.ID] = true
			d.scenes[sc] = append(d.scenes[sc], api.SceneTemplate{TemplateID: cp.Template.ID, Kind: cp.Template.Kind, Campaign: cp.Name})
		}
	}
	c.v.Store(d)
}

// SceneTemplates returns the enabled campaigns' templates for scene, in
// campaign-file order.
func (c *Catalog) SceneTemplates(scene string) []api.SceneTemplate { return c.v.Load().scenes[scene] }

// KindOf returns the kind of a template (one-time when unknown).
func (c *Catalog) KindOf(templateID string) wx.Kind {
	if k, ok := c.v.Load().kinds[templateID]; ok {
		return k
	}
	return wx.OneTime
}
