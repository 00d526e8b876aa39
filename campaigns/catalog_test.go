package campaigns

import (
	"fmt"
	"strings"
	"testing"

	wx "github.com/wxcampaign/wxcampaign"
)

// campaignWith returns a minimal campaign file with the given scenes line.
func campaignWith(name, tmpl, kind, scenes string, enabled bool) string {
	return fmt.Sprintf(`name: %s
schedule: "@hourly"
template:
  id: %s
  kind: %s
enabled: %v
scenes: %s
when: "true"
data:
  thing1: '"x"'
`, name, tmpl, kind, enabled, scenes)
}

// TestSceneRule: campaign files take the scenes the mini program uses
// (Chinese trigger names included) under the same rule as the API, and
// refuse the rest at the scene's position.
func TestSceneRule(t *testing.T) {
	tests := []struct {
		name, scenes, wantErr string
	}{
		{"chinese trigger names", `[加入购物车, 提交订单, "提交售后申请（退货退款）", add_to_cart, "with space"]`, ""},
		{"slash", `[ok, "a/b"]`, `s.yaml:7:14: scene "a/b" contains '/'`},
		{"control character", `["a\tb"]`, `s.yaml:7:10: scene "a\tb" has a control`},
		{"too long", `[` + strings.Repeat("长", 65) + `]`, `s.yaml:7:10: scene "` + strings.Repeat("长", 65) + `" is longer than 64 characters`},
		{"64 characters", `[` + strings.Repeat("长", 64) + `]`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("s.yaml", []byte(campaignWith("s", "T1", "one_time", tt.scenes, true)), engineDefaults)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("err = %v", err)
			case tt.wantErr != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.wantErr)):
				t.Fatalf("err = %v, want prefix %q", err, tt.wantErr)
			}
		})
	}
}

// TestCatalog: scenes list the enabled campaigns' templates once each, in
// file order, with their kinds; Set swaps the whole set.
func TestCatalog(t *testing.T) {
	parse := func(name, tmpl, kind, scenes string, enabled bool) *Campaign {
		c, err := Parse(name+".yaml", []byte(campaignWith(name, tmpl, kind, scenes, enabled)), engineDefaults)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	cs := []*Campaign{
		parse("a", "T1", "one_time", "[加入购物车, paid]", true),
		parse("b", "T1", "one_time", "[加入购物车]", true), // same template again: listed once
		parse("c", "L1", "long_term", "[加入购物车]", true),
		parse("d", "T2", "one_time", "[加入购物车]", false), // disabled: not offered, kind known
	}
	cat := NewCatalog(cs)
	got := cat.SceneTemplates("加入购物车")
	want := []wx.SceneTemplate{{TemplateID: "T1", Kind: wx.OneTime, Campaign: "a"}, {TemplateID: "L1", Kind: wx.LongTerm, Campaign: "c"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("SceneTemplates = %v, want %v", got, want)
	}
	if k := cat.KindOf("L1"); k != wx.LongTerm {
		t.Errorf("KindOf(L1) = %s", k)
	}
	if k := cat.KindOf("unknown"); k != wx.OneTime {
		t.Errorf("KindOf(unknown) = %s", k)
	}
	if cat.Len() != 4 {
		t.Errorf("Len = %d", cat.Len())
	}
	cat.Set(cs[:1])
	if got := cat.SceneTemplates("加入购物车"); len(got) != 1 || cat.Len() != 1 {
		t.Errorf("after Set: %v", got)
	}
}
