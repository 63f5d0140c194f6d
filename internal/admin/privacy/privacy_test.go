package privacy_test

import (
	"encoding/json"
	"net/http"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/serverless-cdp/cdp/internal/admin"
	"github.com/serverless-cdp/cdp/internal/admin/admintest"
	"github.com/serverless-cdp/cdp/internal/admin/openapicheck"
	adminprivacy "github.com/serverless-cdp/cdp/internal/admin/privacy"
	"github.com/serverless-cdp/cdp/internal/apitypes"
	"github.com/serverless-cdp/cdp/internal/privacy/privacytest"
)

const base = "/admin/v1/privacy"

func router(inline time.Duration) (http.Handler, *privacytest.Blocklist, *privacytest.Holder) {
	svc, _, bl, holder := privacytest.Service(inline)
	return admin.New(admintest.OneToken{}, nil, func(r *admin.Router) { adminprivacy.Register(r, svc) }), bl, holder
}

func decode[T any](t *testing.T, body string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("decode %q: %v", body, err)
	}
	return v
}

func TestSubmitValidation(t *testing.T) {
	h, _, _ := router(time.Second)
	for body, field := range map[string]string{
		`{"type":"erase","identifiers":["user_id:u1"]}`:                                              "type",
		`{"type":"delete","identifiers":[]}`:                                                         "identifiers",
		`{"type":"delete","identifiers":["ann@example.com"]}`:                                        "identifiers[0]",
		`{"type":"delete","identifiers":["user_id:a","user_id:a"]}`:                                  "identifiers[1]",
		`{"type":"delete","identifiers":["user_id:a"],"color":1}`:                                    "color",
		`{"type":"delete","identifiers":["user_id:a"],"reason":"` + strings.Repeat("r", 1025) + `"}`: "reason",
	} {
		code, out := admintest.Call(t, h, "POST", base+"/requests", body)
		if code != 400 || !strings.Contains(out, field) || strings.Contains(out, "ann@example.com") {
			t.Errorf("%s: %d %s", body, code, out)
		}
	}
	if code, out := admintest.Call(t, h, "GET", base+"/requests", ""); code != 200 || !strings.Contains(out, `"requests":[]`) {
		t.Fatalf("bad input stored something: %d %s", code, out)
	}
}

func TestDeleteAndExportThroughTheAPI(t *testing.T) {
	h, bl, holder := router(5 * time.Second)
	code, out := admintest.Call(t, h, "POST", base+"/requests", `{"type":"export","identifiers":["user_id:ann-77"],"reason":"Art. 15"}`)
	exp := decode[apitypes.PrivacyRequest](t, out)
	if code != 202 || exp.Status != "completed" || exp.RequestedBy != "tok_1" || exp.Results["identity"]["events"] != 2 || exp.Identifiers != nil {
		t.Fatalf("export: %d %s", code, out)
	}
	code, out = admintest.Call(t, h, "GET", base+"/requests/"+exp.ID, "")
	got := decode[apitypes.PrivacyRequest](t, out)
	if code != 200 || !strings.Contains(string(got.Export), "Ann Smith") || !strings.Contains(string(got.Export), "email:ann@example.com") {
		t.Fatalf("get export: %d %s", code, out)
	}
	code, out = admintest.Call(t, h, "GET", base+"/requests/"+exp.ID+"?format=ndjson", "")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 200 || len(lines) != 4+2+3 { // 4 identifiers, 2 profiles, 3 identity items
		t.Fatalf("ndjson: %d %q", code, out)
	}
	for _, l := range lines {
		if x := decode[apitypes.PrivacyExportLine](t, l); x.Holder == "" || x.Kind == "" || len(x.Item) == 0 {
			t.Fatalf("ndjson line %q", l)
		}
	}

	// Request ids sort by their creation millisecond: let the export's pass, so the list below
	// has the delete first (both were sometimes created in the same millisecond).
	for !time.Now().After(exp.CreatedAt.Add(time.Millisecond)) {
		runtime.Gosched()
	}
	code, out = admintest.Call(t, h, "POST", base+"/requests", `{"type":"suppress_with_delete","identifiers":["email:Ann@Example.com"]}`)
	del := decode[apitypes.PrivacyRequest](t, out)
	if code != 202 || del.Status != "completed" || del.Results["identity"]["events"] != 2 || del.Results["privacy_requests"]["export_results"] != 1 ||
		del.Labels[0] != "email:A…@E….com" || strings.Contains(out, "ann@example.com") {
		t.Fatalf("delete: %d %s", code, out)
	}
	if _, ok := holder.Items["prof_ann1"]; ok || bl.Blocked["prof_ann2"] == 0 {
		t.Fatalf("not erased: %v %v", holder.Items, bl.Blocked)
	}
	// The earlier export's result is gone; the audit log keeps masked labels only.
	code, out = admintest.Call(t, h, "GET", base+"/requests/"+exp.ID, "")
	if got = decode[apitypes.PrivacyRequest](t, out); code != 200 || got.Export != nil || !got.ExportExpired {
		t.Fatalf("export after delete: %d %s", code, out)
	}
	if code, out = admintest.Call(t, h, "GET", base+"/requests/"+exp.ID+"?format=ndjson", ""); code != 409 {
		t.Fatalf("ndjson after delete: %d %s", code, out)
	}
	code, out = admintest.Call(t, h, "GET", base+"/requests?limit=1", "")
	page := decode[apitypes.PrivacyRequestList](t, out)
	if code != 200 || len(page.Requests) != 1 || page.Requests[0].ID != del.ID || page.Next == "" {
		t.Fatalf("list: %d %s", code, out)
	}
	code, out = admintest.Call(t, h, "GET", base+"/requests?limit=1&next="+page.Next, "")
	if page = decode[apitypes.PrivacyRequestList](t, out); code != 200 || len(page.Requests) != 1 || page.Requests[0].ID != exp.ID {
		t.Fatalf("list page 2: %d %s", code, out)
	}
	for _, v := range []string{"ann@example.com", "ann-77", "dev-a", "Ann Smith"} {
		if _, all := admintest.Call(t, h, "GET", base+"/requests", ""); strings.Contains(all, v) {
			t.Fatalf("audit log shows %q: %s", v, all)
		}
	}

	bl.Dropped["src_web"] = 3
	code, out = admintest.Call(t, h, "GET", base+"/suppressions", "")
	s := decode[apitypes.PrivacySuppressions](t, out)
	if code != 200 || len(s.Suppressions) != 1 || s.Suppressions[0].Group != del.ID || len(s.Suppressions[0].Labels) != 4 || s.DroppedBySource["src_web"] != 3 {
		t.Fatalf("suppressions: %d %s", code, out)
	}
	code, out = admintest.Call(t, h, "POST", base+"/requests", `{"type":"unsuppress","identifiers":["user_id:ann-77"]}`)
	if un := decode[apitypes.PrivacyRequest](t, out); code != 202 || un.Results["blocklist"]["identifiers"] != 4 {
		t.Fatalf("unsuppress: %d %s", code, out)
	}
	if _, out = admintest.Call(t, h, "GET", base+"/suppressions", ""); !strings.Contains(out, `"suppressions":[]`) {
		t.Fatalf("after unsuppress: %s", out)
	}
}

func TestNotFoundAndBadQueries(t *testing.T) {
	h, _, _ := router(0)
	for path, want := range map[string]int{
		base + "/requests/pr_000000000000000000000":            404,
		base + "/requests/nope":                                404,
		base + "/requests?limit=0":                             400,
		base + "/requests?limit=101":                           400,
		base + "/requests?next=x":                              400,
		base + "/requests/pr_000000000000000000000?format=xml": 400,
	} {
		if code, out := admintest.Call(t, h, "GET", path, ""); code != want {
			t.Errorf("%s: %d %s, want %d", path, code, out, want)
		}
	}
	// Without an inline budget the request answers pending.
	code, out := admintest.Call(t, h, "POST", base+"/requests", `{"type":"delete","identifiers":["user_id:u1"]}`)
	if r := decode[apitypes.PrivacyRequest](t, out); code != 202 || r.Status != "pending" || r.Identifiers[0] != "user_id:u1" {
		t.Fatalf("pending: %d %s", code, out)
	}
}

// TestRoutesDocumented: every privacy route is in api/openapi.yaml.
func TestRoutesDocumented(t *testing.T) {
	raw, err := os.ReadFile("../../../api/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	svc, _, _, _ := privacytest.Service(0)
	r := admin.New(admintest.OneToken{}, nil, func(r *admin.Router) { adminprivacy.Register(r, svc) })
	undocumented, _, err := openapicheck.Compare(raw, r.Routes())
	if err != nil || len(undocumented) > 0 {
		t.Fatalf("not in api/openapi.yaml: %v %v", undocumented, err)
	}
}
