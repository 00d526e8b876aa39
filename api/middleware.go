package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"path"
	"runtime/debug"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/wxcampaign/wxcampaign"
)

// guard runs before routing. Every path under /v1, as sent or once
// cleaned of "." and ".." segments, needs one of the configured bearer
// tokens: authentication comes first, also for paths that do not exist.
// A path that is not canonical is then a JSON 404, never ServeMux's
// redirect. The comparison is constant-time over SHA-256 digests, so
// neither the content nor the length of a token leaks through timing, and
// every configured token is compared. The token is never logged.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		clean := cleanPath(p)
		if (underV1(p) || underV1(clean)) && !s.authorized(r.Header.Get("Authorization")) {
			writeError(w, wxcampaign.Errorf(wxcampaign.EUNAUTHORIZED, "missing or invalid bearer token"))
			return
		}
		if clean != p {
			writeError(w, wxcampaign.Errorf(wxcampaign.ENOTFOUND, "no such endpoint: the path is not canonical (%q)", clean))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// underV1 reports whether p is /v1 or below it.
func underV1(p string) bool { return p == "/v1" || strings.HasPrefix(p, "/v1/") }

// cleanPath is path.Clean keeping a trailing slash, as ServeMux cleans.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if strings.HasSuffix(p, "/") && np != "/" {
		np += "/"
	}
	return np
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
		case r.URL.Path == "/healthz" || r.URL.Path == "/readyz" || r.URL.Path == "/metrics":
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
