package httpapi_test

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/serverless-cdp/cdp/internal/httpapi"
)

// TestLambdaAdapter: an API Gateway v2 event reaches a net/http handler with its method, raw
// path, query, headers and decoded body, and the handler's answer comes back with its header
// names as written; a binary answer is base64-encoded.
func TestLambdaAdapter(t *testing.T) {
	var seen *http.Request
	var body []byte
	h := httpapi.Lambda(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r
		body, _ = io.ReadAll(r.Body)
		w.Header()["x-lower"] = []string{"1"}
		w.Header().Set("Retry-After", "2")
		w.WriteHeader(202)
		_, _ = w.Write([]byte{0xff, 0x00})
	}))
	req := httpapi.Request{RawPath: "/a/b%2Fc", QueryStringParameters: map[string]string{"q": "x y"},
		Headers: map[string]string{"authorization": "Bearer t", "host": "api.example"}, Cookies: []string{"a=1"},
		Body: base64.StdEncoding.EncodeToString([]byte("hi")), IsBase64Encoded: true,
		RequestContext: events.APIGatewayV2HTTPRequestContext{HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "post", SourceIP: "203.0.113.9"}}}
	resp, err := h(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if seen.Method != "POST" || httpapi.RawPath(seen) != "/a/b%2Fc" || seen.URL.Path != "/a/b/c" || seen.URL.Query().Get("q") != "x y" ||
		seen.Header.Get("Authorization") != "Bearer t" || seen.Host != "api.example" || string(body) != "hi" || seen.RemoteAddr != "203.0.113.9" {
		t.Fatalf("request: %s %s %q %v %q", seen.Method, seen.URL, body, seen.Header, seen.Host)
	}
	if c, err := seen.Cookie("a"); err != nil || c.Value != "1" {
		t.Fatalf("cookie: %v", err)
	}
	if resp.StatusCode != 202 || resp.Headers["x-lower"] != "1" || resp.Headers["Retry-After"] != "2" || !resp.IsBase64Encoded || resp.Body != base64.StdEncoding.EncodeToString([]byte{0xff, 0x00}) {
		t.Fatalf("response: %+v", resp)
	}
	// A body that is not base64 fails when the handler reads it, so the handler answers it.
	req.Body = "!!!"
	if _, err := h(context.Background(), req); err != nil || len(body) != 0 {
		t.Fatalf("bad base64: %v %q", err, body)
	}
}
