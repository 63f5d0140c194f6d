package console

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/serverless-cdp/cdp/internal/admin"
	"github.com/serverless-cdp/cdp/internal/admin/admintest"
	"github.com/serverless-cdp/cdp/internal/admin/segments"
	"github.com/serverless-cdp/cdp/internal/httpapi"
	"github.com/serverless-cdp/cdp/internal/segment"
	"github.com/serverless-cdp/cdp/internal/segmentdef"
)

// segServer is the console over the real admin API for segments (in memory).
type segServer struct {
	t   *testing.T
	s   *Server
	svc *segment.Service
}

func newSegServer(t *testing.T) *segServer {
	t.Helper()
	svc := segment.NewService(segment.NewMemStore(), nil)
	rt := admin.NewRouter(admintest.OneToken{}, nil)
	segments.Register(rt, svc)
	none := func(context.Context, httpapi.Request) (httpapi.Response, error) {
		return httpapi.Response{StatusCode: 404}, nil
	}
	s, err := New(Options{Admin: rt.Serve, Profile: none, SpaceID: "default",
		Verify: func(_ context.Context, tok string) (bool, error) { return tok == admintest.Token, nil }})
	if err != nil {
		t.Fatal(err)
	}
	return &segServer{t: t, s: s, svc: svc}
}

// get requests a console page signed in.
func (e *segServer) get(path string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", path, nil)
	r.AddCookie(&http.Cookie{Name: sessionCookie, Value: admintest.Token})
	return do(e.s, r)
}

// post submits a form signed in, as htmx (htmx true) or as a plain form.
func (e *segServer) post(path string, form url.Values, htmx bool) *httptest.ResponseRecorder {
	r := httptest.NewRequest("POST", path, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set(csrfHeader, csrfFor(admintest.Token))
	if htmx {
		r.Header.Set("HX-Request", "true")
	}
	r.AddCookie(&http.Cookie{Name: sessionCookie, Value: admintest.Token})
	return do(e.s, r)
}

// proAndOrdered is the builder form of "trait plan = pro and performed Order Completed at
// least once in the last 30 days".
func proAndOrdered(name string) url.Values {
	return url.Values{"name": {name}, "c.kind": {"group"}, "c.op": {"and"},
		"c.0.kind": {"trait"}, "c.0.key": {"plan"}, "c.0.op": {"eq"}, "c.0.value": {"pro"},
		"c.1.kind": {"event"}, "c.1.evtype": {"track"}, "c.1.evname": {"Order Completed"}, "c.1.countop": {"at_least"},
		"c.1.countn": {"1"}, "c.1.within": {"30"}, "c.1.withinunit": {"days"}, "c.1.whereop": {"eq"}}
}

func condJSON(t *testing.T, c segmentdef.Condition) string {
	t.Helper()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestBuilderFormToCondition: the form's fields make the admin API's condition (a group of
// one is its condition, track is the default type, values are typed), and a stored condition
// comes back to the same form.
func TestBuilderFormToCondition(t *testing.T) {
	f := proAndOrdered("Pro buyers")
	f.Set("c.1.not", "1")
	f.Set("c.1.wherekey", "revenue")
	f.Set("c.1.whereop", "gt")
	f.Set("c.1.wherevalue", "10")
	f.Set("c.2.kind", "group")
	f.Set("c.2.op", "or")
	f.Set("c.2.0.kind", "computedTrait")
	f.Set("c.2.0.key", "ltv")
	f.Set("c.2.0.op", "gte")
	f.Set("c.2.0.value", "100")
	f.Set("c.2.1.kind", "audience")
	f.Set("c.2.1.audience", "aud_1")
	f.Set("c.2.2.kind", "trait")
	f.Set("c.2.2.key", "country")
	f.Set("c.2.2.op", "in")
	f.Set("c.2.2.value", `de, fr, "42"`)
	form := audienceFormOf(f)
	spec, paths, err := form.spec()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"and":[{"trait":{"key":"plan","op":"eq","value":"pro"}},` +
		`{"not":{"event":{"name":"Order Completed","where":[{"key":"revenue","op":"gt","value":10}],"count":{"op":"at_least","n":1},"within":{"days":30}}}},` +
		`{"or":[{"computedTrait":{"key":"ltv","op":"gte","value":100}},{"audience":{"id":"aud_1"}},{"trait":{"key":"country","op":"in","value":["de","fr","42"]}}]}]}`
	if got := condJSON(t, spec.Condition); got != want {
		t.Fatalf("condition\n got %s\nwant %s", got, want)
	}
	if n := paths["condition.and[2].or[1]"]; n == nil || n.Label != "3.2" || n.Kind != nodeAudience {
		t.Fatalf("paths: %+v", n)
	}
	a := segmentdef.Audience{Name: "x", Condition: spec.Condition}
	if err := a.Validate(); err != nil {
		t.Fatalf("the admin API's validation refuses the builder's condition: %v", err)
	}
	tree, err := treeOf(&spec.Condition)
	if err != nil {
		t.Fatal(err)
	}
	back, _, err := (&audienceForm{Tree: tree}).spec()
	if err != nil || condJSON(t, back.Condition) != want {
		t.Fatalf("round trip: %v\n got %s", err, condJSON(t, back.Condition))
	}
	if n := tree.Children[2].Children[2]; n.Value != `de, fr, "42"` {
		t.Fatalf("list value shown as %q", n.Value)
	}
	// One condition alone is not wrapped; a negated one keeps its not.
	single := url.Values{"c.kind": {"group"}, "c.0.kind": {"trait"}, "c.0.key": {"vip"}, "c.0.op": {"exists"}, "c.0.not": {"1"}}
	spec, _, _ = audienceFormOf(single).spec()
	if got := condJSON(t, spec.Condition); got != `{"not":{"trait":{"key":"vip","op":"exists"}}}` {
		t.Fatalf("single: %s", got)
	}
}

func TestTypedValue(t *testing.T) {
	for _, c := range []struct{ op, in, want string }{
		{"eq", "pro", `"pro"`}, {"eq", "42", `42`}, {"eq", "4.5", `4.5`}, {"eq", "true", `true`},
		{"eq", `"42"`, `"42"`}, {"eq", "", ``}, {"eq", "0x10", `"0x10"`}, {"eq", "NaN", `"NaN"`},
		{"in", "a, 2 ,b", `["a",2,"b"]`}, {"exists", "false", `false`},
	} {
		if got := string(typedValue(c.op, c.in)); got != c.want {
			t.Errorf("typedValue(%s, %q) = %s, want %s", c.op, c.in, got, c.want)
		}
	}
	for raw, want := range map[string]string{`"pro"`: "pro", `42`: "42", `"42"`: `"42"`, `["a",2]`: "a, 2", `true`: "true", `"true"`: `"true"`} {
		if got := valueText(json.RawMessage(raw)); got != want {
			t.Errorf("valueText(%s) = %q, want %q", raw, got, want)
		}
	}
}

// TestBuilderActions: adding and removing conditions answers the builder with the new tree and
// the preview of it (out of band).
func TestBuilderActions(t *testing.T) {
	e := newSegServer(t)
	f := proAndOrdered("")
	f.Set("c.add", "group")
	f.Set("action", "add:c")
	w := e.post("/console/audiences/builder", f, true)
	body := w.Body.String()
	if w.Code != 200 || !strings.Contains(body, `name="c.2.kind" value="group"`) || !strings.Contains(body, `id="c.2.add"`) ||
		!strings.Contains(body, `hx-swap-oob`) {
		t.Fatalf("add a group: %d %s", w.Code, body)
	}
	// The new group is empty: the preview says so at the group.
	if !strings.Contains(body, "Condition 3: add at least one condition") {
		t.Fatalf("an empty group is not reported: %s", body)
	}
	f.Set("action", "remove:c.0")
	w = e.post("/console/audiences/builder", f, true)
	body = w.Body.String()
	if strings.Contains(body, `value="plan"`) || !strings.Contains(body, `name="c.0.kind" value="event"`) || strings.Contains(body, `name="c.1.kind"`) {
		t.Fatalf("remove the first condition: %s", body)
	}
	// Without script the button submits the form to save, which changes the tree and saves nothing.
	w = e.post("/console/audiences/save", f, false)
	if !strings.Contains(w.Body.String(), "<html") || !strings.Contains(w.Body.String(), `id="audience-form"`) {
		t.Fatalf("no-script builder: %s", w.Body.String())
	}
	if l, _ := e.svc.Audiences(context.Background()); len(l) != 0 {
		t.Fatalf("a builder button saved: %+v", l)
	}
	// The added node takes the focus; after a removal, the group's add select does.
	f.Set("action", "add:c")
	f.Set("c.add", "event")
	if body := e.post("/console/audiences/builder", f, true).Body.String(); !strings.Contains(body, `name="c.2.evname" value="" size="16" autocomplete="off" autofocus`) {
		t.Fatalf("focus after add: %s", body)
	}
}

// TestAudiencePreviewAndSave: the preview asks the admin API; an invalid condition is shown at
// its node and saves nothing; a valid one is saved, listed, edited and deleted.
func TestAudiencePreviewAndSave(t *testing.T) {
	e := newSegServer(t)
	w := e.post("/console/audiences/preview", proAndOrdered(""), true)
	if body := w.Body.String(); w.Code != 200 || !strings.Contains(body, `id="preview-size">0<`) || !strings.Contains(body, "&#34;Order Completed&#34;") {
		t.Fatalf("preview: %d %s", w.Code, body)
	}
	bad := proAndOrdered("Pro buyers")
	bad.Set("c.0.op", "gt")
	bad.Set("c.0.value", "")
	// The live preview puts the API's complaint at its condition (out of band) and clears the others.
	body := e.post("/console/audiences/preview", bad, true).Body.String()
	if !strings.Contains(body, `<div hx-swap-oob="true" id="err-c-0"><p class="error">value: must be a number`) ||
		!strings.Contains(body, `<div hx-swap-oob="true" id="err-c-1"></div>`) {
		t.Fatalf("preview errors: %s", body)
	}
	w = e.post("/console/audiences/save", bad, false)
	if body := w.Body.String(); w.Code != 200 || !strings.Contains(body, "Not saved: Condition 1: value: must be a number or a string (date) for gt") ||
		!strings.Contains(body, `<div id="err-c-0"><p class="error">value: must be a number`) {
		t.Fatalf("invalid save: %d %s", w.Code, body)
	}
	bad = proAndOrdered("Pro buyers")
	bad.Set("c.1.countn", "once")
	if w = e.post("/console/audiences/save", bad, false); !strings.Contains(w.Body.String(), "Condition 2: the count must be a whole number") {
		t.Fatalf("bad count: %s", w.Body.String())
	}
	if l, _ := e.svc.Audiences(context.Background()); len(l) != 0 {
		t.Fatalf("an invalid audience was saved: %+v", l)
	}
	w = e.post("/console/audiences/save", proAndOrdered("Pro buyers"), false)
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/console/audiences?done=saved" {
		t.Fatalf("save: %d %s", w.Code, w.Body.String())
	}
	l, _ := e.svc.Audiences(context.Background())
	if len(l) != 1 || l[0].Key != "pro_buyers" || len(l[0].Condition.And) != 2 {
		t.Fatalf("saved: %+v", l)
	}
	id := l[0].ID
	list := e.get("/console/audiences?done=saved").Body.String()
	if !strings.Contains(list, `data-audience="pro_buyers"`) || !strings.Contains(list, "Saved.") || !strings.Contains(list, `hx-trigger="every 2s"`) {
		t.Fatalf("list: %s", list)
	}
	// A draft of the saved audience previews in its place: its own key is no conflict; a new
	// audience of the same name is.
	draft := proAndOrdered("Pro buyers")
	draft.Set("id", id)
	if body := e.post("/console/audiences/preview", draft, true).Body.String(); !strings.Contains(body, `id="preview-size">0<`) {
		t.Fatalf("preview of the saved audience's draft: %s", body)
	}
	if body := e.post("/console/audiences/preview", proAndOrdered("Pro buyers"), true).Body.String(); !strings.Contains(body, `already used`) {
		t.Fatalf("preview of a new audience with a used key: %s", body)
	}
	edit := e.get("/console/audiences/" + id).Body.String()
	if !strings.Contains(edit, `name="c.1.evname" value="Order Completed"`) || !strings.Contains(edit, `name="id" value="`+id+`"`) {
		t.Fatalf("edit: %s", edit)
	}
	// Another audience referring to it keeps it from being deleted.
	ref := url.Values{"name": {"Sub"}, "c.kind": {"group"}, "c.0.kind": {"audience"}, "c.0.audience": {id}}
	if w = e.post("/console/audiences/save", ref, false); w.Code != http.StatusSeeOther {
		t.Fatalf("save a reference: %s", w.Body.String())
	}
	if page := e.get("/console/audiences/" + id + "/delete").Body.String(); !strings.Contains(page, "Delete the audience <strong>Pro buyers</strong>") {
		t.Fatalf("confirm: %s", page)
	}
	w = e.post("/console/audiences/"+id+"/delete", url.Values{"name": {"Pro buyers"}}, false)
	if !strings.Contains(w.Body.String(), "Not deleted: still in use") {
		t.Fatalf("delete in use: %d %s", w.Code, w.Body.String())
	}
	l, _ = e.svc.Audiences(context.Background())
	for _, a := range l {
		if a.Key == "sub" {
			if w = e.post("/console/audiences/"+a.ID+"/delete", nil, false); w.Code != http.StatusSeeOther {
				t.Fatalf("delete: %d %s", w.Code, w.Body.String())
			}
		}
	}
	if w = e.post("/console/audiences/"+id+"/delete", nil, false); w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/console/audiences?done=deleted" {
		t.Fatalf("delete: %d %s", w.Code, w.Body.String())
	}
	if l, _ = e.svc.Audiences(context.Background()); len(l) != 0 {
		t.Fatalf("left: %+v", l)
	}
}

// TestTraitForm: the draft is checked as the API checks it (defaults shown); a bad window is
// refused before the API; a good trait is saved and listed.
func TestTraitForm(t *testing.T) {
	e := newSegServer(t)
	f := url.Values{"name": {"Lifetime value"}, "kind": {"lifetime_value"}, "evtype": {"track"}, "whereop": {"eq"}, "windowunit": {"days"}}
	w := e.post("/console/traits/draft", f, true)
	if body := w.Body.String(); !strings.Contains(body, `id="draft-ok"`) || !strings.Contains(body, "&#34;revenue&#34;") || !strings.Contains(body, "lifetime_value") {
		t.Fatalf("draft: %s", body)
	}
	f.Set("kind", "sum")
	if body := e.post("/console/traits/draft", f, true).Body.String(); !strings.Contains(body, "property: is required for sum") {
		t.Fatalf("draft without property: %s", body)
	}
	f.Set("property", "revenue")
	f.Set("evname", "Order Completed")
	f.Set("window", "a month")
	if body := e.post("/console/traits/save", f, false).Body.String(); !strings.Contains(body, "Not saved: window: must be a whole number") {
		t.Fatalf("bad window: %s", body)
	}
	f.Set("window", "30")
	if w = e.post("/console/traits/save", f, false); w.Code != http.StatusSeeOther {
		t.Fatalf("save: %d %s", w.Code, w.Body.String())
	}
	l, _ := e.svc.Traits(context.Background())
	if len(l) != 1 || l[0].Key != "lifetime_value" || l[0].Window.Days != 30 || l[0].Property != "revenue" {
		t.Fatalf("saved: %+v", l)
	}
	list := e.get("/console/traits").Body.String()
	if !strings.Contains(list, `data-trait="lifetime_value"`) || !strings.Contains(list, "30 d") {
		t.Fatalf("list: %s", list)
	}
	edit := e.get("/console/traits/" + l[0].ID).Body.String()
	if !strings.Contains(edit, `id="window" name="window" value="30"`) || !strings.Contains(edit, `<option value="sum" selected>`) {
		t.Fatalf("edit: %s", edit)
	}
	// An audience on it keeps it from being deleted; the confirmation says why.
	uses := url.Values{"name": {"Big spenders"}, "c.kind": {"group"}, "c.0.kind": {"computedTrait"}, "c.0.key": {"lifetime_value"},
		"c.0.op": {"gt"}, "c.0.value": {"100"}}
	if w = e.post("/console/audiences/save", uses, false); w.Code != http.StatusSeeOther {
		t.Fatalf("save an audience on the trait: %s", w.Body.String())
	}
	w = e.post("/console/traits/"+l[0].ID+"/delete", url.Values{"name": {"Lifetime value"}}, false)
	if body := w.Body.String(); w.Code != 200 || !strings.Contains(body, "Not deleted: still in use") || !strings.Contains(body, `class="danger"`) {
		t.Fatalf("delete in use: %d %s", w.Code, body)
	}
	a, _ := e.svc.Audiences(context.Background())
	if w = e.post("/console/audiences/"+a[0].ID+"/delete", nil, false); w.Code != http.StatusSeeOther {
		t.Fatalf("delete the audience: %d", w.Code)
	}
	if w = e.post("/console/traits/"+l[0].ID+"/delete", nil, false); w.Code != http.StatusSeeOther {
		t.Fatalf("delete: %d", w.Code)
	}
	if l, _ = e.svc.Traits(context.Background()); len(l) != 0 {
		t.Fatalf("left: %+v", l)
	}
}

// TestPlaceError: an API message about a field is put on the node it is about.
func TestPlaceError(t *testing.T) {
	tree := parseTree(proAndOrdered(""))
	_, paths, _ := (&audienceForm{Tree: tree}).spec()
	got := placeError("condition.and[1].event.count.n: must not be negative", paths)
	if got != "Condition 2: count.n: must not be negative" || tree.Children[1].Error != "count.n: must not be negative" {
		t.Fatalf("%q %q", got, tree.Children[1].Error)
	}
	if got := placeError("name: is required", paths); got != "name: is required" {
		t.Fatalf("%q", got)
	}
}
