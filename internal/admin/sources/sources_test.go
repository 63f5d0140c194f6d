package sources_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/serverless-cdp/cdp/internal/admin"
	"github.com/serverless-cdp/cdp/internal/admin/admintest"
	"github.com/serverless-cdp/cdp/internal/admin/sources"
	"github.com/serverless-cdp/cdp/internal/source"
)

// memSources is an in-memory sources.Service: names are unique, keys are counters.
type memSources struct {
	byID  map[string]source.Source
	n     int
	grace []time.Duration
}

func (m *memSources) Create(_ context.Context, name string) (source.Source, string, error) {
	for _, s := range m.byID {
		if s.Name == name {
			return source.Source{}, "", fmt.Errorf("%w: %q", source.ErrNameTaken, name)
		}
	}
	m.n++
	s := source.Source{ID: fmt.Sprintf("src_%d", m.n), Name: name, Enabled: true}
	m.byID[s.ID] = s
	return s, fmt.Sprintf("key%d", m.n), nil
}

func (m *memSources) Get(_ context.Context, id string) (source.Source, error) {
	s, ok := m.byID[id]
	if !ok {
		return s, source.ErrNotFound
	}
	return s, nil
}

func (m *memSources) List(context.Context) ([]source.Source, error) {
	var out []source.Source
	for _, s := range m.byID {
		out = append(out, s)
	}
	return out, nil
}

func (m *memSources) SetEnabled(ctx context.Context, id string, enabled bool) (source.Source, error) {
	s, err := m.Get(ctx, id)
	if err != nil {
		return s, err
	}
	s.Enabled = enabled
	m.byID[id] = s
	return s, nil
}

func (m *memSources) RotateKey(ctx context.Context, id string, grace time.Duration) (source.Source, string, error) {
	m.grace = append(m.grace, grace)
	s, err := m.Get(ctx, id)
	return s, "rotated", err
}

func (m *memSources) Delete(ctx context.Context, id string) error {
	if _, err := m.Get(ctx, id); err != nil {
		return err
	}
	delete(m.byID, id)
	return nil
}

func errCode(t *testing.T, body string) string {
	t.Helper()
	var e struct{ Code, Message string }
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Message == "" {
		t.Fatalf("not an error body: %q", body)
	}
	return e.Code
}

// TestSourcesRoutes runs every sources route on an in-memory service: statuses, codes and
// bodies as the admin API documents them, without an emulator.
func TestSourcesRoutes(t *testing.T) {
	svc := &memSources{byID: map[string]source.Source{}}
	h := admin.New(admintest.OneToken{}, nil, func(r *admin.Router) { sources.Register(r, svc) })

	status, body := admintest.Call(t, h, "POST", "/admin/v1/sources", `{"name":"web"}`)
	var created sources.SourceWithKey
	if err := json.Unmarshal([]byte(body), &created); status != http.StatusCreated || err != nil ||
		created.Source.ID != "src_1" || created.WriteKey != "key1" {
		t.Fatalf("create: %d %s", status, body)
	}
	for _, tc := range []struct {
		method, path, body string
		status             int
		code               string
	}{
		{"POST", "/admin/v1/sources", `{"name":"web"}`, 409, "conflict"},
		{"POST", "/admin/v1/sources", `{"name":""}`, 400, "invalid_request"},
		{"POST", "/admin/v1/sources", `{"name":"x","extra":1}`, 400, "invalid_request"},
		{"POST", "/admin/v1/sources", ``, 400, "invalid_request"},
		{"GET", "/admin/v1/sources/src_9", ``, 404, "not_found"},
		{"POST", "/admin/v1/sources/src_9/disable", ``, 404, "not_found"},
		{"POST", "/admin/v1/sources/src_1/disable", `{"x":1}`, 400, "invalid_request"},
		{"POST", "/admin/v1/sources/src_1/rotate-key", `{"graceSeconds":-1}`, 400, "invalid_request"},
		{"POST", "/admin/v1/sources/src_1/rotate-key", `{"graceSeconds":604801}`, 400, "invalid_request"},
		{"DELETE", "/admin/v1/sources/src_9", ``, 404, "not_found"},
		{"PUT", "/admin/v1/sources/src_1", ``, 405, "method_not_allowed"},
	} {
		status, body := admintest.Call(t, h, tc.method, tc.path, tc.body)
		if status != tc.status || errCode(t, body) != tc.code {
			t.Errorf("%s %s %s: %d %s, want %d %s", tc.method, tc.path, tc.body, status, body, tc.status, tc.code)
		}
	}
	if len(svc.byID) != 1 || len(svc.grace) != 0 {
		t.Fatalf("rejected requests changed the service: %v %v", svc.byID, svc.grace)
	}

	if status, body := admintest.Call(t, h, "POST", "/admin/v1/sources/src_1/disable", ""); status != 200 || !strings.Contains(body, `"enabled":false`) {
		t.Fatalf("disable: %d %s", status, body)
	}
	if status, body := admintest.Call(t, h, "GET", "/admin/v1/sources", ""); status != 200 || !strings.HasPrefix(body, `{"sources":[{"id":"src_1"`) {
		t.Fatalf("list: %d %s", status, body)
	}
	status, body = admintest.Call(t, h, "POST", "/admin/v1/sources/src_1/rotate-key", `{"graceSeconds":60}`)
	if status != 200 || !strings.Contains(body, `"writeKey":"rotated"`) || svc.grace[0] != time.Minute {
		t.Fatalf("rotate: %d %s %v", status, body, svc.grace)
	}
	if status, body := admintest.Call(t, h, "DELETE", "/admin/v1/sources/src_1", ""); status != http.StatusNoContent || body != "" {
		t.Fatalf("delete: %d %q", status, body)
	}
}
