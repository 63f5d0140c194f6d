// Package config is configuration as code: one YAML (or JSON) file declares the CDP's resources
// and Apply makes the running CDP match it through the admin API, idempotently, printing a diff.
//
//	sources:
//	  - name: web
//	identityRules:            # the whole rule set (omit the key to leave the rules alone)
//	  types:
//	    - {type: user_id, priority: 1, limit: 1}
//	    - {type: email, priority: 2, limit: 3}
//	computedTraits:
//	  - key: orders_90d
//	    name: Orders (90 days)
//	    kind: event_count
//	    event: {name: Order Completed}
//	    window: {days: 90}
//	  - key: churn_risk                # a predictive kind: trained weekly, or POST …/train
//	    name: Churn risk
//	    kind: churn_likelihood
//	    prediction: {horizonDays: 30}
//	audiences:
//	  - key: repeat_buyers
//	    name: Repeat buyers
//	    condition: {computedTrait: {key: orders_90d, op: gte, value: 2}}
//	destinations:
//	  - name: crm
//	    url: https://crm.example.com/hooks/cdp
//	    subscriptions: {audiences: [repeat_buyers]}
//
// Sources and destinations are matched by name, computed traits and audiences by key. Audiences
// refer to other audiences and to computed traits by key. Secrets (write keys, signing secrets)
// are never in the file: those of created resources are printed once by apply.
//
// Apply never deletes what the file does not mention unless pruning is asked for, and then
// only within the kinds the file declares (`audiences: []` empties audiences; a file without
// an audiences key leaves them alone). Identity rules are never pruned. A file that does not parse or validate is refused, with every
// problem and its line listed, before anything is read or changed.
//
// Each kind of resource lives in its own file (sources.go, identity.go, segments.go,
// destinations.go): its part of File, a validate function and a plan function that compares
// the file with the admin API and returns the changes. Adding a kind is a field on File, a
// decoder in sections and an entry in kinds.
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/serverless-cdp/cdp/internal/idrules"
)

// File is a configuration file.
type File struct {
	Sources []Source `json:"sources,omitempty"`
	// IdentityRules is the whole identity rule set; nil leaves the rules in force alone.
	IdentityRules  *idrules.Rules  `json:"identityRules,omitempty"`
	ComputedTraits []ComputedTrait `json:"computedTraits,omitempty"`
	Audiences      []Audience      `json:"audiences,omitempty"`
	Destinations   []Destination   `json:"destinations,omitempty"`
	lines          map[string]int  // path ("audiences[2].condition") → line, for messages
}

// kind is one kind of resource the file can declare. Kinds are planned and applied in this
// order (later kinds may refer to earlier ones) and pruned in reverse.
type kind struct {
	name     string
	validate func(f *File) []error
	plan     func(ctx planContext, f *File) ([]Change, error)
}

var kinds = []kind{
	{name: "source", validate: validateSources, plan: planSources},
	{name: "identity rule", validate: validateIdentityRules, plan: planIdentityRules},
	{name: "computed trait", validate: validateTraits, plan: planTraits},
	{name: "audience", validate: validateAudiences, plan: planAudiences},
	{name: "destination", validate: validateDestinations, plan: planDestinations},
}

// section decodes one top-level key of the file.
type section struct {
	list   bool
	decode func(f *File, i int, raw []byte) error // i is the item index (0 for an object)
	grow   func(f *File, n int)
}

func listSection[T any](field func(f *File) *[]T) section {
	return section{
		list: true,
		grow: func(f *File, n int) { *field(f) = make([]T, n) },
		decode: func(f *File, i int, raw []byte) error {
			return strictJSON(raw, &(*field(f))[i])
		},
	}
}

var sections = map[string]section{
	"sources":        listSection(func(f *File) *[]Source { return &f.Sources }),
	"computedTraits": listSection(func(f *File) *[]ComputedTrait { return &f.ComputedTraits }),
	"audiences":      listSection(func(f *File) *[]Audience { return &f.Audiences }),
	"destinations":   listSection(func(f *File) *[]Destination { return &f.Destinations }),
	"identityRules": {decode: func(f *File, _ int, raw []byte) error {
		f.IdentityRules = &idrules.Rules{}
		return strictJSON(raw, f.IdentityRules)
	}},
}

// forbidden are keys refused with a clear message rather than as unknown fields.
var forbidden = map[string]map[string]string{
	"sources":      {"writeKey": "write keys are never in the file: a created source's key is printed once by apply (rotate it with the admin API)"},
	"destinations": {"secret": "signing secrets are never in the file: a created destination's secret is generated and printed once by apply (rotate it with the admin API)"},
}

func strictJSON(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), "json: "))
	}
	return nil
}

// Load reads and validates a configuration file.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	f, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// Parse decodes and validates a configuration, YAML or JSON (a document starting with '{').
// Unknown fields, duplicate keys, several documents and invalid values are errors; all of them
// are reported at once, with line numbers.
func Parse(data []byte) (*File, error) {
	top, lines, err := decodeDocument(data)
	if err != nil {
		return nil, err
	}
	m, ok := top.(map[string]any)
	if !ok {
		return nil, errors.New("invalid config: the file must be a mapping of resource kinds (sources, identityRules, computedTraits, audiences, destinations)")
	}
	f := &File{lines: lines}
	var p parser
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p.section(f, k, m[k])
	}
	// Validate what did decode, so every problem of the file is reported at once.
	for _, err := range f.problems() {
		if !p.skipped(err) {
			p.errs = append(p.errs, err)
		}
	}
	if len(p.errs) > 0 {
		return nil, invalid(p.errs)
	}
	return f, nil
}

// decodeDocument decodes a JSON or YAML document into plain values, with the line of each path
// when known.
func decodeDocument(data []byte) (any, map[string]int, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, nil, errors.New("config is empty")
	}
	var (
		top  any
		root yaml.Node
	)
	if trimmed[0] == '{' {
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		dec.UseNumber()
		if err := dec.Decode(&top); err != nil {
			return nil, nil, fmt.Errorf("invalid config: %w", err)
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			return nil, nil, errors.New("invalid config: data after the JSON object")
		}
		if yaml.Unmarshal(trimmed, &root) == nil { // positions only; tabs make it fail
			return top, positions(&root), nil
		}
		return top, nil, nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		return nil, nil, fmt.Errorf("invalid config: %w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, nil, errors.New("invalid config: more than one YAML document")
	}
	if err := root.Decode(&top); err != nil {
		return nil, nil, fmt.Errorf("invalid config: %w", err)
	}
	return top, positions(&root), nil
}

// parser collects the problems of a file's sections.
type parser struct {
	errs   []error
	failed []string // paths that did not decode: their validation is skipped
}

// section decodes one top-level key.
func (p *parser) section(f *File, k string, v any) {
	sec, ok := sections[k]
	if !ok {
		p.errs = append(p.errs, f.errorf(k, "unknown field %q (want sources, identityRules, computedTraits, audiences or destinations)", k))
		return
	}
	if !sec.list {
		if _, ok := v.(map[string]any); !ok {
			p.errs = append(p.errs, f.errorf(k, "must be a mapping"))
			return
		}
		if err := decodeItem(f, sec, 0, v); err != nil {
			p.errs = append(p.errs, f.errorf(f.unknownFieldPath(k, err), "%v", err))
			p.failed = append(p.failed, k)
		}
		return
	}
	if v == nil {
		return
	}
	items, ok := v.([]any)
	if !ok {
		p.errs = append(p.errs, f.errorf(k, "must be a list"))
		return
	}
	sec.grow(f, len(items))
	for i, it := range items {
		p.item(f, sec, k, i, it)
	}
}

// item decodes the i-th entry of list section k.
func (p *parser) item(f *File, sec section, k string, i int, it any) {
	path := fmt.Sprintf("%s[%d]", k, i)
	p.failed = append(p.failed, path)
	obj, ok := it.(map[string]any)
	if !ok {
		p.errs = append(p.errs, f.errorf(path, "must be a mapping"))
		return
	}
	bad := false
	for key, msg := range forbidden[k] {
		if _, has := obj[key]; has {
			p.errs = append(p.errs, f.errorf(path+"."+key, "%s", msg))
			bad = true
		}
	}
	if bad {
		return
	}
	if err := decodeItem(f, sec, i, it); err != nil {
		p.errs = append(p.errs, f.errorf(f.unknownFieldPath(path, err), "%v", err))
		return
	}
	p.failed = p.failed[:len(p.failed)-1]
}

// skipped says whether a validation problem is about a path that did not decode (already
// reported), or an order over audiences some of which did not decode.
func (p *parser) skipped(err error) bool {
	var fe *FieldError
	if !errors.As(err, &fe) {
		return false
	}
	if slices.ContainsFunc(p.failed, func(q string) bool {
		return fe.Path == q || strings.HasPrefix(fe.Path, q+".") || strings.HasPrefix(fe.Path, q+"[")
	}) {
		return true
	}
	return len(p.failed) > 0 && fe.Path == "audiences"
}

func decodeItem(f *File, sec section, i int, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("unsupported value (mapping keys must be strings, numbers finite): %v", err)
	}
	return sec.decode(f, i, raw)
}

var unknownFieldRE = regexp.MustCompile(`^unknown field "(.+)"$`)

// unknownFieldPath points an unknown-field error of the item at path at the field itself,
// when the file says where it is.
func (f *File) unknownFieldPath(path string, err error) string {
	m := unknownFieldRE.FindStringSubmatch(err.Error())
	if m == nil {
		return path
	}
	best, bestLine := path, 0
	for p, l := range f.lines {
		if strings.HasPrefix(p, path) && strings.HasSuffix(p, "."+m[1]) && (bestLine == 0 || l < bestLine) {
			best, bestLine = p, l
		}
	}
	return best
}

// positions maps every path of the document to its line.
func positions(root *yaml.Node) map[string]int {
	out := map[string]int{}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				p := n.Content[i].Value
				if path != "" {
					p = path + "." + p
				}
				out[p] = n.Content[i].Line
				walk(n.Content[i+1], p)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := fmt.Sprintf("%s[%d]", path, i)
				out[p] = c.Line
				walk(c, p)
			}
		}
	}
	walk(root, "")
	return out
}

// line is the line of path, or of its nearest ancestor the file has (0: unknown).
func (f *File) line(path string) int {
	for path != "" {
		if l, ok := f.lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}

// FieldError is one problem in a file: where (a path like audiences[1].condition.and[0] and,
// when the file was parsed, its line) and what.
type FieldError struct {
	Line    int
	Path    string
	Message string
}

func (e *FieldError) Error() string {
	if e.Line > 0 {
		return "line " + strconv.Itoa(e.Line) + ": " + e.Path + ": " + e.Message
	}
	return e.Path + ": " + e.Message
}

func (f *File) errorf(path, format string, args ...any) error {
	return &FieldError{Line: f.line(path), Path: path, Message: fmt.Sprintf(format, args...)}
}

// Validate checks every resource the file declares and reports all problems at once, in the
// order of the file.
func (f *File) Validate() error {
	if errs := f.problems(); len(errs) > 0 {
		return invalid(errs)
	}
	return nil
}

func (f *File) problems() []error {
	var errs []error
	for _, k := range kinds {
		errs = append(errs, k.validate(f)...)
	}
	return errs
}

// invalid joins problems, sorted by line (those without one keep their place at the end).
func invalid(errs []error) error {
	lineOf := func(err error) int {
		var fe *FieldError
		if errors.As(err, &fe) && fe.Line > 0 {
			return fe.Line
		}
		return math.MaxInt
	}
	sort.SliceStable(errs, func(i, j int) bool { return lineOf(errs[i]) < lineOf(errs[j]) })
	return fmt.Errorf("invalid config:\n%w", errors.Join(errs...))
}
