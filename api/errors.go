package api

import (
	"encoding/json"
	"net/http"

	"github.com/wxcampaign/wxcampaign"
)

// codeUpstream is the error code of a failure of WeChat itself (HTTP 502).
// It is local to the API: no other part of the engine answers for WeChat.
const codeUpstream = "upstream"

// statusOf maps a wxcampaign error code to its HTTP status. It is the one
// place where application errors become HTTP statuses.
func statusOf(code string) int {
	switch code {
	case wxcampaign.EINVALID:
		return http.StatusBadRequest
	case wxcampaign.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case wxcampaign.ENOTFOUND:
		return http.StatusNotFound
	case wxcampaign.ECONFLICT:
		return http.StatusConflict
	case wxcampaign.ETOOLARGE:
		return http.StatusRequestEntityTooLarge
	case wxcampaign.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	case codeUpstream:
		return http.StatusBadGateway
	default:
		return http.StatusInternalServerError
	}
}

// errorBody is the JSON shape of every error response.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// writeError writes err as a JSON error. Internal errors are reported as
// "internal error" without detail; the caller logs the detail.
func writeError(w http.ResponseWriter, err error) {
	code := wxcampaign.ErrorCode(err)
	if code == "" {
		code = wxcampaign.EINTERNAL
	}
	msg := wxcampaign.ErrorMessage(err)
	if code == wxcampaign.EINTERNAL {
		msg = "internal error"
	}
	if code == wxcampaign.EUNAUTHORIZED {
		w.Header().Set("WWW-Authenticate", `Bearer realm="wxcampaign"`)
	}
	writeJSON(w, statusOf(code), errorBody{Error: errorDetail{Code: code, Message: msg}})
}

// writeJSON writes v as a JSON response with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal","message":"internal error"}}`)
	}
	h := w.Header()
	if h.Get("Content-Type") == "" {
		h.Set("Content-Type", "application/json; charset=utf-8")
	}
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// methodNotAllowed answers 405 with the allowed methods.
func methodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: errorDetail{
			Code:    "method_not_allowed",
			Message: r.Method + " is not allowed here; use " + allow,
		}})
	}
}
