package console

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/serverless-cdp/cdp/internal/segmentdef"
)

// The audience builder: a condition tree edited as a plain HTML form. Every node of the tree
// has a path ("c" is the root group, "c.0" its first child, "c.1.0" the first child of its
// second child) and its fields are form fields named <path>.<field>, so the server rebuilds
// the tree from any submission (a preview, a change of the tree, a save) and nothing lives in
// the browser but the form.

// Kinds of builder nodes (the admin API's condition fields, and group for and/or).
const (
	nodeGroup    = "group"
	nodeTrait    = "trait"
	nodeComputed = "computedTrait"
	nodeEvent    = "event"
	nodeAudience = "audience"
)

const (
	maxChildren   = 50 // per group
	maxGroupDepth = 3  // groups nest this deep below the root
)

// condNode is one node of the builder's tree.
type condNode struct {
	Path     string // form field prefix
	Label    string // "1", "2.1": shown, and names the node in error messages
	Depth    int    // 0 for the root group
	Kind     string
	Not      bool
	Op       string      // group: and|or; trait and computed trait: the predicate operator
	Children []*condNode // group
	Key      string      // trait, computed trait: the name
	Value    string      // trait, computed trait: the compared value, as typed
	// event
	EvType, EvName, CountOp, CountN, Within, WithinUnit string
	WhereKey, WhereOp, WhereValue                       string
	AudienceID                                          string // audience
	Error                                               string // the API's complaint about this node
	Focus                                               bool   // take the focus (it was just added)
	FocusAdd                                            bool   // focus the group's add select (a child was just removed)
	Opts                                                *builderOpts
}

// ID is the node's path as an HTML id (no dots, which selectors would have to escape).
func (n *condNode) ID() string { return strings.ReplaceAll(n.Path, ".", "-") }

// Nodes lists the tree, depth first.
func (n *condNode) Nodes() []*condNode {
	var out []*condNode
	n.walk(func(x *condNode) { out = append(out, x) })
	return out
}

// option is one <option> of a select.
type option struct{ Value, Label string }

// builderOpts is what the builder's selects offer.
type builderOpts struct {
	Traits    []option // computed traits, by key
	Audiences []option // other audiences, by id
	PredOps   []option
	CountOps  []option
	EvTypes   []option
	AddKinds  []option
}

func newBuilderOpts() *builderOpts {
	return &builderOpts{
		PredOps: []option{{"eq", "equals"}, {"neq", "does not equal"}, {"gt", ">"}, {"gte", "≥"}, {"lt", "<"},
			{"lte", "≤"}, {"contains", "contains"}, {"starts_with", "starts with"}, {"exists", "exists"},
			{"in", "is one of (a, b, …)"}},
		CountOps: []option{{"at_least", "at least"}, {"at_most", "at most"}, {"exactly", "exactly"}},
		EvTypes:  []option{{"track", "track event"}, {"page", "page view"}, {"screen", "screen view"}},
		AddKinds: []option{{nodeTrait, "Trait"}, {nodeComputed, "Computed trait"}, {nodeEvent, "Performed event"},
			{nodeAudience, "In audience"}, {nodeGroup, "Group (and/or)"}},
	}
}

// newNode is a fresh node of a kind, with useful defaults.
func newNode(kind string) *condNode {
	n := &condNode{Kind: kind}
	switch kind {
	case nodeGroup:
		n.Op = "and"
	case nodeTrait, nodeComputed:
		n.Op = "eq"
	case nodeEvent:
		n.EvType, n.CountOp, n.CountN, n.WithinUnit, n.WhereOp = "track", "at_least", "1", "days", "eq"
	}
	return n
}

// defaultTree is a new audience's tree: all of one trait condition.
func defaultTree() *condNode {
	root := newNode(nodeGroup)
	root.Children = []*condNode{newNode(nodeTrait)}
	return root
}

// number gives every node its path, label and depth (after the tree changed).
func (n *condNode) number(path, label string, depth int, opts *builderOpts) {
	n.Path, n.Label, n.Depth, n.Opts = path, label, depth, opts
	for i, c := range n.Children {
		l := strconv.Itoa(i + 1)
		if label != "" {
			l = label + "." + l
		}
		c.number(fmt.Sprintf("%s.%d", path, i), l, depth+1, opts)
	}
}

// CanAddGroup: a group below this one would still be within the nesting the builder shows.
func (n *condNode) CanAddGroup() bool { return n.Depth < maxGroupDepth }

// Title names the node for people.
func (n *condNode) Title() string {
	if n.Label == "" {
		return "All conditions"
	}
	return "Condition " + n.Label
}

// parseTree reads the tree from a submitted form (the root is "c").
func parseTree(f url.Values) *condNode {
	root := parseNode(f, "c", 0)
	root.Kind = nodeGroup
	return root
}

func parseNode(f url.Values, path string, depth int) *condNode {
	g := func(field string) string { return strings.TrimSpace(f.Get(path + "." + field)) }
	n := &condNode{Kind: g("kind"), Not: g("not") != "", Op: g("op"), Key: g("key"), Value: g("value"),
		EvType: g("evtype"), EvName: g("evname"), CountOp: g("countop"), CountN: g("countn"),
		Within: g("within"), WithinUnit: g("withinunit"), WhereKey: g("wherekey"), WhereOp: g("whereop"),
		WhereValue: g("wherevalue"), AudienceID: g("audience")}
	if n.Kind != nodeGroup || depth > maxGroupDepth+1 {
		return n
	}
	for i := 0; i < maxChildren; i++ {
		p := fmt.Sprintf("%s.%d", path, i)
		if !f.Has(p + ".kind") {
			break
		}
		n.Children = append(n.Children, parseNode(f, p, depth+1))
	}
	return n
}

// find returns the node at path, and its parent.
func (n *condNode) find(path string) (node, parent *condNode) {
	if n.Path == path {
		return n, nil
	}
	for _, c := range n.Children {
		if found, p := c.find(path); found != nil {
			if p == nil {
				p = n
			}
			return found, p
		}
	}
	return nil, nil
}

// apply performs a builder action on the tree: "add:<group path>" adds a node of the kind the
// group's "add" select names, "remove:<path>" removes a node. It reports whether it did.
func (n *condNode) apply(action string, f url.Values) bool {
	verb, path, _ := strings.Cut(action, ":")
	node, parent := n.find(path)
	if node == nil {
		return false
	}
	switch verb {
	case "add":
		kind := f.Get(path + ".add")
		if node.Kind != nodeGroup || len(node.Children) >= maxChildren || !validAddKind(kind) ||
			kind == nodeGroup && !node.CanAddGroup() {
			return false
		}
		added := newNode(kind)
		added.Focus = true
		node.Children = append(node.Children, added)
		return true
	case "remove":
		if parent == nil {
			return false
		}
		for i, c := range parent.Children {
			if c == node {
				parent.Children = append(parent.Children[:i], parent.Children[i+1:]...)
				parent.FocusAdd = true
				return true
			}
		}
	}
	return false
}

func validAddKind(k string) bool {
	switch k {
	case nodeTrait, nodeComputed, nodeEvent, nodeAudience, nodeGroup:
		return true
	}
	return false
}

// condition turns the tree into the admin API's condition. at is the node's place in the
// API's definition ("condition", "condition.and[0]", …): paths records which node each place
// is, so an API error about a field can be shown at its node. A group of one condition is
// that condition. Input the console can already tell is wrong is an error naming the node.
func (n *condNode) condition(at string, paths map[string]*condNode) (segmentdef.Condition, error) {
	paths[at] = n
	inner := at
	if n.Not {
		inner = at + ".not"
		paths[inner] = n
	}
	c, err := n.positive(inner, paths)
	if err != nil || !n.Not {
		return c, err
	}
	return segmentdef.Condition{Not: &c}, nil
}

// positive is the node's condition without its negation.
func (n *condNode) positive(at string, paths map[string]*condNode) (segmentdef.Condition, error) {
	switch n.Kind {
	case nodeGroup:
		return n.group(at, paths)
	case nodeTrait:
		return segmentdef.Condition{Trait: predicate(n.Key, n.Op, n.Value)}, nil
	case nodeComputed:
		return segmentdef.Condition{ComputedTrait: predicate(n.Key, n.Op, n.Value)}, nil
	case nodeEvent:
		e, err := n.event()
		if err != nil {
			return segmentdef.Condition{}, &nodeError{node: n, msg: err.Error()}
		}
		return segmentdef.Condition{Event: e}, nil
	case nodeAudience:
		return segmentdef.Condition{Audience: &segmentdef.AudienceRef{ID: n.AudienceID}}, nil
	}
	return segmentdef.Condition{}, &nodeError{node: n, msg: fmt.Sprintf("unknown kind of condition %q", n.Kind)}
}

func (n *condNode) group(at string, paths map[string]*condNode) (segmentdef.Condition, error) {
	switch len(n.Children) {
	case 0:
		return segmentdef.Condition{}, &nodeError{node: n, msg: "add at least one condition"}
	case 1:
		return n.Children[0].condition(at, paths)
	}
	op := "and"
	if n.Op == "or" {
		op = "or"
	}
	list := make([]segmentdef.Condition, 0, len(n.Children))
	for i, ch := range n.Children {
		c, err := ch.condition(fmt.Sprintf("%s.%s[%d]", at, op, i), paths)
		if err != nil {
			return segmentdef.Condition{}, err
		}
		list = append(list, c)
	}
	if op == "or" {
		return segmentdef.Condition{Or: list}, nil
	}
	return segmentdef.Condition{And: list}, nil
}

// event is an event node's condition: "performed <name> [where <key op value>] <count> times
// [within the last N days|hours]".
func (n *condNode) event() (*segmentdef.EventCondition, error) {
	e := &segmentdef.EventCondition{EventFilter: segmentdef.EventFilter{Type: n.EvType, Name: n.EvName}}
	if n.EvType == "track" {
		e.Type = "" // the default: keep the definition short
	}
	if n.WhereKey != "" {
		e.Where = []segmentdef.Predicate{*predicate(n.WhereKey, n.WhereOp, n.WhereValue)}
	}
	if n.CountN != "" {
		c, err := strconv.Atoi(n.CountN)
		if err != nil || c < 0 {
			return nil, fmt.Errorf("the count must be a whole number, 0 or more (got %q)", n.CountN)
		}
		e.Count = &segmentdef.Count{Op: n.CountOp, N: c}
	}
	if n.Within != "" {
		w, err := strconv.Atoi(n.Within)
		if err != nil || w < 0 {
			return nil, fmt.Errorf("the window must be a whole number of %s, 0 or more (got %q)", n.WithinUnit, n.Within)
		}
		if n.WithinUnit == "hours" {
			e.Within.Hours = w
		} else {
			e.Within.Days = w
		}
	}
	return e, nil
}

// predicate builds a predicate from what was typed; see typedValue.
func predicate(key, op, text string) *segmentdef.Predicate {
	return &segmentdef.Predicate{Key: key, Op: op, Value: typedValue(op, text)}
}

// typedValue reads a typed value as JSON: a number, true or false as such, anything else as
// text ("quoted" keeps text that looks like a number); "in" takes a comma-separated list;
// "exists" takes nothing, true or false. Empty is no value.
func typedValue(op, text string) json.RawMessage {
	text = strings.TrimSpace(text)
	if text == "" {
		return nil
	}
	if op == "in" {
		parts := strings.Split(text, ",")
		list := make([]json.RawMessage, 0, len(parts))
		for _, p := range parts {
			if v := scalar(strings.TrimSpace(p)); v != nil {
				list = append(list, v)
			}
		}
		b, _ := json.Marshal(list)
		return b
	}
	return scalar(text)
}

func scalar(text string) json.RawMessage {
	if text == "" {
		return nil
	}
	if text == "true" || text == "false" {
		return json.RawMessage(text)
	}
	if f, err := strconv.ParseFloat(text, 64); err == nil && !strings.ContainsAny(text, "xXnN_") {
		b, _ := json.Marshal(f)
		return b
	}
	var s string
	if strings.HasPrefix(text, `"`) && json.Unmarshal([]byte(text), &s) == nil {
		b, _ := json.Marshal(s)
		return b
	}
	b, _ := json.Marshal(text)
	return b
}

// valueText is the reverse of typedValue: how a stored value is shown in the builder.
func valueText(raw json.RawMessage) string {
	var v any
	if len(raw) == 0 || json.Unmarshal(raw, &v) != nil || v == nil {
		return ""
	}
	if list, ok := v.([]any); ok {
		parts := make([]string, 0, len(list))
		for _, x := range list {
			parts = append(parts, scalarText(x))
		}
		return strings.Join(parts, ", ")
	}
	return scalarText(v)
}

func scalarText(v any) string {
	s, isStr := v.(string)
	if !isStr {
		b, _ := json.Marshal(v)
		return string(b)
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil || s == "true" || s == "false" || strings.HasPrefix(s, `"`) {
		b, _ := json.Marshal(s) // keep it text
		return string(b)
	}
	return s
}

// nodeError is input of one node the console rejects before asking the API.
type nodeError struct {
	node *condNode
	msg  string
}

func (e *nodeError) Error() string { return e.node.Title() + ": " + e.msg }

// treeOf is the builder tree of a stored condition; conditions the builder cannot show (an
// absolute period, several property filters on one event, groups nested too deeply) are an
// error saying so.
func treeOf(c *segmentdef.Condition) (*condNode, error) {
	n, err := nodeOf(c, 0)
	if err != nil {
		return nil, err
	}
	if n.Kind != nodeGroup || n.Not {
		root := newNode(nodeGroup)
		root.Children = []*condNode{n}
		n = root
	}
	return n, nil
}

func nodeOf(c *segmentdef.Condition, depth int) (*condNode, error) {
	switch {
	case c.Not != nil:
		n, err := nodeOf(c.Not, depth)
		if err == nil {
			n.Not = !n.Not
		}
		return n, err
	case c.And != nil || c.Or != nil:
		return groupOf(c, depth)
	case c.Trait != nil:
		return &condNode{Kind: nodeTrait, Key: c.Trait.Key, Op: c.Trait.Op, Value: valueText(c.Trait.Value)}, nil
	case c.ComputedTrait != nil:
		p := c.ComputedTrait
		return &condNode{Kind: nodeComputed, Key: p.Key, Op: p.Op, Value: valueText(p.Value)}, nil
	case c.Event != nil:
		return eventNodeOf(c.Event)
	case c.Audience != nil:
		return &condNode{Kind: nodeAudience, AudienceID: c.Audience.ID}, nil
	}
	return nil, fmt.Errorf("an empty condition")
}

func groupOf(c *segmentdef.Condition, depth int) (*condNode, error) {
	if depth > maxGroupDepth {
		return nil, fmt.Errorf("groups nested more than %d deep", maxGroupDepth)
	}
	n, list := newNode(nodeGroup), c.And
	if c.Or != nil {
		n.Op, list = "or", c.Or
	}
	for i := range list {
		ch, err := nodeOf(&list[i], depth+1)
		if err != nil {
			return nil, err
		}
		n.Children = append(n.Children, ch)
	}
	return n, nil
}

func eventNodeOf(e *segmentdef.EventCondition) (*condNode, error) {
	if e.Between != nil {
		return nil, fmt.Errorf("an event condition between two dates")
	}
	if len(e.Where) > 1 {
		return nil, fmt.Errorf("an event condition with several property filters")
	}
	n := newNode(nodeEvent)
	n.EvType, n.EvName, n.CountN = e.EventType(), e.Name, ""
	if e.Count != nil {
		n.CountOp, n.CountN = e.Count.Op, strconv.Itoa(e.Count.N)
	}
	if len(e.Where) == 1 {
		n.WhereKey, n.WhereOp, n.WhereValue = e.Where[0].Key, e.Where[0].Op, valueText(e.Where[0].Value)
	}
	switch {
	case e.Within.Hours != 0 && e.Within.Days != 0:
		n.Within, n.WithinUnit = strconv.Itoa(e.Within.Days*24+e.Within.Hours), "hours"
	case e.Within.Hours != 0:
		n.Within, n.WithinUnit = strconv.Itoa(e.Within.Hours), "hours"
	case e.Within.Days != 0:
		n.Within = strconv.Itoa(e.Within.Days)
	}
	return n, nil
}

// placeError finds the node an API validation message is about ("condition.and[1].event.name:
// is required") and sets its Error; it returns the message with the node's title for people.
func placeError(msg string, paths map[string]*condNode) string {
	field, rest, ok := strings.Cut(msg, ": ")
	if !ok || !strings.HasPrefix(field, "condition") {
		return msg
	}
	best := ""
	for p := range paths {
		if (field == p || strings.HasPrefix(field, p+".") || strings.HasPrefix(field, p+"[")) && len(p) > len(best) {
			best = p
		}
	}
	n := paths[best]
	if n == nil {
		return msg
	}
	detail := strings.TrimPrefix(strings.TrimPrefix(field, best), ".")
	if _, after, ok := strings.Cut(detail, "."); ok && n.Kind != nodeGroup {
		detail = after // "trait.key" is the node's "key"
	}
	if detail != "" {
		rest = detail + ": " + rest
	}
	n.Error = rest
	return n.Title() + ": " + rest
}
