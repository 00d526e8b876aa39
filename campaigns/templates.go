package campaigns

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/keyword"
	"github.com/wxcampaign/wxcampaign/rules"
)

// TemplateInfo is what the account's template list (getTemplateList, or the
// simulator's templates file) says about one private template.
type TemplateInfo struct {
	ID    string
	Kind  wxcampaign.Kind     // "" = unknown: the kind is not checked
	Keys  []string            // data keys in the template's order: "thing1", "time2"
	Enums map[string][]string // enum values per enum key (keywordEnumValueList)
}

// position is a 1-based line and column in a campaign file.
type position struct{ line, col int }

// positions remembers where the fields CheckTemplates blames are in the file:
// keys by path ("data", "data.thing1", "enums.enum2") and values by path
// ("template.id", "template.kind", "data.thing1", "enums.enum2[0]").
type positions struct {
	key, val map[string]position
}

// recordPositions keeps the positions CheckTemplates needs once the decoder
// is gone.
func (p *decoder) recordPositions(c *Campaign) {
	ps := positions{key: map[string]position{}, val: map[string]position{}}
	keep := func(path string) bool {
		return path == "data" || path == "template.id" || path == "template.kind" || path == "template.page" ||
			strings.HasPrefix(path, "data.") || strings.HasPrefix(path, "enums.")
	}
	for path, n := range p.key {
		if keep(path) && n != nil && n.Line > 0 {
			ps.key[path] = position{n.Line, n.Column}
		}
	}
	for path, n := range p.val {
		if keep(path) && n != nil && n.Line > 0 {
			ps.val[path] = position{n.Line, n.Column}
		}
	}
	c.pos = ps
}

// CheckTemplates checks each campaign against the account's template list ts
// before anything is sent:
//
//   - template.id must be one of ts ("template X is not in the account's
//     template list", at template.id);
//   - template.kind must match the template's kind when that is known (at
//     template.kind);
//   - the data keys must be exactly the template's keys: a missing key is an
//     error at data, a key the template does not have is an error at that key,
//     and a key whose index the template has with another type ("thing3"
//     where the template has "phrase3") is a type error at that key;
//   - every value a campaign lists under enums for a key must be one of the
//     template's enum values for that key, when the template lists any (at the
//     value).
//
// When the template lists enum values for a data key and the campaign's enums
// say nothing about it, CheckTemplates copies the template's values into
// c.Enums and recompiles c.Program, so that rendering refuses a value WeChat
// would refuse (47003) before the call, failing that grant with
// render_invalid naming the key; a constant data value, or a literal the
// expression can result in, outside them is then an error at that data
// value. Enum checks at render always use
// c.Enums. A campaign with a problem is left as it was. CheckTemplates
// modifies campaigns: call it at load time, before they are shared.
//
// Errors carry the positions Parse recorded; a campaign built by hand gets
// errors without a position. The list is in file then position order.
func CheckTemplates(cs []*Campaign, ts []TemplateInfo) ErrorList {
	byID := make(map[string]*TemplateInfo, len(ts))
	for i := range ts {
		if _, dup := byID[ts[i].ID]; !dup {
			byID[ts[i].ID] = &ts[i]
		}
	}
	var errs ErrorList
	for _, c := range cs {
		errs = append(errs, checkTemplate(c, byID)...)
	}
	errs.sortByPosition()
	return errs
}

func checkTemplate(c *Campaign, byID map[string]*TemplateInfo) ErrorList {
	var errs ErrorList
	at := func(p position, format string, args ...any) {
		errs = append(errs, &Error{File: c.File, Line: p.line, Col: p.col, Msg: fmt.Sprintf(format, args...)})
	}
	id := c.Template.ID
	t := byID[id]
	if t == nil {
		at(c.pos.val["template.id"], "template %s is not in the account's template list", id)
		return errs
	}
	if t.Kind != "" && t.Kind != c.Template.Kind {
		at(c.pos.val["template.kind"], "template.kind is %s, but template %s is %s in the account's template list", c.Template.Kind, id, t.Kind)
	}
	keys := strings.Join(t.Keys, ", ")
	byIndex := make(map[int]string, len(t.Keys))
	for _, k := range t.Keys {
		if _, n, err := keyword.Parse(k); err == nil {
			byIndex[n] = k
		}
	}
	have := make(map[string]bool, len(c.Data))
	for _, f := range c.Data {
		have[f.Key] = true
	}
	retyped := map[string]bool{} // template keys the campaign has with another type
	for _, f := range c.Data {
		if slices.Contains(t.Keys, f.Key) {
			continue
		}
		// Same index, other type: the template's key is there, typed
		// differently ("thing3" against "phrase3").
		if typ, n, err := keyword.Parse(f.Key); err == nil && byIndex[n] != "" && !have[byIndex[n]] && !retyped[byIndex[n]] {
			tk := byIndex[n]
			ttyp, _, _ := keyword.Parse(tk)
			retyped[tk] = true
			at(c.pos.key["data."+f.Key], "data key %s: template %s has %s, of type %s, not %s (its keys: %s)", f.Key, id, tk, ttyp, typ, keys)
			continue
		}
		at(c.pos.key["data."+f.Key], "data key %s is not a key of template %s (its keys: %s)", f.Key, id, keys)
	}
	var missing []string
	for _, k := range t.Keys {
		if !have[k] && !retyped[k] {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		noun := "key"
		if len(missing) > 1 {
			noun = "keys"
		}
		at(c.pos.key["data"], "data: missing %s %s of template %s (its keys: %s)", noun, strings.Join(missing, ", "), id, keys)
	}
	for _, k := range slices.Sorted(maps.Keys(c.Enums)) {
		allowed := t.Enums[k]
		if len(allowed) == 0 {
			continue // the template lists no values: nothing to check against
		}
		for i, v := range c.Enums[k] {
			if !slices.Contains(allowed, v) {
				at(c.pos.val[fmt.Sprintf("enums.%s[%d]", k, i)], "enums.%s: %q is not an enum value of template %s (its values: %s)",
					k, v, id, strings.Join(allowed, ", "))
			}
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return adoptEnums(c, t)
}

// adoptEnums copies the template's enum values of the campaign's enum data
// keys that its enums leave out, and recompiles the campaign's rules with
// them.
func adoptEnums(c *Campaign, t *TemplateInfo) ErrorList {
	var adopted []string
	enums := maps.Clone(c.Enums)
	for _, f := range c.Data {
		typ, _, err := keyword.Parse(f.Key)
		if err != nil || typ != keyword.Enum || len(t.Enums[f.Key]) == 0 {
			continue
		}
		if _, ok := c.Enums[f.Key]; ok {
			continue
		}
		if enums == nil {
			enums = map[string][]string{}
		}
		enums[f.Key] = slices.Clone(t.Enums[f.Key])
		adopted = append(adopted, f.Key)
	}
	if len(adopted) == 0 {
		return nil
	}
	spec := rules.Spec{
		Campaign: c.Name,
		When:     c.When,
		Page:     c.Template.Page,
		Data:     c.Data,
		Overflow: c.Overflow,
		Enums:    enums,
		Pages:    c.Template.Pages,
	}
	for _, f := range c.Facts {
		spec.Facts = append(spec.Facts, rules.FactSpec{Name: f.Name, Key: f.Key})
	}
	prog, err := rules.Compile(spec)
	if err == nil {
		c.Enums, c.Program = enums, prog
		return nil
	}
	var list rules.Errors
	var one *rules.CompileError
	switch {
	case errors.As(err, &list):
	case errors.As(err, &one):
		list = rules.Errors{one}
	default:
		return ErrorList{{File: c.File, Msg: fmt.Sprintf("rules: %v", err)}}
	}
	var errs ErrorList
	for _, ce := range list {
		if ce == nil {
			continue
		}
		field := ce.Field
		if field == "page" {
			field = "template.page"
		}
		p := c.pos.val[field]
		if p == (position{}) {
			p = c.pos.key["data"]
		}
		errs = append(errs, &Error{File: c.File, Line: p.line, Col: p.col,
			Msg: fmt.Sprintf("%s: %s (enum values of template %s)", ce.Field, ce.Msg, t.ID)})
	}
	return errs
}
