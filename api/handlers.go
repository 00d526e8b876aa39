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

// HealthResponse is the answer to GET /healthz and GET /readyz.
type HealthResponse struct {
	Status string `json:"status"`          // "ok" or "unavailable"
	Check  string `json:"check,omitempty"` // the failing readiness check
}

// healthTimeout bounds one readiness check.
const healthTimeout = 3 * time.Second

// handleHealth is the liveness probe: the process serves HTTP. It checks
// nothing else, so that a store outage does not make Kubernetes restart
// every replica (readiness takes them out of the load balancer instead).
func (s *Server) handleHealth(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, HealthResponse{Status: "ok"})
}

// handleReady is the readiness probe: Deps.Ready (store reachable,
// campaigns loaded) passes.
func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	if s.deps.Ready == nil {
		writeJSON(w, http.StatusOK, HealthResponse{Status: "ok"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
	defer cancel()
	if err := s.deps.Ready(ctx); err != nil {
		s.log.WithField("error", redact(err.Error())).Warn("api: readiness check failed")
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

// HealthChecks combines named checks into a Deps.Ready function. The
// checks run in the order of their names; the first failure is reported by
// /readyz with the check's name only, and logged in full.
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
