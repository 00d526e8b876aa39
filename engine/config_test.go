package engine

import (
	"errors"
	"strings"
	"testing"
	"time"

	wx "github.com/wxcampaign/wxcampaign"
)

// TestConfigValidate: every bad value is reported, named by its key.
func TestConfigValidate(t *testing.T) {
	tests := []struct {
		cfg  Config
		want []string // fields, in order
	}{
		{Config{}, nil},
		{Config{Rate: 50, Concurrency: 8, Lease: time.Second, State: "trial", Lang: "en_US", Ambiguous: AmbiguousReconcile}, nil},
		{Config{Lease: 2 * time.Nanosecond}, []string{"lease"}},
		{Config{Lease: -time.Second, Concurrency: -5, Rate: -1}, []string{"rate", "concurrency", "lease"}},
		{Config{State: "production", Lang: "fr_FR", Ambiguous: "maybe"}, []string{"ambiguous", "state", "lang"}},
		{Config{MaxAttempts: -1, RetryBase: -1, RetryMax: -1, ReconcileGrace: -1}, []string{"max_attempts", "retry_base", "retry_max", "reconcile_grace"}},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		var got []string
		if err != nil {
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				var fe *wx.FieldError
				if !errors.As(e, &fe) {
					t.Fatalf("%T %v is not a FieldError", e, e)
				}
				got = append(got, fe.Field)
			}
		}
		if strings.Join(got, ",") != strings.Join(tt.want, ",") {
			t.Errorf("%+v: fields %v, want %v (%v)", tt.cfg, got, tt.want, err)
		}
	}
}
