package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestValidateTemplates: validate --templates checks the campaigns against a
// template list in the simulator's format, printing file:line:col: message
// and exiting 1 on a mismatch.
func TestValidateTemplates(t *testing.T) {
	root := repoRoot(t)
	dir := t.TempDir()
	write := func(name, content string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	camp := write("ship.yaml", `name: ship
schedule: "@every 5m"
template:
  id: T-SHIP
  kind: one_time
when: "true"
data:
  thing1: grant.biz_no
  enum2: grant.scene
enums:
  enum2: [shipped, lost]
`)
	broken := write("broken.yaml", "name: broken\n")
	good := write("good.yaml", `templates:
  - {id: T-SHIP, keys: [thing1, enum2], enums: {enum2: [shipped, delivered, lost]}}
`)
	wrong := write("wrong.yaml", `- id: T-SHIP
  kind: long_term
  keys: [thing1, enum2, time3]
  enums: {enum2: [shipped, delivered]}
`)
	examples := filepath.Join(root, "configs/templates.yaml")
	tests := []struct {
		name       string
		args       []string
		code       int
		wantOut    string   // substring of stdout
		wantErr    []string // exact stderr lines
		errContain string   // substring of stderr, when the lines are not listed
	}{
		{"examples match", []string{"--templates", examples, filepath.Join(root, "configs/campaigns")}, 0,
			"ok: 4 campaign(s) valid, templates match", nil, ""},
		{"default kind is one_time", []string{"--templates", good, camp}, 0, "ok: 1 campaign(s) valid", nil, ""},
		{"without --templates nothing is checked", []string{camp}, 0, "ok: 1 campaign(s) valid\n", nil, ""},
		{"mismatch", []string{"--templates", wrong, camp}, 1, "", []string{
			camp + ":5:9: template.kind is one_time, but template T-SHIP is long_term in the account's template list",
			camp + ":7:1: data: missing key time3 of template T-SHIP (its keys: thing1, enum2, time3)",
			camp + `:11:20: enums.enum2: "lost" is not an enum value of template T-SHIP (its values: shipped, delivered)`,
		}, ""},
		{"unknown template", []string{"--templates", examples, camp}, 1, "", []string{
			camp + ":4:7: template T-SHIP is not in the account's template list",
		}, ""},
		{"load errors and template errors together", []string{"--templates", examples, broken, camp}, 1, "", nil,
			camp + ":4:7: template T-SHIP is not in the account's template list"},
		{"unreadable templates file", []string{"--templates", filepath.Join(dir, "missing.yaml"), camp}, 1, "", nil,
			"wxcampaign: --templates: wxsim: load templates"},
		{"invalid templates file", []string{"--templates", write("bad.yaml", "- {id: X, keys: [colour1]}\n"), camp}, 1, "", nil,
			"--templates: wxsim: load templates"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := run(t, nil, append([]string{"validate"}, tt.args...)...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, out, errOut)
			}
			if !strings.Contains(out, tt.wantOut) {
				t.Errorf("stdout %q, want it to contain %q", out, tt.wantOut)
			}
			if tt.wantErr != nil {
				if got := strings.Split(strings.TrimRight(errOut, "\n"), "\n"); strings.Join(got, "\n") != strings.Join(tt.wantErr, "\n") {
					t.Errorf("stderr\n got %q\nwant %q", got, tt.wantErr)
				}
			}
			if !strings.Contains(errOut, tt.errContain) {
				t.Errorf("stderr %q, want it to contain %q", errOut, tt.errContain)
			}
			if tt.code == 0 && errOut != "" {
				t.Errorf("stderr on success: %q", errOut)
			}
		})
	}
}
