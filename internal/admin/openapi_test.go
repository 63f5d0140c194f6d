package admin_test

import (
	"os"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/serverless-cdp/cdp/internal/admin"
)

// TestOpenAPIMatchesRoutes: every registered route is documented in api/openapi.yaml and every
// documented route is registered (method + path template).
func TestOpenAPIMatchesRoutes(t *testing.T) {
	raw, err := os.ReadFile("../../api/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OpenAPI string                          `yaml:"openapi"`
		Paths   map[string]map[string]yaml.Node `yaml:"paths"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("parse openapi.yaml: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi version %q", doc.OpenAPI)
	}
	methods := map[string]bool{"get": true, "put": true, "post": true, "delete": true, "patch": true, "head": true, "options": true}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for m, op := range ops {
			if !methods[m] {
				continue // parameters, summary, ...
			}
			documented[strings.ToUpper(m)+" "+path] = true
			var o struct {
				Responses map[string]any `yaml:"responses"`
			}
			if err := op.Decode(&o); err != nil || len(o.Responses) == 0 {
				t.Errorf("%s %s: no responses documented", m, path)
			}
			if _, ok := o.Responses["401"]; !ok {
				t.Errorf("%s %s: 401 not documented", m, path)
			}
		}
	}

	// Every resource's routes: New with all services set (the handlers are not called).
	r := admin.New(staticAuth{}, admin.Services{Sources: nil}, nil)
	registered := map[string]bool{}
	for _, rt := range r.Routes() {
		registered[rt.Method+" "+rt.Pattern] = true
	}
	if len(registered) == 0 {
		t.Fatal("no routes registered")
	}
	var missing, extra []string
	for k := range registered {
		if !documented[k] {
			missing = append(missing, k)
		}
	}
	for k := range documented {
		if !registered[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 {
		t.Errorf("registered but not in api/openapi.yaml: %v", missing)
	}
	if len(extra) > 0 {
		t.Errorf("in api/openapi.yaml but not registered: %v", extra)
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
