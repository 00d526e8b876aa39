package wechat

import (
	"context"
	"errors"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// Class tells the caller what to do about a failed call. Every error the
// client returns carries exactly one class (see ClassOf).
type Class string

// Error classes, following the error table of WECHAT.md.
const (
	ClassRetryable     Class = "retryable"     // nothing was delivered: -1, 43108, HTTP 502/503, dial errors before the request was written
	ClassToken         Class = "token"         // 40001, 40014, 42001 after the one automatic refresh and retry also failed
	ClassUser          Class = "user"          // 40003 touser wrong: permanent for this user
	ClassGrantGone     Class = "grant_gone"    // 43101: the user has no subscription left
	ClassContent       Class = "content"       // 47003, 45168: permanent for this message
	ClassMisconfigured Class = "misconfigured" // 40037, 41030, 43107: stop the campaign
	ClassQuota         Class = "quota"         // 45009: daily quota reached
	ClassConfig        Class = "config"        // 40013, 40164, 40243, 40002, 40125, HTTP 4xx: stop and say so
	ClassAmbiguous     Class = "ambiguous"     // timeout or reset after the request was written, other HTTP 5xx: the message may have arrived
	ClassPermanent     Class = "permanent"     // any other non-zero errcode
)

// Error codes the client treats specially.
const (
	CodeOK              = 0
	CodeSystemBusy      = -1
	CodeInvalidToken    = 40001
	CodeBadGrantType    = 40002
	CodeInvalidOpenID   = 40003
	CodeInvalidAppID    = 40013
	CodeTokenNotLatest  = 40014
	CodeInvalidTemplate = 40037
	CodeInvalidSecret   = 40125
	CodeIPNotAllowed    = 40164
	CodeSecretFrozen    = 40243
	CodeInvalidPage     = 41030
	CodeTokenExpired    = 42001
	CodeNoSubscription  = 43101
	CodeTemplateBanned  = 43107
	CodeConcurrentSend  = 43108
	CodeQuotaReached    = 45009
	CodeSensitiveWords  = 45168
	CodeArgInvalid      = 47003
)

// ClassOfCode returns the class of a non-zero WeChat errcode, "" for 0.
func ClassOfCode(code int) Class {
	switch code {
	case CodeOK:
		return ""
	case CodeSystemBusy, CodeConcurrentSend:
		return ClassRetryable
	case CodeInvalidToken, CodeTokenNotLatest, CodeTokenExpired:
		return ClassToken
	case CodeInvalidOpenID:
		return ClassUser
	case CodeNoSubscription:
		return ClassGrantGone
	case CodeArgInvalid, CodeSensitiveWords:
		return ClassContent
	case CodeInvalidTemplate, CodeInvalidPage, CodeTemplateBanned:
		return ClassMisconfigured
	case CodeQuotaReached:
		return ClassQuota
	case CodeInvalidAppID, CodeIPNotAllowed, CodeSecretFrozen, CodeBadGrantType, CodeInvalidSecret:
		return ClassConfig
	default:
		return ClassPermanent
	}
}

// classOfStatus returns the class of a non-200 HTTP status.
func classOfStatus(status int) Class {
	switch {
	case status == 502 || status == 503:
		return ClassRetryable // the gateway did not pass the request on
	case status >= 500:
		return ClassAmbiguous
	case status == 408 || status == 429:
		return ClassRetryable // refused before processing
	default:
		return ClassConfig // 3xx/4xx: wrong base URL, proxy or credentials
	}
}

// isTokenCode reports whether code means the access token must be replaced.
func isTokenCode(code int) bool {
	return code == CodeInvalidToken || code == CodeTokenNotLatest || code == CodeTokenExpired
}

// APIError is the error of one WeChat call. Its text never contains the
// access token, the app secret or a session key.
type APIError struct {
	Op         string // the call: "send", "token", "templates", "session", "quota"
	Code       int    // WeChat errcode; 0 for HTTP and transport errors
	Msg        string // WeChat errmsg, redacted
	HTTPStatus int    // HTTP status when it was not 200; 0 otherwise
	Class      Class  // what the caller should do
	Err        error  // the transport or decoding error, redacted; nil for errcodes
}

// Error implements error.
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("wechat: ")
	b.WriteString(e.Op)
	b.WriteString(": ")
	switch {
	case e.Code != 0:
		b.WriteString("errcode ")
		b.WriteString(strconv.Itoa(e.Code))
		if e.Msg != "" {
			b.WriteString(": ")
			b.WriteString(e.Msg)
		}
	case e.HTTPStatus != 0:
		b.WriteString("HTTP ")
		b.WriteString(strconv.Itoa(e.HTTPStatus))
		if e.Err != nil {
			b.WriteString(": ")
			b.WriteString(e.Err.Error())
		}
	case e.Err != nil:
		b.WriteString(e.Err.Error())
	default:
		b.WriteString("unknown error")
	}
	b.WriteString(" (")
	b.WriteString(string(e.Class))
	b.WriteString(")")
	return b.String()
}

// Unwrap returns the underlying transport or decoding error.
func (e *APIError) Unwrap() error { return e.Err }

// Temporary reports whether retrying later can succeed without a change
// of configuration (retryable and quota errors).
func (e *APIError) Temporary() bool { return e.Class == ClassRetryable || e.Class == ClassQuota }

// ClassOf returns the class of err: "" for nil, the class of an *APIError
// in its chain, ClassRetryable for a dial error not caused by a context,
// and ClassAmbiguous for any other error.
func ClassOf(err error) Class {
	if err == nil {
		return ""
	}
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Class
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return ClassAmbiguous
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return ClassRetryable
	}
	return ClassAmbiguous
}

// Code returns the WeChat errcode in err's chain, 0 if there is none.
func Code(err error) int {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return 0
}

// redactedError carries a redacted text in front of the original error.
// errors.Is sees through it (context.DeadlineExceeded, syscall.ECONNREFUSED),
// but it has no Unwrap or As, so the original text cannot be reached.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }

// Is reports whether the original error matches target.
func (e *redactedError) Is(target error) bool { return errors.Is(e.err, target) }

// secretParams matches query parameters that carry credentials.
var secretParams = regexp.MustCompile(`(?i)(access_token|secret|js_code|session_key)=[^&\s"']*`)

// redactString removes every credential from s: query parameters by name and
// any literal occurrence of the given secrets.
func redactString(s string, secrets ...string) string {
	for _, sec := range secrets {
		if len(sec) >= 4 && strings.Contains(s, sec) {
			s = strings.ReplaceAll(s, sec, "REDACTED")
		}
	}
	if strings.Contains(s, "=") {
		s = secretParams.ReplaceAllString(s, "${1}=REDACTED")
	}
	return s
}

// redactErr returns err with credentials removed from its text. A *url.Error
// (whose text holds the whole URL) is replaced by its inner error.
func redactErr(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	inner := err
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		inner = ue.Err
	}
	return &redactedError{msg: redactString(inner.Error(), secrets...), err: inner}
}
