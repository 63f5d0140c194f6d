package console

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/serverless-cdp/cdp/internal/httpapi"
)

func contextWith(r *http.Request, s session) context.Context {
	return context.WithValue(r.Context(), ctxKey{}, s)
}

// APIError is an answer of the admin or Profile API that is not a success.
type APIError struct {
	Status  int
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *APIError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("%d %s", e.Status, http.StatusText(e.Status))
	}
	return e.Message
}

// IsNotFound reports whether err is a 404 answer.
func IsNotFound(err error) bool {
	var e *APIError
	return errors.As(err, &e) && e.Status == http.StatusNotFound
}

// call sends one request to the admin API (paths under /admin/) or the Profile API (paths
// under /v1/spaces/), in process, with the session's admin token; in (if not nil) is sent as
// JSON and a 2xx answer decoded into out (if not nil). Any other answer is an *APIError. path
// may carry a query.
func (s *Server) call(r *http.Request, method, path string, in, out any) error {
	u, err := url.Parse(path)
	if err != nil {
		return fmt.Errorf("console: bad API path %q: %w", path, err)
	}
	token := sessionOf(r).token
	req := httpapi.Request{
		Version: "2.0", RouteKey: "$default", RawPath: u.EscapedPath(), RawQueryString: u.RawQuery,
		Headers: map[string]string{"content-type": "application/json", "host": r.Host},
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method, Path: u.Path, SourceIP: "console"},
		},
	}
	if len(u.Query()) > 0 {
		req.QueryStringParameters = map[string]string{}
		for k, vs := range u.Query() {
			req.QueryStringParameters[k] = strings.Join(vs, ",")
		}
	}
	var h httpapi.HandlerFunc
	switch {
	case strings.HasPrefix(u.Path, "/admin/"):
		h, req.Headers["authorization"] = s.o.Admin, "Bearer "+token
	case strings.HasPrefix(u.Path, httpapi.ProfilePrefix):
		h, req.Headers["authorization"] = s.o.Profile, "Basic "+base64.StdEncoding.EncodeToString([]byte(token+":"))
	default:
		return fmt.Errorf("console: %s is not an API path", u.Path)
	}
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("console: encode %s %s: %w", method, u.Path, err)
		}
		req.Body = string(b)
	}
	resp, err := h(r.Context(), req)
	if err != nil {
		return fmt.Errorf("console: %s %s: %w", method, u.Path, err)
	}
	return decodeAnswer(resp, out)
}

func decodeAnswer(resp httpapi.Response, out any) error {
	body := []byte(resp.Body)
	if resp.IsBase64Encoded {
		if b, err := base64.StdEncoding.DecodeString(resp.Body); err == nil {
			body = b
		}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := &APIError{Status: resp.StatusCode}
		_ = json.Unmarshal(body, e)
		return e
	}
	if out == nil || len(body) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("console: decode answer: %w", err)
	}
	return nil
}

// profilePath is the Profile API path of one profile resource: id is "type:value" (or a
// profile id), resource one of traits, external_ids, events, metadata, links, merges, consent.
func (s *Server) profilePath(id, resource string) string {
	return httpapi.ProfilePrefix + url.PathEscape(s.o.SpaceID) + "/collections/users/profiles/" + url.PathEscape(id) + "/" + resource
}
