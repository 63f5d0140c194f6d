// Package idrules is the identity rule set: its wire form (the admin API's
// /admin/v1/identity-rules body and the identityRules of a cdp config file), its defaults, its
// validation and its compiled form. Identity resolution (package identity) and the cdp CLI
// (package config) both import it; it imports no server code, so the CLI links none.
package idrules

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Rules configure identity resolution per identifier type. Rules for a type override the
// defaults for that type; types without a rule get DefaultLimit and rank after every type with
// an explicit priority, alphabetically. DefaultBlocked values apply to every type on top of the
// type's own blocked values.
type Rules struct {
	Types []TypeRule `json:"types"`
}

// TypeRule is the rule for one identifier type.
type TypeRule struct {
	Type string `json:"type"`
	// Priority ranks types when a merge would break a limit: the identifier of the type with
	// the largest number (lowest priority) is dropped first. 1 is the highest; 0 means unranked
	// (after all ranked types, alphabetically).
	Priority int `json:"priority,omitempty"`
	// Limit is how many values of this type one profile may hold (1..MaxLimit); 0 means
	// DefaultLimit.
	Limit int `json:"limit,omitempty"`
	// Blocked values are never used as identifiers of this type.
	Blocked []BlockedValue `json:"blocked,omitempty"`
}

// BlockedValue matches identifier values: Match is "exact" (case-insensitive) or "regex" (Go
// RE2 syntax, matched against the normalised value).
type BlockedValue struct {
	Match string `json:"match"`
	Value string `json:"value"`
}

// Limits of the rule values.
const (
	DefaultLimit = 5
	MaxLimit     = 100
	MaxBlocked   = 100
)

// DefaultBlocked are blocked for every type: placeholder values SDKs and forms send.
var DefaultBlocked = []BlockedValue{
	{Match: "regex", Value: `^[0-]*$`},
	{Match: "exact", Value: "-1"},
	{Match: "exact", Value: "null"},
	{Match: "exact", Value: "undefined"},
	{Match: "exact", Value: "anonymous"},
	{Match: "exact", Value: "nil"},
	{Match: "exact", Value: ""},
}

// DefaultRules are Segment's defaults: user_id priority 1 limit 1, email priority 2 limit 5;
// other types limit 5, ranked alphabetically after those.
func DefaultRules() Rules {
	return Rules{Types: []TypeRule{
		{Type: "user_id", Priority: 1, Limit: 1}, // identity.TypeUserID
		{Type: "email", Priority: 2, Limit: 5},   // identity.TypeEmail
	}}
}

// ValidationError is a rule set that cannot be used; Field points at the offending value.
type ValidationError struct {
	Field   string
	Message string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Message }

var typePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_.\-]{0,63}$`)

// Compile validates rules and prepares them for resolution. The error is a *ValidationError.
func Compile(r Rules) (*Compiled, error) {
	c := &Compiled{rules: map[string]*compiledType{}}
	def, err := compileBlocked("defaultBlocked", DefaultBlocked)
	if err != nil {
		return nil, err
	}
	c.defaultBlocked = def
	prios := map[int]string{}
	merged := map[string]TypeRule{}
	for _, d := range DefaultRules().Types {
		merged[d.Type] = d
	}
	seen := map[string]bool{}
	for i, t := range r.Types {
		f := fmt.Sprintf("types[%d]", i)
		if !typePattern.MatchString(t.Type) {
			return nil, &ValidationError{f + ".type", fmt.Sprintf("%q is not a valid identifier type (lower-case letters, digits, '_', '.', '-'; at most 64)", t.Type)}
		}
		if seen[t.Type] {
			return nil, &ValidationError{f + ".type", fmt.Sprintf("type %q has more than one rule", t.Type)}
		}
		seen[t.Type] = true
		if t.Limit < 0 || t.Limit > MaxLimit {
			return nil, &ValidationError{f + ".limit", fmt.Sprintf("limit %d is out of range: use 1 to %d (0 means the default, %d)", t.Limit, MaxLimit, DefaultLimit)}
		}
		if t.Priority < 0 {
			return nil, &ValidationError{f + ".priority", fmt.Sprintf("priority %d is negative: 1 is the highest, 0 means unranked", t.Priority)}
		}
		if len(t.Blocked) > MaxBlocked {
			return nil, &ValidationError{f + ".blocked", fmt.Sprintf("at most %d blocked values", MaxBlocked)}
		}
		merged[t.Type] = t
	}
	for typ, t := range merged {
		if t.Priority > 0 {
			if other, dup := prios[t.Priority]; dup {
				a, b := sorted2(typ, other)
				return nil, &ValidationError{"types", fmt.Sprintf("types %q and %q share priority %d; priorities must be distinct", a, b, t.Priority)}
			}
			prios[t.Priority] = typ
		}
		limit := t.Limit
		if limit == 0 {
			limit = DefaultLimit
		}
		idx := indexOfType(r.Types, typ)
		bl, err := compileBlocked(fmt.Sprintf("types[%d].blocked", idx), t.Blocked)
		if err != nil {
			return nil, err
		}
		c.rules[typ] = &compiledType{priority: t.Priority, limit: limit, blocked: bl}
	}
	c.source = r
	return c, nil
}

func sorted2(a, b string) (string, string) {
	if a > b {
		return b, a
	}
	return a, b
}

func indexOfType(ts []TypeRule, typ string) int {
	for i, t := range ts {
		if t.Type == typ {
			return i
		}
	}
	return -1
}

type matcher struct {
	exact string
	re    *regexp.Regexp
	desc  string
}

func compileBlocked(field string, bs []BlockedValue) ([]matcher, error) {
	out := make([]matcher, 0, len(bs))
	for i, b := range bs {
		f := fmt.Sprintf("%s[%d]", field, i)
		switch b.Match {
		case "exact":
			out = append(out, matcher{exact: b.Value, desc: fmt.Sprintf("blocked exact %q", b.Value)})
		case "regex":
			if len(b.Value) > 1000 {
				return nil, &ValidationError{f + ".value", "regex longer than 1000 characters"}
			}
			re, err := regexp.Compile(b.Value)
			if err != nil {
				return nil, &ValidationError{f + ".value", fmt.Sprintf("invalid regex %q: %v", b.Value, err)}
			}
			out = append(out, matcher{re: re, desc: fmt.Sprintf("blocked regex %q", b.Value)})
		default:
			return nil, &ValidationError{f + ".match", fmt.Sprintf("match must be \"exact\" or \"regex\", not %q", b.Match)}
		}
	}
	return out, nil
}

// Compiled is a validated rule set.
type Compiled struct {
	rules          map[string]*compiledType
	defaultBlocked []matcher
	source         Rules
}

type compiledType struct {
	priority int
	limit    int
	blocked  []matcher
}

// Rules returns the rule set as configured (without the defaults filled in).
func (c *Compiled) Rules() Rules { return c.source }

// Limit is the number of values of typ one profile may hold.
func (c *Compiled) Limit(typ string) int {
	if r, ok := c.rules[typ]; ok {
		return r.limit
	}
	return DefaultLimit
}

// Blocked returns the rule that blocks the identifier typ:value, or "" if it is usable.
func (c *Compiled) Blocked(typ, value string) string {
	check := func(ms []matcher) string {
		for _, m := range ms {
			if m.re != nil {
				if m.re.MatchString(value) {
					return m.desc
				}
			} else if strings.EqualFold(m.exact, value) {
				return m.desc
			}
		}
		return ""
	}
	if d := check(c.defaultBlocked); d != "" {
		return d
	}
	if r, ok := c.rules[typ]; ok {
		return check(r.blocked)
	}
	return ""
}

// Higher reports whether type a has a higher priority than type b.
func (c *Compiled) Higher(a, b string) bool {
	pa, pb := c.rank(a), c.rank(b)
	if pa != pb {
		return pa < pb
	}
	return a < b
}

func (c *Compiled) rank(typ string) int {
	if r, ok := c.rules[typ]; ok && r.priority > 0 {
		return r.priority
	}
	return int(^uint(0) >> 1)
}

// Types lists the types with an explicit rule, highest priority first.
func (c *Compiled) Types() []string {
	ts := make([]string, 0, len(c.rules))
	for t := range c.rules {
		ts = append(ts, t)
	}
	sort.Slice(ts, func(i, j int) bool { return c.Higher(ts[i], ts[j]) })
	return ts
}

// Validate checks a rule set; the error is a *ValidationError naming the bad field.
func Validate(r Rules) error {
	_, err := Compile(r)
	return err
}
