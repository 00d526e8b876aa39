// Package wxsim is a local stand-in for the WeChat mini program server API,
// for tests, demos and benchmarks. It checks every subscribeMessage.send the
// way WeChat does (WECHAT.md): access token, required fields, template,
// exactly the template's data keys, every value against its keyword rule
// (package keyword, the same rules the renderer uses), page, state and
// lang; it keeps a ledger of one-time credits per (openid, template) and
// answers 43101 without one, 43108 when two sends to one openid overlap,
// and injects faults at set rates. Admin endpoints feed credits, set faults
// and list delivered messages. With Config.PushURL it posts, as WeChat does,
// a signed subscribe_msg_sent_event to the message push URL after every
// delivered message (FlushPushes waits for them, Close stops the pusher).
//
// Choices where WeChat's behaviour is not published (see docs/wechat.md):
//   - An injected HTTP 500 delivers nothing (a 500 after delivery is what
//     WithholdAfterDeliver models, as a hang past the client timeout).
//   - An empty touser is 40003; a page that keyword.CheckPage refuses
//     (leading "/", longer than 1024 bytes, a path character other than
//     letters, digits and _-.@, white space or a control character) or that
//     is not in Config.Pages when that is set is 41030;
//     a bad miniprogram_state or lang is 47003 naming the field.
//   - A missing data key is 47003 "argument invalid! data.K.value is empty",
//     a key the template lacks is 47003 "argument invalid! data.K is not in
//     template", a value that breaks its rule is 47003 "argument invalid!
//     data.K.value invalid".
//   - stable_token returns the same token until it is within 5 minutes (at
//     most half the TTL) of expiry, then a new one; the old one keeps working
//     until its own expiry. force_refresh makes a new token and invalidates
//     the previous stable token at once (no 30 s or 20-a-day limit).
//     /cgi-bin/token makes a new token each call; the previous one from
//     /cgi-bin/token keeps working for 5 more minutes.
//   - jscode2session accepts codes "code-<openid>", each once (40163 on
//     reuse, 40029 for any other code); the unionid is "union-<openid>".
//   - Credits are consumed only by a delivered send; a send refused for any
//     reason (or by an injected fault) leaves them alone.
package wxsim

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"math"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wxcampaign/wxcampaign/keyword"
)

// Config configures a Server. AppID and Secret are the only credentials
// stable_token, token and jscode2session accept.
type Config struct {
	AppID, Secret string
	Templates     []TemplateDef
	TokenTTL      time.Duration // default 7200s
	Faults        Faults
	// LooseCredits turns the credit ledger off: one-time sends then succeed
	// without credits. The default (false) is strict: a one-time send needs
	// a credit (43101 otherwise), and a delivered one consumes it.
	LooseCredits bool
	// Pages, if set, lists the valid page paths (without query); any other
	// page is 41030. Empty accepts any well-formed page.
	Pages []string
	// MessageLimit bounds how many delivered messages Messages keeps, default
	// 1,000,000; older ones are dropped (Stats.Dropped counts them).
	MessageLimit int
	Now          func() time.Time

	// PushURL, if set, is the mini program's message push URL: after every
	// delivered message (a withheld reply too) the simulator POSTs a
	// subscribe_msg_sent_event there, as WeChat does, in JSON (List an
	// object, MsgID and ErrorCode strings, CreateTime a number), with
	// ?signature=&timestamp=&nonce= signed with PushToken (wechat.SignPush).
	// Pushes go from PushWorkers goroutines fed by a queue of PushQueue;
	// a full queue drops the push. A failed POST (transport error or a
	// non-2xx status) is retried PushRetries times. Close stops the pusher.
	PushURL      string
	PushToken    string        // required with PushURL
	PushUserName string        // ToUserName of pushes, default "gh_wxsim"
	PushWorkers  int           // default 4
	PushQueue    int           // default 10,000
	PushRetries  int           // retries of a failed POST, default 5; negative: none
	PushBackoff  time.Duration // delay before the first retry, doubled each time (at most 2s), default 50ms
	PushTimeout  time.Duration // per POST, default 5s
}

// Faults are injected into subscribeMessage.send at the given rates (0..1).
type Faults struct {
	SystemBusy float64       // errcode -1, nothing delivered
	HTTP500    float64       // HTTP 500, nothing delivered
	HTTP503    float64       // HTTP 503, nothing delivered
	Latency    time.Duration // added to every send, while the openid is in flight
	// WithholdAfterDeliver is the rate of sends that are delivered and whose
	// reply is then held for WithholdFor (default 30s) or until the client
	// hangs up: the client times out on a message that did arrive.
	WithholdAfterDeliver float64
	WithholdFor          time.Duration
	QuotaAfter           int   // 45009 after this many delivered sends (0 = off); ResetQuota resets
	ExpireTokenEvery     int   // expire the token used after every N delivered sends (0 = off): 42001
	Seed                 int64 // seed of the fault dice
	// PushDropRate is the rate of delivered sends whose push
	// (Config.PushURL) never comes, as when WeChat loses it.
	PushDropRate float64
}

// faultsJSON is the admin form of Faults, with durations as strings.
type faultsJSON struct {
	SystemBusy           float64 `json:"system_busy"`
	HTTP500              float64 `json:"http500"`
	HTTP503              float64 `json:"http503"`
	Latency              string  `json:"latency,omitempty"`
	WithholdAfterDeliver float64 `json:"withhold_after_deliver"`
	WithholdFor          string  `json:"withhold_for,omitempty"`
	QuotaAfter           int     `json:"quota_after"`
	ExpireTokenEvery     int     `json:"expire_token_every"`
	Seed                 int64   `json:"seed"`
	PushDropRate         float64 `json:"push_drop_rate"`
}

// MarshalJSON encodes f with snake_case names and durations as "200ms".
func (f Faults) MarshalJSON() ([]byte, error) {
	j := faultsJSON{f.SystemBusy, f.HTTP500, f.HTTP503, "", f.WithholdAfterDeliver, "", f.QuotaAfter, f.ExpireTokenEvery, f.Seed, f.PushDropRate}
	if f.Latency != 0 {
		j.Latency = f.Latency.String()
	}
	if f.WithholdFor != 0 {
		j.WithholdFor = f.WithholdFor.String()
	}
	return json.Marshal(j)
}

// UnmarshalJSON decodes the form MarshalJSON writes.
func (f *Faults) UnmarshalJSON(data []byte) error {
	var j faultsJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return err
	}
	out := Faults{SystemBusy: j.SystemBusy, HTTP500: j.HTTP500, HTTP503: j.HTTP503, WithholdAfterDeliver: j.WithholdAfterDeliver,
		QuotaAfter: j.QuotaAfter, ExpireTokenEvery: j.ExpireTokenEvery, Seed: j.Seed, PushDropRate: j.PushDropRate}
	var err error
	if j.Latency != "" {
		if out.Latency, err = time.ParseDuration(j.Latency); err != nil {
			return fmt.Errorf("latency: %w", err)
		}
	}
	if j.WithholdFor != "" {
		if out.WithholdFor, err = time.ParseDuration(j.WithholdFor); err != nil {
			return fmt.Errorf("withhold_for: %w", err)
		}
	}
	*f = out
	return f.validate()
}

func (f Faults) validate() error {
	for _, r := range []float64{f.SystemBusy, f.HTTP500, f.HTTP503, f.WithholdAfterDeliver, f.PushDropRate} {
		if math.IsNaN(r) || r < 0 || r > 1 {
			return fmt.Errorf("wxsim: fault rate %v is not between 0 and 1", r)
		}
	}
	if f.Latency < 0 || f.WithholdFor < 0 || f.QuotaAfter < 0 || f.ExpireTokenEvery < 0 {
		return fmt.Errorf("wxsim: negative fault setting")
	}
	return nil
}

// Delivered is one message the simulator accepted.
type Delivered struct {
	MsgID      int64             `json:"msgid"`
	ToUser     string            `json:"touser"`
	TemplateID string            `json:"template_id"`
	Page       string            `json:"page,omitempty"`
	State      string            `json:"miniprogram_state,omitempty"`
	Lang       string            `json:"lang,omitempty"`
	Data       map[string]string `json:"data"`
	At         time.Time         `json:"at"`
}

// Stats counts what the simulator answered since the last Reset.
type Stats struct {
	Requests     int64         `json:"requests"`      // send requests
	Sends        int64         `json:"sends"`         // delivered messages
	Errors       map[int]int64 `json:"errors"`        // replies per non-zero errcode, every endpoint
	HTTP         map[int]int64 `json:"http"`          // injected HTTP errors per status
	Overlaps     int64         `json:"overlaps"`      // 43108 answers
	Withheld     int64         `json:"withheld"`      // delivered sends whose reply was held
	TokensIssued int64         `json:"tokens_issued"` // access tokens made
	Dropped      int64         `json:"dropped"`       // delivered messages dropped from the list (MessageLimit)
	// Pushes (Config.PushURL): posted with a 2xx reply; failed after every
	// retry; dropped (never posted: Faults.PushDropRate, a full queue, or
	// abandoned by Close); retries of failed POSTs.
	Pushed      int64 `json:"pushed"`
	PushFailed  int64 `json:"push_failed"`
	PushDropped int64 `json:"push_dropped"`
	PushRetries int64 `json:"push_retries"`
}

const nShards = 64

// shard holds the per-openid state of the openids that hash to it.
type shard struct {
	mu       sync.Mutex
	credits  map[string]int // openid "\x00" template id -> credits
	inflight map[string]int // openid -> sends in progress
	msgs     []Delivered
	_        [64]byte // keep shards on separate cache lines
}

// counter is a cache-line padded atomic counter.
type counter struct {
	atomic.Int64
	_ [56]byte
}

// Server is the simulator. It is safe for concurrent use.
type Server struct {
	appid, secret string
	ttl           time.Duration
	loose         bool
	pages         map[string]bool
	perShard      int
	now           func() time.Time
	templates     map[string]*template
	listJSON      []byte
	initFaults    Faults

	faults atomic.Pointer[Faults]
	dice   atomic.Uint64
	seed   maphash.Seed
	shards [nShards]shard

	msgID     atomic.Int64
	delivered counter // for ExpireTokenEvery
	quotaUsed counter // for QuotaAfter and quota/get
	requests  counter
	overlaps  atomic.Int64
	withheld  atomic.Int64
	dropped   atomic.Int64
	issued    atomic.Int64
	codes     map[int]*counter // known errcodes, fixed after New
	otherMu   sync.Mutex
	other     map[int]int64
	http500   atomic.Int64
	http503   atomic.Int64

	tokMu  sync.Mutex // serialises token writers; readers use tokens
	tokens atomic.Pointer[tokenSet]
	codesM sync.Map // jscode2session codes used: code -> struct{}

	handler http.Handler
	push    *pusher // nil without Config.PushURL
}

// New returns a simulator for cfg.
func New(cfg Config) (*Server, error) {
	if cfg.AppID == "" || cfg.Secret == "" {
		return nil, fmt.Errorf("wxsim: new: AppID and Secret are required")
	}
	if err := cfg.Faults.validate(); err != nil {
		return nil, fmt.Errorf("wxsim: new: %w", err)
	}
	s := &Server{
		appid:      cfg.AppID,
		secret:     cfg.Secret,
		ttl:        cfg.TokenTTL,
		loose:      cfg.LooseCredits,
		now:        cfg.Now,
		templates:  make(map[string]*template, len(cfg.Templates)),
		initFaults: cfg.Faults,
		seed:       maphash.MakeSeed(),
		codes:      make(map[int]*counter, len(knownCodes)),
		other:      make(map[int]int64),
	}
	if s.ttl <= 0 {
		s.ttl = 7200 * time.Second
	}
	if s.now == nil {
		s.now = time.Now
	}
	limit := cfg.MessageLimit
	if limit <= 0 {
		limit = 1_000_000
	}
	s.perShard = max(1, limit/nShards)
	if len(cfg.Pages) > 0 {
		s.pages = make(map[string]bool, len(cfg.Pages))
		for _, p := range cfg.Pages {
			s.pages[keyword.PagePath(p)] = true
		}
	}
	ordered := make([]*template, 0, len(cfg.Templates))
	for _, d := range cfg.Templates {
		t, err := compileTemplate(d)
		if err != nil {
			return nil, fmt.Errorf("wxsim: new: %w", err)
		}
		if _, dup := s.templates[t.def.ID]; dup {
			return nil, fmt.Errorf("wxsim: new: template %s twice", t.def.ID)
		}
		s.templates[t.def.ID] = t
		ordered = append(ordered, t)
	}
	var err error
	if s.listJSON, err = templateListJSON(ordered); err != nil {
		return nil, fmt.Errorf("wxsim: new: encode templates: %w", err)
	}
	for _, c := range knownCodes {
		s.codes[c] = new(counter)
	}
	for i := range s.shards {
		s.shards[i].credits = make(map[string]int, 256)
		s.shards[i].inflight = make(map[string]int, 64)
	}
	f := cfg.Faults
	s.faults.Store(&f)
	s.dice.Store(uint64(f.Seed))
	s.tokens.Store(&tokenSet{m: map[string]tokenEntry{}})
	if cfg.PushURL != "" {
		if s.push, err = newPusher(cfg, s.now); err != nil {
			return nil, fmt.Errorf("wxsim: new: %w", err)
		}
	}
	s.handler = s.routes()
	return s, nil
}

// Handler returns the HTTP handler of the WeChat API and the admin API.
func (s *Server) Handler() http.Handler { return s.handler }

// ServeHTTP serves the handler, so that a *Server is an http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

func (s *Server) shardOf(openid string) *shard {
	return &s.shards[maphash.String(s.seed, openid)%nShards]
}

func creditKey(openid, templateID string) string { return openid + "\x00" + templateID }

// AddCredits adds n one-time credits (accepts) for openid and template; a
// negative n takes credits away, never below zero.
func (s *Server) AddCredits(openid, templateID string, n int) {
	sh := s.shardOf(openid)
	k := creditKey(openid, templateID)
	sh.mu.Lock()
	c := max(0, sh.credits[k]+n)
	if c == 0 {
		delete(sh.credits, k)
	} else {
		sh.credits[k] = c
	}
	sh.mu.Unlock()
}

// Credits returns the credits openid has left for template.
func (s *Server) Credits(openid, templateID string) int {
	sh := s.shardOf(openid)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.credits[creditKey(openid, templateID)]
}

// Messages returns the delivered messages in msgid (delivery) order.
func (s *Server) Messages() []Delivered {
	var out []Delivered
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		out = append(out, sh.msgs...)
		sh.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].MsgID < out[j].MsgID })
	return out
}

// MessagesTo returns the delivered messages to one openid, in order.
func (s *Server) MessagesTo(openid string) []Delivered {
	sh := s.shardOf(openid)
	var out []Delivered
	sh.mu.Lock()
	for _, m := range sh.msgs {
		if m.ToUser == openid {
			out = append(out, m)
		}
	}
	sh.mu.Unlock()
	return out
}

// SetFaults replaces the injected faults; a new Seed restarts the dice.
func (s *Server) SetFaults(f Faults) {
	old := s.faults.Swap(&f)
	if old == nil || old.Seed != f.Seed {
		s.dice.Store(uint64(f.Seed))
	}
}

// CurrentFaults returns the injected faults.
func (s *Server) CurrentFaults() Faults { return *s.faults.Load() }

// ResetQuota starts a new quota day: QuotaAfter counts from zero again.
func (s *Server) ResetQuota() { s.quotaUsed.Store(0) }

// Reset forgets credits, delivered messages, in-flight marks, used login
// codes, counters and quota, and restores the configured faults. Issued
// access tokens stay valid.
func (s *Server) Reset() {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		clear(sh.credits)
		clear(sh.inflight)
		sh.msgs = nil
		sh.mu.Unlock()
	}
	s.codesM.Clear()
	s.delivered.Store(0)
	s.quotaUsed.Store(0)
	s.requests.Store(0)
	s.overlaps.Store(0)
	s.withheld.Store(0)
	s.dropped.Store(0)
	s.issued.Store(0)
	s.http500.Store(0)
	s.http503.Store(0)
	for _, c := range s.codes {
		c.Store(0)
	}
	s.otherMu.Lock()
	clear(s.other)
	s.otherMu.Unlock()
	if s.push != nil {
		s.push.reset()
	}
	s.SetFaults(s.initFaults)
}

// Stats returns the counters since the last Reset.
func (s *Server) Stats() Stats {
	st := Stats{
		Requests:     s.requests.Load(),
		Sends:        s.delivered.Load(),
		Errors:       map[int]int64{},
		HTTP:         map[int]int64{},
		Overlaps:     s.overlaps.Load(),
		Withheld:     s.withheld.Load(),
		TokensIssued: s.issued.Load(),
		Dropped:      s.dropped.Load(),
	}
	for code, c := range s.codes {
		if n := c.Load(); n != 0 {
			st.Errors[code] = n
		}
	}
	s.otherMu.Lock()
	for code, n := range s.other {
		st.Errors[code] += n
	}
	s.otherMu.Unlock()
	if p := s.push; p != nil {
		st.Pushed, st.PushFailed, st.PushDropped, st.PushRetries = p.pushed.Load(), p.failed.Load(), p.dropped.Load(), p.retried.Load()
	}
	if n := s.http500.Load(); n != 0 {
		st.HTTP[500] = n
	}
	if n := s.http503.Load(); n != 0 {
		st.HTTP[503] = n
	}
	return st
}

// count records a reply with a non-zero errcode.
func (s *Server) count(code int) {
	if c, ok := s.codes[code]; ok {
		c.Add(1)
		return
	}
	s.otherMu.Lock()
	s.other[code]++
	s.otherMu.Unlock()
}

// roll returns true with probability p. The dice are a splitmix64 stream
// from Faults.Seed, so a run with one sender is reproducible.
func (s *Server) roll(p float64) bool {
	if p <= 0 {
		return false
	}
	if p >= 1 {
		return true
	}
	z := s.dice.Add(0x9e3779b97f4a7c15)
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	z ^= z >> 31
	return float64(z>>11)/(1<<53) < p
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// knownCodes are the errcodes the simulator answers; others are counted
// under a lock.
var knownCodes = []int{-1, 40001, 40002, 40003, 40013, 40029, 40037, 40125, 40163, 41001, 41030, 42001, 43101, 43108, 45009, 47001, 47003, 76021}

// writeErr writes a WeChat error reply and counts it.
func (s *Server) writeErr(w http.ResponseWriter, code int, msg string) {
	s.count(code)
	b := make([]byte, 0, 64+len(msg))
	b = append(b, `{"errcode":`...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, `,"errmsg":`...)
	b = appendJSONString(b, msg)
	b = append(b, '}')
	writeJSON(w, b)
}

func writeJSON(w http.ResponseWriter, b []byte) {
	h := w.Header()
	h["Content-Type"] = jsonType
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	w.Write(b) //nolint:errcheck // the client may have gone
}

var jsonType = []string{"application/json; encoding=utf-8"}

// appendJSONString appends s as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			enc, _ := json.Marshal(s) // a string always encodes
			return append(b, enc...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
