package wxsim

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// tokenEntry is one issued access token.
type tokenEntry struct {
	exp     time.Time
	invalid bool // 40001 from now on
	expired bool // 42001 from now on
}

// tokenSet is an immutable snapshot of the issued tokens; writers copy it.
type tokenSet struct {
	m      map[string]tokenEntry
	stable string // the current stable_token token
	last   string // the current /cgi-bin/token token
}

// clone copies ts without the tokens that expired more than an hour ago.
func (ts *tokenSet) clone(now time.Time) *tokenSet {
	n := &tokenSet{m: make(map[string]tokenEntry, len(ts.m)+1), stable: ts.stable, last: ts.last}
	for k, e := range ts.m {
		if now.Sub(e.exp) < time.Hour {
			n.m[k] = e
		}
	}
	return n
}

// newToken returns a fresh random token of 136 characters, like WeChat's.
func newToken() string {
	var b [102]byte
	rand.Read(b[:]) //nolint:errcheck // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// ExpireTokens makes every issued access token invalid (40001).
func (s *Server) ExpireTokens() {
	s.tokMu.Lock()
	defer s.tokMu.Unlock()
	ts := s.tokens.Load().clone(s.now())
	for k, e := range ts.m {
		e.invalid = true
		ts.m[k] = e
	}
	ts.stable, ts.last = "", ""
	s.tokens.Store(ts)
}

// expireToken marks one token expired (42001).
func (s *Server) expireToken(tok string) {
	s.tokMu.Lock()
	defer s.tokMu.Unlock()
	ts := s.tokens.Load().clone(s.now())
	if e, ok := ts.m[tok]; ok {
		e.expired = true
		ts.m[tok] = e
	}
	if ts.stable == tok {
		ts.stable = ""
	}
	if ts.last == tok {
		ts.last = ""
	}
	s.tokens.Store(ts)
}

// checkToken returns 0 when tok is valid, else the errcode and errmsg.
func (s *Server) checkToken(tok string) (int, string) {
	if tok == "" {
		return 41001, "access_token missing"
	}
	e, ok := s.tokens.Load().m[tok]
	switch {
	case !ok || e.invalid:
		return 40001, "invalid credential, access_token is invalid or not latest"
	case e.expired || !s.now().Before(e.exp):
		return 42001, "access_token expired"
	}
	return 0, ""
}

// nearExpiry is how long before expiry stable_token hands out a new token.
func (s *Server) nearExpiry() time.Duration { return min(5*time.Minute, s.ttl/2) }

// stableToken returns the current stable token, or a new one when there is
// none, it is near expiry, or force is set.
func (s *Server) stableToken(force bool) (string, time.Duration) {
	now := s.now()
	if !force {
		ts := s.tokens.Load()
		if e, ok := ts.m[ts.stable]; ok && !e.invalid && !e.expired && e.exp.Sub(now) > s.nearExpiry() {
			return ts.stable, e.exp.Sub(now)
		}
	}
	s.tokMu.Lock()
	defer s.tokMu.Unlock()
	ts := s.tokens.Load()
	if e, ok := ts.m[ts.stable]; !force && ok && !e.invalid && !e.expired && e.exp.Sub(now) > s.nearExpiry() {
		return ts.stable, e.exp.Sub(now) // another caller refreshed it
	}
	ts = ts.clone(now)
	if force && ts.stable != "" {
		if e, ok := ts.m[ts.stable]; ok {
			e.invalid = true
			ts.m[ts.stable] = e
		}
	}
	tok := newToken()
	ts.m[tok] = tokenEntry{exp: now.Add(s.ttl)}
	ts.stable = tok
	s.tokens.Store(ts)
	s.issued.Add(1)
	return tok, s.ttl
}

// plainToken makes a new /cgi-bin/token token; the previous one keeps
// working for 5 more minutes.
func (s *Server) plainToken() (string, time.Duration) {
	now := s.now()
	s.tokMu.Lock()
	defer s.tokMu.Unlock()
	ts := s.tokens.Load().clone(now)
	if e, ok := ts.m[ts.last]; ok {
		if grace := now.Add(5 * time.Minute); grace.Before(e.exp) {
			e.exp = grace
			ts.m[ts.last] = e
		}
	}
	tok := newToken()
	ts.m[tok] = tokenEntry{exp: now.Add(s.ttl)}
	ts.last = tok
	s.tokens.Store(ts)
	s.issued.Add(1)
	return tok, s.ttl
}

// checkCreds returns 0 when appid and secret are the configured ones, the
// caller's IP is whitelisted (Config.AllowedIPs) and the secret is not
// frozen (Config.SecretFrozen).
func (s *Server) checkCreds(r *http.Request, appid, secret string) (int, string) {
	switch {
	case appid != s.appid:
		return 40013, "invalid appid"
	case secret != s.secret:
		return 40125, "invalid appsecret"
	case s.frozen:
		return 40243, "AppSecret is frozen"
	}
	if len(s.allowIPs) > 0 {
		ip, _, _ := net.SplitHostPort(r.RemoteAddr)
		if !s.allowIPs[ip] {
			return 40164, "invalid ip " + ip + ", not in whitelist"
		}
	}
	return 0, ""
}

func (s *Server) writeToken(w http.ResponseWriter, tok string, ttl time.Duration) {
	b := make([]byte, 0, 200)
	b = append(b, `{"access_token":"`...)
	b = append(b, tok...)
	b = append(b, `","expires_in":`...)
	b = strconv.AppendInt(b, int64(ttl/time.Second), 10)
	b = append(b, '}')
	writeJSON(w, b)
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /cgi-bin/stable_token", s.handleStableToken)
	mux.HandleFunc("GET /cgi-bin/token", s.handleToken)
	mux.HandleFunc("POST /cgi-bin/message/subscribe/send", s.handleSend)
	mux.HandleFunc("GET /wxaapi/newtmpl/gettemplate", s.handleTemplates)
	mux.HandleFunc("GET /sns/jscode2session", s.handleSession)
	mux.HandleFunc("POST /cgi-bin/openapi/quota/get", s.handleQuota)
	mux.HandleFunc("POST /admin/credits", s.handleAddCredits)
	mux.HandleFunc("GET /admin/credits", s.handleGetCredits)
	mux.HandleFunc("GET /admin/messages", s.handleMessages)
	mux.HandleFunc("GET /admin/faults", s.handleGetFaults)
	mux.HandleFunc("POST /admin/faults", s.handleSetFaults)
	mux.HandleFunc("POST /admin/reset", func(w http.ResponseWriter, r *http.Request) { s.Reset(); adminOK(w) })
	mux.HandleFunc("POST /admin/quota/reset", func(w http.ResponseWriter, r *http.Request) { s.ResetQuota(); adminOK(w) })
	mux.HandleFunc("POST /admin/tokens/expire", func(w http.ResponseWriter, r *http.Request) { s.ExpireTokens(); adminOK(w) })
	mux.HandleFunc("GET /admin/stats", func(w http.ResponseWriter, r *http.Request) { adminJSON(w, http.StatusOK, s.Stats()) })
	return mux
}

// queryParam returns the first value of name in a raw query without
// parsing the whole query (the send path reads only access_token).
func queryParam(raw, name string) string {
	for raw != "" {
		var kv string
		kv, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(kv, "=")
		if k == name {
			if u, err := urlUnescape(v); err == nil {
				return u
			}
			return v
		}
	}
	return ""
}

func urlUnescape(v string) (string, error) {
	if !strings.ContainsAny(v, "%+") {
		return v, nil
	}
	return url.QueryUnescape(v)
}

func (s *Server) handleStableToken(w http.ResponseWriter, r *http.Request) {
	var req struct {
		GrantType    string `json:"grant_type"`
		AppID        string `json:"appid"`
		Secret       string `json:"secret"`
		ForceRefresh bool   `json:"force_refresh"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil {
		s.writeErr(w, 47001, "data format error")
		return
	}
	if req.GrantType != "client_credential" {
		s.writeErr(w, 40002, "invalid grant_type")
		return
	}
	if code, msg := s.checkCreds(r, req.AppID, req.Secret); code != 0 {
		s.writeErr(w, code, msg)
		return
	}
	tok, ttl := s.stableToken(req.ForceRefresh)
	s.writeToken(w, tok, ttl)
}

func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("grant_type") != "client_credential" {
		s.writeErr(w, 40002, "invalid grant_type")
		return
	}
	if code, msg := s.checkCreds(r, q.Get("appid"), q.Get("secret")); code != 0 {
		s.writeErr(w, code, msg)
		return
	}
	tok, ttl := s.plainToken()
	s.writeToken(w, tok, ttl)
}

func (s *Server) handleTemplates(w http.ResponseWriter, r *http.Request) {
	if code, msg := s.checkToken(queryParam(r.URL.RawQuery, "access_token")); code != 0 {
		s.writeErr(w, code, msg)
		return
	}
	writeJSON(w, s.listJSON)
}

func (s *Server) handleSession(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("grant_type") != "authorization_code" {
		s.writeErr(w, 40002, "invalid grant_type")
		return
	}
	if code, msg := s.checkCreds(r, q.Get("appid"), q.Get("secret")); code != 0 {
		s.writeErr(w, code, msg)
		return
	}
	code := q.Get("js_code")
	openid, ok := strings.CutPrefix(code, "code-")
	if !ok || openid == "" {
		s.writeErr(w, 40029, "invalid code")
		return
	}
	if _, used := s.codesM.LoadOrStore(code, struct{}{}); used {
		s.writeErr(w, 40163, "code been used")
		return
	}
	var key [16]byte
	rand.Read(key[:]) //nolint:errcheck // crypto/rand.Read never fails
	b, _ := json.Marshal(map[string]string{
		"openid":      openid,
		"unionid":     "union-" + openid,
		"session_key": base64.StdEncoding.EncodeToString(key[:]),
	})
	writeJSON(w, b)
}

func (s *Server) handleQuota(w http.ResponseWriter, r *http.Request) {
	if code, msg := s.checkToken(queryParam(r.URL.RawQuery, "access_token")); code != 0 {
		s.writeErr(w, code, msg)
		return
	}
	var req struct {
		CGIPath string `json:"cgi_path"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil {
		s.writeErr(w, 47001, "data format error")
		return
	}
	if req.CGIPath != "/cgi-bin/message/subscribe/send" {
		s.writeErr(w, 76021, "cgi_path not found")
		return
	}
	limit := int64(10_000_000)
	if f := s.faults.Load(); f.QuotaAfter > 0 {
		limit = int64(f.QuotaAfter)
	}
	used := min(s.quotaUsed.Load(), limit)
	b, _ := json.Marshal(map[string]any{"errcode": 0, "errmsg": "ok",
		"quota": map[string]int64{"daily_limit": limit, "used": used, "remain": limit - used}})
	writeJSON(w, b)
}

// creditReq is one entry of POST /admin/credits.
type creditReq struct {
	OpenID     string `json:"openid"`
	TemplateID string `json:"template_id"`
	Count      int    `json:"count"`
}

func (s *Server) handleAddCredits(w http.ResponseWriter, r *http.Request) {
	data, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		adminError(w, http.StatusBadRequest, "read body: "+err.Error())
		return
	}
	var list []creditReq
	if t := strings.TrimSpace(string(data)); strings.HasPrefix(t, "[") {
		err = json.Unmarshal(data, &list)
	} else {
		var one creditReq
		err = json.Unmarshal(data, &one)
		list = []creditReq{one}
	}
	if err != nil {
		adminError(w, http.StatusBadRequest, "decode credits: "+err.Error())
		return
	}
	for _, c := range list {
		if c.OpenID == "" || c.TemplateID == "" {
			adminError(w, http.StatusBadRequest, "openid and template_id are required")
			return
		}
	}
	out := make([]creditReq, 0, len(list))
	for _, c := range list {
		n := c.Count
		if n == 0 {
			n = 1
		}
		s.AddCredits(c.OpenID, c.TemplateID, n)
		out = append(out, creditReq{c.OpenID, c.TemplateID, s.Credits(c.OpenID, c.TemplateID)})
	}
	adminJSON(w, http.StatusOK, map[string]any{"credits": out})
}

func (s *Server) handleGetCredits(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	c := creditReq{q.Get("openid"), q.Get("template_id"), 0}
	c.Count = s.Credits(c.OpenID, c.TemplateID)
	adminJSON(w, http.StatusOK, c)
}

func (s *Server) handleMessages(w http.ResponseWriter, r *http.Request) {
	var msgs []Delivered
	if to := r.URL.Query().Get("touser"); to != "" {
		msgs = s.MessagesTo(to)
	} else {
		msgs = s.Messages()
	}
	if msgs == nil {
		msgs = []Delivered{}
	}
	adminJSON(w, http.StatusOK, map[string]any{"messages": msgs})
}

func (s *Server) handleGetFaults(w http.ResponseWriter, r *http.Request) {
	adminJSON(w, http.StatusOK, s.CurrentFaults())
}

func (s *Server) handleSetFaults(w http.ResponseWriter, r *http.Request) {
	var f Faults
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&f); err != nil {
		adminError(w, http.StatusBadRequest, "decode faults: "+err.Error())
		return
	}
	s.SetFaults(f)
	adminJSON(w, http.StatusOK, f)
}

func adminOK(w http.ResponseWriter) { adminJSON(w, http.StatusOK, map[string]bool{"ok": true}) }

func adminError(w http.ResponseWriter, status int, msg string) {
	adminJSON(w, status, map[string]string{"error": msg})
}

func adminJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"encode reply"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b) //nolint:errcheck // the client may have gone
}

// bodyPool recycles request body buffers of the send path.
var bodyPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// readBody reads at most limit bytes of r's body into a pooled buffer.
func readBody(r *http.Request, limit int) (*[]byte, error) {
	bp := bodyPool.Get().(*[]byte)
	b := (*bp)[:0]
	lr := io.LimitReader(r.Body, int64(limit))
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := lr.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			*bp = b
			return bp, nil
		}
		if err != nil {
			*bp = b
			bodyPool.Put(bp)
			return nil, err
		}
	}
}
