package consent

import (
	"encoding/json"
	"testing"
	"time"
)

// FuzzFromContext: any context an event carries is read without panicking, and what is kept
// respects the limits and survives a round trip through a profile.
func FuzzFromContext(f *testing.F) {
	for _, s := range []string{`{"consent":{"categoryPreferences":{"ads":true,"x":false}}}`, `{}`, `null`, `{"consent":[]}`,
		`{"consent":{"categoryPreferences":{"":true,"a":1,"b":null}}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		p, ok := FromContext(json.RawMessage(raw))
		if !ok {
			return
		}
		if len(p) > MaxCategories {
			t.Fatalf("%d categories kept", len(p))
		}
		for k := range p {
			if len(k) > MaxCategoryBytes {
				t.Fatalf("category of %d bytes kept", len(k))
			}
		}
		var prof Profile
		prof.Apply(p, time.Unix(0, 0))
		for k, v := range prof.Preferences() {
			if p[k] != v {
				t.Fatalf("profile %v from %v", prof.Preferences(), p)
			}
		}
	})
}
