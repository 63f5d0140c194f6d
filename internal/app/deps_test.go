package app_test

import (
	"os/exec"
	"strings"
	"testing"
)

// forbidden lists, per function, the packages its binary must not link: each Lambda builds only
// the stages it uses (its composition root is internal/app/<name>fn), and no Lambda links a YAML
// parser (the OpenAPI comparison runs in tests only) or the test harness's S3 server (gofakes3,
// with golang.org/x/tools behind it). golang.org/x/tools/container/intsets, a small set type that
// gonum's optimize (package predict's maximum likelihood) imports, is the one x/tools package
// allowed.
var forbidden = map[string][]string{
	"ingest": {"internal/identity", "internal/segment", "internal/activation", "internal/activations",
		"internal/destination", "internal/webhook", "internal/admin", "internal/profile", "internal/deadletter"},
	"identity": {"internal/segment", "internal/activation", "internal/activations", "internal/destination",
		"internal/webhook", "internal/admin", "internal/profile", "internal/ingest", "internal/source", "internal/httpapi"},
	"segments": {"internal/activation", "internal/destination", "internal/webhook", "internal/admin",
		"internal/profile", "internal/ingest", "internal/httpapi", "internal/identity"},
	"activation": {"internal/identity", "internal/segment", "internal/admin", "internal/profile",
		"internal/ingest", "internal/httpapi"},
	"api":     {"internal/ingest", "internal/emulator"},
	"privacy": {"internal/ingest", "internal/admin", "internal/profile", "internal/httpapi", "internal/source"},
}

// cliForbidden: the cdp CLI talks HTTP to the admin API and links no server code: its wire types
// and the validation it runs on config files are contract packages (internal/apitypes,
// internal/idrules, internal/segmentdef). Its one store is admintoken's, for `cdp admin-token`,
// which makes the first admin token of a deployment directly in DynamoDB.
var cliForbidden = []string{"internal/admin", "internal/admin/segments", "internal/admin/destinations",
	"internal/admin/sources", "internal/admin/identityrules", "internal/admin/deadletters",
	"internal/identity", "internal/segment", "internal/destination", "internal/activation",
	"internal/activations", "internal/deadletter", "internal/webhook", "internal/ingest", "internal/profile",
	"internal/app", "internal/httpapi", "internal/source", "internal/stream", "internal/change",
	"internal/tracking", "internal/privacy", "internal/admin/privacy", "internal/blocklist"}

// TestFunctionDependencies: `go list -deps ./functions/<name>` contains none of the function's
// forbidden packages, no function links gopkg.in/yaml, and the cdp CLI links no server code.
func TestFunctionDependencies(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go tool not in PATH")
	}
	for fn, bad := range forbidden {
		t.Run(fn, func(t *testing.T) {
			deps := depsOf(t, "functions/"+fn)
			if !deps["internal/app"] {
				t.Fatalf("functions/%s: unexpected dependency list (no internal/app)", fn)
			}
			for _, b := range bad {
				if deps[b] {
					t.Errorf("functions/%s links %s", fn, b)
				}
			}
			for p := range deps {
				if strings.Contains(p, "yaml") || strings.Contains(p, "gofakes3") || strings.Contains(p, "goldmark") || strings.HasPrefix(p, "golang.org/x/tools") && p != "golang.org/x/tools/container/intsets" {
					t.Errorf("functions/%s links %s", fn, p)
				}
			}
		})
	}
	t.Run("cmd/cdp", func(t *testing.T) {
		deps := depsOf(t, "cmd/cdp")
		for _, b := range cliForbidden {
			if deps[b] {
				t.Errorf("cmd/cdp links %s", b)
			}
		}
	})
}

// depsOf returns `go list -deps ./<dir>`, this module's packages without the module prefix.
func depsOf(t *testing.T, dir string) map[string]bool {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "../../"+dir).Output()
	if err != nil {
		t.Fatalf("go list -deps ./%s: %v", dir, err)
	}
	deps := map[string]bool{}
	for _, p := range strings.Fields(string(out)) {
		deps[strings.TrimPrefix(p, "github.com/serverless-cdp/cdp/")] = true
	}
	return deps
}
