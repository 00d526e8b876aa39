package api

import (
	"errors"

	"github.com/wxcampaign/wxcampaign"
)

// Validate checks the values of cfg without starting anything. Errors are
// *wxcampaign.FieldError naming tokens, max_body, max_templates,
// max_templates_per_result, offer_reject_cooldown or offer_horizon. An
// empty Tokens is valid here (a process that serves no API); New requires
// at least one.
func (cfg Config) Validate() error {
	var errs []error
	for _, t := range cfg.Tokens {
		if t == "" {
			errs = append(errs, wxcampaign.FieldErrorf("tokens", "an empty bearer token is not allowed"))
			break
		}
	}
	if cfg.MaxBody < 0 {
		errs = append(errs, wxcampaign.FieldErrorf("max_body", "must be 0 (default %d bytes) or more, got %d", DefaultMaxBody, cfg.MaxBody))
	}
	if cfg.MaxTemplates < 0 || cfg.MaxTemplates > MaxMaxTemplates {
		errs = append(errs, wxcampaign.FieldErrorf("max_templates", "must be between 1 and %d (0 means %d), got %d", MaxMaxTemplates, DefaultMaxTemplates, cfg.MaxTemplates))
	}
	if cfg.MaxTemplatesPerResult < 0 || cfg.MaxTemplatesPerResult > MaxMaxTemplates {
		errs = append(errs, wxcampaign.FieldErrorf("max_templates_per_result", "must be between 1 and %d (0 means %d), got %d", MaxMaxTemplates, DefaultMaxTemplates, cfg.MaxTemplatesPerResult))
	}
	if cfg.OfferRejectCooldown < 0 {
		errs = append(errs, wxcampaign.FieldErrorf("offer_reject_cooldown", "must be 0 (default %v) or more, got %v", DefaultOfferRejectCooldown, cfg.OfferRejectCooldown))
	}
	if cfg.OfferHorizon < 0 {
		errs = append(errs, wxcampaign.FieldErrorf("offer_horizon", "must be 0 (default %v) or more, got %v", DefaultOfferHorizon, cfg.OfferHorizon))
	}
	return errors.Join(errs...)
}
