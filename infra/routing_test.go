package infra

import (
	"strings"
	"testing"
)

// routeKey is one "METHOD /path" route of the synthesized API, with the function it reaches.
type routeKey struct {
	method, path, function string
}

// matchRoute picks the route API Gateway HTTP APIs would choose for a request: a full match
// beats a greedy {proxy+} match, a longer literal prefix beats a shorter one, and an exact
// method beats ANY. It returns "" when no route matches (API Gateway answers 404).
// https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-routes.html
func matchRoute(routes []routeKey, method, path string) string {
	type score struct{ full, literals, exact int }
	best, bestFn := score{-1, -1, -1}, ""
	req := strings.Split(strings.Trim(path, "/"), "/")
	for _, r := range routes {
		if r.method != "ANY" && r.method != method {
			continue
		}
		segs := strings.Split(strings.Trim(r.path, "/"), "/")
		s, ok := score{full: 1}, true
		for i, seg := range segs {
			if strings.HasSuffix(seg, "+}") { // greedy: matches one or more remaining segments
				s.full = 0
				ok = len(req) > i
				break
			}
			if i >= len(req) || (i == len(segs)-1 && len(req) != len(segs)) {
				ok = false
				break
			}
			if strings.HasPrefix(seg, "{") {
				continue
			}
			if seg != req[i] {
				ok = false
				break
			}
			s.literals++
		}
		if !ok {
			continue
		}
		if r.method == method {
			s.exact = 1
		}
		if s.full > best.full ||
			(s.full == best.full && s.literals > best.literals) ||
			(s.full == best.full && s.literals == best.literals && s.exact > best.exact) {
			best, bestFn = s, r.function
		}
	}
	return bestFn
}

func TestMatchRouteEmulator(t *testing.T) {
	// The emulator is test code too: check it against the documented examples.
	routes := []routeKey{
		{"GET", "/pets/dog/1", "exact"},
		{"GET", "/pets/dog/{id}", "var"},
		{"ANY", "/pets/{proxy+}", "greedy"},
		{"GET", "/pets/{proxy+}", "greedy-get"},
	}
	for _, c := range []struct{ method, path, want string }{
		{"GET", "/pets/dog/1", "exact"},
		{"GET", "/pets/dog/2", "var"},
		{"GET", "/pets/cat/1", "greedy-get"},
		{"POST", "/pets/cat/1", "greedy"},
		{"POST", "/pets", ""},
		{"GET", "/other", ""},
	} {
		if got := matchRoute(routes, c.method, c.path); got != c.want {
			t.Errorf("%s %s: got %q, want %q", c.method, c.path, got, c.want)
		}
	}
}

// apiRoutes reads the routes back from the template: route -> integration -> function.
func apiRoutes(t *testing.T, f *fixture) []routeKey {
	t.Helper()
	fnByID := map[string]string{}
	for name, fn := range f.stack.Functions {
		fnByID[f.id(fn)] = name
	}
	integration := map[string]string{}
	for id, r := range f.resources("AWS::ApiGatewayV2::Integration") {
		p := r["Properties"].(map[string]interface{})
		if p["PayloadFormatVersion"] != "2.0" || p["IntegrationType"] != "AWS_PROXY" {
			t.Errorf("%s integration %s: want AWS_PROXY with payload 2.0, got %v %v", f.name, id, p["IntegrationType"], p["PayloadFormatVersion"])
		}
		ga, _ := p["IntegrationUri"].(map[string]interface{})["Fn::GetAtt"].([]interface{})
		if len(ga) == 2 {
			integration[id] = fnByID[ga[0].(string)]
		}
	}
	var out []routeKey
	for id, r := range f.resources("AWS::ApiGatewayV2::Route") {
		p := r["Properties"].(map[string]interface{})
		key := strings.SplitN(p["RouteKey"].(string), " ", 2)
		target := canonical(p["Target"], map[string]string{})
		intID := strings.TrimSuffix(strings.TrimPrefix(target, "integrations/<unknown:"), ">")
		if len(key) != 2 || integration[intID] == "" {
			t.Errorf("%s route %s: cannot resolve %v -> %s", f.name, id, p["RouteKey"], target)
			continue
		}
		out = append(out, routeKey{key[0], key[1], integration[intID]})
	}
	return out
}

func TestRoutesReachTheRightFunction(t *testing.T) {
	for _, f := range fixtures(t) {
		routes := apiRoutes(t, f)
		if len(routes) != len(Routes) {
			t.Errorf("%s: %d routes in the template, %d declared", f.name, len(routes), len(Routes))
		}
		for _, c := range []struct{ method, path, want string }{
			{"POST", "/v1/track", "ingest"},
			{"POST", "/v1/batch", "ingest"},
			{"POST", "/v1/t", "ingest"},
			{"OPTIONS", "/v1/track", "ingest"}, // CORS preflight from analytics.js
			{"GET", "/v1/projects/wk_123/settings", "ingest"},
			{"OPTIONS", "/v1/projects/wk_123/settings", "ingest"},
			{"GET", "/v1/spaces/default/collections/users/profiles/user_id:42/traits", "api"},
			{"OPTIONS", "/v1/spaces/default/collections/users/profiles/user_id:42/traits", "api"},
			{"POST", "/admin/sources", "api"},
			{"DELETE", "/admin/privacy/requests/7", "api"},
			{"OPTIONS", "/admin/sources", "api"},
			{"GET", "/", ""},
			{"GET", "/healthz", ""},
		} {
			if got := matchRoute(routes, c.method, c.path); got != c.want {
				t.Errorf("%s: %s %s reaches %q, want %q", f.name, c.method, c.path, got, c.want)
			}
		}
	}
}
