package admin_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/serverless-cdp/cdp/internal/admin"
	"github.com/serverless-cdp/cdp/internal/admintoken"
	"github.com/serverless-cdp/cdp/internal/httpapi"
)

// staticAuth accepts one token; any other fails, or errs when broken is set.
type staticAuth struct {
	token  string
	broken bool
}

func (a staticAuth) Verify(_ context.Context, tok string) (admintoken.Token, error) {
	if a.broken {
		return admintoken.Token{}, errors.New("dynamodb unavailable")
	}
	if tok != a.token {
		return admintoken.Token{}, admintoken.ErrNotFound
	}
	return admintoken.Token{ID: "tok_test"}, nil
}

func echo(name string) admin.HandlerFunc {
	return func(_ context.Context, r *admin.Request) (int, any, error) {
		return http.StatusOK, map[string]any{"route": name, "params": r.Params}, nil
	}
}

func TestRouterMatching(t *testing.T) {
	r := admin.NewRouter(staticAuth{token: "t"}, nil)
	r.Handle("GET", "/admin/v1/things/{id}", echo("param"))
	r.Handle("GET", "/admin/v1/things/special", echo("literal"))
	r.Handle("GET", "/admin/v1/things/{id}/parts/{part}", echo("nested"))
	r.Handle("POST", "/admin/v1/fail", func(context.Context, *admin.Request) (int, any, error) {
		return 0, nil, errors.New("boom: secret detail")
	})
	r.Handle("POST", "/admin/v1/teapot", func(context.Context, *admin.Request) (int, any, error) {
		return 0, nil, &admin.Error{Status: 418, Code: "teapot", Message: "short and stout"}
	})

	type result struct {
		Route  string            `json:"route"`
		Params map[string]string `json:"params"`
	}
	for _, c := range []struct {
		method, path, route string
		params              map[string]string
	}{
		{"GET", "/admin/v1/things/special", "literal", nil},
		{"GET", "/admin/v1/things/abc", "param", map[string]string{"id": "abc"}},
		{"GET", "/admin/v1/things/a%20b", "param", map[string]string{"id": "a b"}},
		{"get", "/admin/v1/things/x/parts/y", "nested", map[string]string{"id": "x", "part": "y"}},
	} {
		resp, err := r.Serve(context.Background(), request(c.method, c.path, "Bearer t", ""))
		if err != nil {
			t.Fatal(err)
		}
		got := decode[result](t, resp)
		if resp.StatusCode != 200 || got.Route != c.route || len(got.Params) != len(c.params) {
			t.Fatalf("%s %s: %d %s", c.method, c.path, resp.StatusCode, resp.Body)
		}
		for k, v := range c.params {
			if got.Params[k] != v {
				t.Fatalf("%s: param %s = %q, want %q", c.path, k, got.Params[k], v)
			}
		}
	}

	resp, _ := r.Serve(context.Background(), request("GET", "/admin/v1/things//parts/y", "Bearer t", ""))
	if resp.StatusCode != 404 {
		t.Fatalf("empty parameter matched: %d", resp.StatusCode)
	}
	resp, _ = r.Serve(context.Background(), request("POST", "/admin/v1/fail", "Bearer t", ""))
	if resp.StatusCode != 500 || decode[httpapi.ErrorBody](t, resp).Code != "internal" || strings.Contains(resp.Body, "secret") {
		t.Fatalf("internal error: %d %s", resp.StatusCode, resp.Body)
	}
	resp, _ = r.Serve(context.Background(), request("POST", "/admin/v1/teapot", "Bearer t", ""))
	if resp.StatusCode != 418 || decode[httpapi.ErrorBody](t, resp).Code != "teapot" {
		t.Fatalf("typed error: %d %s", resp.StatusCode, resp.Body)
	}
	resp, _ = r.Serve(context.Background(), request("DELETE", "/admin/v1/things/x", "Bearer t", ""))
	if resp.StatusCode != 405 || resp.Headers["allow"] != "GET" {
		t.Fatalf("405: %d %v", resp.StatusCode, resp.Headers)
	}

	// A token store failure is an internal error, not a 401.
	broken := admin.NewRouter(staticAuth{broken: true}, nil)
	if _, err := broken.Serve(context.Background(), request("GET", "/admin/v1/x", "Bearer t", "")); err == nil {
		t.Fatal("token store failure not reported")
	}
	api := &httpapi.API{Admin: broken.Serve}
	resp, err := api.Handle(context.Background(), request("GET", "/admin/v1/x", "Bearer t", ""))
	if err != nil || resp.StatusCode != 500 {
		t.Fatalf("through the API: %d, %v", resp.StatusCode, err)
	}
}

func TestRouterRegistrationPanics(t *testing.T) {
	for _, c := range []struct{ first, second string }{
		{"/admin/v1/a/{id}", "/admin/v1/a/{name}"}, // same shape
		{"", "/admin/v1/{}"},
		{"", "admin/v1/x"},
		{"", "/admin//x"},
		{"", "/admin/v1/x{id}"},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("registering %q after %q did not panic", c.second, c.first)
				}
			}()
			r := admin.NewRouter(staticAuth{}, nil)
			if c.first != "" {
				r.Handle("GET", c.first, echo("a"))
			}
			r.Handle("GET", c.second, echo("b"))
		}()
	}
}

// TestAPIDispatch: the top-level handler sends /admin/ to the admin router and /v1/spaces/ to
// the Profile API, 404s for the rest or an unset part, and turns panics into 500s.
func TestAPIDispatch(t *testing.T) {
	tag := func(name string) httpapi.HandlerFunc {
		return func(context.Context, httpapi.Request) (httpapi.Response, error) {
			return httpapi.JSON(200, map[string]string{"h": name}), nil
		}
	}
	api := &httpapi.API{Admin: tag("admin"), Profile: tag("profile")}
	for path, want := range map[string]string{
		"/admin":                    "admin",
		"/admin/v1/sources":         "admin",
		"/v1/spaces/s/collections/": "profile",
	} {
		resp, _ := api.Handle(context.Background(), request("GET", path, "", ""))
		if resp.StatusCode != 200 || decode[map[string]string](t, resp)["h"] != want {
			t.Errorf("%s: %d %s, want %s", path, resp.StatusCode, resp.Body, want)
		}
	}
	for _, path := range []string{"/", "/adminx", "/v1/track", "/v1/spacesx"} {
		resp, _ := api.Handle(context.Background(), request("GET", path, "", ""))
		if resp.StatusCode != 404 || decode[httpapi.ErrorBody](t, resp).Code != "not_found" {
			t.Errorf("%s: %d %s", path, resp.StatusCode, resp.Body)
		}
	}
	// Profile API paths carry identifiers; they are not logged.
	var logs strings.Builder
	logged := &httpapi.API{Profile: tag("profile"), Logger: slog.New(slog.NewJSONHandler(&logs, nil))}
	_, _ = logged.Handle(context.Background(), request("GET", "/v1/spaces/s/collections/users/profiles/email:alice@example.com/traits", "", ""))
	if !strings.Contains(logs.String(), `"status":200`) || strings.Contains(logs.String(), "alice") {
		t.Errorf("request log: %s", logs.String())
	}

	unset := &httpapi.API{Admin: tag("admin")}
	if resp, _ := unset.Handle(context.Background(), request("GET", "/v1/spaces/x", "", "")); resp.StatusCode != 404 {
		t.Errorf("unset Profile API: %d", resp.StatusCode)
	}
	panicky := &httpapi.API{Admin: func(context.Context, httpapi.Request) (httpapi.Response, error) { panic("nil map") }}
	resp, err := panicky.Handle(context.Background(), request("GET", "/admin/v1/x", "", ""))
	if err != nil || resp.StatusCode != 500 || decode[httpapi.ErrorBody](t, resp).Code != "internal" {
		t.Fatalf("panic: %d %s %v", resp.StatusCode, resp.Body, err)
	}
}
