//go:build integration

package config_test

import (
	"context"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/serverless-cdp/cdp/internal/config"
)

// snapshot is everything the admin API holds of the kinds a file declares, as one string, so a
// test can tell whether anything changed.
func (s server) snapshot(t *testing.T) string {
	t.Helper()
	c, ctx := s.client(t), context.Background()
	var b strings.Builder
	b.WriteString("sources: " + s.state(t) + "\n")
	rules, err := c.IdentityRules(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rules.Types {
		b.WriteString("rule: " + r.Type + " limit " + itoa(int64(r.Limit)) + "\n")
	}
	traits, err := c.ComputedTraits(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range traits {
		b.WriteString("trait: " + tr.Key + " v" + itoa(tr.Version) + "\n")
	}
	auds, err := c.Audiences(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range auds {
		b.WriteString("audience: " + a.Key + " v" + itoa(a.Version) + "\n")
	}
	dests, err := c.Destinations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dests {
		b.WriteString("destination: " + d.Name + " " + d.URL + " v" + itoa(d.Version) + "\n")
	}
	return b.String()
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func load(t *testing.T, path string) *config.File {
	t.Helper()
	f, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestApplyExample: the example file applies cleanly to an empty CDP, in dependency order, and a
// second run changes nothing.
func TestApplyExample(t *testing.T) {
	s := newServer(t)
	c := s.client(t)
	f := load(t, "testdata/example.yaml")
	empty := s.snapshot(t)

	plan := apply(t, c, f, config.Options{DryRun: true})
	for _, line := range []string{
		"+ source web\n", "+ source pos-import\n",
		"~ identity rules: +device_id, email (limit 5 -> 3, blocked 0 -> 2 values)\n",
		"+ computed trait orders_90d\n", "+ computed trait rfm_recency\n",
		"+ audience high_value\n+ audience vip_in_paris\n+ audience cart_abandoners\n",
		"+ destination crm\n+ destination warehouse\n(dry run: nothing changed)\n",
	} {
		if !strings.Contains(plan, line) {
			t.Fatalf("dry run: want %q in\n%s", line, plan)
		}
	}
	if got := s.snapshot(t); got != empty {
		t.Fatalf("dry run changed the CDP:\n%s", got)
	}

	out := apply(t, c, f, config.Options{})
	if strings.Count(out, "write key: ") != 3 || strings.Count(out, "signing secret: whsec_") != 2 {
		t.Fatalf("secrets not printed once each:\n%s", out)
	}
	if !strings.Contains(out, "+ audience high_value\n+ audience vip_in_paris\n") {
		t.Fatalf("audiences not in dependency order:\n%s", out)
	}
	applied := s.snapshot(t)
	for _, want := range []string{"sources: web=on ios=on pos-import=off", "rule: device_id", "trait: revenue_90d v1",
		"audience: vip_in_paris v1", "destination: warehouse https://ingest.example.net/segment v1"} {
		if !strings.Contains(applied, want) {
			t.Fatalf("want %q in\n%s", want, applied)
		}
	}
	// vip_in_paris refers to high_value by id in the CDP.
	ctx := context.Background()
	auds, _ := c.Audiences(ctx)
	ids := map[string]string{}
	for _, a := range auds {
		ids[a.Key] = a.ID
	}
	for _, a := range auds {
		if a.Key == "vip_in_paris" && a.Condition.And[0].Audience.ID != ids["high_value"] {
			t.Fatalf("reference not resolved: %+v", a.Condition.And[0].Audience)
		}
	}

	// Idempotent: nothing to do, nothing printed, nothing changed (no new versions).
	if out := apply(t, c, f, config.Options{}); out != "" {
		t.Fatalf("second apply printed:\n%s", out)
	}
	if got := s.snapshot(t); got != applied {
		t.Fatalf("second apply changed the CDP:\n%s\nwas\n%s", got, applied)
	}
}

// TestApplyChangesAndPrune: edits show as updates naming what changed; --prune deletes what the
// file no longer declares (audiences before the traits they use, never identity rules).
func TestApplyChangesAndPrune(t *testing.T) {
	s := newServer(t)
	c := s.client(t)
	example, err := os.ReadFile("testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	apply(t, c, mustParse(t, string(example)), config.Options{})

	edited := strings.NewReplacer(
		"      limit: 3\n", "      limit: 4\n",
		"    window: {days: 90}\n  - key: revenue_90d", "    window: {days: 30}\n  - key: revenue_90d",
		"value: Paris}", "value: Lyon}",
		"https://crm.example.com/hooks/cdp", "https://crm.example.com/hooks/v2",
		"    batchSize: 50\n", "    batchSize: 20\n    enabled: false\n",
		"consentCategories: [analytics]", "consentCategories: [analytics, advertising]\n    requireConsent: true",
	).Replace(string(example))
	f := mustParse(t, edited)
	before := s.snapshot(t)
	want := "~ identity rules: email (limit 3 -> 4)\n" +
		"~ computed trait orders_90d: window\n" +
		"~ audience vip_in_paris: condition\n" +
		"~ destination crm: url \"https://crm.example.com/hooks/cdp\" -> \"https://crm.example.com/hooks/v2\"\n" +
		"~ destination warehouse: enabled true -> false, batchSize 50 -> 20, consentCategories, requireConsent false -> true\n"
	if out := apply(t, c, f, config.Options{DryRun: true}); out != want+"(dry run: nothing changed)\n" {
		t.Fatalf("dry run printed\n%s\nwant\n%s", out, want)
	}
	if got := s.snapshot(t); got != before {
		t.Fatal("dry run changed the CDP")
	}
	if out := apply(t, c, f, config.Options{}); out != want {
		t.Fatalf("apply printed\n%s", out)
	}
	if out := apply(t, c, f, config.Options{}); out != "" {
		t.Fatalf("second apply printed\n%s", out)
	}

	// A file that declares only sources prunes only sources: --prune never deletes kinds the
	// file does not mention.
	before = s.snapshot(t)
	if out := apply(t, c, mustParse(t, "sources:\n  - name: web\n  - name: ios\n  - {name: pos-import, enabled: false}\n"), config.Options{Prune: true}); out != "" {
		t.Fatalf("sources-only prune printed\n%s", out)
	}
	if got := s.snapshot(t); got != before {
		t.Fatal("a sources-only file with --prune changed other kinds")
	}

	// Keep only what cart_abandoners and crm need; prune the rest. Declared empty kinds
	// (computedTraits: [], sources: []) are emptied.
	small := mustParse(t, `
sources: []
computedTraits: []
identityRules:
  types: [{type: user_id, priority: 1, limit: 1}]
audiences:
  - key: cart_abandoners
    name: Cart abandoners
    condition:
      and:
        - event: {name: Product Added, within: {days: 7}}
        - not: {event: {name: Order Completed, within: {days: 7}}}
destinations:
  - name: crm
    url: https://crm.example.com/hooks/v2
    subscriptions: {audiences: [high_value, vip_in_paris], traits: [orders_90d], privacy: true}
`)
	want = "~ identity rules: -device_id, -email\n" +
		"- destination warehouse\n" +
		"- audience vip_in_paris\n- audience high_value\n" +
		"- computed trait orders_90d\n- computed trait revenue_90d\n- computed trait rfm_recency\n" +
		"- source web\n- source ios\n- source pos-import\n"
	if out := apply(t, c, small, config.Options{Prune: true}); out != want {
		t.Fatalf("prune printed\n%s\nwant\n%s", out, want)
	}
	if out := apply(t, c, small, config.Options{Prune: true}); out != "" {
		t.Fatalf("prune again printed\n%s", out)
	}
	// Without identityRules in the file, the rules are left alone even with --prune.
	if out := apply(t, c, mustParse(t, "sources: []\n"), config.Options{Prune: true, DryRun: true}); strings.Contains(out, "identity") {
		t.Fatalf("identity rules pruned:\n%s", out)
	}
}

// TestApplyBadFileChangesNothing: a file with problems is refused with all of them listed, and
// references the CDP cannot satisfy are refused when planning, before any change.
func TestApplyBadFileChangesNothing(t *testing.T) {
	s := newServer(t)
	c := s.client(t)
	before := s.snapshot(t)
	_, err := config.Parse([]byte(`sources:
  - name: web
identityRules:
  types:
    - type: email
      blocked: [{match: regex, value: "[a-"}]
destinations:
  - name: crm
    url: https://crm.example.com
    secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
`))
	if err == nil || !regexp.MustCompile(`(?s)line 6: identityRules.types\[0\].blocked\[0\].value: invalid regex.*line 10: destinations\[0\].secret`).MatchString(err.Error()) {
		t.Fatalf("bad file: %v", err)
	}

	// Valid on its own, but the audience refers to things neither in the file nor in the CDP.
	for _, ref := range []string{"{audience: {key: ghosts}}", "{computedTrait: {key: ghost_score, op: gt, value: 1}}"} {
		f := mustParse(t, "sources:\n  - name: web\ncomputedTraits:\n  - {key: n, name: N, kind: event_count, event: {name: x}}\naudiences:\n  - key: a\n    name: A\n    condition: "+ref+"\n")
		_, err := config.Apply(context.Background(), c, f, config.Options{})
		if err == nil || !strings.Contains(err.Error(), "neither in the file nor in the CDP") || !strings.Contains(err.Error(), "line 8: audiences[0].condition") {
			t.Fatalf("%s: %v", ref, err)
		}
	}
	if got := s.snapshot(t); got != before {
		t.Fatalf("refused files changed the CDP:\n%s", got)
	}
}
