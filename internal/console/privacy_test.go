package console

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

const (
	prDone   = "pr_00000000000000000000c"
	prExport = "pr_00000000000000000000d"
)

func privacyAnswers() map[string]profAnswer {
	return map[string]profAnswer{
		"GET /admin/v1/privacy/requests": {200, `{"requests":[
			{"id":"` + prDone + `","type":"delete","status":"completed","labels":["email:a…@e….com"],"createdAt":"2026-11-30T10:00:00Z","completedAt":"2026-11-30T10:00:02Z","step":"done","results":{"identity":{"events":5,"profiles":1},"segments":{"profile_state":1}}},
			{"id":"` + prExport + `","type":"export","status":"running","labels":["user_id:u…(8)"],"createdAt":"2026-11-30T09:00:00Z","step":"export","results":{}}],
			"next":"` + prExport + `"}`},
		"GET /admin/v1/privacy/suppressions":         {200, `{"suppressions":[{"group":"` + prDone + `","labels":["email:b…@e….com"],"createdAt":"2026-11-30T08:00:00Z"}],"droppedBySource":{"src_web":3}}`},
		"GET /admin/v1/privacy/requests/" + prExport: {200, `{"id":"` + prExport + `","type":"export","status":"completed","labels":[],"createdAt":"2026-11-30T09:00:00Z","step":"done","results":{"identity":{"events":2}},"export":{"requestId":"` + prExport + `","identity":{"events":[{"messageId":"m-1"}]}}}`},
		"GET /admin/v1/privacy/requests/" + prDone:   {200, `{"id":"` + prDone + `","type":"delete","status":"completed","labels":["email:a…@e….com"],"createdAt":"2026-11-30T10:00:00Z","step":"done","results":{"identity":{"events":5}}}`},
		"POST /admin/v1/privacy/requests":            {400, `{"code":"invalid_request","message":"identifiers: must hold 1 to 100 identifiers"}`},
	}
}

// TestPrivacyPage: the log (status, masked labels, totals per store, paging), the suppressions
// with the events dropped per source.
func TestPrivacyPage(t *testing.T) {
	s, f := newProfServer(t, privacyAnswers())
	w := profGet(s, "/console/privacy", false)
	body := w.Body.String()
	for _, want := range []string{prDone, "email:a…@e….com", "user_id:u…(8)", "identity: 6", "segments: 1", "completed", "running",
		"email:b…@e….com", "src_web", ">3<", `href="/console/privacy?next=` + prExport + `"`, "2026-11-30 10:00:02Z", `id="pr-confirm"`} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if c := f.called(); len(c) != 2 || c[0] != "GET /admin/v1/privacy/requests?limit=25" {
		t.Fatalf("calls %q", c)
	}
	profGet(s, "/console/privacy?next="+prExport, false)
	if c := f.called(); c[2] != "GET /admin/v1/privacy/requests?limit=25&next="+prExport {
		t.Fatalf("paging: %q", c)
	}
}

// TestPrivacyCreateErrors: the API's 400 message is shown (htmx: a fragment; a plain form: the
// page again, with the form as typed); a delete without confirmation is not sent at all.
func TestPrivacyCreateErrors(t *testing.T) {
	s, f := newProfServer(t, privacyAnswers())
	form := url.Values{"type": {"export"}, "identifiers": {""}, "reason": {"asked by mail"}}
	w := profPost(s, "/console/privacy/requests", form, true)
	if w.Code != 200 || !strings.Contains(w.Body.String(), "identifiers: must hold 1 to 100 identifiers") || strings.Contains(w.Body.String(), "<html") {
		t.Fatalf("htmx: %d %s", w.Code, w.Body.String())
	}
	w = profPost(s, "/console/privacy/requests", form, false)
	if w.Code != 400 || !strings.Contains(w.Body.String(), "must hold 1 to 100") || !strings.Contains(w.Body.String(), `value="asked by mail"`) {
		t.Fatalf("plain: %d %s", w.Code, w.Body.String())
	}
	n := len(f.called())
	w = profPost(s, "/console/privacy/requests", url.Values{"type": {"suppress_with_delete"}, "identifiers": {"email:a@b.c"}}, true)
	if !strings.Contains(w.Body.String(), "type DELETE") || len(f.called()) != n {
		t.Fatalf("unconfirmed delete: %s, %d calls", w.Body.String(), len(f.called())-n)
	}
	if got := privSplitIdentifiers(" email:a@b.c \r\nuser_id:1, user_id:2\n\n"); strings.Join(got, "|") != "email:a@b.c|user_id:1|user_id:2" {
		t.Fatalf("split: %q", got)
	}
}

// TestPrivacyExportDownload: a completed export downloads as a JSON attachment; a request
// without an export answers 409 with the reason; a malformed id asks the API nothing.
func TestPrivacyExportDownload(t *testing.T) {
	s, f := newProfServer(t, privacyAnswers())
	w := profGet(s, "/console/privacy/export?id="+prExport, false)
	if w.Code != 200 || !strings.Contains(w.Header().Get("Content-Disposition"), "export-"+prExport+".json") || !strings.Contains(w.Body.String(), `"messageId":"m-1"`) {
		t.Fatalf("export: %d %q %s", w.Code, w.Header().Get("Content-Disposition"), w.Body.String())
	}
	if w := profGet(s, "/console/privacy/export?id="+prDone, false); w.Code != http.StatusConflict || !strings.Contains(w.Body.String(), "no export document") {
		t.Fatalf("not an export: %d", w.Code)
	}
	n := len(f.called())
	if w := profGet(s, "/console/privacy/request?id=../sources", false); w.Code != 404 || len(f.called()) != n {
		t.Fatalf("bad id: %d", w.Code)
	}
	// The status fragment of a finished export links the download and stops polling.
	w = profGet(s, "/console/privacy/status?id="+prExport, true)
	if b := w.Body.String(); !strings.Contains(b, "/console/privacy/export?id="+prExport) || strings.Contains(b, "hx-trigger") {
		t.Fatalf("status: %s", b)
	}
	if w := profGet(s, "/console/privacy/request?id="+prDone, false); w.Code != 200 || !strings.Contains(w.Body.String(), "identity") {
		t.Fatalf("request page: %d", w.Code)
	}
}
