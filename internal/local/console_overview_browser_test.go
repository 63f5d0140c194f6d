//go:build integration

package local_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	analytics "github.com/segmentio/analytics-go/v3"
)

// TestConsoleOverview: after events sent with analytics-go, a request with a bad write key and
// one with a bad body, the Overview shows the source's events this minute and in the last hour,
// the rejections by code, the identity stage's stream lag, and the delivery success of a
// destination that answers and of one that fails; its charts carry a title and a description.
func TestConsoleOverview(t *testing.T) {
	c := newConsoleSession(t)
	hooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/down") {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(hooks.Close)
	bearer := "Bearer " + adminToken
	for name, path := range map[string]string{"warehouse": "/ok", "crm": "/down"} {
		if st := call(t, "POST", c.stack.URL+"/admin/v1/destinations", bearer, map[string]any{
			"name": name, "url": hooks.URL + path, "subscriptions": map[string]any{"events": []map[string]any{{"type": "track"}}},
		}, nil); st != 201 {
			t.Fatalf("create destination %s: %d", name, st)
		}
	}
	var sources struct{ Sources []struct{ ID string } }
	if st := call(t, "GET", c.stack.URL+"/admin/v1/sources", bearer, nil, &sources); st != 200 || len(sources.Sources) == 0 {
		t.Fatalf("sources: %d %+v", st, sources)
	}
	src := sources.Sources[0].ID

	sendTracks(c, "overview-user",
		analytics.Track{MessageId: "ov-1", Event: "Signed Up"},
		analytics.Track{MessageId: "ov-2", Event: "Product Viewed"},
		analytics.Track{MessageId: "ov-3", Event: "Order Completed", Properties: analytics.NewProperties().SetRevenue(10)})
	if st := trackWithKey(c, "wk_not_a_key", `{"type":"track","event":"X","userId":"u"}`); st != http.StatusUnauthorized {
		t.Fatalf("bad key: %d", st)
	}
	if st := trackWithKey(c, c.writeKey, `{"type":"track",`); st != http.StatusBadRequest {
		t.Fatalf("bad body: %d", st)
	}

	c.open("/console/")
	row := "#src-" + src
	waitCounted(c, "#codes", "unauthorized", true)
	waitCounted(c, "#codes", "invalid_json", true)
	waitUntil(c, row+" .last-hour", "at least 3 events", true, func(s string) bool { return atoi(s) >= 3 })
	waitUntil(c, row+" .this-minute", "events this minute", true, func(s string) bool { return atoi(s) > 0 })
	if rej := atoi(c.text(row + " .rejected")); rej < 1 {
		t.Errorf("the source's rejected requests: %d, want the bad body counted", rej)
	}
	waitUntil(c, "#stage-identity td:nth-of-type(3)", "the identity stage's records", true, func(s string) bool { return atoi(s) > 0 })
	waitCounted(c, "#destinations", "100.0%", true) // warehouse
	dests := c.text("#destinations")
	if !strings.Contains(dests, "warehouse") || !strings.Contains(dests, "crm") || !strings.Contains(dests, "0.0%") {
		t.Fatalf("destinations: %q", dests)
	}
	title := run(c, chromedp.Evaluate[string](`document.querySelector('`+row+` svg title').textContent + ' / ' + document.querySelector('`+row+` svg desc').textContent`))
	if !strings.Contains(title, "Events per minute") || !strings.Contains(title, "events accepted") {
		t.Fatalf("chart title and description: %q", title)
	}
	rru, wru := c.cost(func() { c.open("/console/") })
	if wru != 0 {
		t.Errorf("an Overview view wrote %.2f WRU", wru)
	}
	t.Logf("Overview: %.2f RRU, %.2f WRU per view (2 destinations)", rru, wru)
	c.shot("overview")
}

// atoi reads a number cell ("" or not a number: -1).
func atoi(s string) int {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return -1
	}
	return n
}
