package api

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/store"
	"github.com/wxcampaign/wxcampaign/wechat"
)

// fail logs err when it is not the client's fault and writes it as JSON.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, op string, err error) {
	if code := wxcampaign.ErrorCode(err); code == wxcampaign.EINTERNAL || code == wxcampaign.EUNAVAILABLE || code == codeUpstream {
		s.log.WithFields(logrus.Fields{"method": r.Method, "path": r.URL.Path, "error": redact(err.Error())}).Error("api: " + op)
	}
	writeError(w, err)
}

// secretParam matches the query parameters that carry credentials in
// WeChat URLs (an error of net/http quotes the whole URL).
var secretParam = regexp.MustCompile(`(?i)((?:secret|appsecret|access_token|js_code|session_key)=)[^&\s"']*`)

// redact removes credentials from a text about to be logged. The WeChat
// client redacts its own errors; this is a second line of defence.
func redact(s string) string {
	s = secretParam.ReplaceAllString(s, "${1}REDACTED")
	return secretField.ReplaceAllString(s, "${1}REDACTED\"")
}

// secretField matches the same credentials as JSON fields.
var secretField = regexp.MustCompile(`(?i)("(?:secret|appsecret|access_token|js_code|session_key)"\s*:\s*")[^"]*"`)

// SubscriptionResponse is the answer to POST /v1/subscriptions.
type SubscriptionResponse struct {
	RequestID string `json:"requestId"`
	Credits   int    `json:"credits"`   // new one-time credits recorded
	LongTerm  int    `json:"longTerm"`  // long-term grants recorded
	Rejected  int    `json:"rejected"`  // rejected, banned or filtered ids recorded
	Duplicate bool   `json:"duplicate"` // requestId was recorded before; nothing new stored
}

// decodeSubscription decodes and validates a subscription result.
func decodeSubscription(body []byte) (wxcampaign.SubscriptionResult, error) {
	var res wxcampaign.SubscriptionResult
	if err := decodeJSON(body, &res); err != nil {
		return res, err
	}
	if err := res.Validate(); err != nil {
		return res, err
	}
	return res, nil
}

func (s *Server) handleSubscription(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r, s.cfg.MaxBody)
	var res wxcampaign.SubscriptionResult
	if err == nil {
		res, err = decodeSubscription(body)
	}
	if err != nil {
		s.fail(w, r, "decode subscription", err)
		return
	}
	var rec store.RecordResult
	if s.batch != nil {
		rec, err = s.batch.record(r.Context(), subscription{res, s.cfg.Now()})
	} else {
		rec, err = s.deps.Subs.RecordSubscription(r.Context(), res, s.cfg.Now(), s.deps.Catalog.KindOf)
	}
	if err != nil {
		s.fail(w, r, "record subscription", err)
		return
	}
	status := http.StatusCreated
	out := SubscriptionResponse{RequestID: res.RequestID, Credits: rec.Credits, LongTerm: rec.LongTerm, Rejected: rec.Rejected}
	if rec.Duplicate {
		// Nothing new was stored: report zero new credits whatever the
		// store counted the first time.
		status = http.StatusOK
		out = SubscriptionResponse{RequestID: res.RequestID, Duplicate: true}
	}
	writeJSON(w, status, out)
}

// SceneTemplatesResponse is the answer to GET /v1/scenes/{scene}/templates.
// WeChat forbids mixing one-time and long-term ids in one
// wx.requestSubscribeMessage call, so they come in two lists; each holds at
// most Config.MaxTemplates ids and is never null.
type SceneTemplatesResponse struct {
	Scene           string   `json:"scene"`
	TmplIDs         []string `json:"tmplIds"`
	LongTermTmplIDs []string `json:"longTermTmplIds"`
}

// validScene reports whether scene is 1..64 of [A-Za-z0-9_.:-].
func validScene(scene string) bool {
	if scene == "" || len(scene) > 64 {
		return false
	}
	for i := 0; i < len(scene); i++ {
		c := scene[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '.', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

func (s *Server) handleSceneTemplates(w http.ResponseWriter, r *http.Request) {
	scene := r.PathValue("scene")
	if !validScene(scene) {
		writeError(w, wxcampaign.Errorf(wxcampaign.EINVALID, "scene must be 1 to 64 characters of A-Z a-z 0-9 _ . : -"))
		return
	}
	out := SceneTemplatesResponse{Scene: scene, TmplIDs: []string{}, LongTermTmplIDs: []string{}}
	seen := make(map[string]bool)
	for _, t := range s.deps.Catalog.SceneTemplates(scene) {
		if t.TemplateID == "" || seen[t.TemplateID] {
			continue
		}
		seen[t.TemplateID] = true
		list := &out.TmplIDs
		if t.Kind == wxcampaign.LongTerm {
			list = &out.LongTermTmplIDs
		}
		if len(*list) < s.cfg.MaxTemplates {
			*list = append(*list, t.TemplateID)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// SessionRequest is the body of POST /v1/session.
type SessionRequest struct {
	Code string `json:"code"`
}

// SessionResponse is the answer to POST /v1/session. The session_key is
// never returned.
type SessionResponse struct {
	OpenID  string `json:"openId"`
	UnionID string `json:"unionId"`
}

// jscode2session error codes that mean the client sent a bad code.
var badCodeErrors = map[int]string{
	40029: "invalid code",
	40163: "code has been used",
	40226: "user is blocked by WeChat risk control",
}

func (s *Server) handleSession(w http.ResponseWriter, r *http.Request) {
	var req SessionRequest
	body, err := readBody(w, r, s.cfg.MaxBody)
	if err == nil {
		err = decodeJSON(body, &req)
	}
	if err != nil {
		s.fail(w, r, "decode session", err)
		return
	}
	switch {
	case req.Code == "":
		writeError(w, wxcampaign.Errorf(wxcampaign.EINVALID, "code is required"))
		return
	case len(req.Code) > 256:
		writeError(w, wxcampaign.Errorf(wxcampaign.EINVALID, "code is longer than 256 bytes"))
		return
	}
	if s.deps.Sessions == nil {
		writeError(w, wxcampaign.Errorf(wxcampaign.EUNAVAILABLE, "session exchange is not configured"))
		return
	}
	sess, err := s.deps.Sessions.Session(r.Context(), req.Code)
	if err != nil {
		s.fail(w, r, "jscode2session", sessionError(err))
		return
	}
	writeJSON(w, http.StatusOK, SessionResponse{OpenID: sess.OpenID, UnionID: sess.UnionID})
}

// upstreamError is a WeChat failure with a reason safe to show; its code
// maps to 502. The wrapped error is kept for the log line.
type upstreamError struct {
	reason string
	err    error
}

func (e *upstreamError) Error() string { return "wechat: " + e.reason + ": " + e.err.Error() }
func (e *upstreamError) Unwrap() []error {
	return []error{&wxcampaign.Error{Code: codeUpstream, Message: "wechat: " + e.reason}, e.err}
}

// sessionError classifies a jscode2session failure: a bad code is the
// client's (400), an application error keeps its code, anything else is
// WeChat's or the network's (502) with a reason that carries no detail.
func sessionError(err error) error {
	var app *wxcampaign.Error
	if errors.As(err, &app) {
		return err
	}
	code := wechat.Code(err)
	if reason, ok := badCodeErrors[code]; ok {
		return wxcampaign.Errorf(wxcampaign.EINVALID, "%s (errcode %d)", reason, code)
	}
	var reason string
	switch class := wechat.ClassOf(err); {
	case code != 0:
		reason = "jscode2session failed with errcode " + strconv.Itoa(code)
	case errors.Is(err, context.DeadlineExceeded):
		reason = "jscode2session timed out"
	case class == wechat.ClassRetryable:
		reason = "WeChat is unreachable or busy"
	case class == wechat.ClassConfig:
		reason = "jscode2session refused the app's credentials or address"
	default:
		reason = "jscode2session failed"
	}
	return &upstreamError{reason: reason, err: err}
}

// HealthResponse is the answer to GET /healthz.
type HealthResponse struct {
	Status string `json:"status"`          // "ok" or "unavailable"
	Check  string `json:"check,omitempty"` // the failing check
}

// healthTimeout bounds one health check.
const healthTimeout = 3 * time.Second

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	if s.deps.Health == nil {
		writeJSON(w, http.StatusOK, HealthResponse{Status: "ok"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
	defer cancel()
	if err := s.deps.Health(ctx); err != nil {
		s.log.WithField("error", redact(err.Error())).Warn("api: health check failed")
		writeJSON(w, http.StatusServiceUnavailable, HealthResponse{Status: "unavailable", Check: checkName(err)})
		return
	}
	writeJSON(w, http.StatusOK, HealthResponse{Status: "ok"})
}

// checkName names the failing check without leaking detail: the message of
// an application error (HealthChecks reports the check's name so), else the
// first element of a Go-style wrapped error when it looks like a name
// ("store: ping: dial tcp ..." gives "store"), else a generic text. The
// whole error is logged.
func checkName(err error) string {
	var app *wxcampaign.Error
	if errors.As(err, &app) {
		return app.Message
	}
	name, _, _ := strings.Cut(err.Error(), ":")
	if !checkNameRE.MatchString(name) {
		return "health check failed"
	}
	return name
}

var checkNameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.-]{0,63}$`)

// HealthChecks combines named checks into a Deps.Health function. The
// checks run in the order of their names; the first failure is reported by
// /healthz with the check's name only, and logged in full.
func HealthChecks(checks map[string]func(ctx context.Context) error) func(ctx context.Context) error {
	names := make([]string, 0, len(checks))
	for name := range checks {
		names = append(names, name)
	}
	sort.Strings(names)
	return func(ctx context.Context) error {
		for _, name := range names {
			if err := checks[name](ctx); err != nil {
				return &checkError{name: name, err: err}
			}
		}
		return nil
	}
}

// checkError is a failed named health check.
type checkError struct {
	name string
	err  error
}

func (e *checkError) Error() string { return e.name + ": " + e.err.Error() }
func (e *checkError) Unwrap() []error {
	return []error{&wxcampaign.Error{Code: wxcampaign.EUNAVAILABLE, Message: e.name}, e.err}
}
