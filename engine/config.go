package engine

import (
	"errors"
	"math"
	"time"

	wx "github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/campaigns"
)

// MinLease is the shortest run lease Validate accepts: the lease is
// extended every third of it, and a store round trip must fit in that.
const MinLease = time.Second

// Validate checks the values of cfg without contacting anything. Zero
// values mean the defaults New applies. Errors are *wxcampaign.FieldError
// naming rate, concurrency, lease, max_attempts, retry_base, retry_max,
// ambiguous, reconcile_grace, state or lang.
func (cfg Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, wx.FieldErrorf(field, format, args...))
	}
	if cfg.Rate < 0 || math.IsNaN(cfg.Rate) || math.IsInf(cfg.Rate, 0) {
		bad("rate", "must be 0 (unlimited) or a positive number of messages per second, got %v", cfg.Rate)
	}
	if cfg.Concurrency < 0 {
		bad("concurrency", "must be 0 (default 64) or more, got %d", cfg.Concurrency)
	}
	if cfg.Lease < 0 || cfg.Lease > 0 && cfg.Lease < MinLease {
		bad("lease", "must be 0 (default 2m) or at least %s, got %s", MinLease, cfg.Lease)
	}
	if cfg.MaxAttempts < 0 {
		bad("max_attempts", "must be 0 (default 5) or more, got %d", cfg.MaxAttempts)
	}
	if cfg.RetryBase < 0 {
		bad("retry_base", "must be 0 (default 1s) or more, got %s", cfg.RetryBase)
	}
	if cfg.RetryMax < 0 {
		bad("retry_max", "must be 0 (default 30s) or more, got %s", cfg.RetryMax)
	}
	switch cfg.Ambiguous {
	case "", AmbiguousConsume, AmbiguousRetry, AmbiguousReconcile:
	default:
		bad("ambiguous", "unknown policy %q: want consume, retry or reconcile", cfg.Ambiguous)
	}
	if cfg.ReconcileGrace < 0 {
		bad("reconcile_grace", "must be 0 (default 2m) or more, got %s", cfg.ReconcileGrace)
	}
	if cfg.State != "" && !campaigns.ValidState(cfg.State) {
		bad("state", "must be developer, trial or formal, got %q", cfg.State)
	}
	if cfg.Lang != "" && !campaigns.ValidLang(cfg.Lang) {
		bad("lang", "must be zh_CN, en_US, zh_HK or zh_TW, got %q", cfg.Lang)
	}
	return errors.Join(errs...)
}
