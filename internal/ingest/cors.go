package ingest

import (
	"strings"

	"github.com/aws/aws-lambda-go/events"
)

// corsPolicy lets browsers (analytics.js) call the API from the allowed origins.
type corsPolicy struct {
	any     bool
	origins map[string]bool
}

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

func (p corsPolicy) apply(origin string, resp *events.APIGatewayV2HTTPResponse) {
	if resp.Headers == nil {
		resp.Headers = map[string]string{}
	}
	switch {
	case p.any:
		resp.Headers["Access-Control-Allow-Origin"] = "*"
	case origin != "" && p.origins[origin]:
		resp.Headers["Access-Control-Allow-Origin"] = origin
		resp.Headers["Vary"] = "Origin"
	default:
		return
	}
	resp.Headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
	resp.Headers["Access-Control-Allow-Headers"] = "Content-Type, Authorization, Content-Encoding"
	resp.Headers["Access-Control-Max-Age"] = "86400"
}
