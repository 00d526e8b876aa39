package campaigns

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/wxcampaign/wxcampaign"
)

// Bounds of the grant-sharing fields.
const (
	MaxReserve = 100 // credits a campaign may keep for itself
	// MaxHoldout is the largest holdout share: beyond half the campaign
	// would mostly not send.
	MaxHoldout = 0.5
)

var (
	conversionFields = []string{"query", "window"}
	openidsRE        = regexp.MustCompile(`:openids\b`)
	percentRE        = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)\s*%$`)
)

// decodeGrantFields decodes priority, reserve, holdout and conversion.
func (p *decoder) decodeGrantFields(name string, v *yaml.Node, c *Campaign) {
	switch name {
	case "priority":
		c.Priority, _ = p.integer(v, name)
	case "reserve":
		c.Reserve, _ = p.integer(v, name)
	case "holdout":
		s, ok := p.str(v, name)
		if !ok {
			return
		}
		h, err := parsePercent(s)
		if err != nil {
			p.errorAt(v, name, "holdout: %v", err)
			return
		}
		c.Holdout = h
	case "conversion":
		if isNull(v) {
			return
		}
		conv := &Conversion{}
		p.fields(v, name, conversionFields, func(field string, fv *yaml.Node) bool {
			path := name + "." + field
			switch field {
			case "query":
				conv.Query, _ = p.str(fv, path)
			case "window":
				if d, ok := p.window(fv, path); ok {
					conv.Window = d
				}
			default:
				return false
			}
			return true
		})
		c.Conversion = conv
	}
}

// parsePercent reads a share written as a percentage ("5%", "0.5%").
func parsePercent(s string) (float64, error) {
	m := percentRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, fmt.Errorf("want a percentage such as 5%% or 0.5%%, got %q", s)
	}
	f, err := strconv.ParseFloat(m[1], 64)
	if err != nil || math.IsInf(f, 0) {
		return 0, fmt.Errorf("want a percentage such as 5%%, got %q", s)
	}
	return f / 100, nil
}

// validateGrantFields checks priority, reserve, holdout and conversion.
func (p *decoder) validateGrantFields(c *Campaign) {
	if c.Priority < 0 || c.Priority > 1000 {
		p.errorAt(p.at("priority"), "priority", "priority must be between 0 and 1000, got %d", c.Priority)
	}
	switch {
	case c.Reserve < 0 || c.Reserve > MaxReserve:
		p.errorAt(p.at("reserve"), "reserve", "reserve must be between 0 and %d credits, got %d", MaxReserve, c.Reserve)
	case c.Reserve > 0 && c.Template.Kind == wxcampaign.LongTerm:
		p.errorAt(p.at("reserve"), "reserve", "reserve applies to one_time templates only: a long-term grant is not spent")
	}
	if p.has("holdout") && !p.reported["holdout"] && (c.Holdout < 0 || c.Holdout > MaxHoldout) {
		p.errorAt(p.at("holdout"), "holdout", "holdout must be between 0%% and %g%%, got %g%%", MaxHoldout*100, c.Holdout*100)
	}
	if cv := c.Conversion; cv != nil {
		if p.require("conversion.query", "SQL with one :openids placeholder returning openid and at") {
			switch n := len(openidsRE.FindAllStringIndex(cv.Query, -1)); {
			case n != 1:
				p.errorAt(p.at("conversion.query"), "conversion.query", "conversion.query must contain the :openids placeholder exactly once, found %d", n)
			case keysRE.MatchString(cv.Query):
				p.errorAt(p.at("conversion.query"), "conversion.query", "conversion.query takes :openids, not :keys")
			default:
				if bad := checkReadOnlySQL(cv.Query); bad != nil {
					p.queryError("conversion.query", cv.Query, bad)
				}
			}
		}
		p.require("conversion.window", "a duration such as 24h or 7d")
	}
}

// LinkReserves sets Yield and YieldTo on every campaign of cs: the largest
// Reserve among the enabled campaigns of cs that send the same template
// with a higher Priority (ties: the first in cs), so that a campaign of
// lower priority leaves a user's last credits to them. LoadPaths calls it
// on the campaigns it loads together.
func LinkReserves(cs []*Campaign) {
	for _, c := range cs {
		c.Yield, c.YieldTo = 0, ""
		for _, o := range cs {
			if o == c || !o.Enabled || o.Reserve == 0 || o.Template.ID != c.Template.ID || o.Priority <= c.Priority {
				continue
			}
			if o.Reserve > c.Yield {
				c.Yield, c.YieldTo = o.Reserve, o.Name
			}
		}
	}
}

// HeldOut reports whether the campaign's holdout keeps openid unsent: the
// first 8 bytes of SHA-256(name, NUL, openid), read as a fraction of 2^64,
// fall below Holdout. The draw depends on nothing but the campaign's name
// and the openid: the same users on every run, in every replica.
func (c *Campaign) HeldOut(openid string) bool {
	if c.Holdout <= 0 {
		return false
	}
	h := sha256.New()
	h.Write([]byte(c.Name))
	h.Write([]byte{0})
	h.Write([]byte(openid))
	var sum [sha256.Size]byte
	x := binary.BigEndian.Uint64(h.Sum(sum[:0]))
	return float64(x) < c.Holdout*math.Exp2(64)
}
