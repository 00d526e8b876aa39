package wechat_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/wxcampaign/wxcampaign/wechat"
	"github.com/wxcampaign/wxcampaign/wechat/wxsim"
)

const (
	appID  = "wx-client-test"
	secret = "s3cr3t-app-secret-value-42"
)

var tmplOrder = wxsim.TemplateDef{
	ID:    "T-ORDER",
	Title: "订单状态",
	Kind:  "one_time",
	Keys:  []string{"character_string1", "amount2", "thing3", "phrase4"},
	Enums: nil,
}

var tmplLong = wxsim.TemplateDef{ID: "T-LONG", Kind: "long_term", Keys: []string{"thing1", "enum2"}, Enums: map[string][]string{"enum2": {"开始", "结束"}}}

func orderMsg(to string) wechat.Message {
	return wechat.Message{ToUser: to, TemplateID: "T-ORDER", Page: "pages/order/detail?id=1", Data: map[string]string{
		"character_string1": "ORD-1", "amount2": "¥12.50", "thing3": "您的订单已发货", "phrase4": "已发货",
	}}
}

// fakeClock is a settable clock shared by client and simulator.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)} }
func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}
func (c *fakeClock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// tokenSpy records every access token seen on the wire, for the leak test.
type tokenSpy struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (s *tokenSpy) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tok := r.URL.Query().Get("access_token"); tok != "" {
			s.mu.Lock()
			if s.seen == nil {
				s.seen = map[string]bool{}
			}
			s.seen[tok] = true
			s.mu.Unlock()
		}
		h.ServeHTTP(w, r)
	})
}

func (s *tokenSpy) tokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for t := range s.seen {
		out = append(out, t)
	}
	return out
}

type harness struct {
	sim    *wxsim.Server
	srv    *httptest.Server
	clock  *fakeClock
	spy    *tokenSpy
	logBuf *syncBuffer
	log    *logrus.Logger
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func setup(t testing.TB, mod func(*wxsim.Config)) *harness {
	t.Helper()
	h := &harness{clock: newClock(), spy: &tokenSpy{}, logBuf: &syncBuffer{}}
	cfg := wxsim.Config{AppID: appID, Secret: secret, Templates: []wxsim.TemplateDef{tmplOrder, tmplLong}, Now: h.clock.Now}
	if mod != nil {
		mod(&cfg)
	}
	sim, err := wxsim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.sim = sim
	h.srv = httptest.NewServer(h.spy.wrap(sim.Handler()))
	t.Cleanup(h.srv.Close)
	h.log = logrus.New()
	h.log.SetLevel(logrus.DebugLevel)
	h.log.SetOutput(h.logBuf)
	return h
}

func (h *harness) client(t testing.TB, mod func(*wechat.Config)) *wechat.Client {
	t.Helper()
	cfg := wechat.Config{BaseURL: h.srv.URL, AppID: appID, Secret: secret, Timeout: 2 * time.Second, Logger: h.log, Now: h.clock.Now}
	if mod != nil {
		mod(&cfg)
	}
	c, err := wechat.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSend(t *testing.T) {
	h := setup(t, nil)
	c := h.client(t, nil)
	h.sim.AddCredits("o1", "T-ORDER", 1)
	id, err := c.Send(context.Background(), orderMsg("o1"))
	if err != nil {
		t.Fatal(err)
	}
	msgs := h.sim.Messages()
	if len(msgs) != 1 || msgs[0].MsgID != id || msgs[0].Data["amount2"] != "¥12.50" || msgs[0].Page != "pages/order/detail?id=1" {
		t.Fatalf("id %d, delivered %+v", id, msgs)
	}
	if wechat.ClassOf(err) != "" {
		t.Error("ClassOf(nil) is not empty")
	}
}

// stub is a fake WeChat that hands out a token and answers every other
// call with a fixed reply or behaviour.
func stub(t *testing.T, send http.HandlerFunc) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /cgi-bin/stable_token", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"access_token":"STUB-TOKEN-abcdefghijklmnop","expires_in":7200}`)
	})
	mux.HandleFunc("/", send)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func reply(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, body) }
}

func status(code int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", code) }
}

// hangUp reads the request and closes the connection without a reply.
func hangUp(w http.ResponseWriter, r *http.Request) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.SetLinger(0) // RST
		}
		conn.Close()
	}
}

// closedPort returns the address of a port nothing listens on.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

func TestErrorClasses(t *testing.T) {
	type result struct {
		err       error
		delivered int
	}
	simSend := func(mod func(*wxsim.Config), prep func(*harness), cmod func(*wechat.Config), m wechat.Message) func(t *testing.T) result {
		return func(t *testing.T) result {
			h := setup(t, mod)
			if prep != nil {
				prep(h)
			}
			c := h.client(t, cmod)
			before := len(h.sim.Messages())
			_, err := c.Send(context.Background(), m)
			return result{err, len(h.sim.Messages()) - before}
		}
	}
	stubSend := func(send http.HandlerFunc) func(t *testing.T) result {
		return func(t *testing.T) result {
			srv := stub(t, send)
			c, err := wechat.New(wechat.Config{BaseURL: srv.URL, AppID: appID, Secret: secret, Timeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Send(context.Background(), orderMsg("o1"))
			return result{err, -1}
		}
	}
	credit := func(h *harness) { h.sim.AddCredits("o1", "T-ORDER", 5) }
	badValue := orderMsg("o1")
	badValue.Data["amount2"] = "12 yuan"
	badPage := orderMsg("o1")
	badPage.Page = "/pages/x"
	unknownTmpl := orderMsg("o1")
	unknownTmpl.TemplateID = "T-NOPE"

	tests := []struct {
		name  string
		run   func(t *testing.T) result
		class wechat.Class
		code  int
	}{
		{"-1 system busy", simSend(func(c *wxsim.Config) { c.Faults.SystemBusy = 1 }, credit, nil, orderMsg("o1")), wechat.ClassRetryable, -1},
		{"HTTP 503", simSend(func(c *wxsim.Config) { c.Faults.HTTP503 = 1 }, credit, nil, orderMsg("o1")), wechat.ClassRetryable, 0},
		{"HTTP 502", stubSend(status(502)), wechat.ClassRetryable, 0},
		{"connection refused", func(t *testing.T) result {
			c, err := wechat.New(wechat.Config{BaseURL: closedPort(t), AppID: appID, Secret: secret, Timeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Send(context.Background(), orderMsg("o1"))
			return result{err, -1}
		}, wechat.ClassRetryable, 0},
		{"token rejected twice", stubSend(reply(`{"errcode":40001,"errmsg":"invalid credential"}`)), wechat.ClassToken, 40001},
		{"40003 touser", simSend(nil, credit, nil, orderMsg("")), wechat.ClassUser, 40003},
		{"43101 no credit", simSend(nil, nil, nil, orderMsg("o1")), wechat.ClassGrantGone, 43101},
		{"47003 value", simSend(nil, credit, nil, badValue), wechat.ClassContent, 47003},
		{"45168 sensitive", stubSend(reply(`{"errcode":45168,"errmsg":"keyword hit"}`)), wechat.ClassContent, 45168},
		{"40037 template", simSend(nil, credit, nil, unknownTmpl), wechat.ClassMisconfigured, 40037},
		{"41030 page", simSend(nil, credit, nil, badPage), wechat.ClassMisconfigured, 41030},
		{"43107 banned", stubSend(reply(`{"errcode":43107,"errmsg":"banned"}`)), wechat.ClassMisconfigured, 43107},
		{"45009 quota", simSend(func(c *wxsim.Config) { c.LooseCredits = true; c.Faults.QuotaAfter = 1 }, func(h *harness) {
			c := h.client(t, nil)
			if _, err := c.Send(context.Background(), orderMsg("o1")); err != nil {
				t.Fatal(err)
			}
		}, nil, orderMsg("o1")), wechat.ClassQuota, 45009},
		{"40125 secret", simSend(nil, credit, func(c *wechat.Config) { c.Secret = "wrong-secret" }, orderMsg("o1")), wechat.ClassConfig, 40125},
		{"40013 appid", simSend(nil, credit, func(c *wechat.Config) { c.AppID = "wx-other" }, orderMsg("o1")), wechat.ClassConfig, 40013},
		{"40164 ip", stubSend(reply(`{"errcode":40164,"errmsg":"invalid ip, not in whitelist"}`)), wechat.ClassConfig, 40164},
		{"HTTP 404", stubSend(status(404)), wechat.ClassConfig, 0},
		{"HTTP 500", simSend(func(c *wxsim.Config) { c.Faults.HTTP500 = 1 }, credit, nil, orderMsg("o1")), wechat.ClassAmbiguous, 0},
		{"timeout after delivery", simSend(func(c *wxsim.Config) {
			c.Faults.WithholdAfterDeliver = 1
			c.Faults.WithholdFor = 5 * time.Second
		}, credit, func(c *wechat.Config) { c.Timeout = time.Second }, orderMsg("o1")), wechat.ClassAmbiguous, 0},
		{"reset after write", stubSend(hangUp), wechat.ClassAmbiguous, 0},
		{"not JSON", stubSend(reply("<html>gateway</html>")), wechat.ClassAmbiguous, 0},
		{"other errcode", stubSend(reply(`{"errcode":40999,"errmsg":"something"}`)), wechat.ClassPermanent, 40999},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.run(t)
			if r.err == nil {
				t.Fatal("no error")
			}
			var ae *wechat.APIError
			if !errors.As(r.err, &ae) {
				t.Fatalf("%T is not an *APIError: %v", r.err, r.err)
			}
			if got := wechat.ClassOf(r.err); got != tt.class {
				t.Errorf("class = %q, want %q (%v)", got, tt.class, r.err)
			}
			if ae.Code != tt.code {
				t.Errorf("code = %d, want %d (%v)", ae.Code, tt.code, r.err)
			}
			if tt.class == wechat.ClassAmbiguous && tt.name == "timeout after delivery" && r.delivered != 1 {
				t.Errorf("ambiguous timeout: %d delivered, want 1", r.delivered)
			}
			if tt.class != wechat.ClassAmbiguous && r.delivered > 0 {
				t.Errorf("%d delivered on a %s error", r.delivered, tt.class)
			}
		})
	}
}

func TestOverlapIsRetryable(t *testing.T) {
	h := setup(t, func(c *wxsim.Config) { c.Faults.Latency = 300 * time.Millisecond })
	h.sim.AddCredits("o1", "T-ORDER", 5)
	c := h.client(t, nil)
	if _, err := c.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * 100 * time.Millisecond)
			_, errs[i] = c.Send(context.Background(), orderMsg("o1"))
		}()
	}
	wg.Wait()
	if errs[0] != nil { // under load the second may have arrived first
		errs[0], errs[1] = errs[1], errs[0]
	}
	if errs[0] != nil || wechat.Code(errs[1]) != 43108 || wechat.ClassOf(errs[1]) != wechat.ClassRetryable {
		t.Fatalf("errors = %v", errs)
	}
}

func TestTokenRefreshAheadOfExpiry(t *testing.T) {
	h := setup(t, func(c *wxsim.Config) { c.LooseCredits = true })
	var refreshes atomic.Int32
	c := h.client(t, func(c *wechat.Config) { c.OnTokenRefresh = func() { refreshes.Add(1) } })
	ctx := context.Background()
	t1, err := c.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := c.Send(ctx, orderMsg("o1")); err != nil {
			t.Fatal(err)
		}
	}
	if n := refreshes.Load(); n != 1 {
		t.Fatalf("%d token fetches for 3 sends, want 1", n)
	}
	// Within 5 minutes of expiry the client fetches a new token.
	h.clock.Add(7200*time.Second - 4*time.Minute)
	if _, err := c.Send(ctx, orderMsg("o1")); err != nil {
		t.Fatal(err)
	}
	t2, _ := c.Token(ctx)
	if t2 == t1 || refreshes.Load() != 2 {
		t.Fatalf("no refresh ahead of expiry (%d fetches)", refreshes.Load())
	}
	// Past the old token's expiry everything still works.
	h.clock.Add(2 * time.Hour)
	if _, err := c.Send(ctx, orderMsg("o1")); err != nil {
		t.Fatal(err)
	}
	if st := h.sim.Stats(); st.Errors[42001] != 0 || st.Errors[40001] != 0 {
		t.Errorf("client used an expired token: %v", st.Errors)
	}
}

func TestTokenRefreshMidRun(t *testing.T) {
	for _, tt := range []struct {
		name   string
		faults wxsim.Faults
		expire bool
	}{
		{"40001 from ExpireTokens", wxsim.Faults{}, true},
		{"42001 every 40 sends", wxsim.Faults{ExpireTokenEvery: 40}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := setup(t, func(c *wxsim.Config) { c.LooseCredits = true; c.Faults = tt.faults })
			var retries atomic.Int32
			c := h.client(t, func(c *wechat.Config) { c.OnRetry = func(string) { retries.Add(1) } })
			ctx := context.Background()
			const workers, each = 8, 25
			var wg sync.WaitGroup
			var failed atomic.Int32
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range each {
						if tt.expire && w == 0 && i == each/2 {
							h.sim.ExpireTokens()
						}
						if _, err := c.Send(ctx, orderMsg(fmt.Sprintf("o-%d", w))); err != nil {
							failed.Add(1)
							if wechat.ClassOf(err) != wechat.ClassToken || tt.faults.ExpireTokenEvery == 0 {
								t.Errorf("send: %v", err)
							}
						}
					}
				}()
			}
			wg.Wait()
			st := h.sim.Stats()
			// With a token expiring every N sends, a sender stalled for N
			// sends between its refresh and its retry legitimately fails
			// (the retry is once): allow one such failure per expiry. A
			// single ExpireTokens must cost nothing.
			allowed := int32(0)
			if n := tt.faults.ExpireTokenEvery; n > 0 {
				allowed = int32(workers * each / n)
			}
			if st.Sends+int64(failed.Load()) != workers*each || failed.Load() > allowed {
				t.Fatalf("%d delivered, %d failed (%d allowed)", st.Sends, failed.Load(), allowed)
			}
			if retries.Load() == 0 {
				t.Error("no token retry happened")
			}
			// Single flight: a handful of fetches, not one per worker per expiry.
			limit := int64(3)
			if tt.faults.ExpireTokenEvery > 0 {
				limit = int64(workers*each/tt.faults.ExpireTokenEvery) + 2
			}
			if st.TokensIssued > limit {
				t.Errorf("%d tokens issued, want at most %d", st.TokensIssued, limit)
			}
		})
	}
}

// memStore is an in-memory TokenStore with a lease.
type memStore struct {
	mu          sync.Mutex
	tok         string
	exp         time.Time
	holder      string
	until       time.Time
	drops, save int
}

func (s *memStore) LoadToken(ctx context.Context, appid string) (string, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tok, s.exp, nil
}

func (s *memStore) SaveToken(ctx context.Context, appid, token string, exp time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tok, s.exp = token, exp
	s.save++
	return nil
}

func (s *memStore) TryTokenLease(ctx context.Context, appid, holder string, now, until time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.holder != "" && s.holder != holder && now.Before(s.until) {
		return false, nil
	}
	s.holder, s.until = holder, until
	return true, nil
}

func (s *memStore) DropToken(ctx context.Context, appid, token string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok == token {
		s.tok, s.exp = "", time.Time{}
		s.drops++
	}
	return nil
}

var _ wechat.TokenStore = (*memStore)(nil)

func TestSharedTokenStore(t *testing.T) {
	h := setup(t, func(c *wxsim.Config) { c.LooseCredits = true })
	store := &memStore{}
	clients := make([]*wechat.Client, 4)
	for i := range clients {
		clients[i] = h.client(t, func(c *wechat.Config) { c.Tokens = store; c.Holder = fmt.Sprint("proc-", i) })
	}
	ctx := context.Background()
	run := func() {
		var wg sync.WaitGroup
		for i, c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range 10 {
					if _, err := c.Send(ctx, orderMsg(fmt.Sprintf("o-%d-%d", i, j))); err != nil {
						t.Errorf("client %d: %v", i, err)
					}
				}
			}()
		}
		wg.Wait()
	}
	run()
	if st := h.sim.Stats(); st.TokensIssued != 1 {
		t.Errorf("%d tokens issued for 4 processes sharing a store, want 1", st.TokensIssued)
	}
	toks := map[string]bool{}
	for _, c := range clients {
		tok, _ := c.Token(ctx)
		toks[tok] = true
	}
	if len(toks) != 1 {
		t.Errorf("%d different tokens among the processes", len(toks))
	}
	// A token knocked out mid-run is dropped from the store and replaced once.
	h.sim.ExpireTokens()
	run()
	if store.drops == 0 {
		t.Error("the rejected token was not dropped from the store")
	}
	if st := h.sim.Stats(); st.TokensIssued > 3 || st.Sends != 80 {
		t.Errorf("after expiry: %d tokens issued, %d sent", st.TokensIssued, st.Sends)
	}
	// Ahead of expiry one process refreshes; the others keep the old token meanwhile.
	h.clock.Add(7200*time.Second - 4*time.Minute)
	before := h.sim.Stats()
	run()
	after := h.sim.Stats()
	if after.TokensIssued != before.TokensIssued+1 || after.Errors[40001] != before.Errors[40001] || after.Errors[42001] != 0 {
		t.Errorf("refresh ahead: %d new tokens, errors %v -> %v", after.TokensIssued-before.TokensIssued, before.Errors, after.Errors)
		t.Log(h.logBuf.String())
	}
}

func TestTemplates(t *testing.T) {
	h := setup(t, nil)
	c := h.client(t, nil)
	ts, err := c.Templates(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 2 {
		t.Fatalf("%d templates", len(ts))
	}
	var keys []string
	for _, k := range ts[0].Keys {
		keys = append(keys, fmt.Sprintf("%s=%s/%d", k.Key, k.Type, k.Index))
	}
	if ts[0].ID != "T-ORDER" || ts[0].Kind() != "one_time" || strings.Join(keys, " ") != "character_string1=character_string/1 amount2=amount/2 thing3=thing/3 phrase4=phrase/4" {
		t.Errorf("template 0 = %+v (%v)", ts[0], keys)
	}
	if ts[1].Kind() != "long_term" || fmt.Sprint(ts[1].Enums["enum2"]) != "[开始 结束]" {
		t.Errorf("template 1 = %+v", ts[1])
	}
}

// TestTemplatesLabels: the labels and examples of the simulator's templates
// file come back through getTemplateList's content and example, per key.
func TestTemplatesLabels(t *testing.T) {
	h := setup(t, func(c *wxsim.Config) {
		c.Templates = []wxsim.TemplateDef{{ID: "T-SHIP", Title: "发货通知", Kind: "one_time",
			Keys:     []string{"thing1", "short_thing2", "enum3"},
			Labels:   map[string]string{"thing1": "商品名称", "short_thing2": "状态", "enum3": "物流"},
			Examples: map[string]string{"thing1": "运动鞋", "enum3": "已发货"},
			Enums:    map[string][]string{"enum3": {"已发货", "已签收"}}}}
	})
	ts, err := h.client(t, nil).Templates(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 1 || ts[0].Title != "发货通知" {
		t.Fatalf("templates = %+v", ts)
	}
	var got []string
	for _, k := range ts[0].Keys {
		got = append(got, fmt.Sprintf("%s/%s/%s/%s", k.Key, k.Type, k.Name, k.Example))
	}
	if want := "thing1/thing/商品名称/运动鞋 short_thing2/short_thing/状态/ enum3/enum/物流/已发货"; strings.Join(got, " ") != want {
		t.Errorf("keys = %q, want %q", strings.Join(got, " "), want)
	}
	if fmt.Sprint(ts[0].Enums["enum3"]) != "[已发货 已签收]" {
		t.Errorf("enums = %v", ts[0].Enums)
	}
}

func TestSessionAndQuota(t *testing.T) {
	h := setup(t, func(c *wxsim.Config) { c.LooseCredits = true; c.Faults.QuotaAfter = 10 })
	c := h.client(t, nil)
	ctx := context.Background()
	s, err := c.Session(ctx, "code-oXYZ")
	if err != nil {
		t.Fatal(err)
	}
	if s.OpenID != "oXYZ" || s.SessionKey == "" || s.UnionID != "union-oXYZ" {
		t.Errorf("session = %+v", s)
	}
	for _, text := range []string{fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s", s, s, s, s)} {
		if strings.Contains(text, s.SessionKey) {
			t.Errorf("session key printed: %s", text)
		}
	}
	_, err = c.Session(ctx, "code-oXYZ")
	if wechat.Code(err) != 40163 || wechat.ClassOf(err) != wechat.ClassPermanent {
		t.Errorf("reused code: %v", err)
	}
	if _, err := c.Send(ctx, orderMsg("o1")); err != nil {
		t.Fatal(err)
	}
	limit, used, remain, err := c.Quota(ctx, "/cgi-bin/message/subscribe/send")
	if err != nil || limit != 10 || used != 1 || remain != 9 {
		t.Errorf("quota = %d %d %d %v", limit, used, remain, err)
	}
}

// TestNoSecretsLeak drives every error path and fails if the app secret, an
// access token or a session key shows up in an error text or a log line.
func TestNoSecretsLeak(t *testing.T) {
	h := setup(t, nil)
	c := h.client(t, nil)
	ctx := context.Background()
	var texts []string
	keep := func(err error) {
		if err != nil {
			texts = append(texts, err.Error(), fmt.Sprintf("%+v %#v", err, err))
			for u := errors.Unwrap(err); u != nil; u = errors.Unwrap(u) {
				texts = append(texts, u.Error())
			}
		}
	}
	h.sim.AddCredits("o1", "T-ORDER", 1)
	_, err := c.Send(ctx, orderMsg("o1"))
	keep(err)
	_, err = c.Send(ctx, orderMsg("o1")) // 43101
	keep(err)
	h.sim.ExpireTokens()
	_, err = c.Send(ctx, orderMsg("o1")) // 40001, retry, 43101
	keep(err)
	sess, err := c.Session(ctx, "code-o1")
	keep(err)
	secrets := []string{secret, sess.SessionKey}
	_, err = c.Session(ctx, "code-o1") // reused
	keep(err)
	_, err = c.Session(ctx, "bad")
	keep(err)
	// Withheld reply: timeout after the request (with the token in its URL) was written.
	h.sim.SetFaults(wxsim.Faults{WithholdAfterDeliver: 1, WithholdFor: 3 * time.Second})
	h.sim.AddCredits("o1", "T-ORDER", 1)
	short := h.client(t, func(c *wechat.Config) { c.Timeout = 200 * time.Millisecond })
	_, err = short.Send(ctx, orderMsg("o1"))
	keep(err)
	h.sim.SetFaults(wxsim.Faults{})
	// A dial error on a URL carrying the token.
	failing := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if strings.Contains(r.URL.Path, "/send") {
			return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused " + r.URL.String())}
		}
		return http.DefaultTransport.RoundTrip(r)
	})}
	dc := h.client(t, func(c *wechat.Config) { c.HTTPClient = failing })
	_, err = dc.Send(ctx, orderMsg("o1"))
	if wechat.ClassOf(err) != wechat.ClassRetryable {
		t.Errorf("dial error class = %q", wechat.ClassOf(err))
	}
	keep(err)
	// Wrong secret, connection refused.
	bad := h.client(t, func(c *wechat.Config) { c.Secret = "wrong-but-secret-too" })
	_, err = bad.Send(ctx, orderMsg("o1"))
	keep(err)
	secrets = append(secrets, "wrong-but-secret-too")
	refused := h.client(t, func(c *wechat.Config) { c.BaseURL = closedPort(t) })
	_, err = refused.Templates(ctx)
	keep(err)
	_, err = refused.Session(ctx, "code-o2")
	keep(err)

	tokens := h.spy.tokens()
	if len(tokens) < 2 {
		t.Fatalf("only %d tokens seen on the wire", len(tokens))
	}
	secrets = append(secrets, tokens...)
	logs := h.logBuf.String()
	if !strings.Contains(logs, "fetched access token") {
		t.Fatal("nothing was logged: the capture does not work")
	}
	texts = append(texts, logs)
	if len(texts) < 10 {
		t.Fatalf("only %d error texts collected", len(texts))
	}
	for _, text := range texts {
		for _, s := range secrets {
			if s != "" && strings.Contains(text, s) {
				t.Errorf("secret %.6s… leaked in: %s", s, text)
			}
		}
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestNewRejects(t *testing.T) {
	for _, cfg := range []wechat.Config{
		{Secret: secret},
		{AppID: "a"},
		{AppID: "a", Secret: secret, BaseURL: "ftp://x"},
		{AppID: "a", Secret: secret, BaseURL: "::"},
	} {
		if _, err := wechat.New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		} else if cfg.Secret != "" && strings.Contains(err.Error(), cfg.Secret) {
			t.Errorf("secret in %v", err)
		}
	}
}

func TestContextCancel(t *testing.T) {
	h := setup(t, func(c *wxsim.Config) { c.LooseCredits = true; c.Faults.Latency = 5 * time.Second })
	c := h.client(t, nil)
	if _, err := c.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err := c.Send(ctx, orderMsg("o1"))
	if !errors.Is(err, context.DeadlineExceeded) || wechat.ClassOf(err) != wechat.ClassAmbiguous {
		t.Errorf("err = %v, class %q", err, wechat.ClassOf(err))
	}
}
