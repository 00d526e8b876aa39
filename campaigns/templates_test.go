package campaigns

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wxcampaign/wxcampaign"
)

// tmplSrc is a campaign on template T-ORDER (one_time) with an enum key whose
// enums entry, data and kind each test replaces. Line numbers matter: id is
// at 4:7, kind at 5:9, data: at 7:1, its keys from 8:3, enums values at 12.
const tmplSrc = `name: tpl
schedule: "@every 5m"
template:
  id: T-ORDER
  kind: one_time
when: "true"
data:
  thing1: grant.biz_no
  enum2: grant.scene
  amount3: "1"
enums:
  enum2: [paid, unpaid]
`

var tOrder = TemplateInfo{ID: "T-ORDER", Kind: wxcampaign.OneTime, Keys: []string{"thing1", "enum2", "amount3"},
	Enums: map[string][]string{"enum2": {"paid", "unpaid", "cancelled"}}}

func parseTmpl(t *testing.T, src string) *Campaign {
	t.Helper()
	c, err := Parse("tpl.yaml", []byte(src), Defaults{Location: time.UTC})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return c
}

func TestCheckTemplates(t *testing.T) {
	noEnums := strings.Replace(tmplSrc, "enums:\n  enum2: [paid, unpaid]\n", "", 1)
	tests := []struct {
		name string
		src  string
		ts   []TemplateInfo
		want []string // full error strings, in order
	}{
		{"matches", tmplSrc, []TemplateInfo{tOrder}, nil},
		{"unknown kind is not checked", tmplSrc, []TemplateInfo{{ID: "T-ORDER", Keys: tOrder.Keys}}, nil},
		{"first of duplicate ids wins", tmplSrc, []TemplateInfo{tOrder, {ID: "T-ORDER", Kind: wxcampaign.LongTerm, Keys: []string{"x"}}}, nil},
		{"unknown template", tmplSrc, []TemplateInfo{{ID: "T-OTHER", Keys: tOrder.Keys}},
			[]string{"tpl.yaml:4:7: template T-ORDER is not in the account's template list"}},
		{"empty list", tmplSrc, nil,
			[]string{"tpl.yaml:4:7: template T-ORDER is not in the account's template list"}},
		{"kind mismatch", tmplSrc, []TemplateInfo{{ID: "T-ORDER", Kind: wxcampaign.LongTerm, Keys: tOrder.Keys}},
			[]string{"tpl.yaml:5:9: template.kind is one_time, but template T-ORDER is long_term in the account's template list"}},
		{"missing key", tmplSrc, []TemplateInfo{{ID: "T-ORDER", Keys: []string{"thing1", "enum2", "amount3", "time4"}}},
			[]string{"tpl.yaml:7:1: data: missing key time4 of template T-ORDER (its keys: thing1, enum2, amount3, time4)"}},
		{"missing keys", tmplSrc, []TemplateInfo{{ID: "T-ORDER", Keys: []string{"thing1", "enum2", "amount3", "time4", "thing5"}}},
			[]string{"tpl.yaml:7:1: data: missing keys time4, thing5 of template T-ORDER (its keys: thing1, enum2, amount3, time4, thing5)"}},
		{"extra key", tmplSrc, []TemplateInfo{{ID: "T-ORDER", Keys: []string{"thing1", "enum2"}}},
			[]string{"tpl.yaml:10:3: data key amount3 is not a key of template T-ORDER (its keys: thing1, enum2)"}},
		{"renamed key: extra and missing", tmplSrc, []TemplateInfo{{ID: "T-ORDER", Keys: []string{"thing1", "enum2", "amount4"}}},
			[]string{
				"tpl.yaml:7:1: data: missing key amount4 of template T-ORDER (its keys: thing1, enum2, amount4)",
				"tpl.yaml:10:3: data key amount3 is not a key of template T-ORDER (its keys: thing1, enum2, amount4)",
			}},
		{"key type differs", tmplSrc, []TemplateInfo{{ID: "T-ORDER", Keys: []string{"thing1", "enum2", "short_thing3"}}},
			[]string{"tpl.yaml:10:3: data key amount3: template T-ORDER has short_thing3, of type short_thing, not amount (its keys: thing1, enum2, short_thing3)"}},
		{"key type differs and the key is there too", strings.Replace(tmplSrc, `  amount3: "1"`, "  amount3: \"1\"\n  short_thing3: '\"x\"'", 1),
			[]TemplateInfo{{ID: "T-ORDER", Keys: []string{"thing1", "enum2", "short_thing3"}}},
			[]string{"tpl.yaml:10:3: data key amount3 is not a key of template T-ORDER (its keys: thing1, enum2, short_thing3)"}},
		{"enum value the template lacks", tmplSrc,
			[]TemplateInfo{{ID: "T-ORDER", Keys: tOrder.Keys, Enums: map[string][]string{"enum2": {"paid", "refunded"}}}},
			[]string{`tpl.yaml:12:17: enums.enum2: "unpaid" is not an enum value of template T-ORDER (its values: paid, refunded)`}},
		{"template without enum values: not checked", tmplSrc, []TemplateInfo{{ID: "T-ORDER", Keys: tOrder.Keys}}, nil},
		{"every problem at once", tmplSrc,
			[]TemplateInfo{{ID: "T-ORDER", Kind: wxcampaign.LongTerm, Keys: []string{"thing1", "enum2", "time9"}, Enums: map[string][]string{"enum2": {"x"}}}},
			[]string{
				"tpl.yaml:5:9: template.kind is one_time, but template T-ORDER is long_term in the account's template list",
				"tpl.yaml:7:1: data: missing key time9 of template T-ORDER (its keys: thing1, enum2, time9)",
				"tpl.yaml:10:3: data key amount3 is not a key of template T-ORDER (its keys: thing1, enum2, time9)",
				`tpl.yaml:12:11: enums.enum2: "paid" is not an enum value of template T-ORDER (its values: x)`,
				`tpl.yaml:12:17: enums.enum2: "unpaid" is not an enum value of template T-ORDER (its values: x)`,
			}},
		{"adopted enums: a constant outside them", strings.Replace(noEnums, "enum2: grant.scene", `enum2: '"shipped"'`, 1), []TemplateInfo{tOrder},
			[]string{`tpl.yaml:9:10: data.enum2: constant can never be sent: not one of the enum values (enum values of template T-ORDER)`}},
		{"adopted enums: a literal branch outside them", strings.Replace(noEnums, "enum2: grant.scene", `enum2: 'grant.scene == "a" ? "paid" : "lost"'`, 1), []TemplateInfo{tOrder},
			[]string{`tpl.yaml:9:10: data.enum2: "lost" can never be sent: not one of the enum values (paid, unpaid, cancelled) (enum values of template T-ORDER)`}},
		{"adopted enums: a constant inside them", strings.Replace(noEnums, "enum2: grant.scene", `enum2: '"paid"'`, 1), []TemplateInfo{tOrder}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := parseTmpl(t, tt.src)
			before := *c
			errs := CheckTemplates([]*Campaign{c}, tt.ts)
			var got []string
			for _, e := range errs {
				got = append(got, e.Error())
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors\n got %q\nwant %q", got, tt.want)
			}
			if len(errs) > 0 && (!reflect.DeepEqual(c.Enums, before.Enums) || c.Program != before.Program) {
				t.Errorf("a campaign with problems was changed: enums %v program changed %v", c.Enums, c.Program != before.Program)
			}
			if (errs.Err() == nil) != (len(tt.want) == 0) {
				t.Errorf("Err() = %v with %d errors", errs.Err(), len(errs))
			}
		})
	}
}

// TestCheckTemplatesAdoptsEnums: a campaign without enums takes the
// template's, and rendering then refuses a value outside them; a campaign
// with its own enums keeps them.
func TestCheckTemplatesAdoptsEnums(t *testing.T) {
	noEnums := strings.Replace(tmplSrc, "enums:\n  enum2: [paid, unpaid]\n", "", 1)
	tests := []struct {
		name      string
		src       string
		wantEnums map[string][]string
		scene     string
		wantErr   string // "" = renders
	}{
		{"adopted, value inside", noEnums, map[string][]string{"enum2": {"paid", "unpaid", "cancelled"}}, "cancelled", ""},
		{"adopted, value outside", noEnums, map[string][]string{"enum2": {"paid", "unpaid", "cancelled"}}, "shipped", "render invalid: enum2: not one of the enum values"},
		{"own enums kept", tmplSrc, map[string][]string{"enum2": {"paid", "unpaid"}}, "cancelled", "render invalid: enum2: not one of the enum values"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := parseTmpl(t, tt.src)
			// Before the check, a campaign without enums renders any value.
			if tt.src == noEnums {
				if _, err := render(c, "shipped"); err != nil {
					t.Fatalf("before CheckTemplates: %v", err)
				}
			}
			if errs := CheckTemplates([]*Campaign{c}, []TemplateInfo{tOrder}); len(errs) > 0 {
				t.Fatalf("CheckTemplates: %v", errs)
			}
			if !reflect.DeepEqual(c.Enums, tt.wantEnums) {
				t.Errorf("Enums = %v, want %v", c.Enums, tt.wantEnums)
			}
			_, err := render(c, tt.scene)
			if got := errString(err); got != tt.wantErr {
				t.Errorf("render(%q) error = %q, want %q", tt.scene, got, tt.wantErr)
			}
		})
	}
	// The copy is the campaign's own: changing it leaves the template alone.
	c := parseTmpl(t, noEnums)
	ts := []TemplateInfo{tOrder}
	ts[0].Enums = map[string][]string{"enum2": {"a", "b"}}
	CheckTemplates([]*Campaign{c}, ts)
	c.Enums["enum2"][0] = "changed"
	if ts[0].Enums["enum2"][0] != "a" {
		t.Error("the campaign's enums alias the template's")
	}
}

func render(c *Campaign, scene string) (map[string]string, error) {
	e := c.Program.NewEnv()
	e.Reset(&wxcampaign.Grant{OpenID: "o1", BizNo: "b1", Scene: scene}, time.Unix(0, 0))
	m, err := c.Program.Render(e)
	return m.Data, err
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestCheckTemplatesSet: errors of several campaigns come in file order, and
// a campaign built by hand (no positions) gets "file: message".
func TestCheckTemplatesSet(t *testing.T) {
	a := parseTmpl(t, tmplSrc)
	a.File = "b.yaml"
	hand := &Campaign{Name: "hand", File: "a.yaml", Template: Template{ID: "T-NONE", Kind: wxcampaign.OneTime}}
	errs := CheckTemplates([]*Campaign{a, hand}, []TemplateInfo{{ID: "T-ORDER", Keys: []string{"thing1", "enum2"}}})
	want := []string{
		"a.yaml: template T-NONE is not in the account's template list",
		"b.yaml:10:3: data key amount3 is not a key of template T-ORDER (its keys: thing1, enum2)",
	}
	var got []string
	for _, e := range errs {
		got = append(got, e.Error())
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("errors\n got %q\nwant %q", got, want)
	}
}

// TestCheckTemplatesExamples: the example campaigns match configs/templates.yaml
// as the simulator reads it (checked end to end in cmd/wxcampaign); here, each
// example's keys as a template list pass.
func TestCheckTemplatesExamples(t *testing.T) {
	cs, err := LoadPaths([]string{"../configs/campaigns"}, engineDefaults)
	if err != nil {
		t.Fatal(err)
	}
	var ts []TemplateInfo
	for _, c := range cs {
		ti := TemplateInfo{ID: c.Template.ID, Kind: c.Template.Kind}
		for _, f := range c.Data {
			ti.Keys = append(ti.Keys, f.Key)
		}
		ts = append(ts, ti)
	}
	if errs := CheckTemplates(cs, ts); len(errs) > 0 {
		t.Errorf("CheckTemplates: %v", errs)
	}
	if errs := CheckTemplates(cs, ts[1:]); len(errs) != 1 || !strings.Contains(errs[0].Error(), cs[0].Template.ID) {
		t.Errorf("one template left out: %v", errs)
	}
}

// TestDefaultsPages: with the account's pages (wechat.pages), a constant page
// outside them fails the campaign at template.page; a page from grant data
// is checked per grant at render time and survives CheckTemplates'
// recompilation.
func TestDefaultsPages(t *testing.T) {
	src := strings.Replace(tmplSrc, "  kind: one_time\n", "  kind: one_time\n  page: '\"pages/gone/index?id=\" + grant.biz_no'\n", 1)
	d := Defaults{Location: time.UTC, Pages: []string{"pages/order/detail"}}
	_, err := Parse("tpl.yaml", []byte(src), d)
	want := `tpl.yaml:6:10: template.page: "pages/gone/index" is not a page of the mini program (wechat.pages)`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Parse error = %v, want %q", err, want)
	}
	src = strings.Replace(tmplSrc, "  kind: one_time\n", "  kind: one_time\n  page: grant.vars.page\n", 1)
	src = strings.Replace(src, "enums:\n  enum2: [paid, unpaid]\n", "", 1) // adopt: recompiles
	c, err := Parse("tpl.yaml", []byte(src), d)
	if err != nil {
		t.Fatal(err)
	}
	if errs := CheckTemplates([]*Campaign{c}, []TemplateInfo{tOrder}); len(errs) > 0 {
		t.Fatal(errs)
	}
	for page, wantErr := range map[string]string{
		"pages/order/detail?id=1": "",
		"pages/other/index":       `render invalid: page: "pages/other/index" is not a page of the mini program (wechat.pages)`,
	} {
		e := c.Program.NewEnv()
		e.Reset(&wxcampaign.Grant{OpenID: "o1", BizNo: "b1", Scene: "paid", Vars: map[string]any{"page": page}}, time.Unix(0, 0))
		_, err := c.Program.Render(e)
		if got := errString(err); got != wantErr {
			t.Errorf("page %q: error %q, want %q", page, got, wantErr)
		}
	}
}
