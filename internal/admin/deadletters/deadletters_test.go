package deadletters_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/serverless-cdp/cdp/internal/admin"
	"github.com/serverless-cdp/cdp/internal/admin/admintest"
	"github.com/serverless-cdp/cdp/internal/admin/deadletters"
	"github.com/serverless-cdp/cdp/internal/deadletter"
)

// memDLQ holds entries of stage "identity"; stage "segments" has no replayer; an entry whose
// reason is "poison" fails its replay.
type memDLQ struct {
	entries map[string]deadletter.Entry
	calls   []string
}

func (m *memDLQ) List(_ context.Context, stage string, limit int, next string) ([]deadletter.Entry, string, error) {
	m.calls = append(m.calls, "list "+stage)
	var out []deadletter.Entry
	for _, e := range m.entries {
		if e.Stage == stage {
			out = append(out, e)
		}
	}
	return out, "", nil
}

func (m *memDLQ) Get(_ context.Context, stage, id string) (deadletter.Entry, error) {
	e, ok := m.entries[id]
	if !ok || e.Stage != stage {
		return deadletter.Entry{}, deadletter.ErrNotFound
	}
	return e, nil
}

func (m *memDLQ) Delete(_ context.Context, stage, id string) error {
	m.calls = append(m.calls, "delete "+id)
	delete(m.entries, id)
	return nil
}

func (m *memDLQ) Replay(_ context.Context, stage, id string) error {
	m.calls = append(m.calls, "replay "+id)
	if stage == "segments" {
		return deadletter.ErrNoReplayer
	}
	if m.entries[id].Reason == "poison" {
		return errors.New("still cannot resolve")
	}
	delete(m.entries, id)
	return nil
}

func (m *memDLQ) ReplayAll(_ context.Context, stage, next string) (deadletter.ReplayAllResult, error) {
	m.calls = append(m.calls, "replayAll "+stage+" "+next)
	if stage == "segments" {
		return deadletter.ReplayAllResult{}, deadletter.ErrNoReplayer
	}
	return deadletter.ReplayAllResult{Replayed: 1, Remaining: 2, Next: "ff"}, nil
}

// TestDeadLetterRoutes runs the dead-letter routes on an in-memory service: bad stages, ids,
// limits and cursors are answered before the service is called; replay failures keep the entry
// (409), a stage without a replayer is a 409, and replay-all answers how far it got.
func TestDeadLetterRoutes(t *testing.T) {
	svc := &memDLQ{entries: map[string]deadletter.Entry{
		"0a": {ID: "0a", Stage: "identity", Reason: "no_identifiers"},
		"0b": {ID: "0b", Stage: "identity", Reason: "poison"},
		"0c": {ID: "0c", Stage: "segments", Reason: "decode"},
	}}
	h := admin.New(admintest.OneToken{}, nil, func(r *admin.Router) { deadletters.Register(r, svc) })
	const p = "/admin/v1/dead-letters/"
	for _, tc := range []struct {
		method, path, body string
		status             int
		mention            string
	}{
		{"GET", p + "Identity", "", 400, "is not a stage name"},
		{"GET", p + "identity?limit=0", "", 400, "limit must be between 1 and 100"},
		{"GET", p + "identity?limit=101", "", 400, "limit must be between 1 and 100"},
		{"GET", p + "identity?next=zz", "", 400, "invalid next token"},
		{"POST", p + "identity/replay", `{"next":"zz"}`, 400, "invalid next token"},
		{"GET", p + "identity/xyz", "", 404, "no dead letter xyz in stage identity"},
		{"GET", p + "identity/0c", "", 404, "no dead letter 0c in stage identity"},
		{"DELETE", p + "identity/09", "", 404, "no dead letter 09"},
		{"POST", p + "identity/0a/replay", `{"x":1}`, 400, "unknown field"},
		{"POST", p + "identity/0b/replay", "", 409, "replay failed; the dead letter is kept with the error: still cannot resolve"},
		{"POST", p + "segments/0c/replay", "", 409, "stage segments cannot replay dead letters"},
		{"POST", p + "segments/replay", "", 409, "stage segments cannot replay dead letters"},
	} {
		status, body := admintest.Call(t, h, tc.method, tc.path, tc.body)
		if status != tc.status || !strings.Contains(body, tc.mention) {
			t.Errorf("%s %s: %d %s, want %d mentioning %q", tc.method, tc.path, status, body, tc.status, tc.mention)
		}
	}
	if _, ok := svc.entries["0b"]; !ok {
		t.Fatal("a failed replay removed the entry")
	}
	if status, body := admintest.Call(t, h, "GET", p+"identity?limit=100", ""); status != 200 || !strings.HasPrefix(body, `{"deadLetters":[`) || !strings.HasSuffix(body, `"next":""}`) {
		t.Fatalf("list: %d %s", status, body)
	}
	if status, body := admintest.Call(t, h, "GET", p+"nothing", ""); status != 200 || body != `{"deadLetters":[],"next":""}` {
		t.Fatalf("empty list: %d %s", status, body)
	}
	if status, body := admintest.Call(t, h, "POST", p+"identity/0a/replay", ""); status != 200 || body != `{"replayed":1}` {
		t.Fatalf("replay: %d %s", status, body)
	}
	status, body := admintest.Call(t, h, "POST", p+"identity/replay?next=0a", `{"next":"0b"}`)
	if status != 200 || body != `{"replayed":1,"failed":0,"remaining":2,"next":"ff"}` || svc.calls[len(svc.calls)-1] != "replayAll identity 0a" {
		t.Fatalf("replay all: %d %s %v", status, body, svc.calls)
	}
	if status, body := admintest.Call(t, h, "DELETE", p+"identity/0b", ""); status != http.StatusNoContent || body != "" {
		t.Fatalf("delete: %d %q", status, body)
	}
}
