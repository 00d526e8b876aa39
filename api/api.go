// Package api is the HTTP API that the mini program's backend calls: it
// records subscription results (grants), lists the template ids to offer in a
// scene for wx.requestSubscribeMessage, and exchanges a login code for an
// openid. With Config.PushToken it also receives WeChat's message push at
// /wechat/push (delivery events, subscription changes), authenticated by
// WeChat's signature instead of a bearer token. It exists as its own package
// because it owns one clear thing, the HTTP surface. It imports the root
// package's domain types and the wechat package's Session type; the ledger,
// the campaign catalog and the WeChat client reach it only through the
// small interfaces declared here (Subscriptions, Deliveries, Catalog,
// Sessions), which cmd/wxcampaign wires to the store, the campaigns and the
// client. It never imports the store or the engine.
//
// Every path under /v1 requires a bearer token, checked before anything
// else (also for paths that do not exist or are not canonical); errors are
// JSON objects {"error":{"code":"invalid","message":"..."}} whose code and
// HTTP status come from the wxcampaign error codes, mapped once in this
// package. GET /healthz is the liveness probe, GET /readyz the readiness
// probe.
package api

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/wechat"
)

// Defaults and bounds of Config.
const (
	DefaultMaxBody      = 64 << 10 // bytes of a request body
	DefaultMaxTemplates = 3        // template ids per wx.requestSubscribeMessage call
	MaxMaxTemplates     = 5        // the most WeChat's newer documentation allows
)

// Subscriptions records subscription results; the store implements it.
type Subscriptions interface {
	// RecordSubscription stores r as received at time at; the ids of
	// r.LongTermTemplateIDs are long-term, the other accepted ids one-time
	// credits. A repeated RequestID is not stored again and is reported
	// with Duplicate set, and Conflict when its content differs.
	RecordSubscription(ctx context.Context, r wxcampaign.SubscriptionResult, at time.Time) (wxcampaign.RecordResult, error)
}

// Catalog answers questions about the loaded campaigns; the campaigns
// package's Catalog implements it.
type Catalog interface {
	// SceneTemplates returns the templates of enabled campaigns offered in
	// scene, in a stable order; nil for an unknown scene.
	SceneTemplates(scene string) []wxcampaign.SceneTemplate
	// KindOf returns the kind of a template id known to the campaigns.
	KindOf(templateID string) wxcampaign.Kind
}

// Sessions exchanges a wx.login code for the user's identity
// (jscode2session); the WeChat client implements it.
type Sessions interface {
	Session(ctx context.Context, code string) (wechat.Session, error)
}

// Config holds the settings of the API.
type Config struct {
	// Tokens are the accepted bearer tokens; at least one non-empty token is
	// required. Several tokens allow rotation without downtime.
	Tokens []string
	// MaxBody limits a request body in bytes; 0 means DefaultMaxBody.
	MaxBody int64
	// MaxTemplates limits each list of template ids returned for a scene
	// (http.max_templates); 0 means DefaultMaxTemplates, at most
	// MaxMaxTemplates.
	MaxTemplates int
	// MaxTemplatesPerResult limits the distinct template ids of one
	// subscription result, as one wx.requestSubscribeMessage call answers
	// (http.max_templates_per_result); 0 means DefaultMaxTemplates, at most
	// MaxMaxTemplates. A result with more is refused with 400.
	MaxTemplatesPerResult int
	// Now is the clock stamped on recorded subscriptions and deliveries and
	// against which push timestamps are checked; nil means time.Now.
	Now func() time.Time
	// PushToken, when set, serves WeChat's message push at PushPath
	// (GET: URL verification, POST: events), authenticated by the
	// signature WeChat computes with this token (the "Token" of the mini
	// program console's message push settings). Empty: PushPath is 404.
	PushToken string
}

// Deps are the collaborators of the API.
type Deps struct {
	Subs     Subscriptions                   // required
	Catalog  Catalog                         // required
	Sessions Sessions                        // optional: without it POST /v1/session answers 503
	Ready    func(ctx context.Context) error // optional readiness checks (HealthChecks) for /readyz; nil: always ready
	Metrics  http.Handler                    // optional: mounted at GET /metrics without auth
	Logger   logrus.FieldLogger              // optional: nil discards the logs
	// Deliveries stores subscribe_msg_sent_event entries; required when
	// Config.PushToken is set, unused otherwise.
	Deliveries Deliveries
	// Registerer, when set, gets the push counters (PushStats) as
	// wxcampaign_push_requests_total and wxcampaign_push_items_total.
	Registerer prometheus.Registerer
}

// Server is the HTTP API. Build it with New and serve Handler.
type Server struct {
	cfg     Config
	deps    Deps
	log     logrus.FieldLogger
	tokens  [][sha256.Size]byte
	handler http.Handler
	batch   *groupCommit[subscription, wxcampaign.RecordResult] // nil unless Deps.Subs implements BatchSubscriptions

	push       pushCounters
	deliveries *groupCommit[push, int] // nil without Config.PushToken
}

// Validate checks cfg; the errors name the configuration keys
// (http.token, http.max_body, ...). Zero values are valid: they mean the
// defaults.
func (cfg Config) Validate() error {
	var errs []error
	if len(cfg.Tokens) == 0 {
		errs = append(errs, errors.New("http.token: no bearer token configured; the API refuses to start without authentication"))
	}
	for i, t := range cfg.Tokens {
		if t == "" {
			errs = append(errs, fmt.Errorf("http.token: token %d is empty", i))
		}
	}
	if cfg.MaxBody < 0 {
		errs = append(errs, fmt.Errorf("http.max_body: %d is negative", cfg.MaxBody))
	}
	if cfg.MaxTemplates < 0 || cfg.MaxTemplates > MaxMaxTemplates {
		errs = append(errs, fmt.Errorf("http.max_templates: %d is outside 1..%d", cfg.MaxTemplates, MaxMaxTemplates))
	}
	if cfg.MaxTemplatesPerResult < 0 || cfg.MaxTemplatesPerResult > MaxMaxTemplates {
		errs = append(errs, fmt.Errorf("http.max_templates_per_result: %d is outside 1..%d", cfg.MaxTemplatesPerResult, MaxMaxTemplates))
	}
	return errors.Join(errs...)
}

// New validates cfg and builds the API. It returns an error when no token is
// configured: the API refuses to start open.
func New(cfg Config, d Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("api: new: %w", err)
	}
	s := &Server{cfg: cfg, deps: d, log: d.Logger}
	for _, t := range cfg.Tokens {
		s.tokens = append(s.tokens, sha256.Sum256([]byte(t)))
	}
	if s.cfg.MaxBody == 0 {
		s.cfg.MaxBody = DefaultMaxBody
	}
	if s.cfg.MaxTemplates == 0 {
		s.cfg.MaxTemplates = DefaultMaxTemplates
	}
	if s.cfg.MaxTemplatesPerResult == 0 {
		s.cfg.MaxTemplatesPerResult = DefaultMaxTemplates
	}
	if s.cfg.Now == nil {
		s.cfg.Now = time.Now
	}
	if d.Subs == nil {
		return nil, errors.New("api: new: Deps.Subs is required")
	}
	if d.Catalog == nil {
		return nil, errors.New("api: new: Deps.Catalog is required")
	}
	if s.log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		s.log = l
	}
	if many, ok := d.Subs.(BatchSubscriptions); ok {
		s.batch = newSubscriptionBatcher(d.Subs, many)
	}
	if cfg.PushToken != "" {
		if d.Deliveries == nil {
			return nil, errors.New("api: new: Deps.Deliveries is required with Config.PushToken (delivery events would be dropped)")
		}
		s.deliveries = newDeliveryBatcher(d.Deliveries)
	}
	if d.Registerer != nil {
		if err := s.registerPushMetrics(d.Registerer); err != nil {
			return nil, fmt.Errorf("api: new: register push metrics: %w", err)
		}
	}
	s.handler = s.routes()
	return s, nil
}

// Handler returns the http.Handler serving every endpoint.
func (s *Server) Handler() http.Handler { return s.handler }

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	// Every /v1 path is behind guard's bearer token check.
	v1 := mux.HandleFunc

	v1("POST /v1/subscriptions", s.handleSubscription)
	v1("GET /v1/scenes/{scene}/templates", s.handleSceneTemplates)
	v1("GET /v1/scenes/templates", s.handleSceneTemplates)
	v1("POST /v1/session", s.handleSession)
	// The same paths without a method catch every other method: 405 in JSON
	// instead of ServeMux's plain text.
	v1("/v1/subscriptions", methodNotAllowed("POST"))
	v1("/v1/scenes/{scene}/templates", methodNotAllowed("GET, HEAD"))
	v1("/v1/scenes/templates", methodNotAllowed("GET, HEAD"))
	v1("/v1/session", methodNotAllowed("POST"))

	if s.cfg.PushToken != "" {
		// No bearer token: WeChat signs the query with the push token.
		mux.HandleFunc("GET "+PushPath, s.handlePushVerify)
		mux.HandleFunc("POST "+PushPath, s.handlePush)
		mux.HandleFunc(PushPath, methodNotAllowed("GET, HEAD, POST"))
	}
	mux.HandleFunc("GET /healthz", s.handleHealth)
	mux.HandleFunc("/healthz", methodNotAllowed("GET, HEAD"))
	mux.HandleFunc("GET /readyz", s.handleReady)
	mux.HandleFunc("/readyz", methodNotAllowed("GET, HEAD"))
	if s.deps.Metrics != nil {
		mux.Handle("GET /metrics", s.deps.Metrics)
		mux.HandleFunc("/metrics", methodNotAllowed("GET, HEAD"))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, wxcampaign.Errorf(wxcampaign.ENOTFOUND, "no such endpoint: %s", r.URL.Path))
	})
	return s.logRequests(s.recoverPanics(s.guard(mux)))
}

// NewHTTPServer returns an http.Server for h on addr with timeouts that
// protect it from slow clients. The caller starts and shuts it down.
func NewHTTPServer(addr string, h http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
}
