package config_test

import (
	"testing"

	"github.com/serverless-cdp/cdp/internal/config"
)

// FuzzParse: any input parses or is refused with an error; never a panic, never a valid file
// that fails validation.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"sources:\n  - name: web\n", "sources: []\n", `{"sources":[{"name":"a","enabled":false}]}`,
		"sources:\n  - name: &a web\n  - name: *a\n", "---\n", "sources: !!binary aGk=\n", "",
		"identityRules:\n  types:\n    - {type: email, limit: 3, blocked: [{match: regex, value: 'x+'}]}\n",
		"computedTraits:\n  - {key: n, name: N, kind: sum, property: p, event: {name: x}, window: {days: 1}}\n",
		"audiences:\n  - key: a\n    name: A\n    condition: {or: [{audience: {key: b}}, {computedTrait: {key: n, op: gt, value: 1}}]}\n  - {key: b, name: B, condition: {trait: {key: x, op: exists}}}\n",
		"destinations:\n  - {name: crm, url: 'https://x.example', subscriptions: {audiences: ['*']}}\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		file, err := config.Parse([]byte(in))
		if err != nil {
			return
		}
		if err := file.Validate(); err != nil {
			t.Fatalf("Parse accepted an invalid file: %v", err)
		}
	})
}
