package ingest_test

import (
	"context"
	"strings"
	"testing"

	"github.com/serverless-cdp/cdp/internal/ingest"
)

// The request headers of the browser SDKs, as their preflights list them (lower-cased and
// sorted, as browsers send Access-Control-Request-Headers).
var (
	// RudderStack's JS SDK v3 (and v1.1): application/json body, Basic auth, AnonymousId.
	rudderHeaders = "anonymousid,authorization,content-type"
	// RudderStack's JS SDK v3 on a retry.
	rudderRetryHeaders = "anonymousid,authorization,content-type,rsa-retry-attempt,rsa-retry-reason,rsa-since-first-attempt,rsa-since-last-attempt,sentat"
	// analytics-next with deliveryStrategy.config.headers {'Content-Type':'application/json','x-api-key':…}.
	segmentHeaders = "content-type,x-api-key"
)

func preflight(h *ingest.Handler, origin, requested string) map[string]string {
	req := post("/v1/batch", "", "origin", origin, "access-control-request-method", "POST")
	if requested != "" {
		req.Headers["access-control-request-headers"] = requested
	}
	req.RequestContext.HTTP.Method = "OPTIONS"
	resp, _ := h.Handle(context.Background(), req)
	if resp.StatusCode != 204 {
		return nil
	}
	return resp.Headers
}

// allows reports whether a preflight answer lets the browser send every requested header.
func allows(hdr map[string]string, requested string) bool {
	allowed := map[string]bool{}
	for _, a := range strings.Split(hdr["Access-Control-Allow-Headers"], ",") {
		allowed[strings.ToLower(strings.TrimSpace(a))] = true
	}
	for _, r := range strings.Split(requested, ",") {
		if !allowed[strings.ToLower(strings.TrimSpace(r))] {
			return false
		}
	}
	return true
}

func TestPreflightAllowsTheBrowserSDKsHeaders(t *testing.T) {
	for _, origins := range [][]string{{"*"}, {"https://shop.example"}} {
		h := ingest.New(keys{"good-key": {ID: "s", Enabled: true}}, &memPub{}, ingest.Config{AllowedOrigins: origins})
		for _, requested := range []string{rudderHeaders, rudderRetryHeaders, segmentHeaders, "Content-Type, AnonymousId, SentAt"} {
			hdr := preflight(h, "https://shop.example", requested)
			if hdr == nil || hdr["Access-Control-Allow-Origin"] == "" || !allows(hdr, requested) {
				t.Fatalf("origins %v: preflight for %q answered %v", origins, requested, hdr)
			}
			if !strings.Contains(hdr["Vary"], "Access-Control-Request-Headers") {
				t.Fatalf("an echoed header list must vary on the request: %v", hdr)
			}
			seen := map[string]bool{}
			for _, a := range strings.Split(hdr["Access-Control-Allow-Headers"], ",") {
				a = strings.ToLower(strings.TrimSpace(a))
				if seen[a] {
					t.Fatalf("%q listed twice: %q", a, hdr["Access-Control-Allow-Headers"])
				}
				seen[a] = true
			}
		}
		// A header the site adds (analytics-next deliveryStrategy headers) is echoed once.
		if hdr := preflight(h, "https://shop.example", "X-Site-Header, x-site-header, Content-Type"); !allows(hdr, "x-site-header") ||
			strings.Count(strings.ToLower(hdr["Access-Control-Allow-Headers"]), "x-site-header") != 1 {
			t.Fatalf("site header: %v", hdr)
		}
		// Without a request list, the fixed list still names what the SDKs send.
		if hdr := preflight(h, "https://shop.example", ""); !allows(hdr, rudderRetryHeaders) {
			t.Fatalf("fixed list: %v", hdr)
		}
	}
}

func TestPreflightDoesNotEchoMalformedHeaderLists(t *testing.T) {
	h := ingest.New(keys{}, &memPub{}, ingest.Config{AllowedOrigins: []string{"*"}})
	many := strings.TrimSuffix(strings.Repeat("x-a,", 40), ",")
	for _, bad := range []string{"x-ok, bad header", "x-ok,\r\nx-injected: 1", "x-ok,(paren)", many, strings.Repeat("a", 3000)} {
		hdr := preflight(h, "https://any.example", bad)
		got := hdr["Access-Control-Allow-Headers"]
		if strings.Contains(got, "x-ok") || strings.Contains(got, "x-a") || strings.ContainsAny(got, "\r\n()") || len(got) > 512 {
			t.Fatalf("malformed request list %.40q echoed: %q", bad, got)
		}
		if !allows(hdr, rudderRetryHeaders) {
			t.Fatalf("the fixed list must still be answered: %q", got)
		}
	}
}
