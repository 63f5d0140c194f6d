package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/serverless-cdp/cdp/internal/admin"
	"github.com/serverless-cdp/cdp/internal/admin/admintest"
	"github.com/serverless-cdp/cdp/internal/admin/identityrules"
	"github.com/serverless-cdp/cdp/internal/archive"
	"github.com/serverless-cdp/cdp/internal/idrules"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

// fixedRules serves the default rules and counts writes.
type fixedRules struct{ puts atomic.Int32 }

func (*fixedRules) Get(context.Context) (idrules.Rules, error) { return idrules.DefaultRules(), nil }
func (f *fixedRules) Put(context.Context, idrules.Rules) error { f.puts.Add(1); return nil }

// archiveTies archives, for n people, user u<i> with email x<i>, visitor an<i> with email y<i>,
// and an identify tying them: one profile now, two under email limit 1.
func archiveTies(t *testing.T, st archive.Store, n int) {
	t.Helper()
	hour := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	var lines [][]byte
	add := func(i int, kind string, m tracking.Message) {
		at := hour.Add(time.Duration(len(lines)) * time.Second)
		m.MessageID, m.Timestamp, m.ReceivedAt = fmt.Sprintf("%s%d", kind, i), at, at
		b, err := json.Marshal(tracking.Record{SourceID: "web", Message: m})
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, b)
	}
	for i := 0; i < n; i++ {
		add(i, "w", tracking.Message{Type: tracking.TypeIdentify, UserID: fmt.Sprintf("u%d", i), Traits: json.RawMessage(fmt.Sprintf(`{"email":"x%d@t.test"}`, i))})
		add(i, "p", tracking.Message{Type: tracking.TypeIdentify, AnonymousID: fmt.Sprintf("an%d", i), Traits: json.RawMessage(fmt.Sprintf(`{"email":"y%d@t.test"}`, i))})
	}
	for i := 0; i < n; i++ {
		add(i, "t", tracking.Message{Type: tracking.TypeIdentify, UserID: fmt.Sprintf("u%d", i), AnonymousID: fmt.Sprintf("an%d", i)})
	}
	body, err := archive.Encode(lines)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Put(context.Background(), archive.Key("web", hour, "a"), body); err != nil {
		t.Fatal(err)
	}
}

// TestIdentityDryRunCommand drives `cdp identity dry-run` against the real admin adapter over a
// folder archive.
func TestIdentityDryRunCommand(t *testing.T) {
	st := archive.Folder{Root: t.TempDir()}
	archiveTies(t, st, 3)
	rules := &fixedRules{}
	srv := httptest.NewServer(admin.New(admintest.OneToken{}, nil, func(r *admin.Router) {
		identityrules.RegisterDryRun(r, rules, identityrules.DryRunConfig{Archive: st})
	}))
	defer srv.Close()
	c := cli{env: map[string]string{"CDP_ADMIN_URL": srv.URL, "CDP_ADMIN_TOKEN": admintest.Token}}

	strict := writeFile(t, "types:\n  - type: email\n    priority: 2\n    limit: 1\n")
	code, out, stderr := c.run(t, "identity", "dry-run", "-f", strict, "--from", "2026-11-02", "--to", "2026-11-03")
	if code != 0 || !strings.Contains(out, "Would split           3") || !strings.Contains(out, "Would merge           0") {
		t.Fatalf("%d %q %q", code, out, stderr)
	}
	for _, want := range []string{
		"split 1:\n  now:       {anonymous_id:an0 email:x0@t.test email:y0@t.test user_id:u0}\n  candidate: {anonymous_id:an0 email:y0@t.test} {email:x0@t.test user_id:u0}\n  candidate: limit email=1 dropped anonymous_id:an0\n",
		"Events read           9",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	// A cdp config file's identityRules, the JSON answer, a source filter.
	cfgFile := writeFile(t, "identityRules:\n  types:\n    - type: email\n      priority: 2\n      limit: 1\n")
	code, out, stderr = c.run(t, "identity", "dry-run", "-f", cfgFile, "--from", "2026-11-02T10:00:00Z", "--to", "2026-11-02T11:00:00Z", "--source", "web", "--json", "--examples", "1")
	var rep dryRunReport
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || rep.Splits != 3 || len(rep.SplitExamples) != 1 {
		t.Fatalf("%d %q %q", code, out, stderr)
	}
	// An invalid rule set is refused locally, naming the field.
	bad := writeFile(t, "types:\n  - type: email\n    limit: 1000\n")
	if code, _, stderr = c.run(t, "identity", "dry-run", "-f", bad, "--from", "2026-11-02", "--to", "2026-11-03"); code != 1 || !strings.Contains(stderr, "types[0].limit") {
		t.Fatalf("bad rules: %d %q", code, stderr)
	}
	// The API's 400 is shown.
	if code, _, stderr = c.run(t, "identity", "dry-run", "-f", strict, "--from", "2026-01-01", "--to", "2026-11-03"); code != 1 || !strings.Contains(stderr, "400 invalid_request: to: the range is at most 31 days") {
		t.Fatalf("long range: %d %q", code, stderr)
	}
	if rules.puts.Load() != 0 {
		t.Fatal("the dry run stored rules")
	}
}

func TestIdentityUsageErrors(t *testing.T) {
	c := cli{env: map[string]string{"CDP_ADMIN_TOKEN": "t"}}
	f := writeFile(t, "types: []\n")
	for _, args := range [][]string{
		{"identity"},
		{"identity", "merge"},
		{"identity", "dry-run", "--from", "2026-11-02", "--to", "2026-11-03"},
		{"identity", "dry-run", "-f", f, "--to", "2026-11-03"},
		{"identity", "dry-run", "-f", f, "--from", "yesterday", "--to", "2026-11-03"},
		{"identity", "dry-run", "-f", f, "--from", "2026-11-02", "--to", "2026-11-03", "extra"},
	} {
		if code, _, stderr := c.run(t, args...); code != 2 || !strings.Contains(stderr, "usage:") {
			t.Errorf("%v: exit %d, %q", args, code, stderr)
		}
	}
}
