package profile

import (
	"encoding/base64"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/serverless-cdp/cdp/internal/identity"
)

// FuzzPath: any path either fails to route or yields a reference within the key limits, so
// no invalid key can reach the store.
func FuzzPath(f *testing.F) {
	for _, s := range []string{
		"/v1/spaces/default/collections/users/profiles/user_id:ann/traits",
		"/v1/spaces/default/collections/users/profiles/email:a%40b.c/events",
		"/v1/spaces/default/collections/users/profiles/use_123/metadata",
		"/v1/spaces/default/collections/users/profiles/user_id:" + strings.Repeat("x", 3000) + "/traits",
		"/v1/spaces/default/collections/users/profiles/user_id:u%FF/traits",
		"/v1/spaces/%zz/collections/users/profiles/a:b/c/links",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		space, ref, resource, ok := parsePath(path)
		if !ok {
			return
		}
		if !resources[resource] || space == "" {
			t.Fatalf("routed %q to %q %q", path, space, resource)
		}
		if checkRef(ref) != nil {
			return
		}
		if len(ref) > maxRefBytes || !utf8.ValidString(ref) || strings.ContainsRune(ref, utf8.RuneError) {
			t.Fatalf("accepted a reference of %d bytes (valid UTF-8: %v)", len(ref), utf8.ValidString(ref))
		}
		if typ, value, found := strings.Cut(ref, ":"); found && (len(typ) > 64 || len(value) > 512) {
			t.Fatalf("accepted type %d / value %d bytes", len(typ), len(value))
		}
	})
}

// FuzzCursor: decodeCursor never panics, accepts only cursors bound to the profile and resource
// whose position is a sort key DynamoDB accepts, and round-trips what encodeCursor issued.
func FuzzCursor(f *testing.F) {
	p := &identity.Profile{ID: "use_a", MergedFrom: []string{"use_b"}}
	key := base64.RawURLEncoding.EncodeToString([]byte("EVT#2025-03-01T12:00:00Z#m1"))
	for _, s := range []string{
		encodeCursor("use_a", "events", key), encodeCursor("use_b", "merges", key), encodeCursor("use_c", "events", key),
		"garbage!", base64.RawURLEncoding.EncodeToString([]byte(`{"p":1}`)), strings.Repeat("A", 5000),
		encodeCursor("use_a", "events", base64.RawURLEncoding.EncodeToString([]byte(strings.Repeat("x", 1500)))),
	} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, next string, events bool) {
		resource := "merges"
		if events {
			resource = "events"
		}
		k, aerr := decodeCursor(next, p, resource)
		if aerr != nil {
			if aerr.status != 400 || aerr.code != "invalid_cursor" {
				t.Fatalf("rejection %d %s", aerr.status, aerr.code)
			}
			return
		}
		if next == "" {
			return
		}
		raw, err := base64.RawURLEncoding.DecodeString(k)
		if err != nil || len(raw) == 0 || len(raw) > maxSortKeyBytes || !utf8.Valid(raw) {
			t.Fatalf("accepted a position the store cannot use: %q", k)
		}
		if again, aerr := decodeCursor(encodeCursor(p.ID, resource, k), p, resource); aerr != nil || again != k {
			t.Fatalf("round trip: %q %v", again, aerr)
		}
	})
}
