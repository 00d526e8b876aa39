// Package engine runs campaigns: one run of one campaign at one scheduled
// time walks the template's available grants in batches, joins the facts,
// evaluates the rule, renders the message, applies caps and quiet hours,
// reserves the grants and dispatches the messages, recording every outcome.
// The scheduler starts runs on each campaign's cron schedule.
//
// The engine defines the small interfaces it needs (Store, Facts, Sender);
// the store and wechat packages implement them.
package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/sirupsen/logrus"

	wx "github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/store"
)

// Store is the ledger the engine needs. Every method is atomic across
// processes; *store.DB implements it.
type Store interface {
	ListAvailable(ctx context.Context, templateID string, afterID int64, limit int, now time.Time) ([]wx.Grant, error)
	// RepeatUsers lists the openids holding more than one grant of the
	// template (a superset is fine): a preview counts only their sends.
	RepeatUsers(ctx context.Context, templateID string) ([]string, error)
	// BeginSends marks sends in flight just before their requests go out,
	// taking their caps (the send log row is the take).
	BeginSends(ctx context.Context, m store.Mark) ([]store.Begun, error)
	// FinishSends records outcomes (and a checkpoint) and returns how many
	// in-flight rows it settled.
	FinishSends(ctx context.Context, f store.Finish) (int, error)
	StaleInflight(ctx context.Context, now time.Time, limit int) ([]store.Attempt, error)
	SentBefore(ctx context.Context, campaign string, ids []int64) (map[int64]bool, error)
	// FailStreaks tells the grants whose latest n attempts in campaign all
	// failed the same way.
	FailStreaks(ctx context.Context, campaign string, ids []int64, n int) (map[int64]store.Streak, error)
	CheckCaps(ctx context.Context, now time.Time, reqs []store.CapRequest) ([]*store.Limit, [][]store.CapUsage, error)
	AcquireRun(ctx context.Context, campaign string, occurrence time.Time, holder string, now, until time.Time) (store.Run, bool, error)
	ExtendRun(ctx context.Context, campaign string, occurrence time.Time, holder string, until time.Time) error
	FinishRun(ctx context.Context, campaign string, occurrence time.Time, holder string, summary string) error
	SetPause(ctx context.Context, key string, until time.Time, reason string) error
	PausedUntil(ctx context.Context, key string, now time.Time) (time.Time, string, error)
	MatchDelivery(ctx context.Context, openid, templateID string, since time.Time) (int64, error)
	// RecordHoldouts stores the users a campaign's holdout kept unsent
	// (idempotent), for the lift report.
	RecordHoldouts(ctx context.Context, at time.Time, hs []store.Holdout) error
	// ActiveCredits counts the active one-time grants of a template per
	// openid (for reserves of campaigns of higher priority).
	ActiveCredits(ctx context.Context, templateID string, openids []string) (map[string]int, error)
}

// Facts runs a campaign's fact query for a batch of keys.
type Facts interface {
	Query(ctx context.Context, query string, keys []any) ([]map[string]any, error)
}

var (
	_ Store = (*store.DB)(nil)
	_ Facts = (*store.Facts)(nil)
)

// AmbiguousPolicy says what to do with a send that may have arrived.
type AmbiguousPolicy string

// Ambiguous send policies.
const (
	// AmbiguousConsume consumes the grant with outcome "unknown" and never
	// retries it: no user can get a message twice (the default).
	AmbiguousConsume AmbiguousPolicy = "consume"
	// AmbiguousRetry releases the grant so a later run sends it again: no
	// message is lost, at the risk of a second delivery.
	AmbiguousRetry AmbiguousPolicy = "retry"
	// AmbiguousReconcile leaves the send in flight and settles it from
	// WeChat's delivery events (subscribe_msg_sent_event, received by the
	// API's message-push endpoint): sent when the event comes, released
	// for a later run when none came within ReconcileGrace. Exact, when
	// the message push is configured.
	AmbiguousReconcile AmbiguousPolicy = "reconcile"
)

// deliverySkew allows for the clocks of WeChat and of this process, and for
// the second precision of an event's CreateTime.
const deliverySkew = 5 * time.Second

// Config tunes the engine. The zero value of every field has a default.
type Config struct {
	Holder      string        // this process's id in leases; default host-pid-random
	AppID       string        // the appid, the key of the shared quota pause
	State, Lang string        // defaults for campaigns that set none
	Rate        float64       // messages per second across all runs of this process; 0 = unlimited
	Concurrency int           // sends in flight at once; default 64
	Lease       time.Duration // run and reservation lease; default 2m
	MaxAttempts int           // tries of a retryable send; default 5
	RetryBase   time.Duration // first backoff; default 1s (doubles, with jitter)
	RetryMax    time.Duration // backoff ceiling; default 30s
	Ambiguous   AmbiguousPolicy
	// ReconcileGrace is how long the reconcile policy waits for a delivery
	// event before it takes a send as not delivered; default 2m.
	ReconcileGrace time.Duration
	// AmbiguousHold is how long an openid gets no further send after a
	// send to it may have arrived (WeChat may still be processing it:
	// another send would draw 43108); default 1m.
	AmbiguousHold time.Duration
	// SetAsideAfter is how many runs in a row a grant may fail the same
	// way (47003, a page WeChat refuses, ...) before a campaign sets it
	// aside (skipped, reason set_aside) instead of trying it again; default
	// 3, negative never.
	SetAsideAfter int
	QuotaZone     *time.Location // where WeChat's daily quota resets at midnight; default Asia/Shanghai
	Now           func() time.Time
	Logger        logrus.FieldLogger // nil: discard, as the api package
	Metrics       *Metrics           // nil = no metrics
}

// Engine runs campaigns against a store, a facts source and a sender.
type Engine struct {
	cfg    Config
	store  Store
	facts  Facts
	sender Sender
	log    logrus.FieldLogger
	limit  *limiter
	users  userLocks // one send in flight per openid across all runs
	holds  holds     // openids whose last send may have arrived
	// repeatAfter is how many in-run counters a preview keeps for every
	// user before it counts only its repeat users (onlyRepeatUsers).
	repeatAfter int
}

// New returns an engine. sender may be nil for an engine that only previews.
func New(cfg Config, st Store, facts Facts, sender Sender) (*Engine, error) {
	if st == nil || facts == nil {
		return nil, errors.New("engine: a store and a facts source are required")
	}
	if cfg.Holder == "" {
		cfg.Holder = NewHolderID()
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 64
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 2 * time.Minute
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 5
	}
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = time.Second
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = 30 * time.Second
	}
	switch cfg.Ambiguous {
	case "":
		cfg.Ambiguous = AmbiguousConsume
	case AmbiguousConsume, AmbiguousRetry, AmbiguousReconcile:
	default:
		return nil, fmt.Errorf("engine: unknown ambiguous-send policy %q (want consume, retry or reconcile)", cfg.Ambiguous)
	}
	if cfg.ReconcileGrace <= 0 {
		cfg.ReconcileGrace = 2 * time.Minute
	}
	if cfg.SetAsideAfter == 0 {
		cfg.SetAsideAfter = 3
	}
	if cfg.AmbiguousHold <= 0 {
		cfg.AmbiguousHold = time.Minute
	}
	if cfg.QuotaZone == nil {
		loc, err := time.LoadLocation("Asia/Shanghai")
		if err != nil {
			return nil, fmt.Errorf("engine: quota zone: %w", err)
		}
		cfg.QuotaZone = loc
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		// As the api package: no logger, no log lines.
		l := logrus.New()
		l.SetOutput(io.Discard)
		cfg.Logger = l
	}
	return &Engine{
		cfg: cfg, store: st, facts: facts, sender: sender,
		log:         cfg.Logger.WithField("holder", cfg.Holder),
		limit:       newLimiter(cfg.Rate),
		repeatAfter: repeatAfter,
	}, nil
}

// Holder returns this engine's lease holder id.
func (e *Engine) Holder() string { return e.cfg.Holder }

// NewHolderID returns a process-unique lease holder id: host, pid, random.
func NewHolderID() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// quotaKey is the store key of the shared 45009 pause.
func (e *Engine) quotaKey() string { return "quota:" + e.cfg.AppID }

// nextQuotaReset is the next midnight in the quota zone after t.
func (e *Engine) nextQuotaReset(t time.Time) time.Time {
	l := t.In(e.cfg.QuotaZone)
	y, m, d := l.Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, e.cfg.QuotaZone)
}
