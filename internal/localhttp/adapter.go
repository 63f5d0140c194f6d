// Package localhttp turns plain HTTP requests into API Gateway HTTP API (payload format 2.0)
// events and back, so the local runner and end-to-end tests call the very handlers Lambda runs.
package localhttp

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
)

// Func is a Lambda handler for API Gateway HTTP API events.
type Func func(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)

// Route sends requests whose path starts with Prefix to Handler.
type Route struct {
	Prefix  string
	Handler Func
}

// maxBody bounds what the local server reads, like API Gateway's 10 MB payload limit.
const maxBody = 10 << 20

// Router serves the routes, longest prefix first, as one API Gateway would.
func Router(routes []Route, logger *slog.Logger) http.Handler {
	sorted := append([]Route(nil), routes...)
	sort.Slice(sorted, func(i, j int) bool { return len(sorted[i].Prefix) > len(sorted[j].Prefix) })
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, rt := range sorted {
			if strings.HasPrefix(r.URL.Path, rt.Prefix) {
				serve(w, r, rt.Handler, logger)
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"code":"not_found","message":"no such route"}`)
	})
}

func serve(w http.ResponseWriter, r *http.Request, fn Func, logger *slog.Logger) {
	req, err := ToEvent(r)
	if err != nil {
		http.Error(w, `{"code":"bad_request","message":"could not read the request body"}`, http.StatusBadRequest)
		return
	}
	resp, err := fn(r.Context(), req)
	if err != nil {
		// Lambda turns a handler error into a 500 "Internal Server Error".
		logger.ErrorContext(r.Context(), "handler error", "path", r.URL.Path, "err", err)
		http.Error(w, `{"message":"Internal Server Error"}`, http.StatusInternalServerError)
		return
	}
	WriteResponse(w, resp)
}

// ToEvent builds the event API Gateway would deliver for r.
func ToEvent(r *http.Request) (events.APIGatewayV2HTTPRequest, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		return events.APIGatewayV2HTTPRequest{}, err
	}
	headers := make(map[string]string, len(r.Header))
	for k, v := range r.Header {
		headers[strings.ToLower(k)] = strings.Join(v, ",")
	}
	headers["host"] = r.Host
	if _, ok := headers["x-forwarded-proto"]; !ok {
		headers["x-forwarded-proto"] = "http"
	}
	query := map[string]string{}
	for k, v := range r.URL.Query() {
		query[k] = strings.Join(v, ",")
	}
	ip, _, _ := net.SplitHostPort(r.RemoteAddr)
	id := make([]byte, 8)
	_, _ = rand.Read(id)
	now := time.Now()
	ev := events.APIGatewayV2HTTPRequest{
		Version:               "2.0",
		RouteKey:              "$default",
		RawPath:               r.URL.EscapedPath(),
		RawQueryString:        r.URL.RawQuery,
		Headers:               headers,
		QueryStringParameters: query,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			DomainName: r.Host,
			Stage:      "$default",
			RequestID:  hex.EncodeToString(id),
			Time:       now.Format("02/Jan/2006:15:04:05 -0700"),
			TimeEpoch:  now.UnixMilli(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method: r.Method, Path: r.URL.Path, Protocol: r.Proto, SourceIP: ip, UserAgent: r.UserAgent(),
			},
		},
	}
	for _, c := range r.Cookies() {
		ev.Cookies = append(ev.Cookies, c.String())
	}
	// API Gateway base64-encodes bodies it cannot pass as text, such as gzip.
	if utf8.Valid(body) && !strings.Contains(strings.ToLower(headers["content-encoding"]), "gzip") {
		ev.Body = string(body)
	} else {
		ev.Body = base64.StdEncoding.EncodeToString(body)
		ev.IsBase64Encoded = true
	}
	return ev, nil
}

// WriteResponse writes a handler's response as API Gateway would.
func WriteResponse(w http.ResponseWriter, resp events.APIGatewayV2HTTPResponse) {
	for k, v := range resp.Headers {
		w.Header().Set(k, v)
	}
	for k, vs := range resp.MultiValueHeaders {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	for _, c := range resp.Cookies {
		w.Header().Add("Set-Cookie", c)
	}
	body := []byte(resp.Body)
	if resp.IsBase64Encoded {
		if dec, err := base64.StdEncoding.DecodeString(resp.Body); err == nil {
			body = dec
		}
	}
	status := resp.StatusCode
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
