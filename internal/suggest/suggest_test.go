package suggest

import "testing"

func TestClosest(t *testing.T) {
	known := []string{"schedule", "template", "limits", "quiet_hours"}
	for _, tt := range []struct{ name, want string }{
		{"schedul", "schedule"},
		{"tempalte", "template"},
		{"limit", "limits"},
		{"quiet-hour", "quiet_hours"},
		{"xyz", ""},
		{"", ""},
	} {
		if got := Closest(tt.name, known); got != tt.want {
			t.Errorf("Closest(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestDistance(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"a", "", 1}, {"kitten", "sitting", 3}, {"价格", "价钱", 1},
	} {
		if got := Distance(tt.a, tt.b); got != tt.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
