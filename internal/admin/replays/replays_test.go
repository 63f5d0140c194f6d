package replays_test

import (
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/serverless-cdp/cdp/internal/admin"
	"github.com/serverless-cdp/cdp/internal/admin/admintest"
	"github.com/serverless-cdp/cdp/internal/admin/openapicheck"
	adminreplays "github.com/serverless-cdp/cdp/internal/admin/replays"
	"github.com/serverless-cdp/cdp/internal/apitypes"
	"github.com/serverless-cdp/cdp/internal/replay/replaytest"
)

const base = "/admin/v1/replays"

func router(t *testing.T, inline time.Duration) (http.Handler, *replaytest.Events) {
	svc, ev := replaytest.Service(t, inline)
	return admin.New(admintest.OneToken{}, nil, func(r *admin.Router) { adminreplays.Register(r, svc) }), ev
}

func decode[T any](t *testing.T, body string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("decode %q: %v", body, err)
	}
	return v
}

const day = `"from":"2026-03-01T00:00:00Z","to":"2026-03-02T00:00:00Z"`

func TestStartValidation(t *testing.T) {
	h, _ := router(t, time.Second)
	for body, field := range map[string]string{
		`{"to":"2026-03-02T00:00:00Z","target":{"type":"pipeline"}}`:                               "from",
		`{"from":"2026-03-01T00:00:00Z","target":{"type":"pipeline"}}`:                             "to",
		`{"from":"2026-03-02T00:00:00Z","to":"2026-03-01T00:00:00Z","target":{"type":"pipeline"}}`: "to",
		`{"from":"2026-01-01T00:00:00Z","to":"2026-03-01T00:00:00Z","target":{"type":"pipeline"}}`: "31 days",
		`{"from":"2999-01-01T00:00:00Z","to":"2999-01-02T00:00:00Z","target":{"type":"pipeline"}}`: "from",
		`{"from":"yesterday","to":"2026-03-01T00:00:00Z","target":{"type":"pipeline"}}`:            "from",
		`{` + day + `,"target":{"type":"s3"}}`:                                                     "target.type",
		`{` + day + `,"target":{"type":"destination"}}`:                                            "target.destinationId",
		`{` + day + `,"target":{"type":"destination","destinationId":"dst_none"}}`:                 "target.destinationId",
		`{` + day + `,"target":{"type":"pipeline","destinationId":"dst_1"}}`:                       "target.destinationId",
		`{` + day + `,"target":{"type":"pipeline"},"identifiers":["ann@example.com"]}`:             "identifiers[0]",
		`{` + day + `,"target":{"type":"pipeline"},"sources":["a/b"]}`:                             "sources[0]",
		`{` + day + `,"target":{"type":"pipeline"},"events":["x","x"]}`:                            "events[1]",
		`{` + day + `,"target":{"type":"pipeline"},"color":1}`:                                     "color",
	} {
		code, out := admintest.Call(t, h, "POST", base, body)
		if code != 400 || !strings.Contains(out, field) {
			t.Errorf("%s: %d %s, want 400 naming %s", body, code, out, field)
		}
	}
	if code, out := admintest.Call(t, h, "GET", base, ""); code != 200 || !strings.Contains(out, `"replays":[]`) {
		t.Fatalf("bad input stored something: %d %s", code, out)
	}
}

func TestStartFollowAndList(t *testing.T) {
	h, ev := router(t, 5*time.Second)
	code, out := admintest.Call(t, h, "POST", base, `{`+day+`,"target":{"type":"pipeline"},"identifiers":["user_id:u1"],"events":["Signed Up"]}`)
	j := decode[apitypes.Replay](t, out)
	if code != 202 || j.Status != "completed" || j.Counts.Sent != 1 || j.Counts.Read != 1 || j.RequestedBy != "tok_1" ||
		j.Progress.ObjectsDone != 1 || j.CompletedAt == nil || len(ev.Sent()) != 1 || strings.Contains(out, "user_id:u1") {
		t.Fatalf("start: %d %s", code, out)
	}
	code, out = admintest.Call(t, h, "GET", base+"/"+j.ID, "")
	if got := decode[apitypes.Replay](t, out); code != 200 || got.ID != j.ID || got.Counts.Sent != 1 || strings.Contains(out, "lease") {
		t.Fatalf("get: %d %s", code, out)
	}
	code, out = admintest.Call(t, h, "POST", base, `{`+day+`,"target":{"type":"destination","destinationId":"dst_1"}}`)
	if d := decode[apitypes.Replay](t, out); code != 202 || d.Target.DestinationID != "dst_1" || d.Status != "running" || d.Attempts != 1 || !strings.Contains(d.Error, "no profile lookup") {
		t.Fatalf("destination job without a profile lookup: %d %s", code, out)
	}
	code, out = admintest.Call(t, h, "GET", base+"?limit=1", "")
	page := decode[apitypes.ReplayList](t, out)
	if code != 200 || len(page.Replays) != 1 || page.Replays[0].ID == j.ID || page.Next == "" {
		t.Fatalf("list: %d %s", code, out)
	}
	code, out = admintest.Call(t, h, "GET", base+"?limit=1&next="+page.Next, "")
	if page = decode[apitypes.ReplayList](t, out); code != 200 || len(page.Replays) != 1 || page.Replays[0].ID != j.ID || page.Next != "" {
		t.Fatalf("list page 2: %d %s", code, out)
	}
}

func TestNotFoundAndBadQueries(t *testing.T) {
	h, _ := router(t, 0)
	for path, want := range map[string]int{
		base + "/rp_000000000000000000000": 404,
		base + "/nope":                     404,
		base + "?limit=0":                  400,
		base + "?limit=101":                400,
		base + "?next=x":                   400,
	} {
		if code, out := admintest.Call(t, h, "GET", path, ""); code != want {
			t.Errorf("%s: %d %s, want %d", path, code, out, want)
		}
	}
	// Without an inline budget the job answers pending.
	code, out := admintest.Call(t, h, "POST", base, `{`+day+`,"target":{"type":"pipeline"}}`)
	if j := decode[apitypes.Replay](t, out); code != 202 || j.Status != "pending" || j.Counts.Skipped == nil {
		t.Fatalf("pending: %d %s", code, out)
	}
}

// TestRoutesDocumented: every replay route is in api/openapi.yaml.
func TestRoutesDocumented(t *testing.T) {
	raw, err := os.ReadFile("../../../api/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	h, _ := replaytest.Service(t, 0)
	r := admin.New(admintest.OneToken{}, nil, func(r *admin.Router) { adminreplays.Register(r, h) })
	undocumented, unregistered, err := openapicheck.Compare(raw, r.Routes())
	if err != nil || len(undocumented) > 0 {
		t.Fatalf("not in api/openapi.yaml: %v %v", undocumented, err)
	}
	for _, u := range unregistered {
		if strings.HasPrefix(u, "GET "+base) || strings.HasPrefix(u, "POST "+base) {
			t.Errorf("documented, not served: %s", u)
		}
	}
}
