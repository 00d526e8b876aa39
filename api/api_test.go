package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/api"
	"github.com/wxcampaign/wxcampaign/wechat"
)

const (
	token  = "s3cr3t-token-abcdef"
	token2 = "second-token-for-rotation"
)

var fixedNow = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// fakeSubs is an in-memory Subscriptions: idempotent by requestId.
type fakeSubs struct {
	mu   sync.Mutex
	seen map[string]wxcampaign.SubscriptionResult
	at   []time.Time
	err  error // returned by every call when set
	hook func(wxcampaign.SubscriptionResult)
}

func (f *fakeSubs) RecordSubscription(ctx context.Context, r wxcampaign.SubscriptionResult, at time.Time) (wxcampaign.RecordResult, error) {
	if f.hook != nil {
		f.hook(r)
	}
	if f.err != nil {
		return wxcampaign.RecordResult{}, f.err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.seen == nil {
		f.seen = make(map[string]wxcampaign.SubscriptionResult)
	}
	var res wxcampaign.RecordResult
	for _, id := range r.AgreeTemplateIDs {
		if slices.Contains(r.LongTermTemplateIDs, id) {
			res.LongTerm++
		} else {
			res.Credits++
		}
	}
	res.Rejected = len(r.RejectTemplateIDs) + len(r.BanTemplateIDs) + len(r.FilterTemplateIDs)
	if first, ok := f.seen[r.RequestID]; ok {
		res.Duplicate = true
		res.Conflict = first.Fingerprint() != r.Fingerprint()
		return res, nil
	}
	f.seen[r.RequestID] = r
	f.at = append(f.at, at)
	return res, nil
}

func (f *fakeSubs) get(id string) (wxcampaign.SubscriptionResult, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.seen[id]
	return r, ok
}

// fakeCatalog serves fixed scene templates.
type fakeCatalog map[string][]wxcampaign.SceneTemplate

func (c fakeCatalog) SceneTemplates(scene string) []wxcampaign.SceneTemplate { return c[scene] }

func (c fakeCatalog) KindOf(id string) wxcampaign.Kind {
	for _, ts := range c {
		for _, t := range ts {
			if t.TemplateID == id {
				return t.Kind
			}
		}
	}
	return wxcampaign.OneTime
}

var catalog = fakeCatalog{
	"cart.add": {
		{TemplateID: "T-price", Kind: wxcampaign.OneTime, Campaign: "price-drop"},
		{TemplateID: "T-long", Kind: wxcampaign.LongTerm, Campaign: "service"},
		{TemplateID: "T-price", Kind: wxcampaign.OneTime, Campaign: "price-drop-2"}, // same template twice
		{TemplateID: "T-stock", Kind: wxcampaign.OneTime, Campaign: "restock"},
		{TemplateID: "T-act", Kind: wxcampaign.OneTime, Campaign: "activity"},
		{TemplateID: "T-more", Kind: wxcampaign.OneTime, Campaign: "more"},
		{TemplateID: "T-long2", Kind: wxcampaign.LongTerm, Campaign: "service2"},
	},
	"order.paid": {{TemplateID: "T-long", Kind: wxcampaign.LongTerm, Campaign: "service"}},
}

// fakeSessions answers jscode2session from a table of codes.
type fakeSessions map[string]error

func (f fakeSessions) Session(ctx context.Context, code string) (wechat.Session, error) {
	if err, ok := f[code]; ok {
		return wechat.Session{}, err
	}
	return wechat.Session{OpenID: "o-" + code, UnionID: "u-" + code, SessionKey: "SESSIONKEY-" + code}, nil
}

type env struct {
	srv  *httptest.Server
	subs *fakeSubs
	logs *logtest.Hook
}

type option func(*api.Config, *api.Deps)

func setup(t testing.TB, opts ...option) *env {
	t.Helper()
	logger, hook := logtest.NewNullLogger()
	logger.SetLevel(logrus.DebugLevel)
	subs := &fakeSubs{}
	cfg := api.Config{Tokens: []string{token, token2}, Now: func() time.Time { return fixedNow }}
	deps := api.Deps{
		Subs:     subs,
		Catalog:  catalog,
		Sessions: fakeSessions{},
		Logger:   logger,
	}
	for _, o := range opts {
		o(&cfg, &deps)
	}
	s, err := api.New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return &env{srv: srv, subs: subs, logs: hook}
}

type reply struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

// errCode returns the error code of an error reply.
func (r reply) errCode() string {
	e, _ := r.body["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

func (r reply) errMessage() string {
	e, _ := r.body["error"].(map[string]any)
	s, _ := e["message"].(string)
	return s
}

func (e *env) do(t *testing.T, method, path, auth string, body io.Reader) reply {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := reply{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			t.Fatalf("%s %s: response is not a JSON object: %q", method, path, raw)
		}
	}
	if ct := resp.Header.Get("Content-Type"); len(raw) > 0 && !strings.HasPrefix(ct, "application/json") && path != "/metrics" {
		t.Errorf("%s %s: Content-Type %q, want application/json", method, path, ct)
	}
	return r
}

func bearer(tok string) string { return "Bearer " + tok }

const validSub = `{"openId":"o1","scene":"cart.add","busNo":"P100","extraVariableMap":{"price":12.5,"big":12345678901234567890},"agreeTemplateIds":["T-price","T-long"],"rejectTemplateIds":["T-stock"],"requestId":"req-1"}`

func TestNewRefusesBadConfig(t *testing.T) {
	deps := api.Deps{Subs: &fakeSubs{}, Catalog: catalog}
	tests := []struct {
		name string
		cfg  api.Config
		deps api.Deps
		want string
	}{
		{"no token", api.Config{}, deps, "no bearer token"},
		{"empty token", api.Config{Tokens: []string{token, ""}}, deps, "http.token: token 1 is empty"},
		{"max templates too big", api.Config{Tokens: []string{token}, MaxTemplates: 6}, deps, "http.max_templates: 6 is outside 1..5"},
		{"max templates negative", api.Config{Tokens: []string{token}, MaxTemplates: -1}, deps, "http.max_templates: -1"},
		{"max templates per result too big", api.Config{Tokens: []string{token}, MaxTemplatesPerResult: 6}, deps, "http.max_templates_per_result: 6 is outside 1..5"},
		{"max templates per result negative", api.Config{Tokens: []string{token}, MaxTemplatesPerResult: -2}, deps, "http.max_templates_per_result: -2"},
		{"negative body", api.Config{Tokens: []string{token}, MaxBody: -1}, deps, "http.max_body: -1 is negative"},
		{"all errors at once", api.Config{MaxBody: -1, MaxTemplatesPerResult: 9}, deps, "http.token: no bearer token configured; the API refuses to start without authentication\nhttp.max_body: -1 is negative\nhttp.max_templates_per_result: 9"},
		{"no subs", api.Config{Tokens: []string{token}}, api.Deps{Catalog: catalog}, "Subs"},
		{"no catalog", api.Config{Tokens: []string{token}}, api.Deps{Subs: &fakeSubs{}}, "Catalog"},
		{"ok", api.Config{Tokens: []string{token}, MaxTemplates: 5}, deps, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := api.New(tt.cfg, tt.deps)
			if tt.want == "" {
				if err != nil || s == nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestAuth(t *testing.T) {
	e := setup(t)
	tests := []struct {
		name string
		auth string
		want int
	}{
		{"no header", "", 401},
		{"wrong token", bearer("nope"), 401},
		{"token prefix", bearer(token[:len(token)-1]), 401},
		{"token with suffix", bearer(token + "x"), 401},
		{"basic scheme", "Basic " + token, 401},
		{"bearer without token", "Bearer ", 401},
		{"bare token", token, 401},
		{"first token", bearer(token), 200},
		{"second token", bearer(token2), 200},
		{"lower-case scheme", "bearer " + token, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, ep := range []struct{ method, path, body string }{
				{"GET", "/v1/scenes/cart.add/templates", ""},
				{"POST", "/v1/session", `{"code":"c1"}`},
				{"POST", "/v1/subscriptions", strings.Replace(validSub, "req-1", "auth-"+tt.name, 1)},
			} {
				r := e.do(t, ep.method, ep.path, tt.auth, strings.NewReader(ep.body))
				want := tt.want
				if want == 200 && ep.path == "/v1/subscriptions" {
					want = 201
				}
				if r.status != want {
					t.Errorf("%s %s: status %d, want %d: %s", ep.method, ep.path, r.status, want, r.raw)
				}
				if want == 401 {
					if r.errCode() != wxcampaign.EUNAUTHORIZED {
						t.Errorf("%s: error code %q, want unauthorized", ep.path, r.errCode())
					}
					if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
						t.Errorf("%s: no WWW-Authenticate header", ep.path)
					}
				}
			}
		})
	}
	if n := len(e.subs.seen); n != 3 {
		t.Errorf("store saw %d results, want 3 (only the authorised ones)", n)
	}
	for _, entry := range e.logs.AllEntries() {
		line, _ := entry.String()
		if strings.Contains(line, token) || strings.Contains(line, token2) || strings.Contains(line, "nope") {
			t.Errorf("a log line contains a token: %s", line)
		}
	}
}

func TestSubscription(t *testing.T) {
	e := setup(t)
	r := e.do(t, "POST", "/v1/subscriptions", bearer(token), strings.NewReader(validSub))
	if r.status != http.StatusCreated {
		t.Fatalf("status %d, want 201: %s", r.status, r.raw)
	}
	want := map[string]any{"requestId": "req-1", "credits": 1.0, "longTerm": 1.0, "rejected": 1.0, "duplicate": false}
	for k, v := range want {
		if r.body[k] != v {
			t.Errorf("%s = %v, want %v (body %s)", k, r.body[k], v, r.raw)
		}
	}
	got, ok := e.subs.get("req-1")
	if !ok {
		t.Fatal("the store did not receive req-1")
	}
	if got.OpenID != "o1" || got.Scene != "cart.add" || got.BusNo != "P100" || len(got.AgreeTemplateIDs) != 2 {
		t.Errorf("stored %+v", got)
	}
	// Numbers are passed on exactly as sent, not rounded through float64.
	if n, ok := got.ExtraVariableMap["big"].(json.Number); !ok || n.String() != "12345678901234567890" {
		t.Errorf("extraVariableMap.big = %#v, want json.Number 12345678901234567890", got.ExtraVariableMap["big"])
	}
	if e.subs.at[0] != fixedNow {
		t.Errorf("recorded at %v, want the injected clock %v", e.subs.at[0], fixedNow)
	}

	// The same requestId again: idempotent, nothing new.
	r = e.do(t, "POST", "/v1/subscriptions", bearer(token), strings.NewReader(validSub))
	if r.status != http.StatusOK || r.body["duplicate"] != true || r.body["credits"] != 0.0 || r.body["longTerm"] != 0.0 {
		t.Fatalf("duplicate: status %d body %s, want 200 duplicate with 0 credits", r.status, r.raw)
	}
}

func TestSubscriptionBadInput(t *testing.T) {
	e := setup(t, func(c *api.Config, _ *api.Deps) { c.MaxBody = 1024 })
	tests := []struct {
		name   string
		body   string
		status int
		code   string
		msg    string // a substring of the message
	}{
		{"empty body", ``, 400, "invalid", "empty body"},
		{"not JSON", `hello`, 400, "invalid", "offset"},
		{"truncated", `{"openId":"o1"`, 400, "invalid", "ends"},
		{"array", `[]`, 400, "invalid", "must be an object"},
		{"string", `"x"`, 400, "invalid", "must be an object"},
		{"null", `null`, 400, "invalid", "openId is required"},
		{"unknown field", `{"openId":"o1","requestId":"r","agreeTemplateIds":["T"],"admin":true}`, 400, "invalid", `unknown field "admin"`},
		{"wrong case field", `{"openid":"o1","requestId":"r","agreeTemplateIds":["T"]}`, 400, "invalid", `unknown field "openid"`},
		{"duplicate field", `{"openId":"o1","openId":"o2","requestId":"r","agreeTemplateIds":["T"]}`, 400, "invalid", `field "openId" appears twice`},
		{"openId number", `{"openId":42,"requestId":"r","agreeTemplateIds":["T"]}`, 400, "invalid", "field openId must be a string, got number at offset"},
		{"ids not array", `{"openId":"o","requestId":"r","agreeTemplateIds":"T"}`, 400, "invalid", "field agreeTemplateIds must be an array"},
		{"id number", `{"openId":"o","requestId":"r","agreeTemplateIds":[1]}`, 400, "invalid", "agreeTemplateIds"},
		{"vars not object", `{"openId":"o","requestId":"r","agreeTemplateIds":["T"],"extraVariableMap":[1]}`, 400, "invalid", "extraVariableMap"},
		{"trailing garbage", `{"openId":"o","requestId":"r","agreeTemplateIds":["T"]} x`, 400, "invalid", "trailing data"},
		{"two objects", `{"openId":"o","requestId":"r","agreeTemplateIds":["T"]}{"openId":"o"}`, 400, "invalid", "trailing data"},
		{"no openId", `{"requestId":"r","agreeTemplateIds":["T"]}`, 400, "invalid", "openId is required"},
		{"no ids", `{"openId":"o","requestId":"r"}`, 400, "invalid", "no template ids"},
		{"empty id", `{"openId":"o","requestId":"r","agreeTemplateIds":[""]}`, 400, "invalid", "template id"},
		{"long openId", `{"openId":"` + strings.Repeat("o", 129) + `","requestId":"r","agreeTemplateIds":["T"]}`, 400, "invalid", "openId is longer"},
		{"over the limit", `{"openId":"o","requestId":"r","agreeTemplateIds":["T"],"busNo":"` + strings.Repeat("b", 2000) + `"}`, 413, "too_large", "1024 bytes"},
		{"trailing spaces over the limit", `{"openId":"o","requestId":"r","agreeTemplateIds":["T"]}` + strings.Repeat(" ", 2000), 413, "too_large", ""},
		{"trailing whitespace ok", `{"openId":"o","requestId":"ws","agreeTemplateIds":["T"]}` + " \n\t ", 201, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(t, "POST", "/v1/subscriptions", bearer(token), strings.NewReader(tt.body))
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.raw)
			}
			if tt.code == "" {
				return
			}
			if r.errCode() != tt.code {
				t.Errorf("code %q, want %q", r.errCode(), tt.code)
			}
			if !strings.Contains(r.errMessage(), tt.msg) {
				t.Errorf("message %q does not contain %q", r.errMessage(), tt.msg)
			}
		})
	}
	if n := len(e.subs.seen); n != 1 {
		t.Errorf("store received %d results, want only the valid one", n)
	}
}

func TestSubscriptionHugeBody(t *testing.T) {
	e := setup(t)
	// 10 MB of a syntactically valid, endless busNo: only the limit stops it.
	body := io.MultiReader(
		strings.NewReader(`{"openId":"o","requestId":"huge","agreeTemplateIds":["T"],"busNo":"`),
		bytes.NewReader(bytes.Repeat([]byte("A"), 10<<20)),
		strings.NewReader(`"}`),
	)
	r := e.do(t, "POST", "/v1/subscriptions", bearer(token), body)
	if r.status != http.StatusRequestEntityTooLarge || r.errCode() != wxcampaign.ETOOLARGE {
		t.Fatalf("status %d code %q, want 413 too_large: %s", r.status, r.errCode(), r.raw)
	}
	if _, ok := e.subs.get("huge"); ok {
		t.Error("the huge result reached the store")
	}
	// The server keeps serving.
	r = e.do(t, "POST", "/v1/subscriptions", bearer(token), strings.NewReader(validSub))
	if r.status != http.StatusCreated {
		t.Fatalf("after the huge body: status %d: %s", r.status, r.raw)
	}
}

func TestSubscriptionStoreErrors(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status int
		code   string
		msg    string
	}{
		{"conflict", wxcampaign.Errorf(wxcampaign.ECONFLICT, "requestId reused with other content"), 409, "conflict", "requestId reused with other content"},
		{"unavailable", fmt.Errorf("store: record: %w", wxcampaign.Errorf(wxcampaign.EUNAVAILABLE, "database unavailable")), 503, "unavailable", "database unavailable"},
		{"invalid", wxcampaign.Errorf(wxcampaign.EINVALID, "bad template"), 400, "invalid", "bad template"},
		{"internal", errors.New("store: insert grant: Error 1062: secret table detail"), 500, "internal", "internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := setup(t)
			e.subs.err = tt.err
			r := e.do(t, "POST", "/v1/subscriptions", bearer(token), strings.NewReader(validSub))
			if r.status != tt.status || r.errCode() != tt.code || r.errMessage() != tt.msg {
				t.Fatalf("got %d %s, want %d %s %q", r.status, r.raw, tt.status, tt.code, tt.msg)
			}
			if strings.Contains(r.raw, "secret table detail") {
				t.Error("internal detail leaked to the client")
			}
		})
	}
}

func TestSceneTemplates(t *testing.T) {
	tests := []struct {
		name     string
		max      int
		scene    string
		status   int
		oneTime  []string
		longTerm []string
	}{
		{"default max 3, no mixing, deduplicated", 0, "cart.add", 200, []string{"T-price", "T-stock", "T-act"}, []string{"T-long", "T-long2"}},
		{"max 5", 5, "cart.add", 200, []string{"T-price", "T-stock", "T-act", "T-more"}, []string{"T-long", "T-long2"}},
		{"max 1", 1, "cart.add", 200, []string{"T-price"}, []string{"T-long"}},
		{"long-term only", 0, "order.paid", 200, []string{}, []string{"T-long"}},
		{"unknown scene", 0, "nobody:uses-this_1", 200, []string{}, []string{}},
		{"space is printable", 0, "cart%20add", 200, []string{}, []string{}},
		{"emoji", 0, "%F0%9F%98%80", 200, []string{}, []string{}},
		{"quote", 0, "a%27OR%271", 200, []string{}, []string{}},
		{"slash", 0, "a%2Fb", 400, nil, nil},
		{"control character", 0, "a%09b", 400, nil, nil},
		{"invalid UTF-8", 0, "a%FFb", 400, nil, nil},
		{"too long", 0, strings.Repeat("s", 65), 400, nil, nil},
		{"64 is fine", 0, strings.Repeat("s", 64), 200, []string{}, []string{}},
		{"64 Chinese characters are fine", 0, strings.Repeat("%E9%95%BF", 64), 200, []string{}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := setup(t, func(c *api.Config, _ *api.Deps) { c.MaxTemplates = tt.max })
			r := e.do(t, "GET", "/v1/scenes/"+tt.scene+"/templates", bearer(token), nil)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.raw)
			}
			if tt.status != 200 {
				if r.errCode() != wxcampaign.EINVALID {
					t.Errorf("code %q, want invalid", r.errCode())
				}
				return
			}
			check := func(key string, want []string) {
				got, ok := r.body[key].([]any)
				if !ok {
					t.Fatalf("%s is %T, want an array: %s", key, r.body[key], r.raw)
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("%s = %v, want %v", key, got, want)
				}
			}
			check("tmplIds", tt.oneTime)
			check("longTermTmplIds", tt.longTerm)
		})
	}
}

func TestSession(t *testing.T) {
	sessions := fakeSessions{
		"bad":     &wechat.APIError{Op: "session", Code: 40029, Msg: "invalid code", Class: wechat.ClassPermanent},
		"used":    &wechat.APIError{Op: "session", Code: 40163, Msg: "code been used", Class: wechat.ClassPermanent},
		"busy":    &wechat.APIError{Op: "session", Code: -1, Msg: "system error", Class: wechat.ClassRetryable},
		"config":  &wechat.APIError{Op: "session", Code: 40125, Msg: "invalid appsecret", Class: wechat.ClassConfig},
		"down":    &wechat.APIError{Op: "session", HTTPStatus: 503, Class: wechat.ClassRetryable},
		"timeout": fmt.Errorf("wechat: session: %w", context.DeadlineExceeded),
		"leaky":   errors.New(`Get "https://api.weixin.qq.com/sns/jscode2session?appid=wx1&secret=APPSECRET123&js_code=leaky": EOF`),
		"off":     wxcampaign.Errorf(wxcampaign.EUNAVAILABLE, "wechat is paused"),
	}
	tests := []struct {
		name   string
		body   string
		status int
		code   string
		msg    string
	}{
		{"ok", `{"code":"c1"}`, 200, "", ""},
		{"invalid code", `{"code":"bad"}`, 400, "invalid", "invalid code"},
		{"used code", `{"code":"used"}`, 400, "invalid", "code has been used"},
		{"busy", `{"code":"busy"}`, 502, "upstream", "errcode -1"},
		{"misconfigured", `{"code":"config"}`, 502, "upstream", "errcode 40125"},
		{"http 503", `{"code":"down"}`, 502, "upstream", "unreachable or busy"},
		{"timeout", `{"code":"timeout"}`, 502, "upstream", "timed out"},
		{"transport error with secret", `{"code":"leaky"}`, 502, "upstream", "jscode2session failed"},
		{"application error", `{"code":"off"}`, 503, "unavailable", "wechat is paused"},
		{"empty code", `{"code":""}`, 400, "invalid", "code is required"},
		{"no code", `{}`, 400, "invalid", "code is required"},
		{"long code", `{"code":"` + strings.Repeat("c", 257) + `"}`, 400, "invalid", "longer than 256"},
		{"code number", `{"code":1}`, 400, "invalid", "field code must be a string"},
		{"unknown field", `{"code":"c","appid":"x"}`, 400, "invalid", `unknown field "appid"`},
		{"bad JSON", `{"code":`, 400, "invalid", ""},
	}
	e := setup(t, func(_ *api.Config, d *api.Deps) { d.Sessions = sessions })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(t, "POST", "/v1/session", bearer(token), strings.NewReader(tt.body))
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.raw)
			}
			if tt.status == 200 {
				if r.body["openId"] != "o-c1" || r.body["unionId"] != "u-c1" {
					t.Errorf("body %s", r.raw)
				}
				if strings.Contains(r.raw, "SESSIONKEY") || strings.Contains(strings.ToLower(r.raw), "session") {
					t.Errorf("the session key is returned: %s", r.raw)
				}
				return
			}
			if r.errCode() != tt.code || !strings.Contains(r.errMessage(), tt.msg) {
				t.Errorf("error %s, want %s containing %q", r.raw, tt.code, tt.msg)
			}
			if strings.Contains(r.raw, "APPSECRET123") {
				t.Errorf("the app secret leaked: %s", r.raw)
			}
		})
	}
	for _, entry := range e.logs.AllEntries() {
		line, _ := entry.String()
		if strings.Contains(line, "APPSECRET123") || strings.Contains(line, "SESSIONKEY") {
			t.Errorf("a log line leaks a secret: %s", line)
		}
	}
}

func TestSessionNotConfigured(t *testing.T) {
	e := setup(t, func(_ *api.Config, d *api.Deps) { d.Sessions = nil })
	r := e.do(t, "POST", "/v1/session", bearer(token), strings.NewReader(`{"code":"c"}`))
	if r.status != 503 || r.errCode() != wxcampaign.EUNAVAILABLE {
		t.Fatalf("got %d %s, want 503 unavailable", r.status, r.raw)
	}
}

// TestReady: /readyz runs the readiness checks (store reachable, campaigns
// loaded) and names the failing one; /healthz is liveness and stays 200
// while the store is down (issue 12 item 13: it used to answer the checks).
func TestReady(t *testing.T) {
	tests := []struct {
		name   string
		health func(context.Context) error
		status int
		body   string
	}{
		{"no check", nil, 200, `{"status":"ok"}`},
		{"healthy", func(context.Context) error { return nil }, 200, `{"status":"ok"}`},
		{"store down", func(context.Context) error {
			return fmt.Errorf("store: ping: dial tcp 10.0.0.1:3306: user:password@ refused")
		}, 503, `{"status":"unavailable","check":"store"}`},
		{"application error", func(context.Context) error {
			return wxcampaign.Errorf(wxcampaign.EUNAVAILABLE, "scheduler stopped")
		}, 503, `{"status":"unavailable","check":"scheduler stopped"}`},
		{"raw driver error", func(context.Context) error {
			return errors.New("dial tcp 127.0.0.1:3306: connect: connection refused")
		}, 503, `{"status":"unavailable","check":"health check failed"}`},
		{"named checks", api.HealthChecks(map[string]func(context.Context) error{
			"store":  func(context.Context) error { return errors.New("dial tcp 10.1.2.3:3306: refused") },
			"wechat": func(context.Context) error { return errors.New("unreachable") },
		}), 503, `{"status":"unavailable","check":"store"}`},
		{"named checks pass", api.HealthChecks(map[string]func(context.Context) error{
			"store": func(context.Context) error { return nil },
		}), 200, `{"status":"ok"}`},
		{"deadline honoured", func(ctx context.Context) error {
			if _, ok := ctx.Deadline(); !ok {
				return errors.New("no deadline")
			}
			return nil
		}, 200, `{"status":"ok"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := setup(t, func(_ *api.Config, d *api.Deps) { d.Ready = tt.health })
			r := e.do(t, "GET", "/readyz", "", nil) // no auth needed
			if r.status != tt.status || strings.TrimSpace(r.raw) != tt.body {
				t.Fatalf("readyz: got %d %s, want %d %s", r.status, r.raw, tt.status, tt.body)
			}
			r = e.do(t, "GET", "/healthz", "", nil)
			if r.status != 200 || strings.TrimSpace(r.raw) != `{"status":"ok"}` {
				t.Fatalf("healthz (liveness): got %d %s, want 200 ok", r.status, r.raw)
			}
		})
	}
}

func TestMetricsAndRouting(t *testing.T) {
	metrics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "wxcampaign_up 1\n")
	})
	e := setup(t, func(_ *api.Config, d *api.Deps) { d.Metrics = metrics })
	resp, err := e.srv.Client().Get(e.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "wxcampaign_up 1\n" {
		t.Fatalf("/metrics: %d %q", resp.StatusCode, b)
	}

	tests := []struct {
		method, path, auth string
		status             int
		allow              string
	}{
		{"GET", "/v1/subscriptions", bearer(token), 405, "POST"},
		{"DELETE", "/v1/subscriptions", bearer(token), 405, "POST"},
		{"GET", "/v1/subscriptions", "", 401, ""}, // auth before method
		{"POST", "/v1/scenes/cart.add/templates", bearer(token), 405, "GET, HEAD"},
		{"GET", "/v1/session", bearer(token), 405, "POST"},
		{"POST", "/healthz", "", 405, "GET, HEAD"},
		{"POST", "/metrics", "", 405, "GET, HEAD"},
		{"GET", "/v1/nothing", bearer(token), 404, ""},
		{"GET", "/", "", 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			r := e.do(t, tt.method, tt.path, tt.auth, nil)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.raw)
			}
			if r.errCode() == "" {
				t.Errorf("no JSON error code: %s", r.raw)
			}
			if got := r.header.Get("Allow"); got != tt.allow {
				t.Errorf("Allow %q, want %q", got, tt.allow)
			}
		})
	}
}

func TestNoMetricsHandler(t *testing.T) {
	e := setup(t)
	if r := e.do(t, "GET", "/metrics", "", nil); r.status != 404 {
		t.Fatalf("/metrics without a handler: %d, want 404", r.status)
	}
}

func TestPanicRecovered(t *testing.T) {
	e := setup(t)
	e.subs.hook = func(r wxcampaign.SubscriptionResult) {
		if r.RequestID == "boom" {
			panic("store exploded")
		}
	}
	r := e.do(t, "POST", "/v1/subscriptions", bearer(token), strings.NewReader(`{"openId":"o","requestId":"boom","agreeTemplateIds":["T"]}`))
	if r.status != 500 || r.errCode() != wxcampaign.EINTERNAL || strings.Contains(r.raw, "exploded") {
		t.Fatalf("got %d %s, want a 500 without detail", r.status, r.raw)
	}
	var logged bool
	for _, entry := range e.logs.AllEntries() {
		if entry.Message == "api: handler panicked" && entry.Data["panic"] == "store exploded" {
			logged = true
		}
	}
	if !logged {
		t.Error("the panic was not logged")
	}
	// Still serving.
	if r := e.do(t, "POST", "/v1/subscriptions", bearer(token), strings.NewReader(validSub)); r.status != 201 {
		t.Fatalf("after the panic: %d %s", r.status, r.raw)
	}
}

func TestRequestLog(t *testing.T) {
	e := setup(t)
	e.do(t, "POST", "/v1/subscriptions", bearer(token), strings.NewReader(validSub))
	e.do(t, "GET", "/v1/scenes/cart.add/templates?x=1", bearer(token), nil)
	entries := e.logs.AllEntries()
	var found int
	for _, entry := range entries {
		if entry.Message != "api: request" {
			continue
		}
		found++
		for _, k := range []string{"method", "path", "status", "duration"} {
			if _, ok := entry.Data[k]; !ok {
				t.Errorf("request log line without %s: %v", k, entry.Data)
			}
		}
		line, _ := entry.String()
		for _, secret := range []string{token, "o1", "P100", "x=1", "Authorization"} {
			if strings.Contains(line, secret) {
				t.Errorf("request log line contains %q: %s", secret, line)
			}
		}
	}
	if found != 2 {
		t.Errorf("%d request log lines, want 2", found)
	}
}
