// Package admin is the admin API: JSON over HTTPS under /admin/v1/..., authenticated with admin
// bearer tokens (package admintoken). Every request must carry a valid token, whatever the
// path; errors are {"code","message"} with the usual statuses (400 invalid_request, 401
// unauthorized, 404 not_found, 405 method_not_allowed, 409 conflict, 413 payload_too_large,
// 500 internal).
//
// Resources register their routes in New (routes.go); each lives in its own file with a small
// service interface, so adding one is local: write the handlers and add one line to New, then
// document the routes in api/openapi.yaml (a test checks both agree).
package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
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
	HTTP   httpapi.Request
	Token  admintoken.Token  // the caller's token
	Params map[string]string // path parameters, unescaped
	body   []byte
}

// Param returns a path parameter.
func (r *Request) Param(name string) string { return r.Params[name] }

// Query returns a query string parameter.
func (r *Request) Query(name string) string { return r.HTTP.QueryStringParameters[name] }

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

// Router dispatches admin requests to registered routes after checking the bearer token.
type Router struct {
	auth   Authenticator
	logger *slog.Logger
	routes []*route
}

// NewRouter returns a router with no routes; New returns one with every resource registered.
func NewRouter(auth Authenticator, logger *slog.Logger) *Router {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Router{auth: auth, logger: logger}
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
	rt.routes = append(rt.routes, &route{Route: Route{method, pattern}, segments: segs, fn: fn})
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

// match returns the path parameters when the raw path segments fit the route, and a rank that
// prefers literal segments over parameters from left to right.
func (r *route) match(segs []string) (map[string]string, string, bool) {
	if len(segs) != len(r.segments) {
		return nil, "", false
	}
	var params map[string]string
	rank := make([]byte, len(segs))
	for i, s := range r.segments {
		if isParam(s) {
			if segs[i] == "" {
				return nil, "", false
			}
			if params == nil {
				params = map[string]string{}
			}
			params[s[1:len(s)-1]] = segs[i]
			rank[i] = '1'
			continue
		}
		if s != segs[i] {
			return nil, "", false
		}
		rank[i] = '0'
	}
	return params, string(rank), true
}

// Serve handles one admin request; it fits httpapi.API.Admin. It returns a non-nil error only
// for failures of the token store; everything else is an answer.
func (rt *Router) Serve(ctx context.Context, req httpapi.Request) (httpapi.Response, error) {
	token, ok := httpapi.BearerToken(req)
	if !ok {
		return unauthorized("missing bearer token"), nil
	}
	tok, err := rt.auth.Verify(ctx, token)
	if errors.Is(err, admintoken.ErrNotFound) {
		return unauthorized("invalid bearer token"), nil
	}
	if err != nil {
		return httpapi.Response{}, fmt.Errorf("verify admin token: %w", err)
	}

	method, path := httpapi.Method(req), httpapi.Path(req)
	if len(path) > 1 {
		path = strings.TrimSuffix(path, "/")
	}
	segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
	var (
		best      *route
		bestRank  string
		params    map[string]string
		allowed   []string
		pathMatch bool
	)
	for _, r := range rt.routes {
		p, rank, ok := r.match(segs)
		if !ok {
			continue
		}
		pathMatch = true
		if r.Method != method {
			allowed = append(allowed, r.Method)
			continue
		}
		if best == nil || rank < bestRank {
			best, bestRank, params = r, rank, p
		}
	}
	if best == nil {
		if pathMatch {
			sort.Strings(allowed)
			resp := httpapi.Error(http.StatusMethodNotAllowed, httpapi.CodeMethodNotAllowed, method+" is not allowed on "+path)
			resp.Headers["allow"] = strings.Join(allowed, ", ")
			return resp, nil
		}
		return httpapi.Error(http.StatusNotFound, httpapi.CodeNotFound, "no route for "+method+" "+path), nil
	}
	if e := unescapeAndCheck(params, req.QueryStringParameters); e != nil {
		return httpapi.Error(e.Status, e.Code, e.Message), nil
	}
	body, err := httpapi.Body(req, MaxBodyBytes)
	if errors.Is(err, httpapi.ErrBodyTooLarge) {
		return httpapi.Error(http.StatusRequestEntityTooLarge, httpapi.CodePayloadTooLarge, fmt.Sprintf("request body exceeds %d bytes", MaxBodyBytes)), nil
	}
	if err != nil {
		return httpapi.Error(http.StatusBadRequest, httpapi.CodeInvalidRequest, err.Error()), nil
	}

	status, out, err := best.fn(ctx, &Request{HTTP: req, Token: tok, Params: params, body: body})
	if err != nil {
		return rt.failure(ctx, method, best.Pattern, tok.ID, err), nil
	}
	if method != http.MethodGet && status >= 200 && status < 300 { // an audit trail of changes
		rt.logger.InfoContext(ctx, "admin change", "method", method, "route", best.Pattern, "params", params, "tokenId", tok.ID, "status", status)
	}
	if out == nil {
		return httpapi.Response{StatusCode: status, Headers: map[string]string{"cache-control": "no-store"}}, nil
	}
	return httpapi.JSON(status, out), nil
}

// failure answers a handler's error: an *Error as it says, a request the store refused as 400,
// anything else as a logged 500.
func (rt *Router) failure(ctx context.Context, method, pattern, tokenID string, err error) httpapi.Response {
	var e *Error
	if errors.As(err, &e) {
		return httpapi.Error(e.Status, e.Code, e.Message)
	}
	if resp, ok := storeRefused(err); ok {
		rt.logger.WarnContext(ctx, "admin request refused by the store", "method", method, "route", pattern, "tokenId", tokenID, "error", err.Error())
		return resp
	}
	rt.logger.ErrorContext(ctx, "admin request failed", "method", method, "route", pattern, "tokenId", tokenID, "error", err.Error())
	return httpapi.Error(http.StatusInternalServerError, httpapi.CodeInternal, "internal error")
}

func unauthorized(msg string) httpapi.Response {
	resp := httpapi.Error(http.StatusUnauthorized, httpapi.CodeUnauthorized, msg)
	resp.Headers["www-authenticate"] = `Bearer realm="cdp-admin"`
	return resp
}
