//go:build integration

package admin_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/serverless-cdp/cdp/internal/admin"
	"github.com/serverless-cdp/cdp/internal/httpapi"
)

// Path parameters, query parameters and limits are checked by the router for every route, so
// bad input is a 400 before any store sees it (it was a 500 from DynamoDB's key limits).
func TestBadPathAndQueryParametersAre400(t *testing.T) {
	e := newEnv(t)
	before := e.itemCount(t)
	long := strings.Repeat("x", 3000)
	for _, tc := range []struct{ method, path string }{
		{"GET", "/admin/v1/sources/" + long},
		{"DELETE", "/admin/v1/sources/" + long},
		{"POST", "/admin/v1/sources/" + long + "/disable"},
		{"GET", "/admin/v1/sources/u%FF"},
		{"GET", "/admin/v1/sources/u%EF%BF%BD"},
		{"GET", "/admin/v1/sources?next=" + long},
		{"GET", "/admin/v1/sources?next=a%00b"},
	} {
		req := request(tc.method, tc.path, "Bearer "+e.token, "")
		if path, query, ok := strings.Cut(tc.path, "?"); ok {
			req.RawPath, req.RequestContext.HTTP.Path = path, path
			k, v, _ := strings.Cut(query, "=")
			if v == "a%00b" {
				v = "a\x00b"
			}
			req.QueryStringParameters = map[string]string{k: v}
		}
		resp, err := e.api.Handle(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(resp.Body, httpapi.CodeInvalidRequest) {
			t.Errorf("%s %.60s: %d %s", tc.method, tc.path, resp.StatusCode, resp.Body)
		}
	}
	if n := e.itemCount(t); n != before {
		t.Fatalf("a refused request changed the table: %d items, was %d", n, before)
	}
	if admin.MaxParamBytes != 512 || admin.MaxQueryBytes != 2048 {
		t.Fatal("documented limits changed: update README and api/openapi.yaml")
	}
	// At the limit, an unknown id is simply not found.
	if resp := e.call(t, "GET", "/admin/v1/sources/"+strings.Repeat("y", admin.MaxParamBytes), ""); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown id at the limit: %d %s", resp.StatusCode, resp.Body)
	}
}
