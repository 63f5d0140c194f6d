package main

import (
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/serverless-cdp/cdp/internal/admin"
	"github.com/serverless-cdp/cdp/internal/admin/admintest"
	adminprivacy "github.com/serverless-cdp/cdp/internal/admin/privacy"
	"github.com/serverless-cdp/cdp/internal/apitypes"
	"github.com/serverless-cdp/cdp/internal/privacy/privacytest"
)

// TestPrivacyCommands drives `cdp privacy` against the real admin adapter over in-memory fakes.
func TestPrivacyCommands(t *testing.T) {
	svc, _, bl, _ := privacytest.Service(5 * time.Second)
	srv := httptest.NewServer(admin.New(admintest.OneToken{}, nil, func(r *admin.Router) { adminprivacy.Register(r, svc) }))
	defer srv.Close()
	c := cli{env: map[string]string{"CDP_ADMIN_URL": srv.URL, "CDP_ADMIN_TOKEN": admintest.Token}}

	code, out, stderr := c.run(t, "privacy", "request", "--type", "export", "--id", "user_id:ann-77", "--wait")
	var exp apitypes.PrivacyRequest
	if code != 0 || json.Unmarshal([]byte(out), &exp) != nil || exp.Status != "completed" {
		t.Fatalf("export: %d %q %q", code, out, stderr)
	}
	file := filepath.Join(t.TempDir(), "export.json")
	if code, out, stderr = c.run(t, "privacy", "get", exp.ID, "-o", file); code != 0 || !strings.Contains(out, exp.ID) {
		t.Fatalf("get: %d %q %q", code, out, stderr)
	}
	doc, _ := os.ReadFile(file)
	if !strings.Contains(string(doc), "Ann Smith") || !strings.Contains(string(doc), `"requestId":"`+exp.ID+`"`) {
		t.Fatalf("export file: %s", doc)
	}
	if code, _, _ = c.run(t, "privacy", "get", exp.ID, "-o", file, "--ndjson"); code != 0 {
		t.Fatal("get --ndjson failed")
	}
	if nd, _ := os.ReadFile(file); strings.Count(string(nd), "\n") != 9 || !strings.Contains(string(nd), `"holder":"identity"`) {
		t.Fatalf("ndjson file: %s", nd)
	}

	code, out, stderr = c.run(t, "privacy", "request", "--type", "suppress_with_delete", "--id", "email:ann@example.com", "--id", "anonymous_id:dev-b", "--reason", "Art. 17")
	if code != 0 || !strings.Contains(out, `"completed"`) || strings.Contains(out, "ann@example.com") {
		t.Fatalf("delete: %d %q %q", code, out, stderr)
	}
	if code, out, _ = c.run(t, "privacy", "list"); code != 0 || strings.Count(out, "pr_") != 2 || !strings.Contains(out, "email:a…@e….com") || strings.Contains(out, "ann@example.com") {
		t.Fatalf("list: %d %q", code, out)
	}
	bl.Dropped["src_web"] = 7
	if code, out, _ = c.run(t, "privacy", "suppressions"); code != 0 || !strings.Contains(out, "src_web") || !strings.Contains(out, "7") || !strings.Contains(out, "user_id:a…(6)") {
		t.Fatalf("suppressions: %d %q", code, out)
	}
	if code, _, stderr = c.run(t, "privacy", "get", exp.ID, "-o", file); code != 1 || !strings.Contains(stderr, "no export result") {
		t.Fatalf("erased export: %d %q", code, stderr)
	}
	if code, _, stderr = c.run(t, "privacy", "request", "--type", "delete", "--id", "ann"); code != 1 || !strings.Contains(stderr, "400 invalid_request: identifiers[0]") {
		t.Fatalf("bad identifier: %d %q", code, stderr)
	}
	if code, _, stderr = c.run(t, "privacy", "get", "pr_000000000000000000000"); code != 1 || !strings.Contains(stderr, "404") {
		t.Fatalf("unknown request: %d %q", code, stderr)
	}
	c.env["CDP_ADMIN_TOKEN"] = "wrong"
	if code, _, stderr = c.run(t, "privacy", "list"); code != 1 || !strings.Contains(stderr, "401") {
		t.Fatalf("wrong token: %d %q", code, stderr)
	}
}

func TestPrivacyUsageErrors(t *testing.T) {
	c := cli{env: map[string]string{"CDP_ADMIN_TOKEN": "t"}}
	for _, args := range [][]string{
		{"privacy"},
		{"privacy", "forget"},
		{"privacy", "request", "--type", "delete"},
		{"privacy", "request", "--id", "user_id:u1"},
		{"privacy", "get"},
		{"privacy", "list", "extra"},
	} {
		if code, _, stderr := c.run(t, args...); code != 2 || !strings.Contains(stderr, "usage:") {
			t.Errorf("%v: exit %d, %q", args, code, stderr)
		}
	}
}
