// Package openapicheck compares api/openapi.yaml with the admin routes a router registers. It
// is imported by tests only, so no Lambda links a YAML parser.
package openapicheck

import (
	"fmt"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/serverless-cdp/cdp/internal/admin"
)

// Compare checks an OpenAPI 3 document (api/openapi.yaml) against registered routes. It
// returns the routes registered but not documented and those documented but not registered, as
// "METHOD /path/{param}", sorted; both empty means they agree. Every documented operation must
// also document a 401 answer, since every admin route needs a token.
func Compare(spec []byte, routes []admin.Route) (undocumented, unregistered []string, err error) {
	var doc struct {
		OpenAPI string                          `yaml:"openapi"`
		Paths   map[string]map[string]yaml.Node `yaml:"paths"`
	}
	if err := yaml.Unmarshal(spec, &doc); err != nil {
		return nil, nil, fmt.Errorf("parse OpenAPI document: %w", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		return nil, nil, fmt.Errorf("OpenAPI version %q: want 3.x", doc.OpenAPI)
	}
	methods := map[string]bool{"get": true, "put": true, "post": true, "delete": true, "patch": true, "head": true, "options": true}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for m, op := range ops {
			if !methods[m] {
				continue // parameters, summary, ...
			}
			key := strings.ToUpper(m) + " " + path
			documented[key] = true
			var o struct {
				Responses map[string]yaml.Node `yaml:"responses"`
			}
			if err := op.Decode(&o); err != nil {
				return nil, nil, fmt.Errorf("%s: %w", key, err)
			}
			if _, ok := o.Responses["401"]; !ok {
				return nil, nil, fmt.Errorf("%s: no 401 answer documented", key)
			}
		}
	}
	registered := map[string]bool{}
	for _, r := range routes {
		registered[r.Method+" "+r.Pattern] = true
	}
	for k := range registered {
		if !documented[k] {
			undocumented = append(undocumented, k)
		}
	}
	for k := range documented {
		if !registered[k] {
			unregistered = append(unregistered, k)
		}
	}
	sort.Strings(undocumented)
	sort.Strings(unregistered)
	return undocumented, unregistered, nil
}
