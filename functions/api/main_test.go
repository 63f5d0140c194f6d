package main

import (
	"log/slog"
	"os"
	"testing"

	"github.com/serverless-cdp/cdp/internal/admin"
	"github.com/serverless-cdp/cdp/internal/awsenv"
)

func TestLoadConfig(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	if _, err := loadConfig(env(nil)); err == nil {
		t.Fatal("missing CDP_TABLE accepted")
	}
	if _, err := loadConfig(env(map[string]string{"CDP_TABLE": "t", "LOG_LEVEL": "loud"})); err == nil {
		t.Fatal("bad LOG_LEVEL accepted")
	}
	c, err := loadConfig(env(map[string]string{"CDP_TABLE": "t", "LOG_LEVEL": "debug"}))
	if err != nil || c.table != "t" || c.level != slog.LevelDebug {
		t.Fatalf("%+v, %v", c, err)
	}
	c, err = loadConfig(env(map[string]string{"CDP_TABLE": "t"}))
	if err != nil || c.level != slog.LevelInfo {
		t.Fatalf("default level: %+v, %v", c, err)
	}
}

// TestAdminRoutesDocumented: the admin API as deployed (every registrar included) matches
// api/openapi.yaml route for route.
func TestAdminRoutesDocumented(t *testing.T) {
	spec, err := os.ReadFile("../../api/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r := newAdminRouter(awsenv.Clients{}, "unused", nil) // nothing is called
	undocumented, unregistered, err := admin.CompareOpenAPI(spec, r.Routes())
	if err != nil {
		t.Fatal(err)
	}
	if len(undocumented) > 0 || len(unregistered) > 0 {
		t.Fatalf("routes not in api/openapi.yaml: %v; documented but not served: %v", undocumented, unregistered)
	}
}
