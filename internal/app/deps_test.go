package app_test

import (
	"os/exec"
	"strings"
	"testing"
)

// forbidden lists, per function, the packages its binary must not link: each Lambda builds only
// the stages it uses (its composition root is internal/app/<name>fn), and no Lambda links a YAML
// parser (the OpenAPI comparison runs in tests only).
var forbidden = map[string][]string{
	"ingest": {"internal/identity", "internal/segment", "internal/activation", "internal/activations",
		"internal/destination", "internal/webhook", "internal/admin", "internal/profile", "internal/deadletter"},
	"identity": {"internal/segment", "internal/activation", "internal/activations", "internal/destination",
		"internal/webhook", "internal/admin", "internal/profile", "internal/ingest", "internal/source", "internal/httpapi"},
	"segments": {"internal/activation", "internal/destination", "internal/webhook", "internal/admin",
		"internal/profile", "internal/ingest", "internal/httpapi", "internal/identity"},
	"activation": {"internal/identity", "internal/segment", "internal/admin", "internal/profile",
		"internal/ingest", "internal/httpapi"},
	"api": {"internal/ingest"},
}

// TestFunctionDependencies: `go list -deps ./functions/<name>` contains none of the function's
// forbidden packages, and no function links gopkg.in/yaml.
func TestFunctionDependencies(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go tool not in PATH")
	}
	const module = "github.com/serverless-cdp/cdp/"
	for fn, bad := range forbidden {
		t.Run(fn, func(t *testing.T) {
			out, err := exec.Command("go", "list", "-deps", "../../functions/"+fn).Output()
			if err != nil {
				t.Fatalf("go list -deps ./functions/%s: %v", fn, err)
			}
			deps := map[string]bool{}
			for _, p := range strings.Fields(string(out)) {
				deps[strings.TrimPrefix(p, module)] = true
				if strings.Contains(p, "yaml") {
					t.Errorf("functions/%s links %s", fn, p)
				}
			}
			if !deps["internal/app"] {
				t.Fatalf("functions/%s: unexpected dependency list (no internal/app)", fn)
			}
			for _, b := range bad {
				if deps[b] {
					t.Errorf("functions/%s links %s", fn, b)
				}
			}
		})
	}
}
