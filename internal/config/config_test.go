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
		{"unknown top-level field", "sources: []\nsegments: []\n", "line 2: segments: unknown field"},
		{"unknown source field", "sources:\n  - name: web\n    enabeld: true\n", "line 3: sources[0].enabeld: unknown field \"enabeld\""},
		{"write key in file", "sources:\n  - name: web\n    writeKey: abc\n", "line 3: sources[0].writeKey: write keys are never in the file"},
		{"not a list", "sources: web\n", "invalid config"},
		{"enabled not a bool", "sources:\n  - name: web\n    enabled: maybe\n", "invalid config"},
		{"missing name", "sources:\n  - enabled: true\n", "name is required"},
		{"secret in file", "destinations:\n  - name: crm\n    url: https://x.example\n    secret: whsec_abc\n", "line 4: destinations[0].secret: signing secrets are never in the file"},
		{"bad regex", "identityRules:\n  types:\n    - type: email\n      blocked:\n        - {match: regex, value: '(x'}\n", "line 5: identityRules.types[0].blocked[0].value: invalid regex"},
		{"limit too high", "identityRules:\n  types:\n    - type: email\n      limit: 101\n", "line 4: identityRules.types[0].limit: limit 101 is out of range"},
		{"rules not a mapping", "identityRules: [email]\n", "identityRules: must be a mapping"},
		{"trait without key", "computedTraits:\n  - name: Orders\n    kind: event_count\n    event: {name: x}\n", "computedTraits[0].key: is required"},
		{"trait bad kind", "computedTraits:\n  - key: o\n    name: O\n    kind: total\n    event: {name: x}\n", "line 4: computedTraits[0].kind: unknown kind"},
		{"audience bad op", "audiences:\n  - key: a\n    name: A\n    condition:\n      trait: {key: x, op: like, value: 1}\n", "line 5: audiences[0].condition.trait.op: unknown operator"},
		{"audience by id", "audiences:\n  - key: a\n    name: A\n    condition: {audience: {id: aud_1}}\n", "refer to audiences by key"},
		{"audience cycle", "audiences:\n  - key: a\n    name: A\n    condition: {audience: {key: b}}\n  - key: b\n    name: B\n    condition: {audience: {key: a}}\n", "cycle: a -> b -> a"},
		{"audience self", "audiences:\n  - key: a\n    name: A\n    condition: {audience: {key: a}}\n", "refers to itself"},
		{"duplicate audience", "audiences:\n  - key: a\n    name: A\n    condition: {trait: {key: x, op: exists}}\n  - key: a\n    name: A2\n    condition: {trait: {key: x, op: exists}}\n", "line 5: audiences[1].key: key \"a\" is already declared by audiences[0]"},
		{"destination bad url", "destinations:\n  - name: crm\n    url: ftp://x\n", "line 3: destinations[0].url"},
		{"destination consent", "destinations:\n  - name: crm\n    url: https://x.example\n    consentCategories: [ads, ads]\n", "line 4: destinations[0].consentCategories[1]: \"ads\" is listed twice"},
		{"destination batch", "destinations:\n  - name: crm\n    url: https://x.example\n    batchSize: 1000\n", "line 4: destinations[0].batchSize"},
		{"infinite number", "computedTraits:\n  - key: o\n    name: O\n    kind: rfm_monetary\n    thresholds: [1, 2, 3, .inf]\n", "unsupported value"},
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
	// All problems are reported at once, in the order of the file, with their lines.
	_, err := config.Parse([]byte("sources:\n  - name: ''\n  - name: x/y\n"))
	if err == nil || !strings.Contains(err.Error(), "sources[0]") || !strings.Contains(err.Error(), "sources[1]") {
		t.Fatalf("want both problems: %v", err)
	}
	_, err = config.Parse([]byte(`sources:
  - name: web
    enabeld: true
identityRules:
  types:
    - {type: email, limit: 0}
    - {type: phone, limit: 500}
computedTraits:
  - key: orders
    name: Orders
    kind: event_count
    event: {name: ""}
audiences:
  - key: a
    name: A
    condition: {trait: {key: x, op: gt, value: true}}
destinations:
  - name: crm
    url: https://crm.example.com
    secret: whsec_x
`))
	want := []string{
		"line 3: sources[0].enabeld: unknown field",
		"line 7: identityRules.types[1].limit",
		"line 12: computedTraits[0].event.name: is required",
		"line 16: audiences[0].condition.trait.value: must be a number",
		"line 20: destinations[0].secret",
	}
	if err == nil {
		t.Fatal("bad file accepted")
	}
	msg, last := err.Error(), -1
	for _, w := range want {
		i := strings.Index(msg, w)
		if i < 0 || i < last {
			t.Fatalf("want %q after the previous problems in:\n%v", w, msg)
		}
		last = i
	}
}
