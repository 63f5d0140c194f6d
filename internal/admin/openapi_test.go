package admin_test

import (
	"os"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/serverless-cdp/cdp/internal/admin"
	"github.com/serverless-cdp/cdp/internal/admin/openapicheck"
	"github.com/serverless-cdp/cdp/internal/deadletter"
	"github.com/serverless-cdp/cdp/internal/identity"
)

// TestOpenAPIMatchesRoutes: every route of the sources, identity-rules and dead-letters adapters
// is documented in api/openapi.yaml.
// The converse (every documented route is served) needs the registrars of other packages and is
// checked on the assembled router by internal/app (TestAdminRoutesDocumented).
func TestOpenAPIMatchesRoutes(t *testing.T) {
	raw, err := os.ReadFile("../../api/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rules := identity.NewRulesService(nil, "", 0) // handlers are not called
	dls := deadletter.NewService(nil, nil)
	r := admin.New(staticAuth{}, nil, mount(noSources{}, rules, dls)...)
	if len(r.Routes()) == 0 {
		t.Fatal("no routes registered")
	}
	undocumented, unregistered, err := openapicheck.Compare(raw, r.Routes())
	if err != nil {
		t.Fatal(err)
	}
	if len(undocumented) > 0 {
		t.Errorf("registered but not in api/openapi.yaml: %v", undocumented)
	}
	_ = unregistered // routes of registrars (destinations, audiences, ...): see internal/app
}

// TestCompareOpenAPI: the comparison itself notices each kind of disagreement.
func TestCompareOpenAPI(t *testing.T) {
	spec := []byte(`openapi: 3.0.3
paths:
  /admin/v1/a/{id}:
    parameters: []
    get: {responses: {"200": {description: ok}, "401": {description: no}}}
    put: {responses: {"200": {description: ok}, "401": {description: no}}}
`)
	routes := []admin.Route{{Method: "GET", Pattern: "/admin/v1/a/{id}"}, {Method: "POST", Pattern: "/admin/v1/a"}}
	undoc, unreg, err := openapicheck.Compare(spec, routes)
	if err != nil || len(undoc) != 1 || undoc[0] != "POST /admin/v1/a" || len(unreg) != 1 || unreg[0] != "PUT /admin/v1/a/{id}" {
		t.Fatalf("got %v %v %v", undoc, unreg, err)
	}
	if _, _, err := openapicheck.Compare([]byte("openapi: 3.0.3\npaths:\n  /x:\n    get: {responses: {\"200\": {description: ok}}}\n"), nil); err == nil {
		t.Fatal("missing 401 not noticed")
	}
	if _, _, err := openapicheck.Compare([]byte("swagger: '2.0'\n"), nil); err == nil {
		t.Fatal("Swagger 2 accepted")
	}
}

// Registrars add their routes to the router New returns.
func TestRegistrars(t *testing.T) {
	r := admin.New(staticAuth{}, nil, func(r *admin.Router) {
		r.Handle("GET", admin.Prefix+"/widgets", echo("widgets"))
	})
	found := false
	for _, rt := range r.Routes() {
		found = found || rt.Pattern == admin.Prefix+"/widgets"
	}
	if !found {
		t.Fatal("registrar's route missing")
	}
}

// TestOpenAPIRefsResolve: every local $ref in api/openapi.yaml points at something.
func TestOpenAPIRefsResolve(t *testing.T) {
	raw, err := os.ReadFile("../../api/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	refs := 0
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if ref, ok := x["$ref"].(string); ok {
				refs++
				var cur any = doc
				for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
					m, ok := cur.(map[string]any)
					if !ok || m[part] == nil {
						t.Errorf("unresolved $ref %s", ref)
						return
					}
					cur = m[part]
				}
			}
			for _, y := range x {
				walk(y)
			}
		case []any:
			for _, y := range x {
				walk(y)
			}
		}
	}
	walk(doc)
	if refs == 0 {
		t.Fatal("no $refs found")
	}
}
