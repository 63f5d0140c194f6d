package config

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strings"

	"github.com/serverless-cdp/cdp/internal/apitypes"
	"github.com/serverless-cdp/cdp/internal/segmentdef"
)

// ComputedTrait declares a computed trait, matched by key.
type ComputedTrait struct {
	Key         string                 `json:"key"`
	Name        string                 `json:"name"`
	Description string                 `json:"description,omitempty"`
	Kind        string                 `json:"kind"`
	Event       segmentdef.EventFilter `json:"event"`
	Property    string                 `json:"property,omitempty"`
	Window      segmentdef.Window      `json:"window,omitzero"`
	Thresholds  []float64              `json:"thresholds,omitempty"`
	// Prediction configures the predictive kinds (purchase_likelihood, churn_likelihood,
	// predicted_ltv, return_likelihood, next_best_product): horizonDays, k, ….
	Prediction *segmentdef.Prediction `json:"prediction,omitempty"`
}

// Audience declares an audience, matched by key. Its condition refers to computed traits and
// other audiences by key ({"audience": {"key": "vip"}}).
type Audience struct {
	Key         string               `json:"key"`
	Name        string               `json:"name"`
	Description string               `json:"description,omitempty"`
	Condition   segmentdef.Condition `json:"condition"`
}

func (t ComputedTrait) definition() segmentdef.ComputedTrait {
	d := segmentdef.ComputedTrait{Key: t.Key, Name: t.Name, Description: t.Description, Kind: t.Kind,
		Event: t.Event, Property: t.Property, Window: t.Window, Thresholds: t.Thresholds}
	if t.Prediction != nil { // a copy: validation fills in defaults
		raw, _ := json.Marshal(t.Prediction)
		d.Prediction = &segmentdef.Prediction{}
		_ = json.Unmarshal(raw, d.Prediction)
	}
	return d
}

// normalized is the trait as the admin API stores it (defaults filled in), or the validation error.
func (t ComputedTrait) normalized() (segmentdef.ComputedTrait, error) {
	d := t.definition()
	d.Event.Where = append([]segmentdef.Predicate(nil), d.Event.Where...)
	err := d.Validate()
	return d, err
}

func cloneCondition(c segmentdef.Condition) segmentdef.Condition {
	raw, _ := json.Marshal(c)
	var out segmentdef.Condition
	_ = json.Unmarshal(raw, &out)
	return out
}

// refs returns the audience keys and computed trait keys an audience refers to.
func (a Audience) refs() (audiences, traits []string) {
	c := a.Condition
	c.Walk(func(n *segmentdef.Condition) {
		if n.Audience != nil && n.Audience.Key != "" {
			audiences = append(audiences, n.Audience.Key)
		}
		if n.ComputedTrait != nil {
			top, _, _ := strings.Cut(n.ComputedTrait.Key, ".")
			traits = append(traits, top)
		}
	})
	return audiences, traits
}

func validateTraits(f *File) []error {
	var errs []error
	seen := map[string]int{}
	for i, t := range f.ComputedTraits {
		path := fmt.Sprintf("computedTraits[%d]", i)
		if t.Key == "" {
			errs = append(errs, f.errorf(path+".key", "is required (computed traits are matched by key)"))
			continue
		}
		if j, dup := seen[t.Key]; dup {
			errs = append(errs, f.errorf(path+".key", "key %q is already declared by computedTraits[%d]", t.Key, j))
			continue
		}
		seen[t.Key] = i
		if _, err := t.normalized(); err != nil {
			errs = append(errs, segmentError(f, path, err))
		}
	}
	return errs
}

func segmentError(f *File, path string, err error) error {
	var ve *segmentdef.ValidationError
	if errors.As(err, &ve) && ve.Field != "" {
		return f.errorf(path+"."+ve.Field, "%s", ve.Message)
	}
	return f.errorf(path, "%v", err)
}

func validateAudiences(f *File) []error {
	var errs []error
	seen := map[string]int{}
	for i, a := range f.Audiences {
		path := fmt.Sprintf("audiences[%d]", i)
		if a.Key == "" {
			errs = append(errs, f.errorf(path+".key", "is required (audiences are matched by key)"))
			continue
		}
		if j, dup := seen[a.Key]; dup {
			errs = append(errs, f.errorf(path+".key", "key %q is already declared by audiences[%d]", a.Key, j))
			continue
		}
		seen[a.Key] = i
		// Check the definition with references by key standing in for ids; whether they exist
		// is checked against the file and the CDP when planning.
		d := segmentdef.Audience{Key: a.Key, Name: a.Name, Description: a.Description, Condition: cloneCondition(a.Condition)}
		var refErr error
		d.Condition.Walk(func(n *segmentdef.Condition) {
			if n.Audience == nil {
				return
			}
			if n.Audience.ID != "" && refErr == nil {
				refErr = f.errorf(path+".condition", "refer to audiences by key in config files (ids differ between deployments), not by id %q", n.Audience.ID)
			}
			if n.Audience.Key == a.Key && refErr == nil {
				refErr = f.errorf(path+".condition", "audience %q refers to itself", a.Key)
			}
			if n.Audience.Key != "" {
				n.Audience.ID, n.Audience.Key = "key:"+n.Audience.Key, ""
			}
		})
		if refErr != nil {
			errs = append(errs, refErr)
			continue
		}
		if err := d.Validate(); err != nil {
			errs = append(errs, segmentError(f, path, err))
		}
	}
	if len(errs) == 0 {
		if _, err := audienceOrder(f.Audiences); err != nil {
			errs = append(errs, f.errorf("audiences", "%v", err))
		}
	}
	return errs
}

// audienceOrder returns the indexes of the file's audiences with every audience after the
// file audiences it refers to, or an error naming a reference cycle.
func audienceOrder(auds []Audience) ([]int, error) {
	byKey := map[string]int{}
	for i, a := range auds {
		byKey[a.Key] = i
	}
	state := make([]int, len(auds)) // 0 new, 1 visiting, 2 done
	var order []int
	var visit func(i int, chain []string) error
	visit = func(i int, chain []string) error {
		chain = append(chain, auds[i].Key)
		switch state[i] {
		case 1:
			return fmt.Errorf("audiences refer to each other in a cycle: %s", strings.Join(chain, " -> "))
		case 2:
			return nil
		}
		state[i] = 1
		refs, _ := auds[i].refs()
		for _, k := range refs {
			if j, ok := byKey[k]; ok {
				if err := visit(j, chain); err != nil {
					return err
				}
			}
		}
		state[i] = 2
		order = append(order, i)
		return nil
	}
	for i := range auds {
		if err := visit(i, nil); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// canonical is a value's JSON decoded again, for comparisons that ignore formatting.
func canonical(v any) any {
	raw, _ := json.Marshal(v)
	var out any
	_ = json.Unmarshal(raw, &out)
	return out
}

func changed(name string, have, want any, details *[]string) {
	if reflect.DeepEqual(canonical(have), canonical(want)) {
		return
	}
	switch h := have.(type) {
	case string:
		*details = append(*details, fmt.Sprintf("%s %q -> %q", name, h, want))
	default:
		*details = append(*details, name)
	}
}

func planTraits(pc planContext, f *File) ([]Change, error) {
	if f.ComputedTraits == nil { // not declared: left alone, even with --prune
		return nil, nil
	}
	current, err := pc.client.ComputedTraits(pc.ctx)
	if err != nil {
		return nil, err
	}
	byKey := map[string]segmentdef.ComputedTrait{}
	for _, t := range current {
		byKey[t.Key] = t
	}
	c := pc.client
	var changes []Change
	for _, decl := range f.ComputedTraits {
		want, err := decl.normalized()
		if err != nil {
			return nil, err
		}
		have, ok := byKey[want.Key]
		if !ok {
			def := decl.definition()
			changes = append(changes, Change{Op: Create, Kind: "computed trait", Name: want.Key,
				apply: func(ctx context.Context) ([]string, error) { return nil, c.SaveComputedTrait(ctx, "", def) }})
			continue
		}
		var details []string
		changed("name", have.Name, want.Name, &details)
		changed("description", have.Description, want.Description, &details)
		changed("kind", have.Kind, want.Kind, &details)
		changed("event", have.Event, want.Event, &details)
		changed("property", have.Property, want.Property, &details)
		changed("window", have.Window, want.Window, &details)
		changed("thresholds", have.Thresholds, want.Thresholds, &details)
		changed("prediction", have.Prediction, want.Prediction, &details)
		if len(details) > 0 {
			id, def := have.ID, decl.definition()
			changes = append(changes, Change{Op: Update, Kind: "computed trait", Name: want.Key, Details: details,
				apply: func(ctx context.Context) ([]string, error) { return nil, c.SaveComputedTrait(ctx, id, def) }})
		}
	}
	if pc.prune {
		declared := map[string]bool{}
		for _, t := range f.ComputedTraits {
			declared[t.Key] = true
		}
		for _, have := range current {
			if !declared[have.Key] {
				id := have.ID
				changes = append(changes, Change{Op: Delete, Kind: "computed trait", Name: have.Key,
					apply: func(ctx context.Context) ([]string, error) { return nil, c.DeleteComputedTrait(ctx, id) }})
			}
		}
	}
	return changes, nil
}

func planAudiences(pc planContext, f *File) ([]Change, error) {
	if f.Audiences == nil { // not declared: left alone, even with --prune
		return nil, nil
	}
	ap, err := newAudiencePlan(pc, f)
	if err != nil {
		return nil, err
	}
	order, err := audienceOrder(f.Audiences)
	if err != nil {
		return nil, err
	}
	var changes []Change
	for _, i := range order {
		if err := ap.checkRefs(i); err != nil {
			return nil, err
		}
		if ch, ok := ap.change(i); ok {
			changes = append(changes, ch)
		}
	}
	if !pc.prune {
		return changes, nil
	}
	deletes, err := ap.deletes()
	if err != nil {
		return nil, err
	}
	return append(changes, deletes...), nil
}

// audiencePlan is what planning the audiences compares: the file's and the CDP's.
type audiencePlan struct {
	pc                                     planContext
	f                                      *File
	current                                []segmentdef.Audience
	byKey                                  map[string]segmentdef.Audience
	keyOf                                  map[string]string // audience id → key
	declared, declaredTraits, serverTraits map[string]bool
}

func newAudiencePlan(pc planContext, f *File) (*audiencePlan, error) {
	current, err := pc.client.Audiences(pc.ctx)
	if err != nil {
		return nil, err
	}
	traits, err := pc.client.ComputedTraits(pc.ctx)
	if err != nil {
		return nil, err
	}
	ap := &audiencePlan{pc: pc, f: f, current: current, byKey: map[string]segmentdef.Audience{}, keyOf: map[string]string{},
		declared: map[string]bool{}, declaredTraits: map[string]bool{}, serverTraits: map[string]bool{}}
	for _, a := range current {
		ap.byKey[a.Key], ap.keyOf[a.ID] = a, a.Key
	}
	for _, a := range f.Audiences {
		ap.declared[a.Key] = true
	}
	for _, t := range f.ComputedTraits {
		ap.declaredTraits[t.Key] = true
	}
	for _, t := range traits {
		ap.serverTraits[t.Key] = true
	}
	return ap, nil
}

// checkRefs refuses an audience whose condition refers to an audience or computed trait that
// is neither in the file nor in the CDP, or that --prune would delete.
func (ap *audiencePlan) checkRefs(i int) error {
	path := fmt.Sprintf("audiences[%d]", i)
	auds, trs := ap.f.Audiences[i].refs()
	for _, k := range auds {
		if ap.declared[k] {
			continue
		}
		if _, ok := ap.byKey[k]; !ok {
			return ap.f.errorf(path+".condition", "audience %q is neither in the file nor in the CDP", k)
		}
		if ap.pc.prune {
			return ap.f.errorf(path+".condition", "audience %q is not in the file, so --prune would delete it; declare it", k)
		}
	}
	for _, k := range trs {
		if ap.declaredTraits[k] {
			continue
		}
		if !ap.serverTraits[k] {
			return ap.f.errorf(path+".condition", "computed trait %q is neither in the file nor in the CDP", k)
		}
		if ap.pc.prune && ap.f.ComputedTraits != nil {
			return ap.f.errorf(path+".condition", "computed trait %q is not in the file, so --prune would delete it; declare it", k)
		}
	}
	return nil
}

// change is the create or update audience i of the file needs, if any.
func (ap *audiencePlan) change(i int) (Change, bool) {
	decl, c := ap.f.Audiences[i], ap.pc.client
	def := segmentdef.Audience{Key: decl.Key, Name: decl.Name, Description: decl.Description, Condition: cloneCondition(decl.Condition)}
	have, ok := ap.byKey[decl.Key]
	if !ok {
		return Change{Op: Create, Kind: "audience", Name: decl.Key,
			apply: func(ctx context.Context) ([]string, error) { return nil, c.SaveAudience(ctx, "", def) }}, true
	}
	// The CDP stores references by id: compare them by key.
	hc := cloneCondition(have.Condition)
	hc.Walk(func(n *segmentdef.Condition) {
		if n.Audience != nil && n.Audience.ID != "" {
			if k, ok := ap.keyOf[n.Audience.ID]; ok {
				n.Audience.ID, n.Audience.Key = "", k
			}
		}
	})
	var details []string
	changed("name", have.Name, decl.Name, &details)
	changed("description", have.Description, decl.Description, &details)
	changed("condition", hc, decl.Condition, &details)
	if len(details) == 0 {
		return Change{}, false
	}
	id := have.ID
	return Change{Op: Update, Kind: "audience", Name: decl.Key, Details: details,
		apply: func(ctx context.Context) ([]string, error) { return nil, c.SaveAudience(ctx, id, def) }}, true
}

// deletes are the deletions --prune makes: those referring to others go first.
func (ap *audiencePlan) deletes() ([]Change, error) {
	var gone []Audience
	for _, have := range ap.current {
		if ap.declared[have.Key] {
			continue
		}
		hc := cloneCondition(have.Condition)
		hc.Walk(func(n *segmentdef.Condition) {
			if n.Audience != nil && n.Audience.ID != "" {
				n.Audience.ID, n.Audience.Key = "", ap.keyOf[n.Audience.ID]
			}
		})
		gone = append(gone, Audience{Key: have.Key, Condition: hc})
	}
	order, err := audienceOrder(gone)
	if err != nil {
		return nil, err
	}
	c := ap.pc.client
	var changes []Change
	for j := len(order) - 1; j >= 0; j-- {
		i := order[j]
		id := ap.byKey[gone[i].Key].ID
		changes = append(changes, Change{Op: Delete, Kind: "audience", Name: gone[i].Key,
			apply: func(ctx context.Context) ([]string, error) { return nil, c.DeleteAudience(ctx, id) }})
	}
	return changes, nil
}

// ComputedTraits returns every computed trait.
func (c *Client) ComputedTraits(ctx context.Context) ([]segmentdef.ComputedTrait, error) {
	var out struct {
		ComputedTraits []segmentdef.ComputedTrait `json:"computedTraits"`
	}
	err := c.do(ctx, http.MethodGet, apitypes.Prefix+"/computed-traits", nil, &out)
	return out.ComputedTraits, err
}

// SaveComputedTrait creates (id empty) or replaces a computed trait.
func (c *Client) SaveComputedTrait(ctx context.Context, id string, t segmentdef.ComputedTrait) error {
	if id == "" {
		return c.do(ctx, http.MethodPost, apitypes.Prefix+"/computed-traits", t, nil)
	}
	return c.do(ctx, http.MethodPut, apitypes.Prefix+"/computed-traits/"+url.PathEscape(id), t, nil)
}

// DeleteComputedTrait deletes a computed trait.
func (c *Client) DeleteComputedTrait(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, apitypes.Prefix+"/computed-traits/"+url.PathEscape(id), nil, nil)
}

// Audiences returns every audience.
func (c *Client) Audiences(ctx context.Context) ([]segmentdef.Audience, error) {
	var out struct {
		Audiences []segmentdef.Audience `json:"audiences"`
	}
	err := c.do(ctx, http.MethodGet, apitypes.Prefix+"/audiences", nil, &out)
	return out.Audiences, err
}

// SaveAudience creates (id empty) or replaces an audience; references by key are resolved by
// the admin API.
func (c *Client) SaveAudience(ctx context.Context, id string, a segmentdef.Audience) error {
	if id == "" {
		return c.do(ctx, http.MethodPost, apitypes.Prefix+"/audiences", a, nil)
	}
	return c.do(ctx, http.MethodPut, apitypes.Prefix+"/audiences/"+url.PathEscape(id), a, nil)
}

// DeleteAudience deletes an audience.
func (c *Client) DeleteAudience(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, apitypes.Prefix+"/audiences/"+url.PathEscape(id), nil, nil)
}
