package ingest_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestNetHTTPHandler: the tracking API is a net/http handler; an API Gateway event (here a
// base64-encoded gzip body, as API Gateway sends binary bodies) reaches it through the one
// adapter with the same answer and header names as a plain net/http request, CORS included, and
// settings answers with the API's domain name.
func TestNetHTTPHandler(t *testing.T) {
	body := gz(`{"userId":"u1","event":"Signed Up","messageId":"m1"}`)

	pub := &memPub{}
	req := httptest.NewRequest("POST", "/v1/track", strings.NewReader(body))
	req.Header.Set("Authorization", basic("good-key:"))
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set("Origin", "https://shop.example")
	w := httptest.NewRecorder()
	newHandler(pub).ServeHTTP(w, req)
	if w.Code != 200 || w.Body.String() != `{"success":true}` || len(pub.messages(t)) != 1 {
		t.Fatalf("net/http: %d %s", w.Code, w.Body)
	}

	pub = &memPub{}
	ev := post("/v1/track", base64.StdEncoding.EncodeToString([]byte(body)), "authorization", basic("good-key:"),
		"content-encoding", "gzip", "origin", "https://shop.example")
	ev.IsBase64Encoded = true
	resp, err := newHandler(pub).Handle(context.Background(), ev)
	if err != nil || resp.StatusCode != 200 || resp.Body != w.Body.String() || len(pub.messages(t)) != 1 {
		t.Fatalf("event: %d %s %v", resp.StatusCode, resp.Body, err)
	}
	for k, v := range w.Header() {
		if resp.Headers[k] != v[0] {
			t.Errorf("header %s: event %q, net/http %q", k, resp.Headers[k], v[0])
		}
	}
	if resp.Headers["Content-Type"] != "application/json" || resp.Headers["Access-Control-Allow-Origin"] != "*" || len(resp.Headers) != len(w.Header()) {
		t.Fatalf("headers: %v", resp.Headers)
	}

	ev = post("/v1/track", "bm90IGJhc2U2NA=!", "authorization", basic("good-key:"))
	ev.IsBase64Encoded = true
	if resp, _ := newHandler(&memPub{}).Handle(context.Background(), ev); resp.StatusCode != 400 || !strings.Contains(resp.Body, "body is not valid base64") {
		t.Fatalf("bad base64: %d %s", resp.StatusCode, resp.Body)
	}

	get := post("/v1/projects/good-key/settings", "", "host", "other.example")
	get.RequestContext.HTTP.Method, get.RequestContext.DomainName = "GET", "api.example"
	resp, _ = newHandler(&memPub{}).Handle(context.Background(), get)
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Body, `"apiHost":"api.example/v1"`) {
		t.Fatalf("settings: %d %s", resp.StatusCode, resp.Body)
	}
}
