//go:build integration

package main

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/serverless-cdp/cdp/internal/admintoken"
	"github.com/serverless-cdp/cdp/internal/app"
	"github.com/serverless-cdp/cdp/internal/app/apifn"
	"github.com/serverless-cdp/cdp/internal/emulator/testenv"
	"github.com/serverless-cdp/cdp/internal/httpapi"
	"github.com/serverless-cdp/cdp/internal/source"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestCLI drives the CLI end to end: a token made with admin-token create (DynamoDB directly)
// authenticates apply against the real admin API served over HTTP.
func TestCLI(t *testing.T) {
	clients := testenv.Clients(t)
	table := testenv.Table(t, clients.DynamoDB)
	tokens := admintoken.NewStore(clients.DynamoDB, table)
	repo := source.NewRepository(clients.DynamoDB, table)
	cfg := app.Defaults()
	cfg.Table = table
	api := &httpapi.API{Admin: apifn.NewAdminRouter(clients, cfg, nil).Serve} // the admin API as deployed
	srv := httptest.NewServer(httpapi.HTTPHandler(api))
	defer srv.Close()

	c := cli{env: map[string]string{"CDP_TABLE": table}}
	code, tok, stderr := c.run(t, "admin-token", "create", "--name", "ci")
	if code != 0 || !strings.HasPrefix(tok, admintoken.Prefix) || !strings.Contains(stderr, "shown once") {
		t.Fatalf("create token: %d %q %q", code, tok, stderr)
	}
	tok = strings.TrimSpace(tok)
	c.env["CDP_ADMIN_TOKEN"] = tok
	c.env["CDP_ADMIN_URL"] = srv.URL

	code, out, _ := c.run(t, "admin-token", "list")
	if code != 0 || !strings.Contains(out, "ci") || strings.Contains(out, tok) {
		t.Fatalf("list tokens: %d %q", code, out)
	}

	// A bad file: clear error, exit 1, nothing applied.
	bad := writeFile(t, "sources:\n  - name: web\n    enabled: true\n    color: blue\n")
	code, out, stderr = c.run(t, "apply", "-f", bad)
	if code != 1 || out != "" || !strings.Contains(stderr, "color") || !strings.Contains(stderr, "line 4") {
		t.Fatalf("bad file: %d %q %q", code, out, stderr)
	}
	if all, _ := repo.List(context.Background()); len(all) != 0 {
		t.Fatalf("bad file applied: %+v", all)
	}
	if code, _, stderr = c.run(t, "apply", "-f", filepath.Join(t.TempDir(), "missing.yaml")); code != 1 || !strings.Contains(stderr, "missing.yaml") {
		t.Fatalf("missing file: %d %q", code, stderr)
	}

	good := writeFile(t, "sources:\n  - name: web\n  - name: batch\n    enabled: false\n")
	code, out, _ = c.run(t, "apply", "-f", good, "--dry-run")
	if code != 0 || out != "+ source web\n+ source batch\n(dry run: nothing changed)\n" {
		t.Fatalf("dry run: %d %q", code, out)
	}
	if all, _ := repo.List(context.Background()); len(all) != 0 {
		t.Fatalf("dry run applied: %+v", all)
	}
	code, out, _ = c.run(t, "apply", "-f", good)
	if code != 0 || strings.Count(out, "write key: ") != 2 {
		t.Fatalf("apply: %d %q", code, out)
	}
	code, out, _ = c.run(t, "apply", "-f", good)
	if code != 0 || out != "" {
		t.Fatalf("second apply: %d %q", code, out)
	}

	// The example file (every kind of resource): applies, then is in sync.
	example := filepath.Join("..", "..", "internal", "config", "testdata", "example.yaml")
	code, out, stderr = c.run(t, "apply", "-f", example)
	if code != 0 || strings.Count(out, "signing secret: whsec_") != 2 || !strings.Contains(out, "+ audience vip_in_paris") {
		t.Fatalf("apply example: %d %q %q", code, out, stderr)
	}
	if code, out, _ = c.run(t, "apply", "-f", example); code != 0 || out != "" {
		t.Fatalf("apply example again: %d %q", code, out)
	}

	// --token and --url flags win over the environment.
	code, _, stderr = c.run(t, "apply", "-f", good, "--token", "cdpat_wrong")
	if code != 1 || !strings.Contains(stderr, "401 unauthorized") {
		t.Fatalf("wrong token: %d %q", code, stderr)
	}

	// Revoke: the token stops working at once.
	list, _ := tokens.List(context.Background())
	code, _, _ = c.run(t, "admin-token", "revoke", list[0].ID)
	if code != 0 {
		t.Fatalf("revoke: %d", code)
	}
	if code, _, stderr = c.run(t, "apply", "-f", good); code != 1 || !strings.Contains(stderr, "unauthorized") {
		t.Fatalf("apply with revoked token: %d %q", code, stderr)
	}
	if code, _, _ = c.run(t, "admin-token", "revoke", list[0].ID); code != 1 {
		t.Fatalf("revoke twice: %d", code)
	}
}
