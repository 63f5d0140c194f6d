//go:build integration

package config_test

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/serverless-cdp/cdp/internal/admintoken"
	"github.com/serverless-cdp/cdp/internal/app"
	"github.com/serverless-cdp/cdp/internal/app/apifn"
	"github.com/serverless-cdp/cdp/internal/config"
	"github.com/serverless-cdp/cdp/internal/emulator/testenv"
	"github.com/serverless-cdp/cdp/internal/httpapi"
	"github.com/serverless-cdp/cdp/internal/source"
)

func TestMain(m *testing.M) { testenv.Main(m) }

type server struct {
	url     string
	token   string
	sources *source.Repository
}

// newServer serves the real admin API (DynamoDB Local behind it) over HTTP.
func newServer(t *testing.T) server {
	t.Helper()
	c := testenv.Clients(t)
	table := testenv.Table(t, c.DynamoDB)
	tokens := admintoken.NewStore(c.DynamoDB, table)
	_, tok, err := tokens.Create(context.Background(), "test")
	if err != nil {
		t.Fatal(err)
	}
	repo := source.NewRepository(c.DynamoDB, table)
	cfg := app.Defaults()
	cfg.Table = table
	api := &httpapi.API{Admin: apifn.NewAdminRouter(c, cfg, nil).Serve} // the whole admin API, as deployed
	srv := httptest.NewServer(httpapi.HTTPHandler(api))
	t.Cleanup(srv.Close)
	return server{url: srv.URL, token: tok, sources: repo}
}

func (s server) client(t *testing.T) *config.Client {
	t.Helper()
	c, err := config.NewClient(s.url, s.token, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// state returns "name=enabled" for every source, in creation order.
func (s server) state(t *testing.T) string {
	t.Helper()
	all, err := s.sources.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var parts []string
	for _, src := range all {
		parts = append(parts, src.Name+"="+map[bool]string{true: "on", false: "off"}[src.Enabled])
	}
	return strings.Join(parts, " ")
}

func mustParse(t *testing.T, y string) *config.File {
	t.Helper()
	f, err := config.Parse([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func apply(t *testing.T, c *config.Client, f *config.File, opts config.Options) string {
	t.Helper()
	var out bytes.Buffer
	opts.Out = &out
	if _, err := config.Apply(context.Background(), c, f, opts); err != nil {
		t.Fatalf("apply: %v\n%s", err, out.String())
	}
	return out.String()
}

func TestApply(t *testing.T) {
	s := newServer(t)
	c := s.client(t)
	ctx := context.Background()
	f := mustParse(t, "sources:\n  - name: web\n  - name: ios\n    enabled: false\n")

	// Dry run: the diff, and nothing changes.
	out := apply(t, c, f, config.Options{DryRun: true})
	if out != "+ source web\n+ source ios\n(dry run: nothing changed)\n" {
		t.Fatalf("dry run printed %q", out)
	}
	if st := s.state(t); st != "" {
		t.Fatalf("dry run changed state: %q", st)
	}

	// Apply: created, ios disabled, each write key printed once and working.
	out = apply(t, c, f, config.Options{})
	if st := s.state(t); st != "web=on ios=off" {
		t.Fatalf("state %q", st)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || lines[0] != "+ source web" || lines[2] != "+ source ios" {
		t.Fatalf("apply printed %q", out)
	}
	for i, name := range map[int]string{1: "web", 3: "ios"} {
		key := strings.Fields(strings.TrimPrefix(strings.TrimSpace(lines[i]), "write key:"))[0]
		got, err := s.sources.ResolveWriteKey(ctx, key)
		if err != nil || got.Name != name {
			t.Fatalf("printed key for %s resolves to %+v, %v", name, got, err)
		}
	}

	// Second run: in sync, prints nothing.
	if out := apply(t, c, f, config.Options{}); out != "" {
		t.Fatalf("second apply printed %q", out)
	}

	// A change: an update line; sources missing from the file are kept without --prune.
	f2 := mustParse(t, "sources:\n  - name: web\n    enabled: false\n")
	if out := apply(t, c, f2, config.Options{DryRun: true}); out != "~ source web: enabled true -> false\n(dry run: nothing changed)\n" {
		t.Fatalf("dry-run update printed %q", out)
	}
	if st := s.state(t); st != "web=on ios=off" {
		t.Fatalf("dry run changed state: %q", st)
	}
	if out := apply(t, c, f2, config.Options{}); out != "~ source web: enabled true -> false\n" {
		t.Fatalf("update printed %q", out)
	}
	if st := s.state(t); st != "web=off ios=off" {
		t.Fatalf("state %q", st)
	}

	// Prune deletes what the file does not declare, and only with Prune.
	if out := apply(t, c, f2, config.Options{Prune: true, DryRun: true}); out != "- source ios\n(dry run: nothing changed)\n" {
		t.Fatalf("dry-run prune printed %q", out)
	}
	if out := apply(t, c, f2, config.Options{Prune: true}); out != "- source ios\n" {
		t.Fatalf("prune printed %q", out)
	}
	if st := s.state(t); st != "web=off" {
		t.Fatalf("state after prune %q", st)
	}
	if out := apply(t, c, f2, config.Options{Prune: true}); out != "" {
		t.Fatalf("prune again printed %q", out)
	}
}

func TestApplyRefusedChangesNothing(t *testing.T) {
	s := newServer(t)
	ctx := context.Background()
	f := mustParse(t, "sources:\n  - name: web\n")

	bad, err := config.NewClient(s.url, "cdpat_not-a-token", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = config.Apply(ctx, bad, f, config.Options{})
	var apiErr *config.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 401 || apiErr.Code != "unauthorized" {
		t.Fatalf("bad token: %v", err)
	}
	if st := s.state(t); st != "" {
		t.Fatalf("state %q after refused apply", st)
	}

	// A file invalidated after parsing (e.g. built in code) is refused before any request.
	f.Sources = append(f.Sources, config.Source{Name: "web"})
	if _, err := config.Apply(ctx, s.client(t), f, config.Options{}); err == nil || !strings.Contains(err.Error(), "already declared") {
		t.Fatalf("duplicate: %v", err)
	}
	if st := s.state(t); st != "" {
		t.Fatalf("state %q after invalid apply", st)
	}

	for _, u := range []string{"", "ftp://x", "127.0.0.1:8080"} {
		if _, err := config.NewClient(u, "t", nil); err == nil {
			t.Errorf("URL %q accepted", u)
		}
	}
	if _, err := config.NewClient(s.url, "", nil); err == nil {
		t.Error("empty token accepted")
	}
}
