package campaigns

import (
	"sync/atomic"

	wx "github.com/wxcampaign/wxcampaign"
)

// Catalog answers which templates to offer in a scene, and the kind of a
// template, from the loaded campaigns; Set swaps the campaigns atomically
// (SIGHUP reload). It is safe for concurrent use.
type Catalog struct{ v atomic.Pointer[catalogData] }

type catalogData struct {
	scenes map[string][]wx.SceneTemplate
	kinds  map[string]wx.Kind
	n      int
}

// NewCatalog returns a catalog of cs.
func NewCatalog(cs []*Campaign) *Catalog {
	c := &Catalog{}
	c.Set(cs)
	return c
}

// Set replaces the campaigns.
func (c *Catalog) Set(cs []*Campaign) {
	d := &catalogData{scenes: map[string][]wx.SceneTemplate{}, kinds: map[string]wx.Kind{}, n: len(cs)}
	seen := map[string]bool{}
	for _, cp := range cs {
		d.kinds[cp.Template.ID] = cp.Template.Kind
		if !cp.Enabled {
			continue
		}
		for _, sc := range cp.Scenes {
			if seen[sc+"\x00"+cp.Template.ID] {
				continue
			}
			seen[sc+"\x00"+cp.Template.ID] = true
			d.scenes[sc] = append(d.scenes[sc], wx.SceneTemplate{TemplateID: cp.Template.ID, Kind: cp.Template.Kind, Campaign: cp.Name})
		}
	}
	c.v.Store(d)
}

// Len returns the number of campaigns of the catalog.
func (c *Catalog) Len() int { return c.v.Load().n }

// SceneTemplates returns the enabled campaigns' templates for scene, in
// campaign-file order.
func (c *Catalog) SceneTemplates(scene string) []wx.SceneTemplate { return c.v.Load().scenes[scene] }

// KindOf returns the kind of a template (one-time when unknown).
func (c *Catalog) KindOf(templateID string) wx.Kind {
	if k, ok := c.v.Load().kinds[templateID]; ok {
		return k
	}
	return wx.OneTime
}
