package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"
)

// Path prefixes the API dispatches on.
const (
	AdminPrefix   = "/admin/"
	ProfilePrefix = "/v1/spaces/"
	ConsolePrefix = "/console"
)

// API is the handler of functions/api: it dispatches /admin/... to the admin API and
// /v1/spaces/... to the Profile API, and answers 404 for anything else or for a part left unset.
// It never returns an error to Lambda and never lets a panic escape: internal failures become
// 500 {"code":"internal"} and are logged.
//
// Parts are plain functions so any handler plugs in as a method value:
//
//	api := &httpapi.API{Admin: adminRouter.Serve, Profile: profileHandler.Handle, Logger: logger}
//	lambda.Start(api.Handle)
type API struct {
	Admin   HandlerFunc // /admin and /admin/...
	Profile HandlerFunc // /v1/spaces/... (Segment Profile API shape); nil until wired: 404
	Console HandlerFunc // /console and /console/... (the web UI); nil: 404
	Logger  *slog.Logger
}

// Handle serves one request; its signature fits lambda.Start.
func (a *API) Handle(ctx context.Context, req Request) (resp Response, err error) {
	start := time.Now()
	method, path := Method(req), Path(req)
	logPath := path
	if strings.HasPrefix(path, ProfilePrefix) {
		logPath = ProfilePrefix + "..." // Profile API paths carry identifiers (emails): not logged
	}
	logger := a.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	defer func() {
		logger.InfoContext(ctx, "request", "method", method, "path", logPath, "status", resp.StatusCode,
			"durationMs", time.Since(start).Milliseconds(), "requestId", req.RequestContext.RequestID)
	}()

	var h HandlerFunc
	switch {
	case path == strings.TrimSuffix(AdminPrefix, "/") || strings.HasPrefix(path, AdminPrefix):
		h = a.Admin
	case strings.HasPrefix(path, ProfilePrefix):
		h = a.Profile
	case path == ConsolePrefix || strings.HasPrefix(path, ConsolePrefix+"/"):
		h = a.Console
	}
	if h == nil {
		return Error(http.StatusNotFound, CodeNotFound, "no route for "+method+" "+path), nil
	}
	resp, err = Recover(logger, h)(ctx, req)
	if err != nil {
		logger.ErrorContext(ctx, "handler failed", "method", method, "path", logPath, "error", err.Error())
		return Error(http.StatusInternalServerError, CodeInternal, "internal error"), nil
	}
	return resp, nil
}

// Recover is the one panic recovery of the HTTP handlers: a panic in h is logged with its stack
// (the path only up to its API's prefix: Profile API paths carry identifiers) and answered 500
// {"code":"internal"}; it never reaches the Lambda runtime.
func Recover(logger *slog.Logger, h HandlerFunc) HandlerFunc {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return func(ctx context.Context, req Request) (resp Response, err error) {
		defer func() {
			if p := recover(); p != nil {
				path := Path(req)
				if strings.HasPrefix(path, ProfilePrefix) {
					path = ProfilePrefix + "..."
				}
				logger.ErrorContext(ctx, "panic in handler", "method", Method(req), "path", path, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				resp, err = Error(http.StatusInternalServerError, CodeInternal, "internal error"), nil
			}
		}()
		return h(ctx, req)
	}
}
