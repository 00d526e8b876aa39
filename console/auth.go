package console

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Cookie names.
const (
	sessionCookie = "wxc_session"
	loginCookie   = "wxc_login" // double-submit CSRF token of the login form
)

// user is the holder of a session.
type user struct {
	Name string
	Role string
	CSRF string // the CSRF token of this session, for forms
	tok  *Token
}

// Operator reports whether the user may change things.
func (u *user) Operator() bool { return u != nil && u.Role == RoleOperator }

type ctxKey struct{}

func userOf(r *http.Request) *user {
	u, _ := r.Context().Value(ctxKey{}).(*user)
	return u
}

func mac(key, msg string) string {
	h := hmac.New(sha256.New, []byte(key))
	h.Write([]byte(msg))
	return hex.EncodeToString(h.Sum(nil))
}

// sessionValue is name.expiry.mac, the MAC keyed by the holder's token: no
// server state, every replica verifies it, and removing a token from the
// config ends its sessions.
func sessionValue(t *Token, until time.Time) string {
	name := base64.RawURLEncoding.EncodeToString([]byte(t.Name))
	exp := strconv.FormatInt(until.Unix(), 10)
	return name + "." + exp + "." + mac(t.Token, "session|"+t.Name+"|"+exp)
}

// csrfToken is the session's CSRF token, derived from its cookie.
func csrfToken(t *Token, session string) string {
	return mac(t.Token, "csrf|"+session)[:32]
}

// session returns the user of r's session cookie, or nil.
func (s *Server) session(r *http.Request) *user {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil
	}
	parts := strings.Split(c.Value, ".")
	if len(parts) != 3 {
		return nil
	}
	nameB, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return nil
	}
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || s.cfg.Now().Unix() >= exp {
		return nil
	}
	name := string(nameB)
	for i := range s.cfg.Tokens {
		t := &s.cfg.Tokens[i]
		if t.Name != name {
			continue
		}
		want := mac(t.Token, "session|"+t.Name+"|"+parts[1])
		if !hmac.Equal([]byte(want), []byte(parts[2])) {
			return nil
		}
		return &user{Name: t.Name, Role: t.Role, CSRF: csrfToken(t, c.Value), tok: t}
	}
	return nil
}

// tokenFor returns the console token equal to secret, comparing every
// token in constant time.
func (s *Server) tokenFor(secret string) *Token {
	var found *Token
	for i := range s.cfg.Tokens {
		t := &s.cfg.Tokens[i]
		if subtle.ConstantTimeCompare([]byte(t.Token), []byte(secret)) == 1 {
			found = t
		}
	}
	return found
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *Server) setCookie(w http.ResponseWriter, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: s.cfg.Secure, SameSite: http.SameSiteStrictMode})
}

// need wraps h: a session is required (else the login form for a GET, 401
// for anything else), operators only when operator is set, and a valid
// CSRF token on every request that is not a GET or HEAD.
func (s *Server) need(operator bool, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u := s.session(r)
		if u == nil {
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			s.fail(w, r, http.StatusUnauthorized, "log in first: this request carries no valid console session")
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, u))
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if !hmac.Equal([]byte(r.PostFormValue("csrf")), []byte(u.CSRF)) {
				s.fail(w, r, http.StatusForbidden, "missing or invalid CSRF token: reload the page and try again")
				return
			}
		}
		if operator && !u.Operator() {
			s.fail(w, r, http.StatusForbidden, "only operators may do this; "+u.Name+" is a viewer")
			return
		}
		h(w, r)
	}
}

func (s *Server) loginForm(w http.ResponseWriter, r *http.Request) {
	tok := randomHex(16)
	s.setCookie(w, loginCookie, tok, 600)
	s.render(w, r, http.StatusOK, "login", map[string]any{"CSRF": tok, "Next": safeNext(r.URL.Query().Get("next"))})
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(loginCookie)
	if err != nil || c.Value == "" || !hmac.Equal([]byte(c.Value), []byte(r.PostFormValue("csrf"))) {
		s.fail(w, r, http.StatusForbidden, "missing or invalid CSRF token: open the login form again")
		return
	}
	next := safeNext(r.PostFormValue("next"))
	t := s.tokenFor(r.PostFormValue("token"))
	if t == nil {
		tok := randomHex(16)
		s.setCookie(w, loginCookie, tok, 600)
		s.render(w, r, http.StatusUnauthorized, "login", map[string]any{"CSRF": tok, "Next": next, "Error": "unknown console token"})
		return
	}
	now := s.cfg.Now()
	s.setCookie(w, sessionCookie, sessionValue(t, now.Add(s.cfg.SessionTTL)), int(s.cfg.SessionTTL.Seconds()))
	s.setCookie(w, loginCookie, "", -1)
	s.audit(r.Context(), t.Name, "login", "", t.Role)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	s.setCookie(w, sessionCookie, "", -1)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// safeNext keeps a redirect target on this site.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/campaigns"
	}
	return next
}
