//go:build integration

package admin_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/serverless-cdp/cdp/internal/admin"
	"github.com/serverless-cdp/cdp/internal/admintoken"
	"github.com/serverless-cdp/cdp/internal/apitypes"
	"github.com/serverless-cdp/cdp/internal/emulator/testenv"
	"github.com/serverless-cdp/cdp/internal/httpapi"
	"github.com/serverless-cdp/cdp/internal/source"
)

func TestMain(m *testing.M) { testenv.Main(m) }

type env struct {
	api     *httpapi.API
	sources *source.Repository
	db      *dynamodb.Client
	table   string
	token   string
}

func newEnv(t *testing.T) env {
	t.Helper()
	c := testenv.Clients(t)
	table := testenv.Table(t, c.DynamoDB)
	tokens := admintoken.NewStore(c.DynamoDB, table)
	_, tok, err := tokens.Create(context.Background(), "test")
	if err != nil {
		t.Fatal(err)
	}
	sources := source.NewRepository(c.DynamoDB, table)
	router := admin.New(tokens, nil, mount(sources, nil, nil)...)
	return env{api: &httpapi.API{Admin: router.Serve}, sources: sources, db: c.DynamoDB, table: table, token: tok}
}

func (e env) call(t *testing.T, method, path, body string) httpapi.Response {
	t.Helper()
	resp, err := e.api.Handle(context.Background(), request(method, path, "Bearer "+e.token, body))
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp
}

func (e env) itemCount(t *testing.T) int {
	t.Helper()
	out, err := e.db.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(e.table), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	return len(out.Items)
}

func TestSourcesLifecycle(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()

	resp := e.call(t, "POST", "/admin/v1/sources", `{"name":"web"}`)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, resp.Body)
	}
	if resp.Headers["cache-control"] != "no-store" || resp.Headers["content-type"] != "application/json" {
		t.Fatalf("headers: %v", resp.Headers)
	}
	created := decode[apitypes.SourceWithKey](t, resp)
	if created.Source.Name != "web" || !created.Source.Enabled || len(created.WriteKey) != 32 {
		t.Fatalf("created: %+v", created)
	}
	id := created.Source.ID
	if s, err := e.sources.ResolveWriteKey(ctx, created.WriteKey); err != nil || s.ID != id {
		t.Fatalf("key does not resolve: %+v %v", s, err)
	}

	resp = e.call(t, "GET", "/admin/v1/sources/"+id, "")
	if got := decode[source.Source](t, resp); resp.StatusCode != 200 || got.ID != id || strings.Contains(resp.Body, created.WriteKey) {
		t.Fatalf("get: %d %s", resp.StatusCode, resp.Body)
	}
	resp = e.call(t, "GET", "/admin/v1/sources/", "") // trailing slash tolerated
	list := decode[apitypes.SourceList](t, resp)
	if resp.StatusCode != 200 || len(list.Sources) != 1 || list.Sources[0].ID != id {
		t.Fatalf("list: %d %s", resp.StatusCode, resp.Body)
	}

	resp = e.call(t, "POST", "/admin/v1/sources/"+id+"/disable", "")
	if resp.StatusCode != 200 || decode[source.Source](t, resp).Enabled {
		t.Fatalf("disable: %d %s", resp.StatusCode, resp.Body)
	}
	if s, _ := e.sources.ResolveWriteKey(ctx, created.WriteKey); s.Enabled {
		t.Fatal("key still enabled after disable")
	}
	resp = e.call(t, "POST", "/admin/v1/sources/"+id+"/enable", "{}")
	if resp.StatusCode != 200 || !decode[source.Source](t, resp).Enabled {
		t.Fatalf("enable: %d %s", resp.StatusCode, resp.Body)
	}

	resp = e.call(t, "POST", "/admin/v1/sources/"+id+"/rotate-key", `{"graceSeconds":3600}`)
	rotated := decode[apitypes.SourceWithKey](t, resp)
	if resp.StatusCode != 200 || rotated.WriteKey == created.WriteKey || len(rotated.Source.WriteKeys) != 2 || rotated.Source.WriteKeys[1].ExpiresAt == nil {
		t.Fatalf("rotate with grace: %d %s", resp.StatusCode, resp.Body)
	}
	if _, err := e.sources.ResolveWriteKey(ctx, created.WriteKey); err != nil {
		t.Fatalf("old key stopped during its grace period: %v", err)
	}
	resp = e.call(t, "POST", "/admin/v1/sources/"+id+"/rotate-key", "")
	final := decode[apitypes.SourceWithKey](t, resp)
	if resp.StatusCode != 200 || len(final.Source.WriteKeys) != 1 {
		t.Fatalf("rotate: %d %s", resp.StatusCode, resp.Body)
	}
	for _, old := range []string{created.WriteKey, rotated.WriteKey} {
		if _, err := e.sources.ResolveWriteKey(ctx, old); err == nil {
			t.Fatal("old key works after rotation without grace")
		}
	}

	resp = e.call(t, "DELETE", "/admin/v1/sources/"+id, "")
	if resp.StatusCode != http.StatusNoContent || resp.Body != "" {
		t.Fatalf("delete: %d %q", resp.StatusCode, resp.Body)
	}
	if resp := e.call(t, "GET", "/admin/v1/sources/"+id, ""); resp.StatusCode != 404 {
		t.Fatalf("get after delete: %d", resp.StatusCode)
	}
	if n := e.itemCount(t); n != 1 { // the admin token
		t.Fatalf("%d items left", n)
	}
}

// TestRejections: every bad request gets its exact status and code, and changes nothing.
func TestRejections(t *testing.T) {
	e := newEnv(t)
	resp := e.call(t, "POST", "/admin/v1/sources", `{"name":"web"}`)
	if resp.StatusCode != 201 {
		t.Fatalf("setup: %d %s", resp.StatusCode, resp.Body)
	}
	web := decode[apitypes.SourceWithKey](t, resp).Source
	before := e.itemCount(t)
	bearer := "Bearer " + e.token
	src := "/admin/v1/sources/" + web.ID

	cases := []struct {
		name, method, path, auth, body string
		base64                         bool
		status                         int
		code                           string
	}{
		{"no token", "GET", "/admin/v1/sources", "", "", false, 401, "unauthorized"},
		{"no token on unknown path", "GET", "/admin/v1/nothing", "", "", false, 401, "unauthorized"},
		{"no token on write", "POST", "/admin/v1/sources", "", `{"name":"x"}`, false, 401, "unauthorized"},
		{"wrong token", "GET", "/admin/v1/sources", "Bearer cdpat_wrong", "", false, 401, "unauthorized"},
		{"basic instead of bearer", "GET", "/admin/v1/sources", "Basic " + base64.StdEncoding.EncodeToString([]byte(e.token+":")), "", false, 401, "unauthorized"},
		{"empty bearer", "GET", "/admin/v1/sources", "Bearer ", "", false, 401, "unauthorized"},
		{"unknown route", "GET", "/admin/v1/nothing", bearer, "", false, 404, "not_found"},
		{"unknown version", "GET", "/admin/v2/sources", bearer, "", false, 404, "not_found"},
		{"unknown sub-resource", "POST", src + "/explode", bearer, "", false, 404, "not_found"},
		{"outside admin", "GET", "/v2/whatever", bearer, "", false, 404, "not_found"},
		{"method not allowed", "PUT", "/admin/v1/sources", bearer, `{"name":"x"}`, false, 405, "method_not_allowed"},
		{"method not allowed on action", "GET", src + "/disable", bearer, "", false, 405, "method_not_allowed"},
		{"create: empty body", "POST", "/admin/v1/sources", bearer, "", false, 400, "invalid_request"},
		{"create: not JSON", "POST", "/admin/v1/sources", bearer, "name=x", false, 400, "invalid_request"},
		{"create: array", "POST", "/admin/v1/sources", bearer, `["x"]`, false, 400, "invalid_request"},
		{"create: missing name", "POST", "/admin/v1/sources", bearer, `{}`, false, 400, "invalid_request"},
		{"create: empty name", "POST", "/admin/v1/sources", bearer, `{"name":""}`, false, 400, "invalid_request"},
		{"create: name wrong type", "POST", "/admin/v1/sources", bearer, `{"name":7}`, false, 400, "invalid_request"},
		{"create: bad characters", "POST", "/admin/v1/sources", bearer, `{"name":"a/b"}`, false, 400, "invalid_request"},
		{"create: name too long", "POST", "/admin/v1/sources", bearer, `{"name":"` + strings.Repeat("a", 101) + `"}`, false, 400, "invalid_request"},
		{"create: unknown field", "POST", "/admin/v1/sources", bearer, `{"name":"x","enabled":true}`, false, 400, "invalid_request"},
		{"create: trailing data", "POST", "/admin/v1/sources", bearer, `{"name":"x"}{"name":"y"}`, false, 400, "invalid_request"},
		{"create: bad base64", "POST", "/admin/v1/sources", bearer, "!!!", true, 400, "invalid_request"},
		{"create: too large", "POST", "/admin/v1/sources", bearer, `{"name":"` + strings.Repeat("a", admin.MaxBodyBytes) + `"}`, false, 413, "payload_too_large"},
		{"create: duplicate name", "POST", "/admin/v1/sources", bearer, `{"name":"web"}`, false, 409, "conflict"},
		{"get: unknown id", "GET", "/admin/v1/sources/src_missing", bearer, "", false, 404, "not_found"},
		{"get: bad escape", "GET", "/admin/v1/sources/%zz", bearer, "", false, 400, "invalid_request"},
		{"disable: unknown id", "POST", "/admin/v1/sources/src_missing/disable", bearer, "", false, 404, "not_found"},
		{"disable: unknown field", "POST", src + "/disable", bearer, `{"now":true}`, false, 400, "invalid_request"},
		{"enable: unknown id", "POST", "/admin/v1/sources/src_missing/enable", bearer, "", false, 404, "not_found"},
		{"enable: not JSON", "POST", src + "/enable", bearer, "yes", false, 400, "invalid_request"},
		{"rotate: unknown id", "POST", "/admin/v1/sources/src_missing/rotate-key", bearer, "", false, 404, "not_found"},
		{"rotate: negative grace", "POST", src + "/rotate-key", bearer, `{"graceSeconds":-1}`, false, 400, "invalid_request"},
		{"rotate: grace too long", "POST", src + "/rotate-key", bearer, `{"graceSeconds":604801}`, false, 400, "invalid_request"},
		{"rotate: fractional grace", "POST", src + "/rotate-key", bearer, `{"graceSeconds":1.5}`, false, 400, "invalid_request"},
		{"rotate: grace as string", "POST", src + "/rotate-key", bearer, `{"graceSeconds":"60"}`, false, 400, "invalid_request"},
		{"rotate: unknown field", "POST", src + "/rotate-key", bearer, `{"grace":60}`, false, 400, "invalid_request"},
		{"delete: unknown id", "DELETE", "/admin/v1/sources/src_missing", bearer, "", false, 404, "not_found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := request(c.method, c.path, c.auth, c.body)
			req.IsBase64Encoded = c.base64
			resp, err := e.api.Handle(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			body := decode[httpapi.ErrorBody](t, resp)
			if resp.StatusCode != c.status || body.Code != c.code || body.Message == "" {
				t.Fatalf("got %d %s, want %d %s", resp.StatusCode, resp.Body, c.status, c.code)
			}
			if c.status == 401 && resp.Headers["www-authenticate"] == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if c.status == 405 && resp.Headers["allow"] == "" {
				t.Error("405 without Allow")
			}
		})
	}

	// Nothing changed: same items, same source, same key.
	if n := e.itemCount(t); n != before {
		t.Fatalf("%d items after rejections, had %d", n, before)
	}
	got, err := e.sources.Get(context.Background(), web.ID)
	if err != nil || !got.Enabled || !got.UpdatedAt.Equal(web.UpdatedAt) || len(got.WriteKeys) != 1 {
		t.Fatalf("source changed: %+v, %v", got, err)
	}
}
