package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/wxcampaign/wxcampaign"
)

// auth admits requests that carry one of the configured bearer tokens. The
// comparison is constant-time over SHA-256 digests, so neither the content
// nor the length of a token leaks through timing, and every configured token
// is compared. The token is never logged.
func (s *Server) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.authorized(r.Header.Get("Authorization")) {
			writeError(w, wxcampaign.Errorf(wxcampaign.EUNAUTHORIZED, "missing or invalid bearer token"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) authorized(header string) bool {
	const prefix = "bearer "
	if len(header) <= len(prefix) || !strings.EqualFold(header[:len(prefix)], prefix) {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(header[len(prefix):])))
	ok := 0
	for i := range s.tokens {
		ok |= subtle.ConstantTimeCompare(got[:], s.tokens[i][:])
	}
	return ok == 1
}

// recoverPanics turns a panic in a handler into a 500 and a log line.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler { //nolint:errorlint // sentinel compared as net/http does
				panic(v)
			}
			s.log.WithFields(logrus.Fields{
				"method": r.Method,
				"path":   r.URL.Path,
				"panic":  v,
				"stack":  string(debug.Stack()),
			}).Error("api: handler panicked")
			if sw, ok := w.(*statusWriter); !ok || sw.status == 0 {
				writeError(w, wxcampaign.Errorf(wxcampaign.EINTERNAL, "panic"))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// logRequests logs one line per request: method, path, status, duration and
// response size. Headers, query strings and bodies are never logged.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		e := s.log.WithFields(logrus.Fields{
			"method":   r.Method,
			"path":     r.URL.Path,
			"status":   sw.status,
			"duration": time.Since(start).Round(time.Microsecond).String(),
			"bytes":    sw.bytes,
		})
		switch {
		case sw.status >= 500:
			e.Error("api: request")
		case r.URL.Path == "/healthz" || r.URL.Path == "/metrics":
			e.Debug("api: request")
		default:
			e.Info("api: request")
		}
	})
}

// statusWriter records the status and size of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
