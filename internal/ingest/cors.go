package ingest

import (
	"slices"
	"strings"

	"github.com/serverless-cdp/cdp/internal/httpapi"
)

// corsPolicy lets browsers (analytics.js, analytics-next, RudderStack's JS SDK) call the API from
// the allowed origins.
//
// The preflight allows the headers the browser asks for (Access-Control-Request-Headers),
// echoed back after validation, plus a fixed list of the headers the known SDKs send. Echoing
// is safe here: the tracking API authenticates with a write key that is public in every page,
// never with cookies (no Access-Control-Allow-Credentials), so a header grants a page nothing;
// and analytics-next lets a site add any header it likes (deliveryStrategy.config.headers), so
// no fixed list can be complete. A requested list that is malformed or too long is not echoed;
// the fixed list is answered instead.
type corsPolicy struct {
	any     bool
	origins map[string]bool
}

// corsHeaders are the request headers the browser SDKs send:
//   - analytics.js and analytics-next: Content-Type (text/plain by default, a preflight when a
//     site sets application/json) and whatever the site adds through deliveryStrategy headers;
//   - RudderStack's JS SDK (v1.1 and v3): Content-Type (application/json;charset=UTF-8), Accept,
//     Authorization (Basic write key), AnonymousId, SentAt, and on retries rsa-retry-attempt,
//     rsa-since-last-attempt, rsa-since-first-attempt and rsa-retry-reason;
//   - Content-Encoding for gzip bodies.
const corsHeaders = "Content-Type, Authorization, Content-Encoding, Accept, AnonymousId, SentAt, " +
	"rsa-retry-attempt, rsa-since-last-attempt, rsa-since-first-attempt, rsa-retry-reason"

// Bounds on an echoed Access-Control-Request-Headers.
const (
	maxRequestedHeaders     = 32
	maxRequestedHeaderBytes = 2048
)

func newCORS(allowed []string) corsPolicy {
	p := corsPolicy{origins: map[string]bool{}}
	if len(allowed) == 0 {
		p.any = true
	}
	for _, o := range allowed {
		o = strings.TrimSpace(o)
		if o == "*" {
			p.any = true
		} else if o != "" {
			p.origins[strings.TrimSuffix(o, "/")] = true
		}
	}
	return p
}

// apply adds the CORS headers for a request from origin; requested is the preflight's
// Access-Control-Request-Headers ("" otherwise).
func (p corsPolicy) apply(origin, requested string, resp *httpapi.Response) {
	if resp.Headers == nil {
		resp.Headers = map[string]string{}
	}
	switch {
	case p.any:
		resp.Headers["Access-Control-Allow-Origin"] = "*"
	case origin != "" && p.origins[origin]:
		resp.Headers["Access-Control-Allow-Origin"] = origin
		resp.Headers["Vary"] = "Origin, Access-Control-Request-Headers"
	default:
		return
	}
	resp.Headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
	allow := corsHeaders
	if extra, ok := requestedHeaders(requested); ok && requested != "" {
		if extra != "" {
			allow += ", " + extra
		}
		if resp.Headers["Vary"] == "" {
			resp.Headers["Vary"] = "Access-Control-Request-Headers"
		}
	}
	resp.Headers["Access-Control-Allow-Headers"] = allow
	resp.Headers["Access-Control-Expose-Headers"] = "Retry-After"
	resp.Headers["Access-Control-Max-Age"] = "86400"
}

// requestedHeaders validates an Access-Control-Request-Headers value: a comma-separated list
// of at most maxRequestedHeaders RFC 7230 tokens, maxRequestedHeaderBytes in all. It returns
// them lower-cased and comma-joined, without those corsHeaders already lists or repeats, or
// false when the value is not such a list.
func requestedHeaders(v string) (string, bool) {
	if v == "" {
		return "", true
	}
	if len(v) > maxRequestedHeaderBytes {
		return "", false
	}
	parts := strings.Split(v, ",")
	if len(parts) > maxRequestedHeaders {
		return "", false
	}
	out := make([]string, 0, len(parts))
	for _, h := range parts {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		if !isToken(h) {
			return "", false
		}
		if h = strings.ToLower(h); !fixedHeader(h) && !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	return strings.Join(out, ", "), true
}

// fixedHeader reports whether h (lower case) is already in corsHeaders, so it is not listed twice.
func fixedHeader(h string) bool {
	for _, f := range strings.Split(corsHeaders, ",") {
		if strings.EqualFold(strings.TrimSpace(f), h) {
			return true
		}
	}
	return false
}

// isToken reports whether s is an RFC 7230 token (the syntax of a header name).
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return s != ""
}
