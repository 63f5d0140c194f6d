package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type cli struct {
	env map[string]string
}

func (c cli) run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut, func(k string) string { return c.env[k] })
	return code, out.String(), errOut.String()
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "cdp.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestUsageErrors(t *testing.T) {
	c := cli{env: map[string]string{}}
	for _, args := range [][]string{
		{},
		{"frobnicate"},
		{"apply"},
		{"apply", "-f", "x.yaml", "extra"},
		{"apply", "--no-such-flag"},
		{"admin-token"},
		{"admin-token", "create"}, // no table
		{"admin-token", "destroy", "--table", "t"},
		{"admin-token", "revoke", "--table", "t"},
	} {
		if code, _, stderr := c.run(t, args...); code != 2 || !strings.Contains(stderr, "usage:") {
			t.Errorf("%v: exit %d, %q", args, code, stderr)
		}
	}
	if code, _, stderr := c.run(t, "help"); code != 0 || !strings.Contains(stderr, "cdp apply") {
		t.Errorf("help: %d %q", code, stderr)
	}
}
