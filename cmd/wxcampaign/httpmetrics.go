package main

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wxcampaign/wxcampaign/api"
	"github.com/wxcampaign/wxcampaign/console"
)

// httpRoute names the route of a request from a closed set: nothing a
// client writes becomes a label.
func httpRoute(r *http.Request) string {
	p := r.URL.Path
	switch {
	case p == "/v1/subscriptions", p == "/v1/session", p == "/healthz", p == "/readyz", p == "/metrics", p == api.PushPath:
		return p
	case strings.HasPrefix(p, "/v1/scenes/"):
		return "/v1/scenes/{scene}/templates"
	case console.Owns(p):
		return "console"
	}
	return "other"
}

// httpMetrics counts the requests of h by route, method and status, and
// observes their latency by route (wxcampaign_http_requests_total,
// wxcampaign_http_request_seconds; docs/grafana/).
func httpMetrics(reg prometheus.Registerer, h http.Handler) http.Handler {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "wxcampaign_http_requests_total", Help: "HTTP requests by route, method and status code.",
	}, []string{"route", "method", "code"})
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "wxcampaign_http_request_seconds", Help: "HTTP request latency by route.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"route"})
	reg.MustRegister(requests, latency)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		h.ServeHTTP(sw, r)
		route := httpRoute(r)
		method := r.Method
		switch method {
		case http.MethodGet, http.MethodHead, http.MethodPost:
		default:
			method = "other"
		}
		requests.WithLabelValues(route, method, strconv.Itoa(sw.code)).Inc()
		latency.WithLabelValues(route).Observe(time.Since(start).Seconds())
	})
}

// statusWriter remembers the status code written.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
