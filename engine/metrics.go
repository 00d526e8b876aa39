package engine

import (
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	wx "github.com/wxcampaign/wxcampaign"
)

// Metrics are the engine's Prometheus collectors. A nil *Metrics records
// nothing. Labels carry campaign names, outcomes and reasons, never user
// data or secrets.
type Metrics struct {
	Runs          *prometheus.CounterVec
	Grants        *prometheus.CounterVec
	SendLatency   *prometheus.HistogramVec
	Retries       *prometheus.CounterVec
	TokenRefresh  prometheus.Counter
	StaleResolved prometheus.Counter
	RunDuration   *prometheus.HistogramVec
}

// NewMetrics creates the collectors and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wxcampaign_runs_total", Help: "Campaign runs by final status.",
		}, []string{"campaign", "status", "dry_run"}),
		Grants: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wxcampaign_grants_total", Help: "Grants looked at, by outcome and reason.",
		}, []string{"campaign", "outcome", "reason", "dry_run"}),
		SendLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "wxcampaign_send_seconds", Help: "Latency of subscribeMessage.send calls.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}, []string{"class"}),
		Retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wxcampaign_send_retries_total", Help: "Retried sends by reason.",
		}, []string{"reason"}),
		TokenRefresh: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wxcampaign_token_refreshes_total", Help: "Access token fetches.",
		}),
		StaleResolved: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wxcampaign_stale_inflight_resolved_total", Help: "Sends left in flight by a dead process, settled by the ambiguous-send policy.",
		}),
		RunDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "wxcampaign_run_seconds", Help: "Duration of campaign runs.",
			Buckets: prometheus.ExponentialBuckets(0.01, 3, 12),
		}, []string{"campaign"}),
	}
	if reg != nil {
		reg.MustRegister(m.Runs, m.Grants, m.SendLatency, m.Retries, m.TokenRefresh, m.StaleResolved, m.RunDuration)
	}
	return m
}

func boolLabel(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func (m *Metrics) observeRun(s *Summary) {
	if m == nil {
		return
	}
	status := s.Status
	if strings.HasPrefix(status, "paused") {
		status = "paused"
	}
	m.Runs.WithLabelValues(s.Campaign, status, boolLabel(s.DryRun)).Inc()
	if !s.DryRun {
		m.RunDuration.WithLabelValues(s.Campaign).Observe(s.Duration.Seconds())
	}
}

// countGrants counts a batch's reports, one counter update per outcome and
// reason rather than one per grant.
func (m *Metrics) countGrants(campaign string, items []*item, dry bool) {
	if m == nil {
		return
	}
	type key struct {
		o      string
		reason string
	}
	n := map[key]int{}
	for _, it := range items {
		// The code only: details (rule errors, WeChat's errmsg) vary per
		// grant and would make a series each.
		n[key{string(it.report.Outcome), string(it.report.Reason)}]++
	}
	for k, c := range n {
		m.Grants.WithLabelValues(campaign, k.o, k.reason, boolLabel(dry)).Add(float64(c))
	}
}

func (m *Metrics) observeSend(d time.Duration, err error) {
	if m == nil {
		return
	}
	class := "ok"
	if err != nil {
		class = string(sendError(err).Class)
	}
	m.SendLatency.WithLabelValues(class).Observe(d.Seconds())
}

func (m *Metrics) countRetry(reason wx.Reason) {
	if m != nil {
		m.Retries.WithLabelValues(string(reason)).Inc()
	}
}

// CountTokenRefresh counts one access-token fetch (wire it to the WeChat
// client's refresh hook).
func (m *Metrics) CountTokenRefresh() {
	if m != nil {
		m.TokenRefresh.Inc()
	}
}

func (m *Metrics) countStale(n int) {
	if m != nil {
		m.StaleResolved.Add(float64(n))
	}
}
