// Package console is the operators' web console served by `wxcampaign run`:
// campaigns with their next runs and last counts, a campaign's run history
// as an inline SVG chart, previews rendered as WeChat shows subscription
// message cards, runs with retry, pause and resume, and the audit table.
//
// Pages are server-rendered with html/template from embedded assets: no
// build step, no CDN, no script. Access takes a console token (role viewer
// or operator) entered once in a login form, which sets an HttpOnly,
// SameSite=Strict session cookie; every state-changing request carries a
// CSRF token. The console uses the engine and the store through the small
// interfaces below.
package console

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	wx "github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/campaigns"
	"github.com/wxcampaign/wxcampaign/engine"
	"github.com/wxcampaign/wxcampaign/store"
)

// Store is what the console reads and writes; *store.DB implements it.
type Store interface {
	RunsPage(ctx context.Context, f store.RunFilter) ([]store.Run, error)
	GetRunByID(ctx context.Context, id int64) (store.Run, error)
	CampaignPauses(ctx context.Context) (map[string]store.CampaignPause, error)
	PauseCampaign(ctx context.Context, campaign, by, reason string, at time.Time) (bool, error)
	ResumeCampaign(ctx context.Context, campaign, by string, at time.Time) (bool, error)
	PausedUntil(ctx context.Context, key string, now time.Time) (time.Time, string, error)
	ClearPause(ctx context.Context, key, by string, at time.Time) (bool, error)
	AuditPage(ctx context.Context, beforeID int64, limit int) ([]store.AuditEntry, error)
	AddAudit(ctx context.Context, e store.AuditEntry) error
	ReceivedBy(ctx context.Context, openid string, since time.Time, limit int) ([]store.Received, error)
}

var _ Store = (*store.DB)(nil)

// Previewer runs a campaign as a dry run; *engine.Engine implements it.
type Previewer interface {
	Run(ctx context.Context, c *campaigns.Campaign, opt engine.Options) (engine.Summary, error)
}

var _ Previewer = (*engine.Engine)(nil)

// Retrier retries a stopped run: it reopens the run at its checkpoint
// (an error with code ECONFLICT when it cannot be retried) and resumes it.
// It returns once the run is reopened; the run goes on in the background.
type Retrier interface {
	Retry(ctx context.Context, id int64) (store.Run, error)
}

// Templates says what the account's template list (getTemplateList) says
// about a template: its title and the label of each keyword.
type Templates interface {
	Template(ctx context.Context, id string) (Template, bool)
}

// Template is a template's title and keyword labels ("thing1": "活动名称").
type Template struct {
	Title  string
	Labels map[string]string
}

// Roles of console tokens.
const (
	RoleViewer   = "viewer"   // reads every page
	RoleOperator = "operator" // also pauses, resumes, retries, clears quota pauses
)

// Token is one console token: who holds it and what it may do.
type Token struct {
	Name  string `yaml:"name"`
	Token string `yaml:"token"`
	Role  string `yaml:"role"`
}

// CheckTokens checks console tokens: a unique name, at least 16 characters,
// role viewer or operator. Errors name the token by index and name, never
// by its value.
func CheckTokens(tokens []Token) error {
	names := map[string]bool{}
	for i, t := range tokens {
		switch {
		case t.Name == "":
			return fmt.Errorf("console.tokens[%d]: name is required", i)
		case names[t.Name]:
			return fmt.Errorf("console.tokens[%d]: name %q is used twice", i, t.Name)
		case len(t.Token) < 16:
			return fmt.Errorf("console.tokens[%d] (%s): token must be at least 16 characters", i, t.Name)
		case t.Role != RoleViewer && t.Role != RoleOperator:
			return fmt.Errorf("console.tokens[%d] (%s): role %q: want viewer or operator", i, t.Name, t.Role)
		}
		names[t.Name] = true
	}
	return nil
}

// ParseTokens reads console tokens from "name:role:token" items separated
// by commas (the WXC_CONSOLE_TOKENS environment variable).
func ParseTokens(s string) ([]Token, error) {
	var out []Token
	for i, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		parts := strings.SplitN(item, ":", 3)
		if len(parts) != 3 {
			return nil, fmt.Errorf("item %d: want name:role:token", i+1)
		}
		out = append(out, Token{Name: parts[0], Role: parts[1], Token: parts[2]})
	}
	return out, nil
}

// Config configures the console.
type Config struct {
	Tokens     []Token
	AppID      string        // the key of the shared quota pause ("quota:APPID")
	SessionTTL time.Duration // default 12h
	Secure     bool          // mark cookies Secure (served over TLS)
	// PreviewLimit is how many grants a preview page looks at unless the
	// page asks for more (?limit=, at most 100 times as many); default 500.
	// The counts say when the preview stopped there.
	PreviewLimit int
	// Location is the zone of the times the pages show (default Local);
	// a campaign's next runs show in the campaign's zone.
	Location *time.Location
	Now      func() time.Time
	Logger   logrus.FieldLogger
}

// Deps are the parts the console uses; Retrier and Templates may be nil.
type Deps struct {
	Store     Store
	Previewer Previewer
	Retrier   Retrier
	Templates Templates
}

// Server serves the console.
type Server struct {
	cfg   Config
	deps  Deps
	log   logrus.FieldLogger
	pages map[string]*template.Template
	set   atomic.Pointer[campaignSet]
	mux   *http.ServeMux
}

// campaignSet is the loaded campaigns with their files as loaded.
type campaignSet struct {
	list   []*campaigns.Campaign
	byName map[string]*campaigns.Campaign
	source map[string]string
}

// New returns a console server; call SetCampaigns with the loaded set.
func New(cfg Config, d Deps) (*Server, error) {
	if d.Store == nil || d.Previewer == nil {
		return nil, errors.New("console: a store and a previewer are required")
	}
	if len(cfg.Tokens) == 0 {
		return nil, errors.New("console: no console token configured (console.tokens)")
	}
	if err := CheckTokens(cfg.Tokens); err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 12 * time.Hour
	}
	if cfg.PreviewLimit <= 0 {
		cfg.PreviewLimit = 500
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		cfg.Logger = l
	}
	if cfg.Location == nil {
		cfg.Location = time.Local
	}
	pages, err := parsePages(cfg.Location)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, deps: d, log: cfg.Logger, pages: pages}
	s.set.Store(&campaignSet{byName: map[string]*campaigns.Campaign{}, source: map[string]string{}})
	s.routes()
	return s, nil
}

// SetCampaigns replaces the campaigns the console shows (at start and on
// each reload), keeping each file's text as loaded.
func (s *Server) SetCampaigns(cs []*campaigns.Campaign) {
	set := &campaignSet{byName: map[string]*campaigns.Campaign{}, source: map[string]string{}}
	for _, c := range cs {
		set.list = append(set.list, c)
		set.byName[c.Name] = c
		if c.File != "" {
			if b, err := os.ReadFile(c.File); err == nil {
				set.source[c.Name] = string(b)
			}
		}
	}
	sort.Slice(set.list, func(i, j int) bool { return set.list[i].Name < set.list[j].Name })
	s.set.Store(set)
}

// Handler returns the console's HTTP handler.
func (s *Server) Handler() http.Handler { return s.mux }

// Paused reports whether campaign is paused in the store: the scheduler's
// Paused hook. A store error counts as not paused (logged): a pause never
// blocks on an outage, and the next tick asks again.
func Paused(ctx context.Context, st interface {
	CampaignPaused(ctx context.Context, campaign string) (store.CampaignPause, bool, error)
}, log logrus.FieldLogger, campaign string) bool {
	_, ok, err := st.CampaignPaused(ctx, campaign)
	if err != nil {
		log.WithError(err).WithField("campaign", campaign).Warn("read campaign pause")
		return false
	}
	return ok
}

// Report turns an engine summary into the store's run report of one attempt.
func Report(sum engine.Summary, replica string) store.RunReport {
	r := store.RunReport{Status: sum.Status, Looked: sum.Looked, Counts: map[string]int{}, Reasons: map[string]int{},
		Duration: sum.Duration, Rate: sum.PerSecond, Replicas: []string{replica}}
	for o, n := range sum.Counts {
		r.Counts[string(o)] = n
	}
	for k, n := range sum.Reasons {
		r.Reasons[k] = n
	}
	if sum.Error != "" {
		r.Errors = []string{sum.Error}
	}
	return r
}

// outcomes are the chart's series, in stacking order.
var outcomes = []wx.Outcome{wx.Sent, wx.Skipped, wx.Deferred, wx.Failed}

// Owns reports whether path is a console page (the rest of a shared
// listener belongs to the HTTP API).
func Owns(path string) bool {
	if path == "/" || path == "/login" || path == "/logout" || path == "/audit" {
		return true
	}
	for _, p := range []string{"/campaigns", "/runs", "/quota/", "/static/"} {
		if path == p || strings.HasPrefix(path, strings.TrimSuffix(p, "/")+"/") {
			return true
		}
	}
	return false
}

// Mount serves the console's pages and hands every other path to api: the
// console on the API's listener (http.listen).
func (s *Server) Mount(api http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if Owns(r.URL.Path) {
			s.mux.ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(w, r)
	})
}
