package console

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
)

const dsOneDest = `{"id":"dst_1","name":"crm","url":"https://hooks.example.com/in","enabled":false,"disabledReason":"receiver answered 410","signing":"standard","batchSize":1,
"headers":{"X-Team":"growth"},"subscriptions":{"audiences":["vip"],"events":[{"type":"track","name":"Order Completed"}]},"consentCategories":["marketing"],
"secrets":[{"hint":"whsec_ab","createdAt":"2026-11-30T10:00:00Z"}],"createdAt":"2026-11-30T10:00:00Z","updatedAt":"2026-11-30T10:00:00Z","version":3}`

func dsDestFake() *dsFakeAdmin {
	return &dsFakeAdmin{answers: map[string]func(string) (int, string){
		"GET /admin/v1/destinations":       dsAnswer(200, `{"destinations":[`+dsOneDest+`]}`),
		"GET /admin/v1/destinations/dst_1": dsAnswer(200, `{"destination":`+dsOneDest+`,"stats":{"delivered":7,"deadLettered":1}}`),
		"GET /admin/v1/destinations/dst_1/deliveries": dsAnswer(200, `{"deliveries":[
{"recordId":"r2","status":"dead","attempts":2,"lastStatus":400,"lastError":"HTTP 400: nope","latencyMs":12,"updatedAt":"2026-11-30T10:02:00Z"},
{"recordId":"r1","status":"delivered","attempts":1,"lastStatus":204,"latencyMs":31,"updatedAt":"2026-11-30T10:01:00Z"}],"next":"tok2"}`),
		"GET /admin/v1/destinations/dst_1/dead-letters":             dsAnswer(200, `{"deadLetters":[{"recordId":"r2","kind":"event","attempts":2,"lastStatus":400,"lastError":"HTTP 400: nope","deadAt":"2026-11-30T10:02:00Z","payload":{"event":"Order Completed"}}],"next":""}`),
		"PUT /admin/v1/destinations/dst_1":                          dsAnswer(200, dsOneDest),
		"POST /admin/v1/destinations/dst_1/dead-letters/r2/redrive": dsAnswer(202, `{"redriven":1}`),
		"POST /admin/v1/destinations/dst_1/dead-letters/redrive":    dsAnswer(202, `{"redriven":3}`),
		"POST /admin/v1/destinations/dst_1/rotate-secret":           dsAnswer(200, `{"destination":`+dsOneDest+`,"secret":"whsec_newsecret"}`),
	}}
}

func TestDestinationsListAndPage(t *testing.T) {
	s := dsConsole(t, dsDestFake())
	w := dsSend(s, "GET", "/console/destinations", nil, nil)
	body := w.Body.String()
	for _, want := range []string{`href="/console/destinations/dst_1"`, "disabled", "receiver answered 410", `fill="#0a6b2d"`, `fill="#b3261e"`, "50% delivered", `<td class="num">7</td>`} {
		if !strings.Contains(body, want) {
			t.Errorf("list lacks %s", want)
		}
	}
	w = dsSend(s, "GET", "/console/destinations/dst_1", nil, nil)
	body = w.Body.String()
	for _, want := range []string{"HTTP 400: nope", `name="record" value="r2"`, `id="redrive-all"`, "31 ms", `href="?next=tok2&amp;dlnext="`,
		`X-Team: growth`, `&#34;name&#34;: &#34;Order Completed&#34;`, `value="vip"`, `value="marketing"`, `>Enable</button>`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if w := dsSend(s, "GET", "/console/destinations/dst_2", nil, nil); w.Code != 404 || !strings.Contains(w.Body.String(), "not found") {
		t.Errorf("unknown destination: %d", w.Code)
	}
}

// TestDestinationSettings: the form keeps the destination's enabled state, sends what was
// typed, and a field it cannot read is refused before any change.
func TestDestinationSettings(t *testing.T) {
	f := dsDestFake()
	s := dsConsole(t, f)
	form := url.Values{"name": {"crm"}, "url": {"https://hooks.example.com/v2"}, "signing": {"segment"}, "batchSize": {"10"}, "timeoutSeconds": {""},
		"headers": {"X-Team: growth\nX-Env: prod"}, "audiences": {"vip, churn"}, "traits": {""}, "events": {`[{"type":"identify"}]`},
		"consentCategories": {"marketing,ads"}, "privacy": {"on"}, "enabled": {"on"}}
	w := dsSend(s, "POST", "/console/destinations/dst_1", form, nil)
	if w.Code != 200 || !strings.Contains(w.Body.String(), "Settings saved") {
		t.Fatalf("save: %d %s", w.Code, w.Body.String())
	}
	var put map[string]any
	for _, c := range f.calls {
		if b, ok := strings.CutPrefix(c, "PUT /admin/v1/destinations/dst_1 "); ok {
			json.Unmarshal([]byte(b), &put)
		}
	}
	if put["enabled"] != false || put["url"] != "https://hooks.example.com/v2" || put["signing"] != "segment" || put["batchSize"] != float64(10) ||
		put["headers"].(map[string]any)["X-Env"] != "prod" || len(put["consentCategories"].([]any)) != 2 {
		t.Fatalf("PUT body: %v", put)
	}
	subs := put["subscriptions"].(map[string]any)
	if len(subs["audiences"].([]any)) != 2 || subs["privacy"] != true || subs["events"].([]any)[0].(map[string]any)["type"] != "identify" {
		t.Fatalf("subscriptions: %v", subs)
	}
	for field, bad := range map[string]string{"batchSize": "ten", "headers": "no colon here", "events": `{"type":`} {
		n := len(f.calls)
		form := url.Values{"name": {"crm"}, "url": {"https://x.example.com"}}
		form.Set(field, bad)
		w := dsSend(s, "POST", "/console/destinations/dst_1", form, nil)
		if w.Code != 400 || !strings.Contains(w.Body.String(), "not saved") || !strings.Contains(w.Body.String(), "https://x.example.com") {
			t.Errorf("%s=%q: %d", field, bad, w.Code)
		}
		for _, c := range f.calls[n:] {
			if !strings.HasPrefix(c, "GET") {
				t.Errorf("%s=%q changed something: %s", field, bad, c)
			}
		}
	}
}

func TestDestinationRedriveAndRotate(t *testing.T) {
	f := dsDestFake()
	s := dsConsole(t, f)
	if w := dsSend(s, "POST", "/console/destinations/dst_1/redrive", url.Values{"record": {"r2"}}, nil); !strings.Contains(w.Body.String(), "1 dead letter(s) queued") {
		t.Fatalf("redrive one: %s", w.Body.String())
	}
	if w := dsSend(s, "POST", "/console/destinations/dst_1/redrive", url.Values{}, nil); !strings.Contains(w.Body.String(), "3 dead letter(s) queued") {
		t.Fatalf("redrive all: %s", w.Body.String())
	}
	w := dsSend(s, "POST", "/console/destinations/dst_1/rotate", url.Values{"grace": {"now"}}, nil)
	if !strings.Contains(w.Body.String(), `<code id="signing-secret">whsec_newsecret</code>`) || !strings.Contains(w.Body.String(), `hx-history="false"`) {
		t.Fatalf("rotate: %s", w.Body.String())
	}
	if c := f.calls[len(f.calls)-4]; c != `POST /admin/v1/destinations/dst_1/rotate-secret {"graceSeconds":-1}` {
		t.Fatalf("rotate call: %q (%q)", c, f.calls)
	}
	if w := dsSend(s, "GET", "/console/destinations/dst_1", nil, nil); strings.Contains(w.Body.String(), "whsec_newsecret") {
		t.Fatal("the secret was shown again")
	}
	if w := dsSend(s, "POST", "/console/destinations/dst_1/delete", url.Values{"confirm": {"yes"}}, nil); w.Code != 400 {
		t.Fatalf("delete without typing delete: %d", w.Code)
	}
}
