package config

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"sort"
	"strings"

	"github.com/serverless-cdp/cdp/internal/apitypes"
	"github.com/serverless-cdp/cdp/internal/idrules"
)

func validateIdentityRules(f *File) []error {
	if f.IdentityRules == nil {
		return nil
	}
	var ve *idrules.ValidationError
	if err := idrules.Validate(*f.IdentityRules); errors.As(err, &ve) {
		path := "identityRules"
		if ve.Field != "" {
			path += "." + ve.Field
		}
		return []error{f.errorf(path, "%s", ve.Message)}
	} else if err != nil {
		return []error{f.errorf("identityRules", "%v", err)}
	}
	return nil
}

// planIdentityRules replaces the whole rule set when it differs from the file. Identity rules
// are never pruned: leaving them out of the file leaves them alone.
func planIdentityRules(pc planContext, f *File) ([]Change, error) {
	if f.IdentityRules == nil {
		return nil, nil
	}
	have, err := pc.client.IdentityRules(pc.ctx)
	if err != nil {
		return nil, err
	}
	details := diffRules(have, *f.IdentityRules)
	if len(details) == 0 {
		return nil, nil
	}
	want, c := *f.IdentityRules, pc.client
	return []Change{{Op: Update, Kind: "identity rules", Details: details,
		apply: func(ctx context.Context) ([]string, error) { return nil, c.PutIdentityRules(ctx, want) }}}, nil
}

// diffRules describes the types whose rule differs: "+phone", "-device_id",
// "email (limit 5 -> 3, blocked)".
func diffRules(have, want idrules.Rules) []string {
	index := func(r idrules.Rules) map[string]idrules.TypeRule {
		m := map[string]idrules.TypeRule{}
		for _, t := range r.Types {
			if len(t.Blocked) == 0 {
				t.Blocked = nil
			}
			m[t.Type] = t
		}
		return m
	}
	h, w := index(have), index(want)
	names := map[string]bool{}
	for k := range h {
		names[k] = true
	}
	for k := range w {
		names[k] = true
	}
	sorted := make([]string, 0, len(names))
	for k := range names {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	var out []string
	for _, typ := range sorted {
		a, inHave := h[typ]
		b, inWant := w[typ]
		switch {
		case !inHave:
			out = append(out, "+"+typ)
		case !inWant:
			out = append(out, "-"+typ)
		case !reflect.DeepEqual(a, b):
			var what []string
			if a.Priority != b.Priority {
				what = append(what, fmt.Sprintf("priority %d -> %d", a.Priority, b.Priority))
			}
			if a.Limit != b.Limit {
				what = append(what, fmt.Sprintf("limit %d -> %d", a.Limit, b.Limit))
			}
			if !reflect.DeepEqual(a.Blocked, b.Blocked) {
				what = append(what, fmt.Sprintf("blocked %d -> %d values", len(a.Blocked), len(b.Blocked)))
			}
			out = append(out, typ+" ("+strings.Join(what, ", ")+")")
		}
	}
	return out
}

// IdentityRules returns the rule set in force.
func (c *Client) IdentityRules(ctx context.Context) (idrules.Rules, error) {
	var out idrules.Rules
	err := c.do(ctx, http.MethodGet, apitypes.Prefix+"/identity-rules", nil, &out)
	return out, err
}

// PutIdentityRules replaces the whole rule set.
func (c *Client) PutIdentityRules(ctx context.Context, r idrules.Rules) error {
	if r.Types == nil {
		r.Types = []idrules.TypeRule{}
	}
	return c.do(ctx, http.MethodPut, apitypes.Prefix+"/identity-rules", r, nil)
}
