package admin_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/serverless-cdp/cdp/internal/admin"
	"github.com/serverless-cdp/cdp/internal/httpapi"
	"github.com/serverless-cdp/cdp/internal/source"
)

// noSources is a sources.Service with no sources and a fixed answer for create/rotate.
type noSources struct{}

func (noSources) Create(_ context.Context, name string) (source.Source, string, error) {
	return source.Source{ID: "src_x", Name: name}, "k", nil
}
func (noSources) Get(context.Context, string) (source.Source, error) {
	return source.Source{}, source.ErrNotFound
}
func (noSources) List(context.Context) ([]source.Source, error) { return nil, nil }
func (noSources) SetEnabled(context.Context, string, bool) (source.Source, error) {
	return source.Source{}, source.ErrNotFound
}
func (noSources) RotateKey(context.Context, string, time.Duration) (source.Source, string, error) {
	return source.Source{}, "", source.ErrNotFound
}
func (noSources) Delete(context.Context, string) error { return source.ErrNotFound }

// FuzzAdmin: whatever the method, path and body, the admin API answers with a status and, for
// errors, a JSON {"code","message"}; it never panics.
func FuzzAdmin(f *testing.F) {
	f.Add("POST", "/admin/v1/sources", `{"name":"web"}`, false)
	f.Add("POST", "/admin/v1/sources/src_1/rotate-key", `{"graceSeconds":60}`, false)
	f.Add("GET", "/admin/v1/sources/%zz", "", false)
	f.Add("DELETE", "/admin/v1//", "", true)
	api := &httpapi.API{Admin: admin.New(staticAuth{token: "t"}, nil, mount(noSources{}, nil, nil)...).Serve}
	f.Fuzz(func(t *testing.T, method, path, body string, b64 bool) {
		req := request(method, path, "Bearer t", body)
		req.IsBase64Encoded = b64
		resp, err := api.Handle(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode < 200 || resp.StatusCode > 599 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if resp.StatusCode >= 400 {
			var e httpapi.ErrorBody
			if json.Unmarshal([]byte(resp.Body), &e) != nil || e.Code == "" || e.Message == "" {
				t.Fatalf("%d error body %q", resp.StatusCode, resp.Body)
			}
			if resp.StatusCode == 500 {
				t.Fatalf("internal error for %s %q %q", method, path, body)
			}
		}
	})
}
