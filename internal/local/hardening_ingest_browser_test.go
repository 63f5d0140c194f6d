//go:build integration

package local_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// ingestBrowser starts a headless Chromium for 90 s (see browser).
func ingestBrowser(t *testing.T) context.Context {
	t.Helper()
	return browser(t, 90*time.Second)
}

// browser starts a headless Chromium (the Debian `chromium` package; `make browser` installs
// it) that lives for at most timeout. Without one the test is skipped locally and fails in CI.
func browser(t *testing.T, timeout time.Duration) context.Context {
	t.Helper()
	path := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("no chromium on PATH: run `make browser`")
		}
		t.Skip("no chromium on PATH (`make browser` installs it)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.Headless,
		chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	return ctx
}

// A page on another origin sends events with fetch() and the exact headers of RudderStack's JS
// SDK (a retry: AnonymousId, SentAt, rsa-*) and of analytics-next with a custom header: the
// browser's own CORS check must let them through, and the events must be stored.
func TestIngestBrowserCrossOriginFetch(t *testing.T) {
	ctx := ingestBrowser(t)
	stack, _, writeKey := startStack(t)
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, `<!doctype html><title>shop</title>`)
	}))
	defer page.Close()
	if err := chromedp.Do(ctx, chromedp.Navigate(page.URL)); err != nil {
		t.Fatalf("open page: %v", err)
	}
	send := func(path string, headers map[string]string, body string) int {
		t.Helper()
		h, _ := json.Marshal(headers)
		js := fmt.Sprintf(`fetch(%q, {method: "POST", headers: %s, body: %q}).then(r => r.status, e => -1)`, stack.URL+path, h, body)
		status, err := chromedp.Run(ctx, chromedp.Evaluate[int](js, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("fetch %s: %v", path, err)
		}
		return status
	}
	auth := "Basic " + basicToken(writeKey)
	rudder := map[string]string{
		"Content-Type": "application/json;charset=UTF-8", "Accept": "application/json", "Authorization": auth,
		"AnonymousId": "YW5vbi1icm93c2Vy", "SentAt": time.Now().UTC().Format(time.RFC3339),
		"rsa-retry-attempt": "1", "rsa-since-last-attempt": "1500", "rsa-since-first-attempt": "1500", "rsa-retry-reason": "server-5xx",
	}
	if st := send("/v1/batch", rudder, `{"batch":[{"type":"track","event":"Viewed","userId":"ingest-browser-rs","messageId":"ingest-browser-rs-1"}]}`); st != 200 {
		t.Fatalf("RudderStack-style request from a page: status %d (-1: refused by CORS)", st)
	}
	segment := map[string]string{"Content-Type": "application/json", "x-api-key": "k"}
	body := fmt.Sprintf(`{"writeKey":%q,"batch":[{"type":"track","event":"Viewed","userId":"ingest-browser-seg","messageId":"ingest-browser-seg-1"}]}`, writeKey)
	if st := send("/v1/b", segment, body); st != 200 {
		t.Fatalf("analytics-next-style request from a page: status %d (-1: refused by CORS)", st)
	}
	eventually(t, "events sent from the browser", 30*time.Second, func() bool {
		return len(ingestEventIDs(t, stack.URL, "user_id:ingest-browser-rs")) == 1 && len(ingestEventIDs(t, stack.URL, "user_id:ingest-browser-seg")) == 1
	})
}
