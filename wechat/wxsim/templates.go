package wxsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/wxcampaign/wxcampaign/keyword"
	"gopkg.in/yaml.v3"
)

// TemplateDef is one template the simulator knows: its private id, title,
// kind and data keys (type plus index, "thing1", "amount2"), the label
// WeChat shows next to each key ("商品名称"), an example value per key, and
// the enum values of its enum keys. getTemplateList serves the labels in
// content ("商品名称:{{thing1.DATA}}") and the examples in example.
type TemplateDef struct {
	ID       string              `yaml:"id" json:"id"`
	Title    string              `yaml:"title" json:"title"`
	Kind     string              `yaml:"kind" json:"kind"` // one_time (default) or long_term
	Keys     []string            `yaml:"keys" json:"keys"`
	Labels   map[string]string   `yaml:"labels,omitempty" json:"labels,omitempty"`     // label per key; default the key
	Examples map[string]string   `yaml:"examples,omitempty" json:"examples,omitempty"` // example value per key
	Enums    map[string][]string `yaml:"enums" json:"enums,omitempty"`
}

// template is a validated TemplateDef with its keys parsed.
type template struct {
	def     TemplateDef
	oneTime bool
	keys    []tkey
	index   map[string]int // key -> position in keys
}

type tkey struct {
	name string
	typ  keyword.Type
	enum []string
}

// compileTemplate checks d and parses its keys.
func compileTemplate(d TemplateDef) (*template, error) {
	if d.ID == "" {
		return nil, fmt.Errorf("template without id")
	}
	t := &template{def: d, index: make(map[string]int, len(d.Keys))}
	switch d.Kind {
	case "", "one_time":
		t.oneTime = true
		t.def.Kind = "one_time"
	case "long_term":
	default:
		return nil, fmt.Errorf("template %s: kind %q is neither one_time nor long_term", d.ID, d.Kind)
	}
	if len(d.Keys) == 0 {
		return nil, fmt.Errorf("template %s: no keys", d.ID)
	}
	for _, k := range d.Keys {
		typ, _, err := keyword.Parse(k)
		if err != nil {
			return nil, fmt.Errorf("template %s: %w", d.ID, err)
		}
		if _, dup := t.index[k]; dup {
			return nil, fmt.Errorf("template %s: key %s twice", d.ID, k)
		}
		t.index[k] = len(t.keys)
		t.keys = append(t.keys, tkey{name: k, typ: typ, enum: d.Enums[k]})
	}
	for k := range d.Enums {
		if _, ok := t.index[k]; !ok {
			return nil, fmt.Errorf("template %s: enum values for %s, which is not one of its keys", d.ID, k)
		}
	}
	for what, m := range map[string]map[string]string{"label": d.Labels, "example": d.Examples} {
		for k, v := range m {
			if _, ok := t.index[k]; !ok {
				return nil, fmt.Errorf("template %s: %s for %s, which is not one of its keys", d.ID, what, k)
			}
			if strings.ContainsAny(v, "\r\n") || strings.Contains(v, "{{") || strings.Contains(v, "}}") {
				return nil, fmt.Errorf("template %s: %s of %s holds a newline or {{ }}", d.ID, what, k)
			}
		}
	}
	for k, v := range d.Examples {
		if err := keyword.CheckType(t.keys[t.index[k]].typ, v, d.Enums[k]); err != nil {
			return nil, fmt.Errorf("template %s: example of %s %q: %w", d.ID, k, v, err)
		}
	}
	return t, nil
}

// content renders the getTemplateList content, one line per key with its
// label: "商品名称:{{thing1.DATA}}\n..." (the key itself when unlabelled).
func (t *template) content() string {
	var b strings.Builder
	for _, k := range t.keys {
		label := t.def.Labels[k.name]
		if label == "" {
			label = k.name
		}
		b.WriteString(label)
		b.WriteString(":{{")
		b.WriteString(k.name)
		b.WriteString(".DATA}}\n")
	}
	return b.String()
}

// example renders the getTemplateList example, "商品名称:Nike Air\n...", for
// the keys that have an example.
func (t *template) example() string {
	var b strings.Builder
	for _, k := range t.keys {
		v, ok := t.def.Examples[k.name]
		if !ok {
			continue
		}
		label := t.def.Labels[k.name]
		if label == "" {
			label = k.name
		}
		b.WriteString(label)
		b.WriteString(":")
		b.WriteString(v)
		b.WriteString("\n")
	}
	return b.String()
}

// LoadTemplates reads template definitions from a YAML or JSON file, either
// {"templates": [...]} or a bare list. Unknown fields are errors.
func LoadTemplates(path string) ([]TemplateDef, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("wxsim: load templates: %w", err)
	}
	defs, err := parseTemplates(data)
	if err != nil {
		return nil, fmt.Errorf("wxsim: load templates %s: %w", path, err)
	}
	for _, d := range defs {
		if _, err := compileTemplate(d); err != nil {
			return nil, fmt.Errorf("wxsim: load templates %s: %w", path, err)
		}
	}
	return defs, nil
}

// parseTemplates decodes a template file (YAML is a superset of JSON).
func parseTemplates(data []byte) ([]TemplateDef, error) {
	var node yaml.Node
	if err := yaml.Unmarshal(data, &node); err != nil {
		return nil, err
	}
	if node.Kind == 0 || len(node.Content) == 0 {
		return nil, fmt.Errorf("empty file")
	}
	root := node.Content[0]
	var defs []TemplateDef
	switch root.Kind {
	case yaml.SequenceNode:
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&defs); err != nil {
			return nil, err
		}
	case yaml.MappingNode:
		var f struct {
			Templates []TemplateDef `yaml:"templates"`
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&f); err != nil {
			return nil, err
		}
		defs = f.Templates
	default:
		return nil, fmt.Errorf("line %d: want a list of templates or {templates: [...]}", root.Line)
	}
	if len(defs) == 0 {
		return nil, fmt.Errorf("no templates")
	}
	return defs, nil
}

// templateListJSON pre-encodes the data of getTemplateList.
func templateListJSON(ts []*template) ([]byte, error) {
	type enumList struct {
		KeywordCode   string   `json:"keywordCode"`
		EnumValueList []string `json:"enumValueList"`
	}
	type item struct {
		ID      string     `json:"priTmplId"`
		Title   string     `json:"title"`
		Content string     `json:"content"`
		Example string     `json:"example"`
		Type    int        `json:"type"`
		Enums   []enumList `json:"keywordEnumValueList,omitempty"`
	}
	items := make([]item, 0, len(ts))
	for _, t := range ts {
		it := item{ID: t.def.ID, Title: t.def.Title, Content: t.content(), Example: t.example(), Type: 2}
		if !t.oneTime {
			it.Type = 3
		}
		for _, k := range t.keys {
			if k.enum != nil {
				it.Enums = append(it.Enums, enumList{KeywordCode: "{{" + k.name + ".DATA}}", EnumValueList: k.enum})
			}
		}
		items = append(items, it)
	}
	return json.Marshal(struct {
		ErrCode int    `json:"errcode"`
		ErrMsg  string `json:"errmsg"`
		Data    []item `json:"data"`
	}{0, "ok", items})
}
