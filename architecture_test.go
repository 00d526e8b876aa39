package wxcampaign_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestImportDirection keeps the package graph of docs/architecture.md:
// imports point one way, from the wiring down to the domain types.
func TestImportDirection(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	const mod = "github.com/wxcampaign/wxcampaign"
	for _, c := range []struct {
		pkg    string
		banned []string // packages of ours it must not depend on
		only   []string // when set, the only packages of ours it may depend on
	}{
		{pkg: "engine", banned: []string{"api", "wechat", "console", "cmd/wxcampaign"}},
		{pkg: "api", banned: []string{"store", "engine", "console"}},
		{pkg: "store", only: []string{"", "internal/jsonenc"}},
		{pkg: "rules", banned: []string{"store", "engine", "campaigns", "wechat", "api"}},
		{pkg: "wechat", banned: []string{"store", "engine", "api", "console"}},
		{pkg: "internal/jsonenc", only: []string{"internal/jsonenc"}},
	} {
		out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", "./"+c.pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", c.pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			rel, ours := strings.CutPrefix(dep, mod)
			if !ours || dep == mod+"/"+c.pkg {
				continue
			}
			rel = strings.TrimPrefix(rel, "/")
			for _, b := range c.banned {
				if rel == b || strings.HasPrefix(rel, b+"/") {
					t.Errorf("%s depends on %s", c.pkg, rel)
				}
			}
			if c.only != nil && !slices.Contains(c.only, rel) {
				t.Errorf("%s depends on %s; it may depend only on %q", c.pkg, rel, c.only)
			}
		}
	}
}
