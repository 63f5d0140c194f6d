// Package console is the web UI for the people who run the CDP, served by the API function at
// /console/: server-rendered html/template pages, made interactive by htmx (vendored, pinned:
// static/htmx-2.0.4.min.js, sha256 e209dda5…fb447 from npm htmx.org@2.0.4). No Node build step,
// no separate hosting, no inline script or style, so the Content-Security-Policy can be strict.
//
// The console is a client of the public APIs, in process: every page reads and changes data
// through the admin API and the Profile API handlers with the signed-in admin token, so it
// gets their validation, limits and audit for free and can never do what the APIs cannot.
// The one exception is the monitor (live events, per-minute counts), which has no API of its own.
//
// Sign-in takes an admin token; it is kept in a Secure, HttpOnly, SameSite=Strict cookie and
// checked on every request. Every change (any method but GET and HEAD) needs the CSRF token,
// an HMAC of the session token that pages carry in a meta tag (htmx sends it as a header) and
// in forms, and a same-origin request (Sec-Fetch-Site, Origin).
package console

import (
	"context"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/serverless-cdp/cdp/internal/httpapi"
)

// Prefix is where the console is served.
const Prefix = "/console"

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// TokenVerifier checks an admin token (the admin API's own check).
type TokenVerifier func(ctx context.Context, token string) (bool, error)

// Options wire the console to the APIs it drives.
type Options struct {
	Admin   httpapi.HandlerFunc // the admin API (/admin/...)
	Profile httpapi.HandlerFunc // the Profile API (/v1/spaces/...)
	Verify  TokenVerifier       // sign-in and every request
	SpaceID string              // the Profile API's space
	Monitor Monitor             // live events and per-minute counts; nil shows none
	// RequestContext, if set, wraps each signed-in request's context before the session check:
	// the composition root passes admintoken.WithMemo, so the token is read once per page
	// however many API calls the page makes.
	RequestContext func(context.Context) context.Context
	Now            func() time.Time
	Logger         *slog.Logger
}

// Server is the console's http.Handler.
type Server struct {
	o     Options
	mux   *http.ServeMux
	pages map[string]*template.Template
}

// New returns the console. Templates are parsed once, here.
func New(o Options) (*Server, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Admin == nil || o.Profile == nil || o.Verify == nil {
		return nil, fmt.Errorf("console: Admin, Profile and Verify are required")
	}
	pages, err := parseTemplates(templateFS)
	if err != nil {
		return nil, err
	}
	s := &Server{o: o, mux: http.NewServeMux(), pages: pages}
	static, _ := fs.Sub(staticFS, "static")
	s.mux.Handle("GET "+Prefix+"/static/", http.StripPrefix(Prefix+"/static/", immutable(http.FileServerFS(static))))
	s.mux.HandleFunc("GET "+Prefix+"/signin", s.signinForm)
	s.mux.HandleFunc("POST "+Prefix+"/signin", s.signin)
	s.mux.HandleFunc("POST "+Prefix+"/signout", s.signout)
	s.mux.HandleFunc("GET "+Prefix, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, Prefix+"/", http.StatusMovedPermanently)
	})
	s.routes()
	return s, nil
}

// ServeHTTP sets the security headers of every answer and dispatches.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	s.mux.ServeHTTP(w, r)
}

// CSP is the console's Content-Security-Policy: scripts and styles only from the console's own
// static files (no inline code, no eval), no frames, forms only to itself.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// page registers a signed-in page: GET or HEAD needs a session, any other method a session
// and the CSRF token.
func (s *Server) page(pattern string, h http.HandlerFunc) {
	s.mux.Handle(pattern, s.authed(h))
}

// immutable marks the versioned static files cacheable.
func immutable(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		h.ServeHTTP(w, r)
	})
}
