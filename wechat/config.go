package wechat

import (
	"errors"
	"net/url"
	"strings"
	"time"

	"github.com/wxcampaign/wxcampaign"
)

// Validate checks the values of cfg without contacting WeChat. Errors are
// *wxcampaign.FieldError naming base_url, timeout or refresh_ahead. AppID
// and Secret may be empty here (a process that never sends); New requires
// them.
func (cfg Config) Validate() error {
	var errs []error
	if cfg.BaseURL != "" {
		u, err := url.Parse(strings.TrimRight(cfg.BaseURL, "/"))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, wxcampaign.FieldErrorf("base_url", "must be an http(s) URL such as %s, got %q", DefaultBaseURL, cfg.BaseURL))
		}
	}
	if cfg.Timeout < 0 || cfg.Timeout > 0 && cfg.Timeout < time.Millisecond {
		errs = append(errs, wxcampaign.FieldErrorf("timeout", "must be 0 (default 5s) or at least 1ms, got %s", cfg.Timeout))
	}
	if cfg.RefreshAhead < 0 {
		errs = append(errs, wxcampaign.FieldErrorf("refresh_ahead", "must be 0 (default 5m) or more, got %s", cfg.RefreshAhead))
	}
	return errors.Join(errs...)
}
