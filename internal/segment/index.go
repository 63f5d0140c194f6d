package segment

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/serverless-cdp/cdp/internal/predict"
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
	recency       []*ComputedTrait

	specs        map[string]*aggSpec          // every accumulator, by signature
	specsByEvent map[string][]*aggSpec        // by evKey of their filter (name "*": any of the type)
	traitSpecs   map[string]*aggSpec          // by computed trait key
	condSpecs    map[*EventCondition]*aggSpec // by event condition of an audience

	features map[string]*features      // of the predictive traits, by key
	models   map[string]*predict.Model // published models, by trait id (SetModels)
}

// evKey indexes definitions by the type and name of the events they select.
func evKey(typ, name string) string { return typ + "\x00" + name }

// addSpec registers an accumulator (shared by definitions with the same signature).
func (c *Catalog) addSpec(s *aggSpec) *aggSpec {
	if have := c.specs[s.sig]; have != nil {
		return have
	}
	c.specs[s.sig] = s
	k := evKey(s.filter.EventType(), s.filter.Name)
	c.specsByEvent[k] = append(c.specsByEvent[k], s)
	return s
}

// NewCatalog validates the definitions together (unique keys, known references, no cycles) and
// indexes them. The definitions are used as given; they must not be modified afterwards.
func NewCatalog(traits []*ComputedTrait, audiences []*Audience) (*Catalog, error) {
	c := &Catalog{
		traitByKey: map[string]*ComputedTrait{}, audByID: map[string]*Audience{}, rank: map[string]int{},
		traitsByEvent: map[string][]*ComputedTrait{}, audByEvent: map[string][]*Audience{},
		audByTrait: map[string][]*Audience{}, audByComputed: map[string][]*Audience{},
		dependents: map[string][]*Audience{}, specs: map[string]*aggSpec{},
		specsByEvent: map[string][]*aggSpec{}, traitSpecs: map[string]*aggSpec{}, condSpecs: map[*EventCondition]*aggSpec{},
		features: map[string]*features{},
	}
	for _, t := range traits {
		if err := t.Validate(); err != nil {
			return nil, fmt.Errorf("computed trait %s: %w", t.Key, err)
		}
		if _, dup := c.traitByKey[t.Key]; dup {
			return nil, &ValidationError{Field: "key", Message: fmt.Sprintf("computed trait key %q is already used", t.Key)}
		}
		c.traitByKey[t.Key] = t
		k := evKey(t.Event.EventType(), t.Event.Name)
		c.traitsByEvent[k] = append(c.traitsByEvent[k], t)
		c.traitSpecs[t.Key] = c.addSpec(traitSpec(t))
		if t.Kind == KindRFMRecency {
			c.recency = append(c.recency, t)
		}
		if IsPredictive(t.Kind) {
			c.features[t.Key] = c.addFeatures(t)
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
	x.cat = c
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
			add(c.audByEvent, evKey(n.Event.EventType(), n.Event.Name))
			c.condSpecs[n.Event] = c.addSpec(condSpec(n.Event))
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

// affectedTraits are the computed traits new events with these keys (evKey, with the "*" key
// of each type) can change.
func (c *Catalog) affectedTraits(names map[string]bool) []*ComputedTrait {
	var out []*ComputedTrait
	for n := range names {
		out = append(out, c.traitsByEvent[n]...)
	}
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
// profile without a new event (zero: never): the first live bucket of each windowed
// accumulator the profile has, and the RFM recency thresholds from its last purchase.
func (c *Catalog) NextChange(st *State, now time.Time) time.Time {
	var next time.Time
	consider := func(t time.Time) {
		if t.After(now) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for sig, acc := range st.Aggs {
		if s := c.specs[sig]; s != nil && s.window > 0 {
			consider(acc.nextChange(s, now))
		}
	}
	for _, t := range c.recency {
		s := c.traitSpecs[t.Key]
		consider(recencyChange(t, st.Aggs[s.sig].at(s, now), now))
	}
	return next
}

// eventKeys are the index keys new events touch: their type and name, and "*" of their type.
func eventKeys(evs []Event) map[string]bool {
	keys := map[string]bool{}
	for i := range evs {
		t := evs[i].eventType()
		keys[evKey(t, evs[i].Name)] = true
		keys[evKey(t, "*")] = true
	}
	return keys
}
