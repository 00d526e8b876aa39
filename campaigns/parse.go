package campaigns

import (
	"fmt"
	"os"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/rules"
)

// Top-level and nested field names, in the order docs/campaigns.md lists them.
var (
	topFields = []string{"name", "description", "enabled", "schedule", "timezone", "template",
		"scenes", "facts", "when", "data", "overflow", "enums", "limits", "quiet_hours",
		"batch_size", "per_user_per_run", "repeat", "misfire", "misfire_window",
		"priority", "reserve", "holdout", "conversion"}
	templateFields = []string{"id", "kind", "page", "state", "lang"}
	factFields     = []string{"query", "key", "column"}
	limitFields    = []string{"scope", "max", "window"}
	quietFields    = []string{"from", "to", "action"}
)

// Parse reads one campaign file: defaults from d, then strict decoding, then
// validation and compilation of its expressions. file names the source in
// errors. On failure it returns a nil campaign and an ErrorList holding every
// problem of the file, each with its position.
func Parse(file string, data []byte, d Defaults) (*Campaign, error) {
	p := newDecoder(file, data)
	c := withDefaults(d)
	c.File = file
	if root := p.load(data); root != nil {
		p.decode(root, c)
		p.validate(c)
		p.compile(c)
		p.recordPositions(c)
	}
	if len(p.errs) > 0 {
		p.errs.sortByPosition()
		return nil, p.errs
	}
	return c, nil
}

// LoadFile reads and parses one campaign file.
func LoadFile(path string, d Defaults) (*Campaign, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, ErrorList{{File: path, Msg: fmt.Sprintf("read: %v", err)}}
	}
	return Parse(path, data, d)
}

// withDefaults returns a campaign holding the default of every optional field.
func withDefaults(d Defaults) *Campaign {
	loc := d.Location
	if loc == nil {
		loc = time.Local
	}
	c := &Campaign{
		Enabled:       true,
		Location:      loc,
		Timezone:      loc.String(),
		Overflow:      DefaultOverflow,
		BatchSize:     DefaultBatchSize,
		PerUserPerRun: DefaultPerUserPerRun,
		Misfire:       MisfireRunOnce,
		MisfireWindow: DefaultMisfireWindow,
	}
	c.Template.State = cmpOr(d.State, DefaultState)
	c.Template.Lang = cmpOr(d.Lang, DefaultLang)
	c.Template.Pages = d.Pages
	return c
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// decode fills c from the top-level mapping, checking only the shape of each
// field (validate checks the values).
func (p *decoder) decode(root *yaml.Node, c *Campaign) {
	p.fields(root, "", topFields, func(name string, v *yaml.Node) bool {
		switch name {
		case "name":
			c.Name, _ = p.str(v, name)
		case "description":
			c.Description, _ = p.str(v, name)
		case "enabled":
			if b, ok := p.boolean(v, name); ok {
				c.Enabled = b
			}
		case "schedule":
			c.Schedule, _ = p.str(v, name)
		case "timezone":
			if s, ok := p.str(v, name); ok {
				c.Timezone = s
			}
		case "template":
			p.decodeTemplate(v, c)
		case "scenes":
			c.Scenes = p.strList(v, name)
		case "facts":
			p.decodeFacts(v, c)
		case "when":
			c.When, _ = p.str(v, name)
		case "data":
			if isNull(v) {
				break
			}
			p.pairs(v, name, func(key string, _, ev *yaml.Node) {
				expr, _ := p.str(ev, join(name, key))
				c.Data = append(c.Data, rules.Field{Key: key, Expr: expr})
			})
		case "overflow":
			if s, ok := p.str(v, name); ok {
				c.Overflow = rules.Overflow(s)
			}
		case "enums":
			if isNull(v) {
				break
			}
			c.Enums = map[string][]string{}
			p.pairs(v, name, func(key string, _, ev *yaml.Node) {
				c.Enums[key] = p.strList(ev, join(name, key))
			})
		case "limits":
			p.decodeLimits(v, c)
		case "quiet_hours":
			p.decodeQuietHours(v, c)
		case "batch_size":
			if i, ok := p.integer(v, name); ok {
				c.BatchSize = i
			}
		case "per_user_per_run":
			if i, ok := p.integer(v, name); ok {
				c.PerUserPerRun = i
			}
		case "priority", "reserve", "holdout", "conversion":
			p.decodeGrantFields(name, v, c)
		case "repeat":
			c.Repeat, _ = p.str(v, name)
		case "misfire":
			if s, ok := p.str(v, name); ok {
				c.Misfire = s
			}
		case "misfire_window":
			if d, ok := p.window(v, name); ok {
				c.MisfireWindow = d
			}
		default:
			return false
		}
		return true
	})
}

func (p *decoder) decodeTemplate(v *yaml.Node, c *Campaign) {
	if isNull(v) {
		return
	}
	t := &c.Template
	p.fields(v, "template", templateFields, func(name string, fv *yaml.Node) bool {
		path := "template." + name
		switch name {
		case "id":
			t.ID, _ = p.str(fv, path)
		case "kind":
			if s, ok := p.str(fv, path); ok {
				t.Kind = wxcampaign.Kind(s)
			}
		case "page":
			t.Page, _ = p.str(fv, path)
		case "state":
			if s, ok := p.str(fv, path); ok {
				t.State = s
			}
		case "lang":
			if s, ok := p.str(fv, path); ok {
				t.Lang = s
			}
		default:
			return false
		}
		return true
	})
}

func (p *decoder) decodeFacts(v *yaml.Node, c *Campaign) {
	if isNull(v) {
		return
	}
	p.pairs(v, "facts", func(name string, _, fv *yaml.Node) {
		f := Fact{Name: name}
		base := "facts." + name
		if isNull(fv) {
			p.errorAt(fv, base, "%s: a fact needs query, key and column", base)
			return
		}
		p.fields(fv, base, factFields, func(field string, ffv *yaml.Node) bool {
			path := base + "." + field
			switch field {
			case "query":
				f.Query, _ = p.str(ffv, path)
			case "key":
				f.Key, _ = p.str(ffv, path)
			case "column":
				f.Column, _ = p.str(ffv, path)
			default:
				return false
			}
			return true
		})
		c.Facts = append(c.Facts, f)
	})
}

func (p *decoder) decodeLimits(v *yaml.Node, c *Campaign) {
	if isNull(v) {
		return
	}
	p.items(v, "limits", func(ip string, item *yaml.Node) {
		var l Limit
		p.fields(item, ip, limitFields, func(field string, fv *yaml.Node) bool {
			path := ip + "." + field
			switch field {
			case "scope":
				l.Scope, _ = p.str(fv, path)
			case "max":
				l.Max, _ = p.integer(fv, path)
			case "window":
				if d, ok := p.window(fv, path); ok {
					l.Window = d
				}
			default:
				return false
			}
			return true
		})
		c.Limits = append(c.Limits, l)
	})
}

func (p *decoder) decodeQuietHours(v *yaml.Node, c *Campaign) {
	if isNull(v) {
		return
	}
	q := &QuietHours{Action: QuietDefer}
	p.fields(v, "quiet_hours", quietFields, func(field string, fv *yaml.Node) bool {
		path := "quiet_hours." + field
		switch field {
		case "from", "to":
			s, ok := p.str(fv, path)
			if !ok {
				break
			}
			d, err := parseClock(s)
			if err != nil {
				p.errorAt(fv, path, "%s: %v", path, err)
				break
			}
			if field == "from" {
				q.From = d
			} else {
				q.To = d
			}
		case "action":
			if s, ok := p.str(fv, path); ok {
				q.Action = s
			}
		default:
			return false
		}
		return true
	})
	c.QuietHours = q
}
