// Package ingest is the tracking API: the Segment-compatible HTTP endpoint that authenticates a
// source by write key, validates and normalizes messages (package tracking) and writes them to
// the `events` Kinesis stream. It answers 200 only once every message is durably in the stream.
package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/serverless-cdp/cdp/internal/httpapi"
	"github.com/serverless-cdp/cdp/internal/stream"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

// Source is what ingest needs to know about the sender of a request.
type Source struct {
	ID      string
	Enabled bool
}

// ErrUnknownKey is returned by a KeyResolver for a key that belongs to no source.
var ErrUnknownKey = errors.New("unknown write key")

// KeyResolver maps a write key to its source (cached: it runs on every request).
type KeyResolver interface {
	ResolveWriteKey(ctx context.Context, writeKey string) (Source, error)
}

// Publisher writes records durably or fails (stream.Publisher).
type Publisher interface {
	Put(ctx context.Context, recs []stream.Record) error
}

// Monitor counts the requests' outcomes per source for the console (monitor.Recorder): in
// memory, flushed at most every few seconds, so it adds no write per event.
type Monitor interface {
	Accepted(source string, events int)
	Rejected(source, code, message, path string) // never the payload
	FlushIfDue(ctx context.Context)
}

// Config tunes the handler.
type Config struct {
	Limits         tracking.Limits
	AllowedOrigins []string // CORS; "*" allows any
	Now            func() time.Time
	Logger         *slog.Logger
	Monitor        Monitor // nil: not counted
}

// Handler serves the tracking API.
type Handler struct {
	keys   KeyResolver
	pub    Publisher
	lim    tracking.Limits
	cors   corsPolicy
	now    func() time.Time
	logger *slog.Logger
	mon    Monitor
}

// New builds a handler.
func New(keys KeyResolver, pub Publisher, cfg Config) *Handler {
	if cfg.Limits == (tracking.Limits{}) {
		cfg.Limits = tracking.DefaultLimits
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Handler{keys: keys, pub: pub, lim: cfg.Limits, cors: newCORS(cfg.AllowedOrigins), now: cfg.Now, logger: cfg.Logger, mon: cfg.Monitor}
}

// callTypes maps the endpoint's last path segment to the message kind it accepts.
var callTypes = map[string]string{
	"identify": tracking.TypeIdentify, "i": tracking.TypeIdentify,
	"track": tracking.TypeTrack, "t": tracking.TypeTrack,
	"page": tracking.TypePage, "p": tracking.TypePage,
	"screen": tracking.TypeScreen, "s": tracking.TypeScreen,
	"group": tracking.TypeGroup, "g": tracking.TypeGroup,
	"alias": tracking.TypeAlias, "a": tracking.TypeAlias,
	"batch": tracking.KindBatch, "b": tracking.KindBatch, "import": tracking.KindBatch,
}

// Handle is the Lambda entry point (API Gateway HTTP API, payload format 2.0). A panic is
// answered 500 {"code":"internal"} (httpapi.Recover), never a crashed invocation.
func (h *Handler) Handle(ctx context.Context, req httpapi.Request) (httpapi.Response, error) {
	return httpapi.Recover(h.logger, httpapi.Lambda(h))(ctx, req)
}

// ServeHTTP serves the tracking API over net/http. Header names are written as they are
// (Content-Type, Retry-After, Access-Control-*), so the API Gateway answer carries them unchanged.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var n note
	resp := h.route(r.Context(), r, &n)
	h.observe(r.Context(), &n, resp)
	h.cors.apply(r.Header.Get("Origin"), r.Header.Get("Access-Control-Request-Headers"), &resp)
	for k, v := range resp.Headers {
		w.Header()[k] = []string{v}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.WriteString(w, resp.Body)
}

// note is what a request's outcome is counted under (Config.Monitor).
type note struct {
	path   string // the endpoint, without a write key ("" for a preflight: not counted)
	source string // the source id, once the write key is known
	events int    // messages accepted
}

// observe counts the outcome of a tracking request and flushes the counts when due.
func (h *Handler) observe(ctx context.Context, n *note, resp httpapi.Response) {
	if h.mon == nil || n.path == "" {
		return
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		h.mon.Accepted(n.source, n.events)
	case resp.StatusCode >= 400:
		var e struct{ Code, Message string }
		_ = json.Unmarshal([]byte(resp.Body), &e)
		h.mon.Rejected(n.source, e.Code, e.Message, n.path)
	}
	h.mon.FlushIfDue(ctx)
}

func (h *Handler) route(ctx context.Context, r *http.Request, n *note) httpapi.Response {
	method, path := r.Method, httpapi.RawPath(r)
	if i := strings.Index(path, "/v1/"); i > 0 { // tolerate a stage prefix such as /prod/v1/track
		path = path[i:]
	}
	rest, ok := strings.CutPrefix(strings.TrimSuffix(path, "/"), "/v1/")
	n.path = "/v1/(unknown)"
	if !ok {
		return errorResponse(http.StatusNotFound, tracking.CodeUnknownCallType, "no such endpoint")
	}
	if method == http.MethodOptions {
		n.path = ""
		return httpapi.Response{StatusCode: http.StatusNoContent}
	}
	if key, ok := settingsKey(rest); ok {
		n.path = "/v1/projects/{writeKey}/settings"
		if method != http.MethodGet {
			return errorResponse(http.StatusMethodNotAllowed, tracking.CodeMethodNotAllowed, "use GET")
		}
		return h.settings(ctx, r, key)
	}
	kind, ok := callTypes[rest]
	if !ok {
		return errorResponse(http.StatusNotFound, tracking.CodeUnknownCallType, fmt.Sprintf("no such endpoint /v1/%s", rest))
	}
	n.path = "/v1/" + rest
	if method != http.MethodPost {
		return errorResponse(http.StatusMethodNotAllowed, tracking.CodeMethodNotAllowed, "use POST")
	}
	return h.collect(ctx, r, kind, n)
}

func (h *Handler) collect(ctx context.Context, r *http.Request, kind string, n *note) httpapi.Response {
	receivedAt := h.now()
	// A key in the Authorization header is checked before the body is even read.
	headerKey, hasHeader := basicUser(r.Header.Get("Authorization"))
	var src Source
	if hasHeader {
		var resp *httpapi.Response
		src, resp = h.authenticate(ctx, headerKey)
		if n.source = src.ID; resp != nil {
			return *resp
		}
	}
	body, err := h.body(r)
	if err != nil {
		return clientError(err)
	}
	parsed, err := tracking.ParseRequest(body, kind, h.lim)
	if err != nil {
		return clientError(err)
	}
	if !hasHeader {
		var resp *httpapi.Response
		src, resp = h.authenticate(ctx, parsed.WriteKey)
		if n.source = src.ID; resp != nil {
			return *resp
		}
	}
	msgs, err := parsed.Normalize(receivedAt, src.ID)
	if err != nil {
		return clientError(err)
	}
	recs := make([]stream.Record, len(msgs))
	for i := range msgs {
		data, err := json.Marshal(tracking.Record{SourceID: src.ID, Message: msgs[i]})
		if err != nil {
			// Normalize accepts only what encodes, so this is a message the checks missed: it
			// is the client's input, refused (400), never retried as if the store had failed.
			h.logger.WarnContext(ctx, "accepted message does not encode", "err", err, "index", i)
			return errorResponse(http.StatusBadRequest, tracking.CodeInvalidMessage, fmt.Sprintf("message %d cannot be encoded: %v", i, err))
		}
		recs[i] = stream.Record{PartitionKey: msgs[i].PartitionKey(), Data: data}
	}
	if err := h.pub.Put(ctx, recs); err != nil {
		return h.unavailable(ctx, err, len(msgs))
	}
	n.events = len(msgs)
	return jsonResponse(http.StatusOK, `{"success":true}`)
}

func (h *Handler) unavailable(ctx context.Context, err error, n int) httpapi.Response {
	h.logger.ErrorContext(ctx, "events not stored; client will retry", "err", err, "messages", n)
	resp := errorResponse(http.StatusServiceUnavailable, tracking.CodeUnavailable, "events could not be stored; retry later")
	resp.Headers["Retry-After"] = "1"
	return resp
}

func (h *Handler) authenticate(ctx context.Context, key string) (Source, *httpapi.Response) {
	deny := func(msg string) (Source, *httpapi.Response) {
		r := errorResponse(http.StatusUnauthorized, tracking.CodeUnauthorized, msg)
		return Source{}, &r
	}
	if key == "" {
		return deny("missing write key: use HTTP Basic auth with the write key as user name, or writeKey in the body")
	}
	src, err := h.keys.ResolveWriteKey(ctx, key)
	switch {
	case errors.Is(err, ErrUnknownKey):
		return deny("invalid write key")
	case err != nil:
		h.logger.ErrorContext(ctx, "resolve write key", "err", err)
		r := errorResponse(http.StatusServiceUnavailable, tracking.CodeUnavailable, "could not check the write key; retry later")
		r.Headers["Retry-After"] = "1"
		return Source{}, &r
	case !src.Enabled:
		_, r := deny("source is disabled")
		return Source{ID: src.ID}, r // counted under the source, still refused
	}
	return src, nil
}

// body returns the request body (decoded from base64 by the adapter for API Gateway's binary
// bodies) decompressed from gzip, reading at most the batch limit (plus one byte to detect
// overflow) so a zip bomb costs nothing.
func (h *Handler) body(r *http.Request) ([]byte, error) {
	raw, err := io.ReadAll(r.Body)
	if err != nil && !errors.Is(err, httpapi.ErrBodyTooLarge) {
		return nil, &tracking.Error{Code: tracking.CodeInvalidEncoding, Message: "body is not valid base64"}
	}
	if err != nil { // over the adapter's limit, far over the batch limit: refused as one
		return nil, &tracking.Error{Code: tracking.CodeBatchTooLarge, Message: fmt.Sprintf("request body is over %d bytes; the limit is %d", httpapi.MaxRequestBytes, h.lim.MaxBatchBytes)}
	}
	enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding")))
	gz := enc == "gzip" || (enc == "" && len(raw) > 1 && raw[0] == 0x1f && raw[1] == 0x8b)
	switch {
	case gz:
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, &tracking.Error{Code: tracking.CodeInvalidEncoding, Message: "body is not valid gzip"}
		}
		out, err := io.ReadAll(io.LimitReader(zr, int64(h.lim.MaxBatchBytes)+1))
		if err != nil {
			return nil, &tracking.Error{Code: tracking.CodeInvalidEncoding, Message: "body is not valid gzip"}
		}
		return out, nil
	case enc == "" || enc == "identity":
		return raw, nil
	default:
		return nil, &tracking.Error{Code: tracking.CodeInvalidEncoding, Message: fmt.Sprintf("unsupported Content-Encoding %q", enc)}
	}
}

// settings answers analytics.js's start-up request so it sends its events here.
func (h *Handler) settings(ctx context.Context, r *http.Request, key string) httpapi.Response {
	if _, resp := h.authenticate(ctx, key); resp != nil {
		return *resp
	}
	host := r.Host // API Gateway's domain name, else the Host header (httpapi.ToHTTP)
	proto := "https"
	if p := r.Header.Get("X-Forwarded-Proto"); p != "" {
		proto = p
	}
	body, err := json.Marshal(map[string]any{
		"integrations": map[string]any{
			"Segment.io": map[string]any{
				"apiKey":   key,
				"apiHost":  host + "/v1",
				"protocol": proto,
				// analytics.js batches through /v1/b when this is on.
				"deliveryStrategy": map[string]any{"strategy": "batching", "config": map[string]any{"size": 10, "timeout": 5000}},
			},
		},
		"plan":                 map[string]any{"track": map[string]any{"__default": map[string]any{"enabled": true}}, "identify": map[string]any{"__default": map[string]any{"enabled": true}}, "group": map[string]any{"__default": map[string]any{"enabled": true}}},
		"analyticsNextEnabled": true,
		"middlewareSettings":   map[string]any{},
		"enabledMiddleware":    map[string]any{},
		"metrics":              map[string]any{"sampleRate": 0},
		"remotePlugins":        []any{},
	})
	if err != nil {
		return errorResponse(http.StatusInternalServerError, "internal", "could not encode settings")
	}
	resp := jsonResponse(http.StatusOK, string(body))
	resp.Headers["Cache-Control"] = "public, max-age=300"
	return resp
}

func settingsKey(rest string) (string, bool) {
	parts := strings.Split(rest, "/")
	if len(parts) == 3 && parts[0] == "projects" && parts[2] == "settings" && parts[1] != "" {
		return parts[1], true
	}
	return "", false
}

// basicUser extracts the write key from "Basic base64(key:)" (or without the colon).
func basicUser(auth string) (string, bool) {
	c := httpapi.ParseAuthorization(auth)
	if c.Scheme != "basic" || !c.Present {
		return "", false
	}
	return c.User, true // a Basic header that is not base64 is a bad key (""), not a missing one
}

func clientError(err error) httpapi.Response {
	var e *tracking.Error
	if errors.As(err, &e) {
		return errorResponse(http.StatusBadRequest, e.Code, e.Message)
	}
	return errorResponse(http.StatusBadRequest, tracking.CodeInvalidJSON, err.Error())
}

func errorResponse(status int, code, msg string) httpapi.Response {
	return jsonResponse(status, httpapi.ErrorJSON(code, msg))
}

func jsonResponse(status int, body string) httpapi.Response {
	return httpapi.Response{
		StatusCode: status,
		Headers:    map[string]string{"Content-Type": "application/json"},
		Body:       body,
	}
}
