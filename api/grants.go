package api

import (
	"context"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/wxcampaign/wxcampaign"
)

// Defaults of the offer settings of Config.
const (
	DefaultOfferRejectCooldown = 7 * 24 * time.Hour
	DefaultOfferHorizon        = 24 * time.Hour
)

// Balances reads what the ledger knows of one user per template; the store
// implements it.
type Balances interface {
	// Balances returns the user's balance of every template they ever
	// answered (an empty slice for an unknown user); now decides which
	// reservations are live.
	Balances(ctx context.Context, openid string, now time.Time) ([]wxcampaign.Balance, error)
}

// Schedules tells when the enabled campaigns next want a template's
// credits; the campaigns package's Catalog implements it.
type Schedules interface {
	// NextSend returns the earliest scheduled run after after of an enabled
	// campaign sending templateID, and false when none is scheduled.
	NextSend(templateID string, after time.Time) (time.Time, bool)
}

// GrantsResponse is the answer to GET /v1/users/{openid}/grants.
type GrantsResponse struct {
	OpenID    string               `json:"openid"`
	Templates []wxcampaign.Balance `json:"templates"` // by template id; never null
}

// handleGrants serves GET /v1/users/{openid}/grants: the user's balance
// per template (credits, long-term state, last message, rejects and bans).
func (s *Server) handleGrants(w http.ResponseWriter, r *http.Request) {
	openid := r.PathValue("openid")
	if err := checkOpenID(openid); err != nil {
		writeError(w, err)
		return
	}
	if s.deps.Balances == nil {
		writeError(w, wxcampaign.Errorf(wxcampaign.EUNAVAILABLE, "balances are not configured"))
		return
	}
	bs, err := s.deps.Balances.Balances(r.Context(), openid, s.cfg.Now())
	if err != nil {
		s.fail(w, r, "balances", err)
		return
	}
	if bs == nil {
		bs = []wxcampaign.Balance{}
	}
	writeJSON(w, http.StatusOK, GrantsResponse{OpenID: openid, Templates: bs})
}

// checkOpenID applies the openid rules of a subscription result.
func checkOpenID(openid string) error {
	switch {
	case openid == "":
		return wxcampaign.Errorf(wxcampaign.EINVALID, "openid is required")
	case len(openid) > maxQueryText:
		return wxcampaign.Errorf(wxcampaign.EINVALID, "openid is longer than %d bytes", maxQueryText)
	}
	return wxcampaign.CheckText("openid", openid)
}

// Reasons a template is left out of a user's offer.
const (
	LeftOutRejected = "rejected" // rejected within Config.OfferRejectCooldown
	LeftOutBanned   = "banned"   // banned, and not accepted since
)

// LeftOut is a scene template left out of a user's offer, and why.
type LeftOut struct {
	TemplateID string `json:"templateId"`
	Reason     string `json:"reason"` // LeftOutRejected or LeftOutBanned
}

// offer is one candidate template of a user's offer.
type offer struct {
	t       wxcampaign.SceneTemplate
	idx     int  // catalog order
	soon    bool // an enabled campaign runs within the horizon
	credits int  // one-time credits left
	active  bool // long-term: a standing grant exists
}

// personalize orders the scene's templates by the user's need and fills
// out: per kind (never mixed), templates wanted soon by an enabled campaign
// (next run within Config.OfferHorizon) first, then, for one-time
// templates, the fewest credits left, for long-term ones those without an
// active grant; then the catalog order. Templates rejected within the
// cool-down or banned are left out and listed. At most limit ids per list.
func (s *Server) personalize(ctx context.Context, out *SceneTemplatesResponse, ts []wxcampaign.SceneTemplate, openid string, limit int) error {
	bs, err := s.deps.Balances.Balances(ctx, openid, s.cfg.Now())
	if err != nil {
		return err
	}
	byTmpl := make(map[string]wxcampaign.Balance, len(bs))
	for _, b := range bs {
		byTmpl[b.TemplateID] = b
	}
	now := s.cfg.Now()
	cooldownStart := now.Add(-s.cfg.OfferRejectCooldown)
	var oneTime, longTerm []offer
	seen := map[string]bool{}
	for i, t := range ts {
		if t.TemplateID == "" || seen[t.TemplateID] {
			continue
		}
		seen[t.TemplateID] = true
		b := byTmpl[t.TemplateID]
		switch {
		case b.Banned():
			out.LeftOut = append(out.LeftOut, LeftOut{TemplateID: t.TemplateID, Reason: LeftOutBanned})
			continue
		case b.RejectedSince(cooldownStart):
			out.LeftOut = append(out.LeftOut, LeftOut{TemplateID: t.TemplateID, Reason: LeftOutRejected})
			continue
		}
		o := offer{t: t, idx: i, credits: b.Credits, active: b.LongTerm == wxcampaign.LongTermActive}
		if s.deps.Schedules != nil {
			next, ok := s.deps.Schedules.NextSend(t.TemplateID, now)
			o.soon = ok && !next.After(now.Add(s.cfg.OfferHorizon))
		}
		if t.Kind == wxcampaign.LongTerm {
			longTerm = append(longTerm, o)
		} else {
			oneTime = append(oneTime, o)
		}
	}
	rank := func(os []offer, key func(offer) int) []string {
		sort.SliceStable(os, func(i, j int) bool {
			a, b := os[i], os[j]
			switch {
			case a.soon != b.soon:
				return a.soon
			case key(a) != key(b):
				return key(a) < key(b)
			}
			return a.idx < b.idx
		})
		ids := make([]string, 0, min(len(os), limit))
		for _, o := range os[:min(len(os), limit)] {
			ids = append(ids, o.t.TemplateID)
		}
		return ids
	}
	out.TmplIDs = rank(oneTime, func(o offer) int { return o.credits })
	out.LongTermTmplIDs = rank(longTerm, func(o offer) int {
		if o.active {
			return 1
		}
		return 0
	})
	return nil
}

// queryLimit reads ?limit= (1..max); absent means max.
func queryLimit(v string, max int) (int, error) {
	if v == "" {
		return max, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, wxcampaign.Errorf(wxcampaign.EINVALID, "limit %q: want a whole number from 1 to %d", v, max)
	}
	return min(n, max), nil
}
