//go:build integration

package local_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/chromedp/chromedp"

	"github.com/serverless-cdp/cdp/internal/awsenv"
	"github.com/serverless-cdp/cdp/internal/bench"
	"github.com/serverless-cdp/cdp/internal/local"
)

// The console's browser tests (console_*_browser_test.go) share this harness: the whole local
// stack, a real headless Chromium signed in to /console/ with the stack's admin token, and
// screenshots. CDP_SCREENSHOTS=<folder> (make screenshots) saves each page's screenshot there,
// the README's pictures; without it the screenshots are still taken (and checked to be PNGs)
// into the test's temporary folder.

// consoleSession is a signed-in console in a headless Chromium over a fresh local stack.
type consoleSession struct {
	t        *testing.T
	ctx      context.Context
	stack    *local.Stack
	writeKey string
	shots    string
	meter    *bench.Meter // the API function's DynamoDB calls (the console runs there)
}

func newConsoleSession(t *testing.T) *consoleSession {
	t.Helper()
	ctx := browser(t, 5*time.Minute)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1366, 900)); err != nil {
		t.Fatal(err)
	}
	meter := bench.NewMeter()
	stack, _, writeKey := startStackLogging(t, slog.New(slog.DiscardHandler), func(o *local.Options, base awsenv.Clients) {
		o.StageClients = func(stage string) awsenv.Clients {
			if stage != local.StageAPI {
				return base
			}
			return awsenv.Clients{AWS: base.AWS, Kinesis: base.Kinesis,
				DynamoDB: dynamodb.NewFromConfig(base.AWS, append(awsenv.DynamoDBOptions(), meter.DynamoDB(stage))...)}
		}
	})
	c := &consoleSession{t: t, ctx: ctx, stack: stack, writeKey: writeKey, shots: os.Getenv("CDP_SCREENSHOTS"), meter: meter}
	if c.shots == "" {
		c.shots = t.TempDir()
	}
	c.signIn()
	return c
}

// signIn opens the console, is sent to the sign-in form, and signs in with the admin token.
func (c *consoleSession) signIn() {
	c.t.Helper()
	c.do(chromedp.Navigate(c.stack.URL+"/console/"), chromedp.WaitVisible(chromedp.ID("token")))
	if loc := run(c, chromedp.Location()); !strings.Contains(loc, "/console/signin") {
		c.t.Fatalf("without a session the console opened %s, not the sign-in form", loc)
	}
	c.shot("signin")
	c.do(chromedp.SendKeys(chromedp.ID("token"), adminToken), chromedp.Submit(chromedp.ID("token")),
		chromedp.WaitVisible(chromedp.CSS(`nav[aria-label="Main"]`)))
	c.settle("/console/") // the sign-in's redirect has finished loading before a test navigates
}

// settle waits until the page at path has finished loading: a navigation started while an
// earlier one (a form's redirect) is still loading can be aborted by it (net::ERR_ABORTED).
func (c *consoleSession) settle(path string) {
	c.t.Helper()
	if !c.at(path, 30*time.Second) {
		c.t.Fatalf("the page %s never finished loading", path)
	}
}

// do runs chromedp actions or fails the test.
func (c *consoleSession) do(steps ...chromedp.Action[chromedp.Void]) {
	c.t.Helper()
	if err := chromedp.Do(c.ctx, steps...); err != nil {
		c.t.Fatalf("browser: %v", err)
	}
}

// run runs one chromedp action that returns a value, or fails the test.
func run[T any](c *consoleSession, a chromedp.Action[T]) T {
	c.t.Helper()
	v, err := chromedp.Run(c.ctx, a)
	if err != nil {
		c.t.Fatalf("browser: %v", err)
	}
	return v
}

// open navigates to a console path ("/console/…") and waits until that page (not the one
// before it: Navigate can return on the previous page's load event) is loaded with its heading.
func (c *consoleSession) open(path string) {
	c.t.Helper()
	want, _, _ := strings.Cut(path, "?")
	err := chromedp.Do(c.ctx, chromedp.Navigate(c.stack.URL+path))
	if err != nil && strings.Contains(err.Error(), "ERR_ABORTED") && !c.at(want, 5*time.Second) {
		// Aborted by a navigation still in flight and not loaded meanwhile: once more.
		err = chromedp.Do(c.ctx, chromedp.Navigate(c.stack.URL+path))
	}
	if err != nil {
		c.t.Fatalf("browser: open %s: %v", path, err)
	}
	c.settle(want)
}

// at polls, up to timeout, whether the page at path has finished loading.
func (c *consoleSession) at(path string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(c.ctx, 2*time.Second)
		got, err := chromedp.Run(ctx, chromedp.Evaluate[string](
			`document.readyState === "complete" && document.querySelector("main h1") ? location.pathname : ""`))
		cancel()
		if err == nil && got == path {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond) // the polling interval, not a wait for a result
	}
}

// text is the text of the first element matching a CSS selector.
func (c *consoleSession) text(sel string) string {
	c.t.Helper()
	return run(c, chromedp.Text(chromedp.CSS(sel)))
}

// waitText polls (with a deadline) until the element's text contains want: the page updates
// itself (htmx), or reload (if true) reloads it between polls.
func (c *consoleSession) waitText(sel, want string, reload bool, timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(c.ctx, 2*time.Second)
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		cancel()
		if err == nil && strings.Contains(s, want) {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s never showed %q (last: %q, %v)", sel, want, s, err)
		}
		time.Sleep(250 * time.Millisecond) // the polling interval, not a wait for a result
		if reload {
			c.do(chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`main h1`)))
		}
	}
}

// cost runs f (open a page, wait for its content) and returns the DynamoDB read and write
// units the API function spent meanwhile (AWS pricing rules, as the benchmark models them).
func (c *consoleSession) cost(f func()) (rru, wru float64) {
	before := c.meter.Snapshot()[local.StageAPI]
	f()
	after := c.meter.Snapshot()[local.StageAPI]
	return after.ModelRRU - before.ModelRRU, after.ModelWRU - before.ModelWRU
}

// shot saves a full-page screenshot as <name>.png.
func (c *consoleSession) shot(name string) {
	c.t.Helper()
	png := run(c, chromedp.FullScreenshot(100))
	if len(png) < 8 || string(png[1:4]) != "PNG" {
		c.t.Fatalf("screenshot %s is not a PNG", name)
	}
	if err := os.WriteFile(filepath.Join(c.shots, name+".png"), png, 0o644); err != nil {
		c.t.Fatal(err)
	}
}

// TestConsoleSignIn: a wrong token is refused on the form; the right one opens the console,
// whose session cookie is HttpOnly, Secure and SameSite=Strict (document.cookie cannot see it).
func TestConsoleSignIn(t *testing.T) {
	c := newConsoleSession(t)
	if cookies := run(c, chromedp.Evaluate[string](`document.cookie`)); strings.Contains(cookies, "cdp_console") {
		t.Fatalf("the session cookie is readable by scripts: %q", cookies)
	}
	c.do(chromedp.Click(chromedp.CSS(`header .signout button`)), chromedp.WaitVisible(chromedp.ID("token")))
	c.do(chromedp.SendKeys(chromedp.ID("token"), "cdpat_not_a_token"), chromedp.Submit(chromedp.ID("token")),
		chromedp.WaitVisible(chromedp.CSS(`p.error`)))
	if got := c.text(`p.error`); !strings.Contains(got, "not valid") {
		t.Fatalf("wrong token: %q", got)
	}
	// A signed-in page costs the session check: one strongly consistent read of the token.
	c.do(chromedp.SendKeys(chromedp.ID("token"), adminToken), // the form came back empty
		chromedp.Submit(chromedp.ID("token")), chromedp.WaitVisible(chromedp.CSS(`nav[aria-label="Main"]`)))
	c.settle("/console/")
	rru, wru := c.cost(func() { c.open("/console/destinations/new") }) // a form that calls no API
	if rru <= 0 || rru > 1 || wru != 0 {
		t.Errorf("a page that calls no API cost %.2f RRU, %.2f WRU: want the token read alone", rru, wru)
	}
	t.Logf("session check: %.2f RRU per page view", rru)
}
