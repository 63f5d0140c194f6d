package config_test

import (
	"strings"
	"testing"

	"github.com/serverless-cdp/cdp/internal/config"
)

func TestParse(t *testing.T) {
	f, err := config.Parse([]byte("sources:\n  - name: web\n  - name: ios\n    enabled: false\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Sources) != 2 || f.Sources[0].Name != "web" || f.Sources[0].Enabled != nil || *f.Sources[1].Enabled {
		t.Fatalf("parsed %+v", f)
	}
	j, err := config.Parse([]byte("{\n\t\"sources\": [{\"name\": \"web\", \"enabled\": true}]\n}\n"))
	if err != nil || len(j.Sources) != 1 || !*j.Sources[0].Enabled {
		t.Fatalf("json: %+v, %v", j, err)
	}
	if _, err := config.Parse([]byte("sources: []\n")); err != nil {
		t.Fatalf("empty list: %v", err)
	}
}

func TestParseRejects(t *testing.T) {
	for _, c := range []struct{ name, in, want string }{
		{"empty", "  \n", "empty"},
		{"unknown top-level field", "sources: []\naudiences: []\n", "audiences"},
		{"unknown source field", "sources:\n  - name: web\n    enabeld: true\n", "enabeld"},
		{"write key in file", "sources:\n  - name: web\n    writeKey: abc\n", "writeKey"},
		{"not a list", "sources: web\n", "invalid config"},
		{"enabled not a bool", "sources:\n  - name: web\n    enabled: maybe\n", "invalid config"},
		{"missing name", "sources:\n  - enabled: true\n", "name is required"},
		{"bad name", "sources:\n  - name: a/b\n", "may contain only"},
		{"duplicate name", "sources:\n  - name: web\n  - name: ios\n  - name: web\n", "already declared by sources[0]"},
		{"duplicate key", "sources: []\nsources: []\n", "already defined"},
		{"two documents", "sources: []\n---\nsources: []\n", "more than one"},
		{"top-level list", "- name: web\n", "invalid config"},
		{"not YAML", "sources: [\n", "invalid config"},
		{"json unknown field", `{"sources": [], "extra": 1}`, "extra"},
		{"json trailing data", `{"sources": []} {}`, "after the JSON"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := config.Parse([]byte(c.in))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want it to mention %q", err, c.want)
			}
		})
	}
	// All problems are reported at once.
	_, err := config.Parse([]byte("sources:\n  - name: ''\n  - name: x/y\n"))
	if err == nil || !strings.Contains(err.Error(), "sources[0]") || !strings.Contains(err.Error(), "sources[1]") {
		t.Fatalf("want both problems: %v", err)
	}
}
