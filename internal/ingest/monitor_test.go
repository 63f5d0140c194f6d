package ingest_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/serverless-cdp/cdp/internal/ingest"
	"github.com/serverless-cdp/cdp/internal/monitor"
)

// TestMonitorCountsOutcomes: accepted events are counted per source; a rejected request is
// counted with its code, message and endpoint (never its body or write key); a preflight is
// not counted; the counts reach the store at the first request, then at most every
// FlushEvery, never per request.
func TestMonitorCountsOutcomes(t *testing.T) {
	ctx := context.Background()
	st := monitor.NewMemStore()
	clk := now
	st.Now = func() time.Time { return clk }
	rec := monitor.NewRecorder(st, monitor.RecorderOptions{Now: func() time.Time { return clk }})
	h := ingest.New(keys{"good-key": {ID: "src_web", Enabled: true}, "disabled-key": {ID: "src_old"}}, &memPub{},
		ingest.Config{Now: func() time.Time { return now }, AllowedOrigins: []string{"*"}, Monitor: rec})
	call := func(path, body string, headers ...string) int {
		resp, err := h.Handle(ctx, post(path, body, headers...))
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode
	}
	batch := `{"batch":[{"type":"track","event":"A","userId":"u1"},{"type":"track","event":"B","userId":"u1"}]}`
	if s := call("/v1/batch", batch, "authorization", basic("good-key:")); s != 200 {
		t.Fatalf("batch: %d", s)
	}
	if s := call("/v1/track", `{"type":"track","event":"A","userId":"secret-user"}`, "authorization", basic("wk_wrong:")); s != 401 {
		t.Fatalf("bad key: %d", s)
	}
	if s := call("/v1/track", `{"type":"track","event":"A","userId":"u1"}`, "authorization", basic("disabled-key:")); s != 401 {
		t.Fatalf("disabled source: %d", s)
	}
	if s := call("/v1/track", `{not json`, "authorization", basic("good-key:")); s != 400 {
		t.Fatalf("bad json: %d", s)
	}
	pre := post("/v1/track", "")
	pre.RequestContext.HTTP.Method = "OPTIONS"
	if _, err := h.Handle(ctx, pre); err != nil {
		t.Fatal(err)
	}
	// A new container writes its first request's counts at once, then at most every FlushEvery.
	if got, _ := st.Counts(ctx, now.Add(-time.Hour)); len(got) != 1 || got[0].Accepted != 2 || len(got[0].Rejected) != 0 {
		t.Fatalf("counts before the flush interval: %+v; want the first request's alone", got)
	}
	clk = clk.Add(monitor.FlushEvery)
	if s := call("/v1/track", `{"type":"track","event":"C","userId":"u2"}`, "authorization", basic("good-key:")); s != 200 {
		t.Fatalf("track: %d", s)
	}
	counts, _ := st.Counts(ctx, now.Add(-time.Hour))
	byKey := map[string]monitor.Count{}
	for _, c := range counts {
		byKey[c.Source] = c
	}
	if web := byKey["src_web"]; web.Accepted != 3 || web.Rejected["invalid_json"] != 1 {
		t.Errorf("src_web: %+v; want 3 accepted, 1 invalid_json", web)
	}
	if u := byKey[monitor.UnknownSource]; u.Accepted != 0 || u.Rejected["unauthorized"] != 1 || len(u.Rejected) != 1 {
		t.Errorf("unknown key: %+v; want 1 unauthorized and nothing else (the preflight is not counted)", u)
	}
	if old := byKey["src_old"]; old.Rejected["unauthorized"] != 1 {
		t.Errorf("disabled source: %+v; want its refused request counted under it", old)
	}
	rs, _ := st.Rejections(ctx, 10)
	if len(rs) != 3 {
		t.Fatalf("samples: %+v", rs)
	}
	for _, r := range rs {
		all := r.Source + r.Code + r.Message + r.Path
		if strings.Contains(all, "secret-user") || strings.Contains(all, "wk_wrong") || strings.Contains(all, "disabled-key") || r.Path != "/v1/track" {
			t.Errorf("sample %+v: want the endpoint, code and message only", r)
		}
	}
}
