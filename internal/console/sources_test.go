package console

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/serverless-cdp/cdp/internal/httpapi"
)

// dsFakeAdmin answers admin API calls from a table of "METHOD path" -> (status, body) and
// records every call with its body.
type dsFakeAdmin struct {
	answers map[string]func(body string) (int, string)
	calls   []string
}

func (f *dsFakeAdmin) handle(_ context.Context, req httpapi.Request) (httpapi.Response, error) {
	key := req.RequestContext.HTTP.Method + " " + req.RawPath
	f.calls = append(f.calls, key+" "+req.Body)
	if a, ok := f.answers[key]; ok {
		st, body := a(req.Body)
		return httpapi.Response{StatusCode: st, Body: body}, nil
	}
	return httpapi.Response{StatusCode: 404, Body: `{"code":"not_found","message":"not found"}`}, nil
}

func dsAnswer(st int, body string) func(string) (int, string) {
	return func(string) (int, string) { return st, body }
}

func dsConsole(t *testing.T, f *dsFakeAdmin) *Server {
	t.Helper()
	s, err := New(Options{Admin: f.handle, Profile: f.handle, SpaceID: "default",
		Verify: func(_ context.Context, tok string) (bool, error) { return tok == goodToken, nil }})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// send makes a signed-in request (a form post when form is not nil).
func dsSend(s http.Handler, method, target string, form url.Values, hdr map[string]string) *httptest.ResponseRecorder {
	var r *http.Request
	if form != nil {
		form.Set("csrf", csrfFor(goodToken))
		r = httptest.NewRequest(method, target, strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		r = httptest.NewRequest(method, target, nil)
	}
	r.Host = "cdp.example.com"
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	r.AddCookie(&http.Cookie{Name: sessionCookie, Value: goodToken})
	return do(s, r)
}

const dsOneSource = `{"sources":[{"id":"src_1","name":"web","enabled":true,"createdAt":"2026-11-30T10:00:00Z","updatedAt":"2026-11-30T10:00:00Z","writeKeys":[{"id":"abcdef012345","createdAt":"2026-11-30T10:00:00Z"}]}]}`

func TestSourcesCreateShowsTheKeyOnceWithTheSnippet(t *testing.T) {
	f := &dsFakeAdmin{answers: map[string]func(string) (int, string){
		"GET /admin/v1/sources": dsAnswer(200, dsOneSource),
		"POST /admin/v1/sources": func(body string) (int, string) {
			var in struct{ Name string }
			json.Unmarshal([]byte(body), &in)
			if in.Name != "web" {
				return 400, `{"code":"invalid_request","message":"invalid source request: name is required"}`
			}
			return 201, `{"source":{"id":"src_1","name":"web","enabled":true},"writeKey":"wk_secret_123"}`
		},
	}}
	s := dsConsole(t, f)
	w := dsSend(s, "POST", "/console/sources", url.Values{"name": {" web "}}, map[string]string{"X-Forwarded-Proto": "https"})
	body := w.Body.String()
	if w.Code != 200 || !strings.Contains(body, `<code id="write-key">wk_secret_123</code>`) || !strings.Contains(body, `data-copy="write-key"`) {
		t.Fatalf("create: %d %s", w.Code, body)
	}
	for _, want := range []string{`writeKey: &#34;wk_secret_123&#34;, cdnURL: &#34;https://cdp.example.com&#34;`, `apiHost: &#34;cdp.example.com/v1&#34;, protocol: &#34;https&#34;`, `data-copy="snippet"`, `<code>src_1</code>`,
		`hx-history="false"`} { // htmx must not keep the page with the key in localStorage
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	// The list alone never shows a key.
	if w := dsSend(s, "GET", "/console/sources", nil, nil); strings.Contains(w.Body.String(), "wk_secret") || !strings.Contains(w.Body.String(), "abcdef012345") {
		t.Fatalf("list: %s", w.Body.String())
	}
	// Refused: the API's message, the name kept, 400 for a plain post and 200 for htmx.
	w = dsSend(s, "POST", "/console/sources", url.Values{"name": {""}}, nil)
	if w.Code != 400 || !strings.Contains(w.Body.String(), "name is required") || strings.Contains(w.Body.String(), "write-key") {
		t.Fatalf("refused create: %d %s", w.Code, w.Body.String())
	}
	if w := dsSend(s, "POST", "/console/sources", url.Values{"name": {"x"}}, map[string]string{"HX-Request": "true"}); w.Code != 200 {
		t.Fatalf("refused create over htmx: %d", w.Code)
	}
}

func TestSourcesDisableAndRotate(t *testing.T) {
	f := &dsFakeAdmin{answers: map[string]func(string) (int, string){
		"GET /admin/v1/sources":                   dsAnswer(200, dsOneSource),
		"POST /admin/v1/sources/src_1/disable":    dsAnswer(200, `{"id":"src_1","name":"web","enabled":false}`),
		"POST /admin/v1/sources/src_1/rotate-key": dsAnswer(200, `{"source":{"id":"src_1","name":"web"},"writeKey":"wk_new_456"}`),
	}}
	s := dsConsole(t, f)
	if w := dsSend(s, "POST", "/console/sources/disable", url.Values{"id": {"src_1"}}, nil); w.Code != 200 || !strings.Contains(w.Body.String(), "disabled") {
		t.Fatalf("disable: %d %s", w.Code, w.Body.String())
	}
	w := dsSend(s, "POST", "/console/sources/rotate", url.Values{"id": {"src_1"}, "grace": {"86400"}}, nil)
	if w.Code != 200 || !strings.Contains(w.Body.String(), "wk_new_456") || !strings.Contains(w.Body.String(), "keep working for 24 hours") {
		t.Fatalf("rotate: %d %s", w.Code, w.Body.String())
	}
	if last := f.calls[len(f.calls)-2]; last != `POST /admin/v1/sources/src_1/rotate-key {"graceSeconds":86400}` {
		t.Fatalf("rotate call: %q", last)
	}
	// A grace the form does not offer is refused before any call.
	n := len(f.calls)
	if w := dsSend(s, "POST", "/console/sources/rotate", url.Values{"id": {"src_1"}, "grace": {"99"}}, nil); w.Code != 400 {
		t.Fatalf("bad grace: %d", w.Code)
	}
	for _, c := range f.calls[n:] {
		if strings.HasPrefix(c, "POST") {
			t.Fatalf("a refused form changed something: %q", c)
		}
	}
}

func TestTrackingBase(t *testing.T) {
	r := httptest.NewRequest("GET", "/console/sources", nil)
	r.Host = "127.0.0.1:8080"
	if got := trackingBase(r); got != "http://127.0.0.1:8080" {
		t.Errorf("local: %s", got)
	}
	r.Header.Set("X-Forwarded-Proto", "https")
	if got := trackingBase(r); got != "https://127.0.0.1:8080" {
		t.Errorf("behind API Gateway: %s", got)
	}
	r.Header.Set("X-Forwarded-Proto", "javascript")
	if got := trackingBase(r); got != "http://127.0.0.1:8080" {
		t.Errorf("odd proto: %s", got)
	}
}
