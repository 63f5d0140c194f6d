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
