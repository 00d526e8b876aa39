package store

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/wxcampaign/wxcampaign"
)

// Holdout is one user a campaign's holdout kept unsent in one occurrence.
type Holdout struct {
	Campaign   string
	Occurrence time.Time
	OpenID     string
	TemplateID string
}

// RecordHoldouts stores the users held out of a run at at, idempotent by
// (campaign, openid, occurrence): a user held out twice in one occurrence
// (several grants) is stored once.
func (db *DB) RecordHoldouts(ctx context.Context, at time.Time, hs []Holdout) error {
	if len(hs) == 0 {
		return nil
	}
	return db.tx(ctx, "record holdouts", func(tx *sqlx.Tx) error {
		for _, c := range chunks(len(hs), 500) {
			var q strings.Builder
			q.WriteString(db.insertIgnore() + " INTO holdouts (campaign, openid, occurrence, template_id, at) VALUES ")
			args := make([]any, 0, 5*(c[1]-c[0]))
			for i, h := range hs[c[0]:c[1]] {
				if i > 0 {
					q.WriteByte(',')
				}
				q.WriteString("(?,?,?,?,?)")
				args = append(args, h.Campaign, h.OpenID, db.tv(h.Occurrence), h.TemplateID, db.tv(at))
			}
			if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
				return err
			}
		}
		return nil
	})
}

// Group names of a LiftReport.
const (
	GroupSent    = "sent"
	GroupHeldOut = "held_out"
)

// GroupStat is one group of a LiftReport: its users, those who converted
// within the window, the rate and its 95% Wilson score interval.
type GroupStat struct {
	Group       string  `json:"group"`
	Users       int     `json:"users"`
	Conversions int     `json:"conversions"`
	Rate        float64 `json:"rate"`
	Low         float64 `json:"low"`
	High        float64 `json:"high"`
}

// LiftReport compares the users a campaign sent to with those its holdout
// kept unsent.
type LiftReport struct {
	Campaign string        `json:"campaign"`
	From     time.Time     `json:"from"`
	To       time.Time     `json:"to"`
	Window   time.Duration `json:"window_ns"`
	Sent     GroupStat     `json:"sent"`
	HeldOut  GroupStat     `json:"held_out"`
	// Diff is Sent.Rate - HeldOut.Rate, with its 95% interval (normal
	// approximation for the difference of two proportions); DiffKnown is
	// false when a group has no user.
	Diff      float64 `json:"diff"`
	DiffLow   float64 `json:"diff_low"`
	DiffHigh  float64 `json:"diff_high"`
	DiffKnown bool    `json:"diff_known"`
	// Credits counts the messages sent (or possibly sent) in the range:
	// the credits spent.
	Credits int `json:"credits"`
	// ExtraConversions is Diff times Sent.Users: the conversions the
	// messages added, by the estimate.
	ExtraConversions float64 `json:"extra_conversions"`
	// CreditsPerExtra is Credits / ExtraConversions; 0 with PerExtraKnown
	// false when the estimate is not positive.
	CreditsPerExtra float64 `json:"credits_per_extra"`
	PerExtraKnown   bool    `json:"per_extra_known"`
}

// LiftQuery is a campaign's conversion query: SQL over business tables with
// one :openids placeholder (expanded to the users of a batch), returning
// one row per conversion with the columns openid and at (a time).
type LiftQuery struct {
	Query  string
	Window time.Duration
}

// openidsRE finds the :openids placeholder.
var openidsRE = regexp.MustCompile(`:openids\b`)

// userAt is a group member and the time its window starts.
type userAt struct {
	OpenID string `db:"openid"`
	At     dbTime `db:"at"`
}

// z95 is the 97.5th percentile of the standard normal distribution.
const z95 = 1.959963984540054

// Lift builds the report of campaign over [from, to): the sent group is
// the users with a sent or unknown send_log row finished in the range
// (their window starts at their first such message), the held-out group
// the users of the holdouts table stored in the range (their window starts
// when they were held out). A user in both groups counts as sent. A user
// converts when facts' query returns a row for them with at in [start,
// start + window]. facts runs the query (the facts connection: read only
// use).
func (db *DB) Lift(ctx context.Context, facts *Facts, campaign string, q LiftQuery, from, to time.Time) (LiftReport, error) {
	rep := LiftReport{Campaign: campaign, From: from, To: to, Window: q.Window}
	if n := len(openidsRE.FindAllStringIndex(q.Query, -1)); n != 1 {
		return rep, wxcampaign.Errorf(wxcampaign.EINVALID, "conversion.query must contain :openids exactly once, found %d", n)
	}
	if q.Window <= 0 {
		return rep, wxcampaign.Errorf(wxcampaign.EINVALID, "conversion.window must be positive")
	}
	var sent, held []userAt
	err := db.retry(ctx, "lift groups", func() error {
		sent, held = sent[:0], held[:0]
		if err := db.r.SelectContext(ctx, &sent, `SELECT openid, MIN(finished_at) AS at FROM send_log
WHERE campaign = ? AND status IN ('sent', 'unknown') AND finished_at >= ? AND finished_at < ? GROUP BY openid ORDER BY openid`,
			campaign, db.tv(from), db.tv(to)); err != nil {
			return fmt.Errorf("sent users: %w", err)
		}
		if err := db.r.GetContext(ctx, &rep.Credits, `SELECT COUNT(*) FROM send_log
WHERE campaign = ? AND status IN ('sent', 'unknown') AND finished_at >= ? AND finished_at < ?`, campaign, db.tv(from), db.tv(to)); err != nil {
			return fmt.Errorf("credits: %w", err)
		}
		if err := db.r.SelectContext(ctx, &held, `SELECT openid, MIN(at) AS at FROM holdouts
WHERE campaign = ? AND at >= ? AND at < ? GROUP BY openid ORDER BY openid`, campaign, db.tv(from), db.tv(to)); err != nil {
			return fmt.Errorf("held-out users: %w", err)
		}
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("store: lift: %w", err)
	}
	inSent := make(map[string]bool, len(sent))
	for _, u := range sent {
		inSent[u.OpenID] = true
	}
	kept := held[:0]
	for _, u := range held {
		if !inSent[u.OpenID] {
			kept = append(kept, u)
		}
	}
	held = kept
	query := openidsRE.ReplaceAllLiteralString(q.Query, ":keys")
	count := func(group string, us []userAt) (GroupStat, error) {
		g := GroupStat{Group: group, Users: len(us)}
		for _, c := range chunks(len(us), maxIDsPerStatement) {
			part := us[c[0]:c[1]]
			start := make(map[string]time.Time, len(part))
			keys := make([]any, len(part))
			for i, u := range part {
				start[u.OpenID] = u.At.Time
				keys[i] = u.OpenID
			}
			rows, err := facts.Query(ctx, query, keys)
			if err != nil {
				return g, fmt.Errorf("store: lift: conversion query: %w", err)
			}
			converted := map[string]bool{}
			for _, r := range rows {
				id, ok := r["openid"].(string)
				if !ok {
					return g, wxcampaign.Errorf(wxcampaign.EINVALID, "conversion.query must return a text column openid (got %T)", r["openid"])
				}
				at, err := rowTime(r["at"])
				if err != nil {
					return g, wxcampaign.Errorf(wxcampaign.EINVALID, "conversion.query: column at: %v", err)
				}
				s, ok := start[id]
				if ok && !at.Before(s) && !at.After(s.Add(q.Window)) {
					converted[id] = true
				}
			}
			g.Conversions += len(converted)
		}
		g.Rate, g.Low, g.High = wilson(g.Conversions, g.Users)
		return g, nil
	}
	if rep.Sent, err = count(GroupSent, sent); err != nil {
		return rep, err
	}
	if rep.HeldOut, err = count(GroupHeldOut, held); err != nil {
		return rep, err
	}
	rep.finish()
	return rep, nil
}

// finish computes the difference, its interval and the cost figures.
func (rep *LiftReport) finish() {
	s, h := rep.Sent, rep.HeldOut
	if s.Users == 0 || h.Users == 0 {
		return
	}
	rep.DiffKnown = true
	rep.Diff = s.Rate - h.Rate
	se := math.Sqrt(s.Rate*(1-s.Rate)/float64(s.Users) + h.Rate*(1-h.Rate)/float64(h.Users))
	rep.DiffLow, rep.DiffHigh = rep.Diff-z95*se, rep.Diff+z95*se
	rep.ExtraConversions = rep.Diff * float64(s.Users)
	if rep.ExtraConversions > 0 {
		rep.CreditsPerExtra = float64(rep.Credits) / rep.ExtraConversions
		rep.PerExtraKnown = true
	}
}

// wilson returns k/n and its 95% Wilson score interval (0, 0, 0 for n=0).
func wilson(k, n int) (rate, low, high float64) {
	if n == 0 {
		return 0, 0, 0
	}
	p, nf := float64(k)/float64(n), float64(n)
	z2 := z95 * z95
	den := 1 + z2/nf
	mid := (p + z2/(2*nf)) / den
	half := z95 * math.Sqrt(p*(1-p)/nf+z2/(4*nf*nf)) / den
	return p, math.Max(0, mid-half), math.Min(1, mid+half)
}

// rowTime reads a time returned by a fact query: a time.Time, or text in
// one of the store's layouts (SQLite).
func rowTime(v any) (time.Time, error) {
	switch t := v.(type) {
	case time.Time:
		return t, nil
	case string:
		return parseTimeText(t)
	case []byte:
		return parseTimeText(string(t))
	case nil:
		return time.Time{}, fmt.Errorf("is NULL")
	}
	return time.Time{}, fmt.Errorf("want a time, got %T", v)
}
