package console

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/serverless-cdp/cdp/internal/httpapi"
)

const goodToken = "cdpat_good"

// newTestServer is the console over fake APIs that record the authorization they got.
func newTestServer(t *testing.T) (*Server, *[]string) {
	t.Helper()
	var seen []string
	api := func(_ context.Context, req httpapi.Request) (httpapi.Response, error) {
		seen = append(seen, req.Headers["authorization"]+" "+req.RequestContext.HTTP.Method+" "+req.RawPath+"?"+req.RawQueryString)
		return httpapi.Response{StatusCode: 404, Body: `{"code":"not_found","message":"no such thing"}`}, nil
	}
	s, err := New(Options{Admin: api, Profile: api, SpaceID: "default",
		Verify: func(_ context.Context, tok string) (bool, error) { return tok == goodToken, nil }})
	if err != nil {
		t.Fatal(err)
	}
	return s, &seen
}

func do(s http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	return w
}

func cookie(w *httptest.ResponseRecorder, name string) *http.Cookie {
	for _, c := range w.Result().Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func TestSignInFlow(t *testing.T) {
	s, _ := newTestServer(t)
	w := do(s, httptest.NewRequest("GET", "/console/profiles?q=1", nil))
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/console/signin?next="+url.QueryEscape("/console/profiles?q=1") {
		t.Fatalf("no session: %d %q", w.Code, w.Header().Get("Location"))
	}
	if got := w.Header().Get("Content-Security-Policy"); got != CSP || !strings.Contains(got, "script-src 'self'") {
		t.Fatalf("CSP %q", got)
	}
	form := do(s, httptest.NewRequest("GET", "/console/signin?next=/console/live", nil))
	sc := cookie(form, signinCookie)
	if form.Code != 200 || sc == nil || !sc.HttpOnly || !sc.Secure || sc.SameSite != http.SameSiteStrictMode || !strings.Contains(form.Body.String(), `value="/console/live"`) {
		t.Fatalf("form: %d %+v", form.Code, sc)
	}
	post := func(token, csrf string, hdr map[string]string) *httptest.ResponseRecorder {
		v := url.Values{"token": {token}, "csrf": {csrf}, "next": {"/console/live"}}
		r := httptest.NewRequest("POST", "/console/signin", strings.NewReader(v.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.AddCookie(sc)
		for k, v := range hdr {
			r.Header.Set(k, v)
		}
		return do(s, r)
	}
	if w := post(goodToken, "wrong", nil); w.Code != http.StatusForbidden || cookie(w, sessionCookie) != nil {
		t.Fatalf("wrong form token: %d", w.Code)
	}
	if w := post(goodToken, sc.Value, map[string]string{"Sec-Fetch-Site": "cross-site"}); w.Code != http.StatusForbidden {
		t.Fatalf("cross-site sign-in: %d", w.Code)
	}
	if w := post("cdpat_bad", sc.Value, nil); w.Code != http.StatusUnauthorized || cookie(w, sessionCookie) != nil || !strings.Contains(w.Body.String(), "not valid") {
		t.Fatalf("bad token: %d", w.Code)
	}
	w = post(goodToken, sc.Value, map[string]string{"Origin": "http://example.com", "Sec-Fetch-Site": "same-origin"})
	c := cookie(w, sessionCookie)
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/console/live" || c == nil || c.Value != goodToken ||
		!c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteStrictMode || c.Path != "/console" {
		t.Fatalf("good token: %d %q %+v", w.Code, w.Header().Get("Location"), c)
	}
	r := httptest.NewRequest("GET", "/console/", nil)
	r.AddCookie(c)
	page := do(s, r)
	if page.Code != 200 || !strings.Contains(page.Body.String(), csrfFor(goodToken)) || page.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("signed-in page: %d %s", page.Code, page.Body.String())
	}
}

// TestChangesNeedCSRF: every change with a session still needs the CSRF token and a
// same-origin request; a revoked token is signed out.
func TestChangesNeedCSRF(t *testing.T) {
	s, _ := newTestServer(t)
	signout := func(csrf string, hdr map[string]string, tok string) int {
		r := httptest.NewRequest("POST", "/console/signout", strings.NewReader(url.Values{"csrf": {csrf}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.AddCookie(&http.Cookie{Name: sessionCookie, Value: tok})
		for k, v := range hdr {
			r.Header.Set(k, v)
		}
		return do(s, r).Code
	}
	if c := signout("", nil, goodToken); c != http.StatusForbidden {
		t.Errorf("no CSRF token: %d", c)
	}
	if c := signout(csrfFor("other"), nil, goodToken); c != http.StatusForbidden {
		t.Errorf("another session's CSRF token: %d", c)
	}
	if c := signout(csrfFor(goodToken), map[string]string{"Origin": "https://evil.example"}, goodToken); c != http.StatusForbidden {
		t.Errorf("cross-origin: %d", c)
	}
	if c := signout(csrfFor(goodToken), nil, goodToken); c != http.StatusSeeOther {
		t.Errorf("good CSRF token: %d", c)
	}
	r := httptest.NewRequest("GET", "/console/live", nil)
	r.Header.Set("HX-Request", "true")
	r.AddCookie(&http.Cookie{Name: sessionCookie, Value: "cdpat_revoked"})
	if w := do(s, r); w.Code != http.StatusUnauthorized || !strings.HasPrefix(w.Header().Get("HX-Redirect"), "/console/signin") {
		t.Errorf("revoked token, htmx: %d %q", w.Code, w.Header().Get("HX-Redirect"))
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"/console/live": "/console/live", "//evil.example/x": "/console/", "https://evil.example": "/console/",
		"/console/\\evil": "/console/", "/admin/v1/sources": "/console/", "": "/console/",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestCallUsesTheSessionToken: the console calls the admin API with a Bearer token and the
// Profile API with Basic auth, and turns an error answer into an *APIError.
func TestCallUsesTheSessionToken(t *testing.T) {
	s, seen := newTestServer(t)
	r := httptest.NewRequest("GET", "/console/", nil)
	r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, session{token: goodToken}))
	err := s.call(r, "GET", "/admin/v1/sources?limit=5", nil, nil)
	if !IsNotFound(err) || err.Error() != "no such thing" {
		t.Fatalf("error answer: %v", err)
	}
	_ = s.call(r, "GET", s.profilePath("email:a@b.c", "traits"), nil, nil)
	if len(*seen) != 2 || (*seen)[0] != "Bearer cdpat_good GET /admin/v1/sources?limit=5" ||
		!strings.HasPrefix((*seen)[1], "Basic ") || !strings.Contains((*seen)[1], "/v1/spaces/default/collections/users/profiles/email:a@b.c/traits") {
		t.Fatalf("calls: %q", *seen)
	}
	if err := s.call(r, "GET", "/elsewhere", nil, nil); err == nil {
		t.Fatal("a path of neither API was called")
	}
}

func TestStaticFiles(t *testing.T) {
	s, _ := newTestServer(t)
	for _, f := range []string{"htmx-2.0.4.min.js", "console.js", "console.css"} {
		w := do(s, httptest.NewRequest("GET", "/console/static/"+f, nil))
		if w.Code != 200 || w.Body.Len() < 100 {
			t.Errorf("%s: %d, %d bytes", f, w.Code, w.Body.Len())
		}
	}
}
