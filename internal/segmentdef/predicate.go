package segmentdef

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Operators of a Predicate.
const (
	OpEq         = "eq"
	OpNeq        = "neq"
	OpGt         = "gt"
	OpGte        = "gte"
	OpLt         = "lt"
	OpLte        = "lte"
	OpContains   = "contains"
	OpStartsWith = "starts_with"
	OpExists     = "exists"
	OpIn         = "in"
)

var ops = map[string]bool{OpEq: true, OpNeq: true, OpGt: true, OpGte: true, OpLt: true, OpLte: true,
	OpContains: true, OpStartsWith: true, OpExists: true, OpIn: true}

// Predicate compares one value (a trait, a computed trait or an event property) with a constant.
// Key may be a dotted path into nested objects ("address.city"); a key that itself contains
// dots is found first. Value is JSON; "exists" takes none (or false to mean "does not exist").
type Predicate struct {
	Key   string          `json:"key"`
	Op    string          `json:"op"`
	Value json.RawMessage `json:"value,omitempty"`

	want any // decoded Value, set by compile
}

func (p *Predicate) compile(path string) error {
	if strings.TrimSpace(p.Key) == "" {
		return fieldErr(path+".key", "is required")
	}
	if !ops[p.Op] {
		return fieldErr(path+".op", fmt.Sprintf("unknown operator %q (want eq, neq, gt, gte, lt, lte, contains, starts_with, exists, in)", p.Op))
	}
	p.want = nil
	if len(p.Value) > 0 {
		if err := json.Unmarshal(p.Value, &p.want); err != nil {
			return fieldErr(path+".value", "is not valid JSON")
		}
	}
	switch p.Op {
	case OpExists:
		if p.want != nil {
			if _, ok := p.want.(bool); !ok {
				return fieldErr(path+".value", "must be true, false or absent for exists")
			}
		}
	case OpIn:
		if _, ok := p.want.([]any); !ok {
			return fieldErr(path+".value", "must be an array for in")
		}
	case OpStartsWith:
		if _, ok := p.want.(string); !ok {
			return fieldErr(path+".value", "must be a string for starts_with")
		}
	case OpGt, OpGte, OpLt, OpLte:
		switch p.want.(type) {
		case float64, string:
		default:
			return fieldErr(path+".value", "must be a number or a string (date) for "+p.Op)
		}
	default:
		if p.want == nil {
			return fieldErr(path+".value", "is required for "+p.Op)
		}
	}
	return nil
}

// Match applies the predicate to a value found (ok) or not under Key.
func (p *Predicate) Match(v any, ok bool) bool {
	if ok && v == nil {
		ok = false
	}
	switch p.Op {
	case OpExists:
		if b, isBool := p.want.(bool); isBool && !b {
			return !ok
		}
		return ok
	case OpNeq:
		return !ok || !equal(v, p.want)
	}
	if !ok {
		return false
	}
	switch p.Op {
	case OpEq:
		return equal(v, p.want)
	case OpIn:
		return slices.ContainsFunc(p.want.([]any), func(w any) bool { return equal(v, w) })
	case OpContains:
		return p.contains(v)
	case OpStartsWith:
		a, isStr := v.(string)
		return isStr && strings.HasPrefix(a, p.want.(string))
	}
	return p.order(v)
}

// contains matches a string containing the wanted text, or a list holding the wanted value.
func (p *Predicate) contains(v any) bool {
	switch a := v.(type) {
	case string:
		s, isStr := p.want.(string)
		if !isStr {
			s = ScalarString(p.want)
		}
		return strings.Contains(a, s)
	case []any:
		return slices.ContainsFunc(a, func(e any) bool { return equal(e, p.want) })
	}
	return false
}

// order applies the comparison operators (gt, gte, lt, lte).
func (p *Predicate) order(v any) bool {
	c, comparable := compare(v, p.want)
	if !comparable {
		return false
	}
	switch p.Op {
	case OpGt:
		return c > 0
	case OpGte:
		return c >= 0
	case OpLt:
		return c < 0
	case OpLte:
		return c <= 0
	}
	return false
}

// equal compares decoded JSON values; numbers compare numerically, also against numeric strings.
func equal(a, b any) bool {
	if fa, ok := ToNumber(a); ok {
		if fb, ok := ToNumber(b); ok {
			return fa == fb
		}
	}
	switch x := a.(type) {
	case string:
		y, ok := b.(string)
		return ok && x == y
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equal(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			if !equal(v, y[k]) {
				return false
			}
		}
		return true
	}
	return a == nil && b == nil
}

// compare orders numbers numerically, RFC 3339 dates in time, other strings lexically.
func compare(a, b any) (int, bool) {
	if _, isNum := b.(float64); isNum {
		fa, ok1 := ToNumber(a)
		fb, _ := ToNumber(b)
		if !ok1 {
			return 0, false
		}
		return cmpFloat(fa, fb), true
	}
	sb, ok := b.(string)
	if !ok {
		return 0, false
	}
	if fa, ok := a.(float64); ok {
		if fb, err := strconv.ParseFloat(sb, 64); err == nil {
			return cmpFloat(fa, fb), true
		}
		return 0, false
	}
	sa, ok := a.(string)
	if !ok {
		return 0, false
	}
	if ta, err := time.Parse(time.RFC3339Nano, sa); err == nil {
		if tb, err := time.Parse(time.RFC3339Nano, sb); err == nil {
			return ta.Compare(tb), true
		}
	}
	return strings.Compare(sa, sb), true
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// ToNumber reads a JSON number, or a string holding a finite number.
func ToNumber(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return 0, false
		}
		return f, true
	}
	return 0, false
}

// ScalarString renders a scalar for grouping (most frequent, unique lists); ok is false for
// null, objects and arrays.
func ScalarString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	}
	return ""
}

// Lookup finds key in a decoded object: the exact key first, then a dotted path.
func Lookup(obj map[string]any, key string) (any, bool) {
	if obj == nil {
		return nil, false
	}
	if v, ok := obj[key]; ok {
		return v, true
	}
	cur := any(obj)
	for _, part := range strings.Split(key, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// ValidationError is a bad definition: Field names the offending field (JSON path).
type ValidationError struct {
	Field   string
	Message string
}

func (e *ValidationError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

func fieldErr(field, msg string) error { return &ValidationError{Field: field, Message: msg} }
