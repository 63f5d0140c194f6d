// Package httpapi holds small helpers shared by the HTTP Lambda handlers (API Gateway HTTP API,
// payload format 2.0): JSON responses, errors as {"code","message"}, strict JSON request decoding,
// Basic and Bearer credential parsing, the top-level API dispatcher used by functions/api, and an
// adapter that serves a handler over net/http (local runner, tests).
package httpapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/serverless-cdp/cdp/internal/apitypes"
)

// Request and Response are the API Gateway HTTP API (payload format 2.0) event types.
type (
	Request  = events.APIGatewayV2HTTPRequest
	Response = events.APIGatewayV2HTTPResponse
)

// Handler handles one HTTP API request. Handlers return a response for every request they
// understand, including client errors; a non-nil error means an internal failure.
type Handler interface {
	Handle(ctx context.Context, req Request) (Response, error)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, req Request) (Response, error)

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, req Request) (Response, error) { return f(ctx, req) }

// Error codes used across the HTTP APIs.
const (
	CodeInvalidRequest   = "invalid_request"
	CodeUnauthorized     = "unauthorized"
	CodeNotFound         = "not_found"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeConflict         = "conflict"
	CodePayloadTooLarge  = "payload_too_large"
	CodeInternal         = "internal"
)

// ErrorBody is the JSON body of every error answer (a wire type: package apitypes, shared with
// the cdp CLI).
type ErrorBody = apitypes.ErrorBody

// JSON returns a response with v encoded as JSON. Responses are never cached: admin answers carry
// secrets (write keys) and profile answers carry personal data.
func JSON(status int, v any) Response {
	b, err := json.Marshal(v)
	if err != nil {
		return Error(http.StatusInternalServerError, CodeInternal, "could not encode response")
	}
	return Response{
		StatusCode: status,
		Headers: map[string]string{
			"content-type":  "application/json",
			"cache-control": "no-store",
		},
		Body: string(b),
	}
}

// ErrorJSON is the one encoding of an error answer's body: {"code","message"}.
func ErrorJSON(code, message string) string {
	b, _ := json.Marshal(ErrorBody{Code: code, Message: message})
	return string(b)
}

// Error returns an error response with body {"code","message"}.
func Error(status int, code, message string) Response {
	return Response{
		StatusCode: status,
		Headers: map[string]string{
			"content-type":  "application/json",
			"cache-control": "no-store",
		},
		Body: ErrorJSON(code, message),
	}
}

// Method returns the request's HTTP method in upper case.
func Method(req Request) string { return strings.ToUpper(req.RequestContext.HTTP.Method) }

// Path returns the request path (RawPath, falling back to the request context's path).
func Path(req Request) string {
	if req.RawPath != "" {
		return req.RawPath
	}
	return req.RequestContext.HTTP.Path
}

// Header returns a header value; API Gateway lower-cases header names, callers may not.
func Header(req Request, name string) string {
	if v, ok := req.Headers[strings.ToLower(name)]; ok {
		return v
	}
	for k, v := range req.Headers {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

// ErrBodyTooLarge is returned by Body and DecodeJSON when the body exceeds the limit.
var ErrBodyTooLarge = errors.New("request body too large")

// Body returns the decoded request body, refusing bodies larger than limit bytes.
func Body(req Request, limit int) ([]byte, error) {
	if !req.IsBase64Encoded {
		if len(req.Body) > limit {
			return nil, ErrBodyTooLarge
		}
		return []byte(req.Body), nil
	}
	if base64.StdEncoding.DecodedLen(len(req.Body)) > limit+3 {
		return nil, ErrBodyTooLarge
	}
	b, err := base64.StdEncoding.DecodeString(req.Body)
	if err != nil {
		return nil, fmt.Errorf("body is not valid base64: %w", err)
	}
	if len(b) > limit {
		return nil, ErrBodyTooLarge
	}
	return b, nil
}

// DecodeJSON decodes body into v strictly: exactly one JSON value, no unknown fields. An empty
// body (or only white space) is accepted when allowEmpty is set and leaves v untouched.
func DecodeJSON(body []byte, v any, allowEmpty bool) error {
	if len(strings.TrimSpace(string(body))) == 0 {
		if allowEmpty {
			return nil
		}
		return errors.New("request body is required")
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("invalid JSON body: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("invalid JSON body: unexpected data after the JSON value")
	}
	return nil
}

// Credentials is what an Authorization header carries. ParseAuthorization is the one parser
// of it: the tracking API reads a write key as the Basic user name, the Profile API an access
// token as the Basic user name (or password), and the admin API a Bearer token.
type Credentials struct {
	Scheme    string // lower-cased: "basic", "bearer", another scheme, or "" without a header
	Present   bool   // the scheme was followed by a credentials part
	User      string // Basic: the user name
	Password  string // Basic: the password (may be empty: Segment sends "key:" or just "key")
	Token     string // Bearer: the token
	Malformed bool   // Basic credentials that are not base64
}

// ParseAuthorization parses an Authorization header value.
func ParseAuthorization(header string) Credentials {
	scheme, rest, found := strings.Cut(strings.TrimSpace(header), " ")
	c := Credentials{Scheme: strings.ToLower(scheme), Present: found}
	switch c.Scheme {
	case "basic":
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(rest))
		if err != nil {
			c.Malformed = true
			return c
		}
		c.User, c.Password, _ = strings.Cut(string(raw), ":")
	case "bearer":
		c.Token = strings.TrimSpace(rest)
	}
	return c
}

// BearerToken returns the token of an "Authorization: Bearer <token>" header.
func BearerToken(req Request) (string, bool) {
	c := ParseAuthorization(Header(req, "authorization"))
	return c.Token, c.Scheme == "bearer" && c.Token != ""
}

// BasicAuth returns the user name and password of an "Authorization: Basic ..." header. The
// password may be empty (Segment write keys are sent as "key:" or just "key").
func BasicAuth(req Request) (user, password string, ok bool) {
	c := ParseAuthorization(Header(req, "authorization"))
	if c.Scheme != "basic" || !c.Present || c.Malformed || c.User == "" {
		return "", "", false
	}
	return c.User, c.Password, true
}
