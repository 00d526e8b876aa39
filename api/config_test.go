package api

import (
	"strings"
	"testing"
)

// TestConfigValidate: bad values are reported by key, never by Go field
// name.
func TestConfigValidate(t *testing.T) {
	tests := []struct {
		cfg  Config
		want string
	}{
		{Config{}, ""},
		{Config{Tokens: []string{"a"}, MaxTemplates: 5, MaxBody: 1}, ""},
		{Config{MaxTemplates: 10}, "max_templates: must be between 1 and 5 (0 means 3), got 10"},
		{Config{MaxBody: -1}, "max_body: must be 0"},
		{Config{Tokens: []string{"a", ""}}, "tokens: an empty bearer token"},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		if (err == nil) != (tt.want == "") || err != nil && !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: %v, want %q", tt.cfg, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "MaxTemplates") {
			t.Errorf("Go field name in %v", err)
		}
	}
}
