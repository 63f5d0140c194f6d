package console

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
)

// Cookie names. The session cookie holds the admin token itself (the choice: nothing
// to store server-side, revoking the token ends every session at once).
const (
	sessionCookie = "cdp_console"
	signinCookie  = "cdp_console_signin" // the sign-in form's double-submit CSRF token
	csrfHeader    = "X-CSRF-Token"
	csrfField     = "csrf"
	sessionMaxAge = 8 * 60 * 60 // seconds: a working day
)

type ctxKey struct{}

// session is the signed-in request's admin token and CSRF token.
type session struct{ token, csrf string }

func sessionOf(r *http.Request) session {
	s, _ := r.Context().Value(ctxKey{}).(session)
	return s
}

// csrfFor is the CSRF token of a session: an HMAC of the admin token, so it needs no storage
// and a page of another origin, which cannot read the HttpOnly cookie, cannot compute it.
func csrfFor(token string) string {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("cdp console csrf v1"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// authed lets a request through with a valid session; a change also needs the CSRF token and
// a same-origin request. Without a session a page redirects to the sign-in form (htmx requests
// are told to, with HX-Redirect).
func (s *Server) authed(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.o.RequestContext != nil {
			r = r.WithContext(s.o.RequestContext(r.Context()))
		}
		c, err := r.Cookie(sessionCookie)
		ok := false
		if err == nil && c.Value != "" {
			if ok, err = s.o.Verify(r.Context(), c.Value); err != nil {
				s.o.Logger.ErrorContext(r.Context(), "console: verify session", "err", err)
				http.Error(w, "could not check the session; retry", http.StatusServiceUnavailable)
				return
			}
		}
		if !ok {
			s.toSignin(w, r)
			return
		}
		sess := session{token: c.Value, csrf: csrfFor(c.Value)}
		if isChange(r.Method) && !validChange(r, sess.csrf) {
			http.Error(w, "forbidden: missing or wrong CSRF token, or a cross-site request", http.StatusForbidden)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		h(w, r.WithContext(contextWith(r, sess)))
	})
}

func (s *Server) toSignin(w http.ResponseWriter, r *http.Request) {
	target := Prefix + "/signin?next=" + url.QueryEscape(r.URL.RequestURI())
	if r.Header.Get("HX-Request") != "" {
		w.Header().Set("HX-Redirect", target)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if isChange(r.Method) {
		http.Error(w, "sign in first", http.StatusUnauthorized)
		return
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

func isChange(method string) bool { return method != http.MethodGet && method != http.MethodHead }

// validChange: the request is same-origin (Fetch Metadata and Origin, when the browser sends
// them) and carries the CSRF token in the header htmx sends or in the form field.
func validChange(r *http.Request, want string) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		return false
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return false
		}
	}
	got := r.Header.Get(csrfHeader)
	if got == "" {
		got = r.PostFormValue(csrfField)
	}
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// signinForm shows the sign-in form with a fresh double-submit token.
func (s *Server) signinForm(w http.ResponseWriter, r *http.Request) {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	tok := base64.RawURLEncoding.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{Name: signinCookie, Value: tok, Path: Prefix + "/signin", MaxAge: 900,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	w.Header().Set("Cache-Control", "no-store")
	s.render(w, r, "signin", view{Title: "Sign in", CSRF: tok, Data: map[string]string{"Next": safeNext(r.URL.Query().Get("next"))}})
}

// signin checks the token and sets the session cookie.
func (s *Server) signin(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(signinCookie)
	if err != nil || !validChange(r, c.Value) {
		http.Error(w, "forbidden: the sign-in form expired or the request is cross-site; reload the form", http.StatusForbidden)
		return
	}
	token := strings.TrimSpace(r.PostFormValue("token"))
	next := safeNext(r.PostFormValue("next"))
	ok, err := s.o.Verify(r.Context(), token)
	if err != nil {
		s.o.Logger.ErrorContext(r.Context(), "console: verify token", "err", err)
		http.Error(w, "could not check the token; retry", http.StatusServiceUnavailable)
		return
	}
	if !ok {
		w.WriteHeader(http.StatusUnauthorized)
		s.render(w, r, "signin", view{Title: "Sign in", CSRF: c.Value, Error: "That admin token is not valid.", Data: map[string]string{"Next": next}})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: token, Path: Prefix, MaxAge: sessionMaxAge,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.SetCookie(w, &http.Cookie{Name: signinCookie, Path: Prefix + "/signin", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// signout clears the session cookie (the token stays valid: revoke it with the admin API).
func (s *Server) signout(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(sessionCookie)
	if err == nil && !validChange(r, csrfFor(c.Value)) {
		http.Error(w, "forbidden: missing or wrong CSRF token", http.StatusForbidden)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Path: Prefix, MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, Prefix+"/signin", http.StatusSeeOther)
}

// safeNext keeps a redirect target inside the console (no open redirect).
func safeNext(next string) string {
	if !strings.HasPrefix(next, Prefix+"/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return Prefix + "/"
	}
	return next
}
