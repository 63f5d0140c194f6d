package main

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/serverless-cdp/cdp/internal/admin"
	"github.com/serverless-cdp/cdp/internal/admin/admintest"
	adminreplays "github.com/serverless-cdp/cdp/internal/admin/replays"
	"github.com/serverless-cdp/cdp/internal/apitypes"
	"github.com/serverless-cdp/cdp/internal/replay/replaytest"
)

// TestReplayCommands drives `cdp replay` against the real admin adapter over in-memory fakes
// and a folder archive.
func TestReplayCommands(t *testing.T) {
	svc, _ := replaytest.Service(t, 0) // no inline run: the job stays pending
	srv := httptest.NewServer(admin.New(admintest.OneToken{}, nil, func(r *admin.Router) { adminreplays.Register(r, svc) }))
	defer srv.Close()
	c := cli{env: map[string]string{"CDP_ADMIN_URL": srv.URL, "CDP_ADMIN_TOKEN": admintest.Token}}

	code, out, stderr := c.run(t, "replay", "start", "--from", "2026-03-01T00:00:00Z", "--to", "2026-03-02T00:00:00Z", "--pipeline",
		"--source", "src_web", "--event", "Signed Up", "--id", "user_id:u1")
	var j apitypes.Replay
	if code != 0 || json.Unmarshal([]byte(out), &j) != nil || j.Status != "pending" || j.Sources[0] != "src_web" ||
		j.Events[0] != "Signed Up" || j.Identifiers[0] != "user_id:u1" || j.Target.Type != "pipeline" {
		t.Fatalf("start: %d %q %q", code, out, stderr)
	}
	if code, out, _ = c.run(t, "replay", "list"); code != 0 || !strings.Contains(out, j.ID) || !strings.Contains(out, "pending") {
		t.Fatalf("list: %d %q", code, out)
	}
	// A service that runs jobs inline: --wait sees the job completed.
	svcRun, ev := replaytest.Service(t, 5*time.Second)
	srv2 := httptest.NewServer(admin.New(admintest.OneToken{}, nil, func(r *admin.Router) { adminreplays.Register(r, svcRun) }))
	defer srv2.Close()
	c2 := cli{env: map[string]string{"CDP_ADMIN_URL": srv2.URL, "CDP_ADMIN_TOKEN": admintest.Token}}
	code, out, stderr = c2.run(t, "replay", "start", "--from", "2026-03-01T00:00:00Z", "--to", "2026-03-02T00:00:00Z", "--pipeline", "--wait")
	if code != 0 || json.Unmarshal([]byte(out), &j) != nil || j.Status != "completed" || j.Counts.Sent != 1 || len(ev.Sent()) != 1 {
		t.Fatalf("start --wait: %d %q %q", code, out, stderr)
	}
	if code, out, _ = c2.run(t, "replay", "get", j.ID); code != 0 || !strings.Contains(out, `"sent": 1`) {
		t.Fatalf("get: %d %q", code, out)
	}
	if code, out, _ = c2.run(t, "replay", "list"); code != 0 || !strings.Contains(out, "completed") || !strings.Contains(out, "pipeline") {
		t.Fatalf("list: %d %q", code, out)
	}
	if code, _, stderr = c2.run(t, "replay", "start", "--from", "2026-03-01T00:00:00Z", "--to", "2026-03-01T00:00:00Z", "--pipeline"); code != 1 || !strings.Contains(stderr, "400 invalid_request: to") {
		t.Fatalf("bad range: %d %q", code, stderr)
	}
	if code, _, stderr = c2.run(t, "replay", "get", "rp_000000000000000000000"); code != 1 || !strings.Contains(stderr, "404") {
		t.Fatalf("unknown job: %d %q", code, stderr)
	}
}

func TestReplayUsageErrors(t *testing.T) {
	c := cli{env: map[string]string{"CDP_ADMIN_TOKEN": "t"}}
	for _, args := range [][]string{
		{"replay"},
		{"replay", "rewind"},
		{"replay", "start", "--from", "2026-03-01T00:00:00Z", "--pipeline"},
		{"replay", "start", "--from", "2026-03-01T00:00:00Z", "--to", "2026-03-02T00:00:00Z"},
		{"replay", "start", "--from", "2026-03-01T00:00:00Z", "--to", "2026-03-02T00:00:00Z", "--pipeline", "--destination", "dst_1"},
		{"replay", "get"},
		{"replay", "list", "extra"},
	} {
		if code, _, stderr := c.run(t, args...); code != 2 || !strings.Contains(stderr, "usage:") {
			t.Errorf("%v: exit %d, %q", args, code, stderr)
		}
	}
}
