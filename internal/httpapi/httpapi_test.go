package httpapi_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/serverless-cdp/cdp/internal/httpapi"
)

func withAuth(v string) httpapi.Request {
	return httpapi.Request{Headers: map[string]string{"authorization": v}}
}

func TestBasicAuth(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	for _, c := range []struct {
		header, user, pass string
		ok                 bool
	}{
		{"Basic " + b64("key:"), "key", "", true},
		{"Basic " + b64("key"), "key", "", true},
		{"basic " + b64("key:secret"), "key", "secret", true},
		{"Basic " + b64("key:a:b"), "key", "a:b", true},
		{"Basic " + b64(":pass"), "", "", false},
		{"Basic !!!", "", "", false},
		{"Bearer " + b64("key:"), "", "", false},
		{"", "", "", false},
	} {
		u, p, ok := httpapi.BasicAuth(withAuth(c.header))
		if u != c.user || p != c.pass || ok != c.ok {
			t.Errorf("%q: got %q %q %v", c.header, u, p, ok)
		}
	}
	// Header names are matched case-insensitively when a caller did not lower-case them.
	if u, _, ok := httpapi.BasicAuth(httpapi.Request{Headers: map[string]string{"Authorization": "Basic " + b64("k:")}}); !ok || u != "k" {
		t.Error("mixed-case header name not found")
	}
}

func TestBearerToken(t *testing.T) {
	for h, want := range map[string]string{"Bearer abc": "abc", "bearer  abc ": "abc", "Bearer": "", "Bearer ": "", "Basic abc": "", "abc": ""} {
		got, ok := httpapi.BearerToken(withAuth(h))
		if got != want || ok != (want != "") {
			t.Errorf("%q: got %q %v", h, got, ok)
		}
	}
}

func TestBodyAndDecode(t *testing.T) {
	req := httpapi.Request{Body: base64.StdEncoding.EncodeToString([]byte(`{"a":1}`)), IsBase64Encoded: true}
	b, err := httpapi.Body(req, 100)
	if err != nil || string(b) != `{"a":1}` {
		t.Fatalf("base64 body: %q %v", b, err)
	}
	if _, err := httpapi.Body(req, 3); !errors.Is(err, httpapi.ErrBodyTooLarge) {
		t.Fatalf("limit: %v", err)
	}
	if _, err := httpapi.Body(httpapi.Request{Body: "12345"}, 4); !errors.Is(err, httpapi.ErrBodyTooLarge) {
		t.Fatalf("plain limit: %v", err)
	}
	var v struct{ A int }
	for _, bad := range []string{`{"a":1,"b":2}`, `{"a":1} x`, `{"a":"1"}`, `nope`, ``} {
		if err := httpapi.DecodeJSON([]byte(bad), &v, false); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if err := httpapi.DecodeJSON([]byte("  "), &v, true); err != nil {
		t.Errorf("empty optional body: %v", err)
	}
	if err := httpapi.DecodeJSON([]byte(`{"a":2}`), &v, false); err != nil || v.A != 2 {
		t.Errorf("decode: %+v %v", v, err)
	}
}

// TestHTTPHandler: requests reach the handler as API Gateway would shape them (lower-case
// headers, raw path, query, base64 for binary bodies) and the answer is written back.
func TestHTTPHandler(t *testing.T) {
	var got httpapi.Request
	h := httpapi.HTTPHandler(httpapi.HandlerFunc(func(_ context.Context, req httpapi.Request) (httpapi.Response, error) {
		got = req
		resp := httpapi.JSON(201, map[string]string{"ok": "yes"})
		resp.Headers["x-extra"] = "1"
		return resp, nil
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()

	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte(`{"event":"x"}`))
	_ = zw.Close()
	req, _ := http.NewRequest("POST", srv.URL+"/v1/t%2Fx?a=1&a=2", bytes.NewReader(gz.Bytes()))
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set("X-Mixed-Case", "v")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 201 || resp.Header.Get("X-Extra") != "1" || strings.TrimSpace(string(body)) != `{"ok":"yes"}` {
		t.Fatalf("answer: %d %v %q", resp.StatusCode, resp.Header, body)
	}
	if httpapi.Method(got) != "POST" || got.RawPath != "/v1/t%2Fx" || got.RawQueryString != "a=1&a=2" ||
		got.QueryStringParameters["a"] != "1,2" || got.Headers["x-mixed-case"] != "v" || got.Headers["content-encoding"] != "gzip" {
		t.Fatalf("request: %+v", got)
	}
	raw, err := httpapi.Body(got, 1<<20)
	if !got.IsBase64Encoded || err != nil || !bytes.Equal(raw, gz.Bytes()) {
		t.Fatalf("binary body not passed as base64: %v %v", got.IsBase64Encoded, err)
	}

	// A failing handler becomes a 500 with a JSON error.
	fail := httptest.NewServer(httpapi.HTTPHandler(httpapi.HandlerFunc(func(context.Context, httpapi.Request) (httpapi.Response, error) {
		return httpapi.Response{}, errors.New("boom")
	})))
	defer fail.Close()
	r2, err := http.Get(fail.URL + "/x")
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := io.ReadAll(r2.Body)
	r2.Body.Close()
	if r2.StatusCode != 500 || !strings.Contains(string(b2), `"code":"internal"`) {
		t.Fatalf("failure: %d %s", r2.StatusCode, b2)
	}
}
