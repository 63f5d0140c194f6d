package privacy

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/serverless-cdp/cdp/internal/blocklist"
)

// FuzzNewRequest: any input is either refused with a ValidationError naming a field, or makes
// a request whose identifiers are all "type:value" within the limits and whose labels reveal no
// value longer than a character.
func FuzzNewRequest(f *testing.F) {
	f.Add("delete", "email:ann@example.com", "user_id:u1", "why")
	f.Add("export", "x", "", "")
	f.Add("suppress", "anonymous_id:\xff", "email:a@b", strings.Repeat("r", 2000))
	h := blocklist.NewHasher([]byte("0123456789abcdef0123456789abcdef"))
	f.Fuzz(func(t *testing.T, typ, id1, id2, reason string) {
		r, err := NewRequest(Input{Type: typ, Identifiers: []string{id1, id2}, Reason: reason}, h, time.Unix(0, 0))
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Field == "" {
				t.Fatalf("refusal is not a ValidationError naming a field: %v", err)
			}
			return
		}
		for i, id := range r.Identifiers {
			typ, v, ok := strings.Cut(id, ":")
			if !ok || typ == "" || len(typ) > 64 || v == "" || len(v) > 512 || !utf8.ValidString(v) {
				t.Fatalf("accepted identifier %q", id)
			}
			if _, shown, _ := strings.Cut(r.Labels[i], ":"); len(v) > 3 && strings.Contains(shown, v) {
				t.Fatalf("label %q reveals %q", r.Labels[i], v)
			}
		}
	})
}
