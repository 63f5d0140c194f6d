// Package admin is the admin API: JSON over HTTPS under /admin/v1/..., authenticated with admin
// bearer tokens (package admintoken). Every request must carry a valid token, whatever the
// path; errors are {"code","message"} with the usual statuses (400 invalid_request, 401
// unauthorized, 404 not_found, 405 method_not_allowed, 409 conflict, 413 payload_too_large,
// 500 internal).
//
// This package is the router, the bearer-token check and the request/response helpers the
// resources share. Each resource is an adapter package beside it (admin/sources,
// admin/identityrules, admin/deadletters, admin/segments, admin/destinations) with a small
// service interface and a Register function, so adding one is local: write the adapter, pass its
// Register to New in the composition root (internal/app/apifn), then document the routes in
// api/openapi.yaml (a test checks both agree).
package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/serverless-cdp/cdp/internal/admintoken"
	"github.com/serverless-cdp/cdp/internal/apitypes"
	"github.com/serverless-cdp/cdp/internal/httpapi"
)

// Prefix is the path prefix of every admin route.
const Prefix = apitypes.Prefix

// MaxBodyBytes bounds admin request bodies.
const MaxBodyBytes = 1 << 20

// Authenticator verifies admin bearer tokens; *admintoken.Store implements it.
type Authenticator interface {
	// Verify returns admintoken.ErrNotFound for a token that does not work.
	Verify(ctx context.Context, token string) (admintoken.Token, error)
}

// Request is what a route handler sees.
type Request struct {
	HTTP   *http.Request
	Token  admintoken.Token  // the caller's token
	Params map[string]string // path parameters, unescaped
	query  map[string]string // query parameters, several values joined with ","
	body   []byte
}

// Param returns a path parameter.
func (r *Request) Param(name string) string { return r.Params[name] }

// Query returns a query string parameter.
func (r *Request) Query(name string) string { return r.query[name] }

// Limit is a listing's `limit` query parameter: 50 when absent, else 1 to 100 (a 400 otherwise).
func (r *Request) Limit() (int, error) {
	v := r.Query("limit")
	if v == "" {
		return 50, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 100 {
		return 0, BadRequest("limit must be between 1 and 100")
	}
	return n, nil
}

// Page reads a list's ?limit= (see Limit) and ?next= cursor, which must pass valid (a cursor
// that does not is a 400 "invalid next token").
func (r *Request) Page(valid func(string) bool) (limit int, next string, err error) {
	if limit, err = r.Limit(); err != nil {
		return 0, "", err
	}
	if next = r.Query("next"); next != "" && !valid(next) {
		return 0, "", BadRequest("invalid next token")
	}
	return limit, next, nil
}

// Decode decodes the JSON body into v strictly (unknown fields are rejected); a missing body is
// an error.
func (r *Request) Decode(v any) error {
	if err := httpapi.DecodeJSON(r.body, v, false); err != nil {
		return BadRequest("%s", err.Error())
	}
	return nil
}

// DecodeOptional is Decode for routes whose body may be omitted; v is left as is then.
func (r *Request) DecodeOptional(v any) error {
	if err := httpapi.DecodeJSON(r.body, v, true); err != nil {
		return BadRequest("%s", err.Error())
	}
	return nil
}

// HandlerFunc handles one route. It returns the status and a body to encode as JSON (nil for
// none), or an error: an *Error becomes its status and code, anything else a logged 500.
type HandlerFunc func(ctx context.Context, r *Request) (status int, body any, err error)

// Raw is a handler's answer written as it is, with its content type (e.g. NDJSON), instead of
// being encoded as JSON.
type Raw struct {
	ContentType string
	Body        []byte
}

// Error is an error answer.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

// BadRequest is a 400 invalid_request.
func BadRequest(format string, args ...any) *Error {
	return &Error{http.StatusBadRequest, httpapi.CodeInvalidRequest, fmt.Sprintf(format, args...)}
}

// NotFound is a 404 not_found.
func NotFound(format string, args ...any) *Error {
	return &Error{http.StatusNotFound, httpapi.CodeNotFound, fmt.Sprintf(format, args...)}
}

// Conflict is a 409 conflict.
func Conflict(format string, args ...any) *Error {
	return &Error{http.StatusConflict, httpapi.CodeConflict, fmt.Sprintf(format, args...)}
}

// Route is a registered method and path template, e.g. GET /admin/v1/sources/{id}.
type Route struct {
	Method  string
	Pattern string
}

type route struct {
	Route
	segments []string // "{name}" for a parameter
	fn       HandlerFunc
}

// Router dispatches admin requests to registered routes after checking the bearer token. It is
// a net/http handler: routes are Go ServeMux patterns ("GET /admin/v1/sources/{id}"); Serve
// adapts it to API Gateway events (httpapi.Lambda).
type Router struct {
	auth    Authenticator
	logger  *slog.Logger
	routes  []*route
	mux     *http.ServeMux
	methods map[string]bool // every registered method, for the Allow header of a 405
}

// NewRouter returns a router with no routes; New returns one with every resource registered.
func NewRouter(auth Authenticator, logger *slog.Logger) *Router {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Router{auth: auth, logger: logger, mux: http.NewServeMux(), methods: map[string]bool{}}
}

// Handle registers fn for a method and a path template whose segments are literals or
// {param}s. Registering the same method and template twice, or a malformed template, panics:
// routes are fixed at start-up.
func (rt *Router) Handle(method, pattern string, fn HandlerFunc) {
	method = strings.ToUpper(method)
	if !strings.HasPrefix(pattern, "/") || fn == nil {
		panic("admin: bad route " + method + " " + pattern)
	}
	segs := strings.Split(strings.TrimPrefix(pattern, "/"), "/")
	for _, s := range segs {
		isParam := strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") && len(s) > 2
		if s == "" || (!isParam && strings.ContainsAny(s, "{}")) {
			panic("admin: bad route " + method + " " + pattern)
		}
	}
	for _, r := range rt.routes {
		if r.Method == method && sameShape(r.segments, segs) {
			panic("admin: route registered twice: " + method + " " + pattern)
		}
	}
	r := &route{Route: Route{method, pattern}, segments: segs, fn: fn}
	rt.routes = append(rt.routes, r)
	rt.methods[method] = true
	rt.mux.Handle(method+" "+pattern, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		rt.serveRoute(w, req, r)
	}))
}

func isParam(seg string) bool { return strings.HasPrefix(seg, "{") }

func sameShape(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if isParam(a[i]) != isParam(b[i]) || (!isParam(a[i]) && a[i] != b[i]) {
			return false
		}
	}
	return true
}

// Routes lists the registered routes, sorted by pattern and method.
func (rt *Router) Routes() []Route {
	out := make([]Route, 0, len(rt.routes))
	for _, r := range rt.routes {
		out = append(out, r.Route)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Pattern != out[j].Pattern {
			return out[i].Pattern < out[j].Pattern
		}
		return out[i].Method < out[j].Method
	})
	return out
}

// Serve handles one admin request as an API Gateway event; it fits httpapi.API.Admin. It
// returns a non-nil error only for failures of the token store; everything else is an answer.
func (rt *Router) Serve(ctx context.Context, req httpapi.Request) (httpapi.Response, error) {
	var failed error
	ctx = context.WithValue(ctx, authFailureKey{}, &failed)
	resp, err := httpapi.Lambda(rt)(ctx, req)
	if failed != nil {
		return httpapi.Response{}, failed
	}
	return resp, err
}

type authFailureKey struct{}

// ServeHTTP checks the bearer token, then dispatches on the method and the raw path: a path
// parameter is one raw segment, unescaped by the router (a bad escape is a 400), and an empty
// segment matches nothing.
func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tok, ok := rt.authenticate(w, r)
	if !ok {
		return
	}
	method, path := strings.ToUpper(r.Method), httpapi.RawPath(r)
	if len(path) > 1 {
		path = strings.TrimSuffix(path, "/")
	}
	probe, ok := probeRequest(r.WithContext(context.WithValue(r.Context(), tokenKey{}, tok)), method, path)
	if ok {
		if _, pattern := rt.mux.Handler(probe); strings.HasPrefix(pattern, method+" ") {
			rt.mux.ServeHTTP(w, probe)
			return
		}
	}
	if allowed := rt.allowed(probe, ok); len(allowed) > 0 {
		w.Header()["allow"] = []string{strings.Join(allowed, ", ")}
		httpapi.WriteError(w, http.StatusMethodNotAllowed, httpapi.CodeMethodNotAllowed, method+" is not allowed on "+path)
		return
	}
	httpapi.WriteError(w, http.StatusNotFound, httpapi.CodeNotFound, "no route for "+method+" "+path)
}

type tokenKey struct{}

// authenticate verifies the bearer token, answering 401 itself; a token store failure is
// reported to Serve (a 500 over plain net/http).
func (rt *Router) authenticate(w http.ResponseWriter, r *http.Request) (admintoken.Token, bool) {
	token, ok := httpapi.BearerToken(httpapi.Request{Headers: map[string]string{"authorization": r.Header.Get("Authorization")}})
	if !ok {
		unauthorized(w, "missing bearer token")
		return admintoken.Token{}, false
	}
	tok, err := rt.auth.Verify(r.Context(), token)
	if errors.Is(err, admintoken.ErrNotFound) {
		unauthorized(w, "invalid bearer token")
		return admintoken.Token{}, false
	}
	if err != nil {
		err = fmt.Errorf("verify admin token: %w", err)
		if failed, ok := r.Context().Value(authFailureKey{}).(*error); ok {
			*failed = err
		} else {
			rt.logger.ErrorContext(r.Context(), "admin request failed", "error", err.Error())
		}
		httpapi.WriteError(w, http.StatusInternalServerError, httpapi.CodeInternal, "internal error")
		return admintoken.Token{}, false
	}
	return tok, true
}

// probeRequest is r as the ServeMux matches it: the method upper-cased and the raw path taken
// literally (each segment as it came, so "a%2Fb" is one segment), with "." and ".." segments
// masked so the mux does not clean them away. A path with an empty segment matches no route.
func probeRequest(r *http.Request, method, path string) (*http.Request, bool) {
	segs := strings.Split(path, "/")
	for i, s := range segs[1:] {
		switch s {
		case "":
			return nil, false
		case ".", "..":
			segs[i+1] = strings.Repeat("%2E", len(s))
		}
	}
	p := r.Clone(r.Context())
	p.Method = method
	p.URL = &url.URL{Path: strings.Join(segs, "/"), RawQuery: r.URL.RawQuery}
	return p, true
}

// allowed lists the methods of the routes whose template fits the path.
func (rt *Router) allowed(probe *http.Request, ok bool) []string {
	var out []string
	for m := range rt.methods {
		if !ok || m == probe.Method {
			continue
		}
		p := probe.Clone(probe.Context())
		p.Method = m
		if _, pattern := rt.mux.Handler(p); strings.HasPrefix(pattern, m+" ") {
			out = append(out, m)
		}
	}
	sort.Strings(out)
	return out
}

// serveRoute runs a matched route: path parameters unescaped and checked, the body read within
// its limit, the handler's answer or error written.
func (rt *Router) serveRoute(w http.ResponseWriter, r *http.Request, rte *route) {
	ctx := r.Context()
	tok, _ := ctx.Value(tokenKey{}).(admintoken.Token)
	params := map[string]string{}
	for _, s := range rte.segments {
		if isParam(s) {
			params[s[1:len(s)-1]] = r.PathValue(s[1 : len(s)-1])
		}
	}
	if len(params) == 0 {
		params = nil
	}
	query := map[string]string{}
	for k, vs := range r.URL.Query() {
		query[k] = strings.Join(vs, ",")
	}
	if e := unescapeAndCheck(params, query); e != nil {
		httpapi.WriteError(w, e.Status, e.Code, e.Message)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if errors.Is(err, httpapi.ErrBodyTooLarge) || len(body) > MaxBodyBytes {
		httpapi.WriteError(w, http.StatusRequestEntityTooLarge, httpapi.CodePayloadTooLarge, fmt.Sprintf("request body exceeds %d bytes", MaxBodyBytes))
		return
	}
	if err != nil {
		httpapi.WriteError(w, http.StatusBadRequest, httpapi.CodeInvalidRequest, err.Error())
		return
	}
	status, out, err := rte.fn(ctx, &Request{HTTP: r, Token: tok, Params: params, query: query, body: body})
	if err != nil {
		rt.failure(ctx, w, r.Method, rte.Pattern, tok.ID, err)
		return
	}
	if r.Method != http.MethodGet && status >= 200 && status < 300 { // an audit trail of changes
		rt.logger.InfoContext(ctx, "admin change", "method", r.Method, "route", rte.Pattern, "params", params, "tokenId", tok.ID, "status", status)
	}
	if out == nil {
		w.Header()["cache-control"] = []string{"no-store"}
		w.WriteHeader(status)
		return
	}
	if raw, ok := out.(Raw); ok {
		w.Header()["content-type"] = []string{raw.ContentType}
		w.Header()["cache-control"] = []string{"no-store"}
		w.WriteHeader(status)
		_, _ = w.Write(raw.Body)
		return
	}
	httpapi.WriteJSON(w, status, out)
}

// failure answers a handler's error: an *Error as it says, a request the store refused as 400,
// anything else as a logged 500.
func (rt *Router) failure(ctx context.Context, w http.ResponseWriter, method, pattern, tokenID string, err error) {
	var e *Error
	if errors.As(err, &e) {
		httpapi.WriteError(w, e.Status, e.Code, e.Message)
		return
	}
	if refused(err) {
		rt.logger.WarnContext(ctx, "admin request refused by the store", "method", method, "route", pattern, "tokenId", tokenID, "error", err.Error())
		httpapi.WriteError(w, http.StatusBadRequest, httpapi.CodeInvalidRequest,
			"the store refused the request: an id, a paging token or a value is not valid")
		return
	}
	rt.logger.ErrorContext(ctx, "admin request failed", "method", method, "route", pattern, "tokenId", tokenID, "error", err.Error())
	httpapi.WriteError(w, http.StatusInternalServerError, httpapi.CodeInternal, "internal error")
}

func unauthorized(w http.ResponseWriter, msg string) {
	w.Header()["www-authenticate"] = []string{`Bearer realm="cdp-admin"`}
	httpapi.WriteError(w, http.StatusUnauthorized, httpapi.CodeUnauthorized, msg)
}
