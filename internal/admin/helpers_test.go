package admin_test

import (
	"encoding/json"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/serverless-cdp/cdp/internal/httpapi"
)

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
