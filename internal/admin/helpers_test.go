package admin_test

import (
	"encoding/json"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/serverless-cdp/cdp/internal/admin"
	"github.com/serverless-cdp/cdp/internal/admin/deadletters"
	"github.com/serverless-cdp/cdp/internal/admin/identityrules"
	"github.com/serverless-cdp/cdp/internal/admin/sources"
	"github.com/serverless-cdp/cdp/internal/httpapi"
)

// mount registers the resources these tests exercise, as the composition root does (a nil
// service leaves its resource out).
func mount(srcs sources.Service, rules identityrules.Service, dls deadletters.Service) []admin.Registrar {
	var out []admin.Registrar
	if srcs != nil {
		out = append(out, func(r *admin.Router) { sources.Register(r, srcs) })
	}
	if rules != nil {
		out = append(out, func(r *admin.Router) { identityrules.Register(r, rules) })
	}
	if dls != nil {
		out = append(out, func(r *admin.Router) { deadletters.Register(r, dls) })
	}
	return out
}

func request(method, path, auth, body string) httpapi.Request {
	req := httpapi.Request{
		RawPath: path,
		Headers: map[string]string{"content-type": "application/json"},
		Body:    body,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method, Path: path},
		},
	}
	if auth != "" {
		req.Headers["authorization"] = auth
	}
	return req
}

func decode[T any](t *testing.T, resp httpapi.Response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(resp.Body), &v); err != nil {
		t.Fatalf("decode %q: %v", resp.Body, err)
	}
	return v
}
