package console

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/serverless-cdp/cdp/internal/httpapi"
)

// profFakeAPI answers the admin and Profile APIs from a table of "METHOD path" → answer and
// records every call (method, path, query, body).
type profFakeAPI struct {
	mu      sync.Mutex
	answers map[string]profAnswer
	calls   []string
	bodies  []string
}

type profAnswer struct {
	status int
	body   string
}

func (f *profFakeAPI) handle(_ context.Context, req httpapi.Request) (httpapi.Response, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := req.RequestContext.HTTP.Method + " " + req.RawPath
	f.calls = append(f.calls, key+"?"+req.RawQueryString)
	f.bodies = append(f.bodies, req.Body)
	a, ok := f.answers[key]
	if !ok {
		return httpapi.Response{StatusCode: 404, Body: `{"code":"not_found","message":"not found"}`}, nil
	}
	return httpapi.Response{StatusCode: a.status, Body: a.body}, nil
}

func (f *profFakeAPI) called() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func newProfServer(t *testing.T, answers map[string]profAnswer) (*Server, *profFakeAPI) {
	t.Helper()
	f := &profFakeAPI{answers: answers}
	s, err := New(Options{Admin: f.handle, Profile: f.handle, SpaceID: "default",
		Verify: func(_ context.Context, tok string) (bool, error) { return tok == goodToken, nil }})
	if err != nil {
		t.Fatal(err)
	}
	return s, f
}

// profGet and profPost are signed-in requests (profPost sends the CSRF token; htmx adds HX-Request).
func profGet(s http.Handler, target string, htmx bool) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", target, nil)
	r.AddCookie(&http.Cookie{Name: sessionCookie, Value: goodToken})
	if htmx {
		r.Header.Set("HX-Request", "true")
	}
	return do(s, r)
}

func profPost(s http.Handler, target string, form url.Values, htmx bool) *httptest.ResponseRecorder {
	r := httptest.NewRequest("POST", target, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set(csrfHeader, csrfFor(goodToken))
	r.AddCookie(&http.Cookie{Name: sessionCookie, Value: goodToken})
	if htmx {
		r.Header.Set("HX-Request", "true")
	}
	return do(s, r)
}

const profAPIBase = "/v1/spaces/default/collections/users/profiles/"

func profileAnswers() map[string]profAnswer {
	ok := func(v any) profAnswer { b, _ := json.Marshal(v); return profAnswer{200, string(b)} }
	none := map[string]any{"has_more": false}
	return map[string]profAnswer{
		"GET " + profAPIBase + "email:ann@example.com/metadata": ok(map[string]any{"metadata": map[string]any{
			"id": "use_ann", "event_count": 7, "first_message_at": "2026-11-30T10:00:00Z", "merged_from": []string{"use_anon"}}}),
		"GET " + profAPIBase + "use_ann/external_ids": ok(map[string]any{"data": []map[string]any{
			{"id": "ann@example.com", "type": "email", "source_id": "src_web", "created_at": "2026-11-30T10:00:00Z"},
			{"id": "dev-1", "type": "anonymous_id", "source_id": "src_web"}}, "cursor": none}),
		"GET " + profAPIBase + "use_ann/traits":  ok(map[string]any{"traits": map[string]any{"name": "Ann <b>", "plan": map[string]any{"tier": 2}}, "cursor": none}),
		"GET " + profAPIBase + "use_ann/consent": ok(map[string]any{"consent": map[string]any{"advertising": map[string]any{"granted": true, "at": "2026-11-30T10:01:00Z"}}}),
		"GET /admin/v1/profiles/use_ann/segments": ok(map[string]any{"profileId": "use_ann",
			"audiences":      []map[string]any{{"id": "aud_1", "key": "buyers", "name": "Buyers", "enteredAt": "2026-11-30T10:02:00Z"}},
			"computedTraits": map[string]any{"orders_total": 75}}),
		"GET " + profAPIBase + "use_ann/events": ok(map[string]any{"data": []map[string]any{
			{"type": "track", "event": "Order Completed", "message_id": "m-order", "source_id": "src_web", "timestamp": "2026-11-30T10:03:00Z", "properties": map[string]any{"revenue": 75}},
		}, "cursor": map[string]any{"has_more": true, "next": "CURSOR1"}}),
		"GET " + profAPIBase + "use_ann/merges": ok(map[string]any{"data": []map[string]any{{
			"at": "2026-11-30T10:02:00Z", "messageId": "m-identify", "profileId": "use_ann",
			"actions": []map[string]any{{"kind": "merge", "identifiers": []map[string]string{{"type": "anonymous_id", "value": "dev-1"}},
				"profiles": []string{"use_anon", "use_ann"}, "rule": "flat matching: identifiers shared by both profiles"}}}},
			"cursor": none}),
	}
}

// TestProfilePage: a search by type and value reads the profile by that identifier once (its
// metadata), then everything else by the profile's own id, and shows identifiers, traits
// (escaped), consent, audiences, computed traits, the timeline with a cursor link and the merge
// log with its rule.
func TestProfilePage(t *testing.T) {
	s, f := newProfServer(t, profileAnswers())
	w := profGet(s, "/console/profiles?type=email&value=ann@example.com", false)
	body := w.Body.String()
	if w.Code != 200 {
		t.Fatalf("%d %s", w.Code, body)
	}
	for _, want := range []string{"use_ann", "dev-1", "Ann &lt;b&gt;", `{&#34;tier&#34;:2}`, "advertising", "granted", "Buyers",
		"orders_total", "75", "Order Completed", "m-order", "flat matching: identifiers shared by both profiles", "use_anon → use_ann",
		`/console/profiles/events?profile=use_ann&amp;next=CURSOR1`, `name="id" value="email:ann@example.com"`, "2026-11-30 10:00:00Z"} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	calls := f.called()
	if len(calls) != 7 || !strings.Contains(calls[0], "email:ann@example.com/metadata") {
		t.Fatalf("calls: %q", calls)
	}
	for _, c := range calls[1:] {
		if strings.Contains(c, "ann@example.com") {
			t.Errorf("a read after the lookup names the identifier, not the profile id: %s", c)
		}
	}
	// The timeline's next page is a fragment read with the API's cursor.
	w = profGet(s, "/console/profiles/events?profile=use_ann&next=CURSOR1", true)
	if !strings.Contains(w.Body.String(), "<tr>") || strings.Contains(w.Body.String(), "<html") ||
		!strings.HasSuffix(f.called()[len(f.called())-1], "limit=20&next=CURSOR1") {
		t.Fatalf("older events: %s / %q", w.Body.String(), f.called())
	}
	w = profGet(s, "/console/profiles/merges?profile=use_ann&next=CURSOR2", true)
	if !strings.Contains(w.Body.String(), "flat matching") || !strings.HasSuffix(f.called()[len(f.called())-1], "limit=20&next=CURSOR2") {
		t.Fatalf("older merges: %s / %q", w.Body.String(), f.called())
	}
	w = profGet(s, "/console/profiles/events?profile=use_gone&next=X", true)
	if !strings.Contains(w.Body.String(), `class="error"`) || !strings.Contains(w.Body.String(), `colspan="5"`) {
		t.Fatalf("older events of a profile that is gone: %s", w.Body.String())
	}
}

func TestProfileSearchInput(t *testing.T) {
	s, f := newProfServer(t, profileAnswers())
	// A whole type:value works as well as a type and a value.
	if w := profGet(s, "/console/profiles?id=email:ann@example.com", false); w.Code != 200 || !strings.Contains(w.Body.String(), "use_ann") {
		t.Fatalf("?id=: %d", w.Code)
	}
	// A type chosen and typed as well is taken once.
	if w := profGet(s, "/console/profiles?type=email&value=email:ann@example.com", false); w.Code != 200 || !strings.Contains(w.Body.String(), "use_ann") {
		t.Fatalf("type twice: %d", w.Code)
	}
	n := len(f.called())
	w := profGet(s, "/console/profiles?type=&value=ann@example.com", false)
	if w.Code != 200 || !strings.Contains(w.Body.String(), "type it as type:value") || len(f.called()) != n {
		t.Fatalf("a value without a type: %d, %d calls", w.Code, len(f.called())-n)
	}
	w = profGet(s, "/console/profiles?type=email&value=nobody@example.com", false)
	if w.Code != 404 || !strings.Contains(w.Body.String(), "No profile has the identifier email:nobody@example.com") {
		t.Fatalf("unknown: %d %s", w.Code, w.Body.String())
	}
	if w := profGet(s, "/console/profiles?type=email&value="+strings.Repeat("a", 700), false); !strings.Contains(w.Body.String(), "over 600 bytes") {
		t.Fatalf("too long: %s", w.Body.String())
	}
	if w := profGet(s, "/console/profiles", false); w.Code != 200 || !strings.Contains(w.Body.String(), `id="ps-value"`) {
		t.Fatalf("the empty search form: %d", w.Code)
	}
}

// TestProfileDeleteNeedsConfirmation: without DELETE typed nothing is requested; with it, the
// request names the searched identifier, and the answer polls the request until it is done.
func TestProfileDeleteNeedsConfirmation(t *testing.T) {
	answers := profileAnswers()
	answers["POST /admin/v1/privacy/requests"] = profAnswer{202, `{"id":"pr_00000000000000000000a","type":"delete","status":"running","step":"erase","labels":["email:a…@e….com"],"results":{}}`}
	s, f := newProfServer(t, answers)
	// Without the CSRF token nothing reaches the API.
	r := httptest.NewRequest("POST", "/console/profiles/delete", strings.NewReader(url.Values{"id": {"email:ann@example.com"}, "confirm": {"DELETE"}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.AddCookie(&http.Cookie{Name: sessionCookie, Value: goodToken})
	if w := do(s, r); w.Code != http.StatusForbidden || len(f.called()) != 0 {
		t.Fatalf("no CSRF token: %d, calls %q", w.Code, f.called())
	}
	w := profPost(s, "/console/profiles/delete", url.Values{"id": {"email:ann@example.com"}, "confirm": {"delete"}}, true)
	if !strings.Contains(w.Body.String(), "nothing was deleted") || len(f.called()) != 0 {
		t.Fatalf("unconfirmed: %s, calls %q", w.Body.String(), f.called())
	}
	w = profPost(s, "/console/profiles/delete", url.Values{"id": {"email:ann@example.com"}, "confirm": {"DELETE"}}, true)
	body := w.Body.String()
	if !strings.Contains(body, `hx-get="/console/privacy/status?id=pr_00000000000000000000a"`) || !strings.Contains(body, "running") {
		t.Fatalf("confirmed: %s", body)
	}
	if len(f.bodies) != 1 || f.bodies[0] != `{"type":"delete","identifiers":["email:ann@example.com"],"reason":"console: profile page"}` {
		t.Fatalf("request: %q", f.bodies)
	}
	// Without htmx the form is sent to the request's page.
	w = profPost(s, "/console/profiles/export", url.Values{"id": {"email:ann@example.com"}}, false)
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/console/privacy/request?id=pr_00000000000000000000a" {
		t.Fatalf("plain form: %d %q", w.Code, w.Header().Get("Location"))
	}
}

// TestProfilePrivacyByProfileID: a profile searched by its id is named by its identifiers.
func TestProfilePrivacyByProfileID(t *testing.T) {
	answers := profileAnswers()
	answers["POST /admin/v1/privacy/requests"] = profAnswer{202, `{"id":"pr_00000000000000000000b","type":"export","status":"pending","labels":[],"results":{}}`}
	s, f := newProfServer(t, answers)
	profPost(s, "/console/profiles/export", url.Values{"id": {"use_ann"}}, true)
	if len(f.bodies) != 2 || !strings.Contains(f.bodies[1], `"identifiers":["email:ann@example.com","anonymous_id:dev-1"]`) {
		t.Fatalf("request: %q", f.bodies)
	}
}
