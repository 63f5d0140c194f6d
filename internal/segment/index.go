package segment

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Catalog is a validated, indexed set of definitions: it answers which computed traits and
// audiences an input can affect, so evaluation cost follows what changed, not how many
// definitions exist.
type Catalog struct {
	Traits    []*ComputedTrait
	Audiences []*Audience // dependencies first (an audience after the audiences it references)

	traitByKey    map[string]*ComputedTrait
	audByID       map[string]*Audience
	rank          map[string]int
	traitsByEvent map[string][]*ComputedTrait
	audByEvent    map[string][]*Audience
	audByTrait    map[string][]*Audience
	audByComputed map[string][]*Audience
	dependents    map[string][]*Audience
	emptyMatch    []*Audience
	windows       map[string][]windowSpec // by event name ("*": any)
	recency       []*ComputedTrait
}

type windowSpec struct {
	filter *EventFilter
	d      time.Duration
}

// NewCatalog validates the definitions together (unique keys, known references, no cycles) and
// indexes them. The definitions are used as given; they must not be modified afterwards.
func NewCatalog(traits []*ComputedTrait, audiences []*Audience) (*Catalog, error) {
	c := &Catalog{
		traitByKey: map[string]*ComputedTrait{}, audByID: map[string]*Audience{}, rank: map[string]int{},
		traitsByEvent: map[string][]*ComputedTrait{}, audByEvent: map[string][]*Audience{},
		audByTrait: map[string][]*Audience{}, audByComputed: map[string][]*Audience{},
		dependents: map[string][]*Audience{}, windows: map[string][]windowSpec{},
	}
	for _, t := range traits {
		if err := t.Validate(); err != nil {
			return nil, fmt.Errorf("computed trait %s: %w", t.Key, err)
		}
		if _, dup := c.traitByKey[t.Key]; dup {
			return nil, &ValidationError{Field: "key", Message: fmt.Sprintf("computed trait key %q is already used", t.Key)}
		}
		c.traitByKey[t.Key] = t
		c.traitsByEvent[t.Event.Name] = append(c.traitsByEvent[t.Event.Name], t)
		if t.Kind == KindRFMRecency {
			c.recency = append(c.recency, t)
		} else if d := t.Window.Duration(); d > 0 {
			c.windows[t.Event.Name] = append(c.windows[t.Event.Name], windowSpec{&t.Event, d})
		}
	}
	sort.Slice(traits, func(i, j int) bool { return traits[i].Key < traits[j].Key })
	c.Traits = traits
	keys := map[string]bool{}
	for _, a := range audiences {
		if err := a.Validate(); err != nil {
			return nil, fmt.Errorf("audience %s: %w", a.Key, err)
		}
		if keys[a.Key] {
			return nil, &ValidationError{Field: "key", Message: fmt.Sprintf("audience key %q is already used", a.Key)}
		}
		keys[a.Key] = true
		c.audByID[a.ID] = a
	}
	for _, a := range audiences {
		if err := c.indexAudience(a); err != nil {
			return nil, err
		}
	}
	order, err := c.topo(audiences)
	if err != nil {
		return nil, err
	}
	c.Audiences = order
	for i, a := range order {
		c.rank[a.ID] = i
	}
	// Audiences a profile with no events and no traits matches: a new profile must be checked
	// against them even though nothing they reference changed.
	empty := NewState("")
	x := newEvalCtx(empty, time.Now())
	for _, a := range order {
		if evalCondition(&a.Condition, x) {
			empty.Members[a.ID] = &Membership{In: true}
			c.emptyMatch = append(c.emptyMatch, a)
		}
	}
	return c, nil
}

func (c *Catalog) indexAudience(a *Audience) error {
	var err error
	seen := map[string]bool{}
	add := func(m map[string][]*Audience, k string) {
		if !seen[fmt.Sprintf("%p/%s", m, k)] {
			seen[fmt.Sprintf("%p/%s", m, k)] = true
			m[k] = append(m[k], a)
		}
	}
	a.Condition.Walk(func(n *Condition) {
		switch {
		case n.Trait != nil:
			top, _, _ := strings.Cut(n.Trait.Key, ".")
			add(c.audByTrait, top)
			add(c.audByTrait, n.Trait.Key)
		case n.ComputedTrait != nil:
			top, _, _ := strings.Cut(n.ComputedTrait.Key, ".")
			if c.traitByKey[top] == nil && c.traitByKey[n.ComputedTrait.Key] == nil && err == nil {
				err = &ValidationError{Field: "condition", Message: fmt.Sprintf("unknown computed trait %q", n.ComputedTrait.Key)}
			}
			add(c.audByComputed, top)
			add(c.audByComputed, n.ComputedTrait.Key)
		case n.Event != nil:
			add(c.audByEvent, n.Event.Name)
			if d := n.Event.Within.Duration(); d > 0 && n.Event.Between == nil {
				c.windows[n.Event.Name] = append(c.windows[n.Event.Name], windowSpec{&n.Event.EventFilter, d})
			}
		case n.Audience != nil:
			if c.audByID[n.Audience.ID] == nil && err == nil {
				err = &ValidationError{Field: "condition", Message: fmt.Sprintf("unknown audience %q", n.Audience.ID)}
			}
			add(c.dependents, n.Audience.ID)
		}
	})
	if err != nil {
		return fmt.Errorf("audience %s: %w", a.Key, err)
	}
	return nil
}

// topo orders audiences so that referenced audiences come first, and rejects cycles.
func (c *Catalog) topo(auds []*Audience) ([]*Audience, error) {
	sorted := append([]*Audience(nil), auds...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Key < sorted[j].Key })
	const (
		visiting = 1
		done     = 2
	)
	mark := map[string]int{}
	var out []*Audience
	var visit func(a *Audience) error
	visit = func(a *Audience) error {
		switch mark[a.ID] {
		case done:
			return nil
		case visiting:
			return &ValidationError{Field: "condition", Message: fmt.Sprintf("audience %q is part of a cycle of audience references", a.Key)}
		}
		mark[a.ID] = visiting
		var err error
		a.Condition.Walk(func(n *Condition) {
			if n.Audience != nil && err == nil {
				if dep := c.audByID[n.Audience.ID]; dep != nil {
					err = visit(dep)
				}
			}
		})
		if err != nil {
			return err
		}
		mark[a.ID] = done
		out = append(out, a)
		return nil
	}
	for _, a := range sorted {
		if err := visit(a); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Audience returns a definition by id.
func (c *Catalog) Audience(id string) *Audience { return c.audByID[id] }

// Trait returns a computed trait by key.
func (c *Catalog) Trait(key string) *ComputedTrait { return c.traitByKey[key] }

// affectedTraits are the computed traits new events with these names can change.
func (c *Catalog) affectedTraits(names map[string]bool) []*ComputedTrait {
	if len(names) == 0 {
		return nil
	}
	var out []*ComputedTrait
	for n := range names {
		out = append(out, c.traitsByEvent[n]...)
	}
	out = append(out, c.traitsByEvent["*"]...)
	return out
}

// affectedAudiences are the audiences that reference any of the inputs, plus everything that
// references those (transitively), in evaluation order.
func (c *Catalog) affectedAudiences(events map[string]bool, traits, computed []string, extra []*Audience) []*Audience {
	set := map[string]*Audience{}
	var queue []*Audience
	add := func(list []*Audience) {
		for _, a := range list {
			if set[a.ID] == nil {
				set[a.ID] = a
				queue = append(queue, a)
			}
		}
	}
	for n := range events {
		add(c.audByEvent[n])
	}
	if len(events) > 0 {
		add(c.audByEvent["*"])
	}
	for _, k := range traits {
		add(c.audByTrait[k])
	}
	for _, k := range computed {
		add(c.audByComputed[k])
	}
	add(extra)
	for i := 0; i < len(queue); i++ {
		add(c.dependents[queue[i].ID])
	}
	out := make([]*Audience, 0, len(set))
	for _, a := range set {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return c.rank[out[i].ID] < c.rank[out[j].ID] })
	return out
}

// NextChange is the earliest time after now at which any definition can change for this
// profile without a new event (zero: never). Only definitions about event names the profile has
// performed cost anything.
func (c *Catalog) NextChange(st *State, now time.Time) time.Time {
	var next time.Time
	consider := func(t time.Time) {
		if t.After(now) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	any := c.windows["*"]
	for i := range st.Events {
		e := &st.Events[i]
		specs := c.windows[e.Name]
		if len(specs) == 0 && len(any) == 0 {
			continue
		}
		for _, list := range [][]windowSpec{specs, any} {
			for _, s := range list {
				if inWindow(e.T, now, s.d) && matches(s.filter, e) {
					consider(e.T.Add(s.d))
				}
			}
		}
	}
	for _, t := range c.recency {
		consider(nextChange(t, st.Events, now))
	}
	return next
}
