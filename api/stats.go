package api

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wxcampaign/wxcampaign"
)

// Stats counts subscription choices per day; the store implements it.
type Stats interface {
	// SubscriptionStats counts accepts, rejects, bans and filters made in
	// [from, to) per day of loc, source, scene and template.
	SubscriptionStats(ctx context.Context, from, to time.Time, loc *time.Location) ([]wxcampaign.SubscriptionStat, error)
}

// Popups records the popup events WeChat pushes; the store implements it.
type Popups interface {
	// RecordPopups stores ps as received at receivedAt, idempotent by
	// (openid, template, time), and returns how many were new.
	RecordPopups(ctx context.Context, receivedAt time.Time, ps []wxcampaign.PopupEvent) (int, error)
}

// MaxStatsDays bounds the range of one GET /v1/stats/subscriptions.
const MaxStatsDays = 366

// StatsRow is one row of StatsResponse: a SubscriptionStat with its total
// and accept rate.
type StatsRow struct {
	wxcampaign.SubscriptionStat
	Total      int     `json:"total"`
	AcceptRate float64 `json:"accept_rate"`
}

// StatsResponse is the answer to GET /v1/stats/subscriptions.
type StatsResponse struct {
	From string     `json:"from"` // first day, YYYY-MM-DD
	To   string     `json:"to"`   // last day, inclusive
	Zone string     `json:"zone"` // the zone of the days (Config.Location)
	Rows []StatsRow `json:"rows"` // by day, source, scene, template; never null
}

// handleStats serves GET /v1/stats/subscriptions?from=YYYY-MM-DD&to=YYYY-MM-DD
// (days in Config.Location, both inclusive; to defaults to today, from to
// six days before to).
func (s *Server) handleStats(w http.ResponseWriter, r *http.Request) {
	if s.deps.Stats == nil {
		writeError(w, wxcampaign.Errorf(wxcampaign.EUNAVAILABLE, "subscription stats are not configured"))
		return
	}
	loc := s.cfg.Location
	q := r.URL.Query()
	from, to, err := DayRange(q.Get("from"), q.Get("to"), s.cfg.Now(), loc)
	if err != nil {
		writeError(w, err)
		return
	}
	stats, err := s.deps.Stats.SubscriptionStats(r.Context(), from, to, loc)
	if err != nil {
		s.fail(w, r, "subscription stats", err)
		return
	}
	out := StatsResponse{From: from.Format(time.DateOnly), To: to.AddDate(0, 0, -1).Format(time.DateOnly), Zone: loc.String(), Rows: make([]StatsRow, 0, len(stats))}
	for _, st := range stats {
		out.Rows = append(out.Rows, StatsRow{SubscriptionStat: st, Total: st.Total(), AcceptRate: st.AcceptRate()})
	}
	writeJSON(w, http.StatusOK, out)
}

// DayRange reads a range of whole days in loc, from and to inclusive
// (YYYY-MM-DD; to defaults to now's day, from to six days before to), and
// returns it as [start of from, start of the day after to). It refuses a
// range that ends before it starts or spans more than MaxStatsDays.
func DayRange(fromText, toText string, now time.Time, loc *time.Location) (from, to time.Time, err error) {
	day := func(name, v string) (time.Time, error) {
		t, err := time.ParseInLocation(time.DateOnly, v, loc)
		if err != nil {
			return t, wxcampaign.Errorf(wxcampaign.EINVALID, "%s %q: want a day as YYYY-MM-DD", name, v)
		}
		return t, nil
	}
	y, m, d := now.In(loc).Date()
	last := time.Date(y, m, d, 0, 0, 0, 0, loc)
	if toText != "" {
		if last, err = day("to", toText); err != nil {
			return from, to, err
		}
	}
	first := last.AddDate(0, 0, -6)
	if fromText != "" {
		if first, err = day("from", fromText); err != nil {
			return from, to, err
		}
	}
	switch {
	case last.Before(first):
		return from, to, wxcampaign.Errorf(wxcampaign.EINVALID, "to %s is before from %s", last.Format(time.DateOnly), first.Format(time.DateOnly))
	case first.AddDate(0, 0, MaxStatsDays).Before(last.AddDate(0, 0, 1)):
		return from, to, wxcampaign.Errorf(wxcampaign.EINVALID, "the range spans more than %d days", MaxStatsDays)
	}
	return first, last.AddDate(0, 0, 1), nil
}

// choiceCounters count the subscription choices the API recorded, by
// source and result (never by template or scene: those are client text).
type choiceCounters struct {
	n [3][4]atomic.Int64 // [source][result]
}

var (
	choiceSources = [3]string{wxcampaign.SourceResult, wxcampaign.SourceChange, wxcampaign.SourcePopup}
	choiceResults = [4]string{wxcampaign.ResultAccept, wxcampaign.ResultReject, wxcampaign.ResultBan, wxcampaign.ResultFilter}
)

// add counts n choices; an unknown source or result is not counted.
func (c *choiceCounters) add(source, result string, n int) {
	for i, s := range choiceSources {
		for j, r := range choiceResults {
			if s == source && r == result {
				c.n[i][j].Add(int64(n))
			}
		}
	}
}

// addResult counts the choices of a recorded subscription result.
func (c *choiceCounters) addResult(source string, r wxcampaign.SubscriptionResult) {
	c.add(source, wxcampaign.ResultAccept, len(r.AgreeTemplateIDs))
	c.add(source, wxcampaign.ResultReject, len(r.RejectTemplateIDs))
	c.add(source, wxcampaign.ResultBan, len(r.BanTemplateIDs))
	c.add(source, wxcampaign.ResultFilter, len(r.FilterTemplateIDs))
}

// registerChoiceMetrics exposes the counters on reg as
// wxcampaign_subscription_choices_total{source,result}.
func (s *Server) registerChoiceMetrics(reg prometheus.Registerer) error {
	for i, src := range choiceSources {
		for j, res := range choiceResults {
			v := &s.choices.n[i][j]
			c := prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name:        "wxcampaign_subscription_choices_total",
				Help:        "Template choices recorded by the API (accept, reject, ban, filter), by source: result (POST /v1/subscriptions), change and popup (message push).",
				ConstLabels: prometheus.Labels{"source": src, "result": res},
			}, func() float64 { return float64(v.Load()) })
			if err := reg.Register(c); err != nil {
				return err
			}
		}
	}
	return nil
}
