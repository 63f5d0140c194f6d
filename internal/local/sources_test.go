//go:build integration

package local_test

import (
	"testing"

	"github.com/serverless-cdp/cdp/internal/source"
)

// TestSourceLifecycle: a source created through the admin API can send events; disabling it or
// rotating its key shuts the old key out at once (the key cache is off in this stack).
func TestSourceLifecycle(t *testing.T) {
	stack, _, _ := startStack(t)
	bearer := "Bearer " + adminToken
	send := func(key string) int {
		return call(t, "POST", stack.URL+"/v1/track", "Basic "+basicToken(key), map[string]any{"userId": "u1", "event": "Ping"}, nil)
	}
	var created struct {
		Source   source.Source `json:"source"`
		WriteKey string        `json:"writeKey"`
	}
	if st := call(t, "POST", stack.URL+"/admin/v1/sources", bearer, map[string]any{"name": "ios"}, &created); st != 201 || created.WriteKey == "" {
		t.Fatalf("create source: %d %+v", st, created)
	}
	if st := send(created.WriteKey); st != 200 {
		t.Fatalf("new source's key: %d", st)
	}
	if st := call(t, "POST", stack.URL+"/admin/v1/sources/"+created.Source.ID+"/disable", bearer, nil, nil); st != 200 {
		t.Fatalf("disable: %d", st)
	}
	if st := send(created.WriteKey); st != 401 {
		t.Fatalf("disabled source's key: %d, want 401", st)
	}
	call(t, "POST", stack.URL+"/admin/v1/sources/"+created.Source.ID+"/enable", bearer, nil, nil)
	var rotated struct {
		WriteKey string `json:"writeKey"`
	}
	if st := call(t, "POST", stack.URL+"/admin/v1/sources/"+created.Source.ID+"/rotate-key", bearer, map[string]any{}, &rotated); st != 200 || rotated.WriteKey == "" {
		t.Fatalf("rotate: %d", st)
	}
	if st := send(created.WriteKey); st != 401 {
		t.Fatalf("rotated-out key: %d, want 401", st)
	}
	if st := send(rotated.WriteKey); st != 200 {
		t.Fatalf("new key: %d", st)
	}
}
