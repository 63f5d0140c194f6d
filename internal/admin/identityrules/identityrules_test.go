package identityrules_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/serverless-cdp/cdp/internal/admin"
	"github.com/serverless-cdp/cdp/internal/admin/admintest"
	"github.com/serverless-cdp/cdp/internal/admin/identityrules"
	"github.com/serverless-cdp/cdp/internal/identity"
)

// memRules keeps one rule set and refuses a type named "bad" as the real service would refuse
// an invalid set.
type memRules struct {
	rules identity.Rules
	puts  int
}

func (m *memRules) Get(context.Context) (identity.Rules, error) { return m.rules, nil }

func (m *memRules) Put(_ context.Context, r identity.Rules) error {
	for i, t := range r.Types {
		if t.Type == "bad" {
			return &identity.ValidationError{Field: "types[" + string(rune('0'+i)) + "].type", Message: "is not an identifier type"}
		}
	}
	m.rules, m.puts = r, m.puts+1
	return nil
}

func call(t *testing.T, h http.Handler, method, body string) (int, string) {
	t.Helper()
	return admintest.Call(t, h, method, "/admin/v1/identity-rules", body)
}

// TestIdentityRulesRoutes: GET answers the set with "types" always a list, PUT stores a valid set
// and answers it, an invalid set or body is a 400 naming the field and stores nothing.
func TestIdentityRulesRoutes(t *testing.T) {
	svc := &memRules{}
	h := admin.New(admintest.OneToken{}, nil, func(r *admin.Router) { identityrules.Register(r, svc) })
	if status, body := call(t, h, "GET", ""); status != 200 || body != `{"types":[]}` {
		t.Fatalf("get empty: %d %s", status, body)
	}
	status, body := call(t, h, "PUT", `{"types":[{"type":"email","limit":3}]}`)
	if status != 200 || !strings.Contains(body, `"type":"email"`) || svc.puts != 1 {
		t.Fatalf("put: %d %s", status, body)
	}
	for _, in := range []string{`{"types":[{"type":"bad"}]}`, `{"typos":[]}`, ``} {
		status, body := call(t, h, "PUT", in)
		if status != 400 || !strings.Contains(body, `"code":"invalid_request"`) {
			t.Errorf("put %s: %d %s", in, status, body)
		}
	}
	if _, body := call(t, h, "PUT", `{"types":[{"type":"bad"}]}`); !strings.Contains(body, "types[0].type: is not an identifier type") {
		t.Errorf("the field is not named: %s", body)
	}
	if svc.puts != 1 {
		t.Fatalf("rejected sets were stored: %d puts", svc.puts)
	}
	if status, body := call(t, h, "GET", ""); status != 200 || !strings.Contains(body, `"limit":3`) {
		t.Fatalf("get: %d %s", status, body)
	}
	if status, _ := call(t, h, "DELETE", ""); status != http.StatusMethodNotAllowed {
		t.Fatalf("delete: %d", status)
	}
}
