// Package localhttp is the local runner's API Gateway: it routes plain HTTP requests by path
// prefix to the Lambda handlers, converting them to API Gateway HTTP API (payload 2.0) events
// with httpapi.FromHTTP, so local runs call the very handlers Lambda runs.
package localhttp

import (
	"context"
	"io"
	"net/http"
	"sort"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/serverless-cdp/cdp/internal/httpapi"
)

// Func is a Lambda handler for API Gateway HTTP API events.
type Func func(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)

// Route sends requests whose path starts with Prefix to Handler.
type Route struct {
	Prefix  string
	Handler Func
}

// Router serves the routes, longest prefix first, as one API Gateway would.
func Router(routes []Route) http.Handler {
	sorted := append([]Route(nil), routes...)
	sort.Slice(sorted, func(i, j int) bool { return len(sorted[i].Prefix) > len(sorted[j].Prefix) })
	handlers := make([]http.Handler, len(sorted))
	for i, rt := range sorted {
		handlers[i] = httpapi.HTTPHandler(httpapi.HandlerFunc(rt.Handler))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// API Gateway terminates TLS and says so; locally it is plain HTTP, which analytics.js
		// must be told through the settings endpoint.
		if r.Header.Get("X-Forwarded-Proto") == "" {
			r.Header.Set("X-Forwarded-Proto", "http")
		}
		for i, rt := range sorted {
			if strings.HasPrefix(r.URL.Path, rt.Prefix) {
				handlers[i].ServeHTTP(w, r)
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"code":"not_found","message":"no such route"}`)
	})
}
