package console

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/serverless-cdp/cdp/internal/httpapi"
	"github.com/serverless-cdp/cdp/internal/monitor"
)

type fakeMonitor struct {
	live  monitor.Live
	stats monitor.Stats
	err   error
	asked []string
}

func (f *fakeMonitor) Live(_ context.Context, source string, n int) (monitor.Live, error) {
	f.asked = append(f.asked, source)
	return f.live, f.err
}

func (f *fakeMonitor) Stats(context.Context, time.Time) (monitor.Stats, error) { return f.stats, f.err }

// monitorServer is a signed-in console whose admin API lists one source with a hostile name.
func monitorServer(t *testing.T, m Monitor) func(path string) (int, string) {
	t.Helper()
	api := func(_ context.Context, req httpapi.Request) (httpapi.Response, error) {
		if req.RawPath == "/admin/v1/sources" {
			return httpapi.Response{StatusCode: 200, Body: `{"sources":[{"id":"src_a","name":"<script>x</script>","enabled":true}]}`}, nil
		}
		if req.RawPath == "/admin/v1/destinations" {
			return httpapi.Response{StatusCode: 200, Body: `{"destinations":[]}`}, nil
		}
		return httpapi.Response{StatusCode: 200, Body: `{"deadLetters":[],"next":""}`}, nil
	}
	now := time.Date(2026, 11, 30, 12, 30, 20, 0, time.UTC)
	s, err := New(Options{Admin: api, Profile: api, SpaceID: "default", Monitor: m, Now: func() time.Time { return now },
		Verify: func(_ context.Context, tok string) (bool, error) { return tok == goodToken, nil }})
	if err != nil {
		t.Fatal(err)
	}
	return func(path string) (int, string) {
		r := httptest.NewRequest("GET", path, nil)
		r.AddCookie(&http.Cookie{Name: sessionCookie, Value: goodToken})
		w := do(s, r)
		return w.Code, w.Body.String()
	}
}

func TestOverviewDrawsCountsEscaped(t *testing.T) {
	m := time.Date(2026, 11, 30, 12, 30, 0, 0, time.UTC)
	f := &fakeMonitor{stats: monitor.Stats{
		Counts: []monitor.Count{{Source: "src_a", Minute: m, Accepted: 7, Rejected: map[string]int64{"invalid_json": 2}},
			{Source: monitor.UnknownSource, Minute: m.Add(-time.Minute), Rejected: map[string]int64{"unauthorized": 3}}},
		Lags: []monitor.Lag{{Stage: "identity", Minute: m, Records: 7, MaxAge: 1500 * time.Millisecond}},
	}}
	get := monitorServer(t, f)
	code, body := get("/console/")
	if code != 200 {
		t.Fatalf("overview: %d", code)
	}
	for _, want := range []string{`<td class="num this-minute">7</td>`, `<td class="num rejected">2</td>`, "Unknown or missing write key",
		"&lt;script&gt;x&lt;/script&gt;", `<title id="chart-src-0-t">Events per minute from &lt;script&gt;`, "1.5s", ">unauthorized<"} {
		if !strings.Contains(body, want) {
			t.Errorf("overview lacks %q", want)
		}
	}
	if strings.Contains(body, "<script>x") || strings.Contains(body, "style=") {
		t.Errorf("overview has an unescaped name or a style attribute")
	}
	f.err = errors.New("table unreachable")
	if _, body := get("/console/"); !strings.Contains(body, "could not read the counts: table unreachable") {
		t.Errorf("a failing monitor is not reported")
	}
}

func TestLiveFeed(t *testing.T) {
	f := &fakeMonitor{live: monitor.Live{
		Events:     []monitor.Event{{Source: "src_a", Sequence: "1", MessageID: "m-1", Type: "track", Name: "Signed Up", Payload: `{"messageId": "m-1"}`}},
		Rejections: []monitor.Rejection{{Source: monitor.UnknownSource, Code: "unauthorized", Message: "invalid write key", Path: "/v1/track"}},
	}}
	get := monitorServer(t, f)
	_, page := get("/console/live?source=src_a")
	if !strings.Contains(page, `hx-trigger="every 3s"`) || !strings.Contains(page, "m-1") || !strings.Contains(page, "unauthorized") ||
		!strings.Contains(page, `<option value="src_a" selected>`) {
		t.Fatalf("live page: %s", page)
	}
	_, paused := get("/console/live/feed?source=src_a&paused=1")
	if strings.Contains(paused, "hx-trigger") || !strings.Contains(paused, "Resume auto-refresh") || strings.Contains(paused, "<html") {
		t.Fatalf("paused feed: %s", paused)
	}
	_, unknown := get("/console/live?source=src_nope")
	if !strings.Contains(unknown, "There is no source") || f.asked[len(f.asked)-1] != "" {
		t.Fatalf("unknown source: asked %q", f.asked)
	}
}
