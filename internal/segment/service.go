package segment

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"
)

// Service is the admin side: definitions (validated), backfill status, reading and preview.
// The admin API and the config file mount it.
type Service struct {
	store Stores
	clock func() time.Time
	// OnChange is called after a definition changed (e.g. Handler.Invalidate in one process).
	OnChange func()
	// History is the identity stage's timeline: Preview computes the event conditions of a
	// draft that no saved definition shares from it. Without it they count no event.
	History History
	// RetrainEvery is the schedule's retrain period the quality view reports (the handler's
	// Options.RetrainEvery); default DefaultRetrainEvery.
	RetrainEvery time.Duration
}

// NewService returns a service over the store; clock may be nil (time.Now).
func NewService(st Stores, clock func() time.Time) *Service {
	if clock == nil {
		clock = time.Now
	}
	return &Service{store: st, clock: clock, OnChange: func() {}}
}

// TraitView is a computed trait with its backfill status.
type TraitView struct {
	*ComputedTrait
	Status   string `json:"status"`
	Backfill *Job   `json:"backfill,omitempty"`
}

// AudienceView is an audience with its size and backfill status.
type AudienceView struct {
	*Audience
	Status   string `json:"status"`
	Size     int    `json:"size"`
	Backfill *Job   `json:"backfill,omitempty"`
}

func newID(prefix string) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

func status(j *Job) string {
	if j == nil {
		return StatusLive
	}
	return j.Status
}

// check validates the stored definitions with one replaced (or added, or removed when both
// are nil), so references, key uniqueness and cycles are checked across the whole set.
func (sv *Service) check(defs *Definitions, t *ComputedTrait, a *Audience, removeID string) error {
	var traits []*ComputedTrait
	for _, x := range defs.Traits {
		if (t == nil || x.ID != t.ID) && x.ID != removeID {
			traits = append(traits, clone(x))
		}
	}
	if t != nil {
		traits = append(traits, t)
	}
	var auds []*Audience
	for _, x := range defs.Audiences {
		if (a == nil || x.ID != a.ID) && x.ID != removeID {
			auds = append(auds, clone(x))
		}
	}
	if a != nil {
		auds = append(auds, a)
	}
	_, err := NewCatalog(traits, auds)
	return err
}

func (sv *Service) job(id string, version int64) *Job {
	return &Job{DefinitionID: id, Version: version, Status: StatusComputing, StartedAt: sv.clock().UTC()}
}

// SaveTrait creates (ID empty) or replaces a computed trait, and starts its backfill.
func (sv *Service) SaveTrait(ctx context.Context, t ComputedTrait) (*TraitView, error) {
	defs, err := sv.store.LoadDefinitions(ctx)
	if err != nil {
		return nil, err
	}
	now := sv.clock().UTC()
	t.Version, t.UpdatedAt = 1, now
	if t.ID == "" {
		t.ID, t.CreatedAt = newID("ct_"), now
	} else {
		var old *ComputedTrait
		for _, x := range defs.Traits {
			if x.ID == t.ID {
				old = x
			}
		}
		if old == nil {
			return nil, fmt.Errorf("computed trait %s: %w", t.ID, ErrNotFound)
		}
		t.Version, t.CreatedAt = old.Version+1, old.CreatedAt
	}
	if err := t.Validate(); err != nil {
		return nil, err
	}
	if err := sv.check(defs, &t, nil, ""); err != nil {
		return nil, err
	}
	j := sv.job(t.ID, t.Version)
	if err := sv.store.PutTrait(ctx, &t, j); err != nil {
		return nil, err
	}
	sv.OnChange()
	return &TraitView{ComputedTrait: &t, Status: j.Status, Backfill: j}, nil
}

// SaveAudience creates (ID empty) or replaces an audience, and starts its backfill.
func (sv *Service) SaveAudience(ctx context.Context, a Audience) (*AudienceView, error) {
	defs, err := sv.store.LoadDefinitions(ctx)
	if err != nil {
		return nil, err
	}
	now := sv.clock().UTC()
	a.Version, a.UpdatedAt = 1, now
	if a.ID == "" {
		a.ID, a.CreatedAt = newID("aud_"), now
	} else {
		var old *Audience
		for _, x := range defs.Audiences {
			if x.ID == a.ID {
				old = x
			}
		}
		if old == nil {
			return nil, fmt.Errorf("audience %s: %w", a.ID, ErrNotFound)
		}
		a.Version, a.CreatedAt = old.Version+1, old.CreatedAt
	}
	resolveKeys(&a.Condition, defs.Audiences)
	if err := a.Validate(); err != nil {
		return nil, err
	}
	if err := sv.check(defs, nil, &a, ""); err != nil {
		return nil, err
	}
	j := sv.job(a.ID, a.Version)
	if err := sv.store.PutAudience(ctx, &a, j); err != nil {
		return nil, err
	}
	sv.OnChange()
	return &AudienceView{Audience: &a, Status: j.Status, Backfill: j}, nil
}

// Traits lists computed traits with their status.
func (sv *Service) Traits(ctx context.Context) ([]TraitView, error) {
	defs, err := sv.store.LoadDefinitions(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]TraitView, 0, len(defs.Traits))
	for _, t := range defs.Traits {
		j := defs.Jobs[t.ID]
		out = append(out, TraitView{ComputedTrait: t, Status: status(j), Backfill: j})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Trait returns one computed trait.
func (sv *Service) Trait(ctx context.Context, id string) (*TraitView, error) {
	list, err := sv.Traits(ctx)
	if err != nil {
		return nil, err
	}
	for i := range list {
		if list[i].ID == id {
			return &list[i], nil
		}
	}
	return nil, fmt.Errorf("computed trait %s: %w", id, ErrNotFound)
}

// Audiences lists audiences with their size and status.
func (sv *Service) Audiences(ctx context.Context) ([]AudienceView, error) {
	defs, err := sv.store.LoadDefinitions(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]AudienceView, 0, len(defs.Audiences))
	for _, a := range defs.Audiences {
		size, err := sv.store.Size(ctx, a.ID)
		if err != nil {
			return nil, err
		}
		j := defs.Jobs[a.ID]
		out = append(out, AudienceView{Audience: a, Status: status(j), Size: size, Backfill: j})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Audience returns one audience with its size.
func (sv *Service) Audience(ctx context.Context, id string) (*AudienceView, error) {
	defs, err := sv.store.LoadDefinitions(ctx)
	if err != nil {
		return nil, err
	}
	for _, a := range defs.Audiences {
		if a.ID == id {
			size, err := sv.store.Size(ctx, a.ID)
			if err != nil {
				return nil, err
			}
			j := defs.Jobs[a.ID]
			return &AudienceView{Audience: a, Status: status(j), Size: size, Backfill: j}, nil
		}
	}
	return nil, fmt.Errorf("audience %s: %w", id, ErrNotFound)
}

// DeleteTrait removes a computed trait unless an audience uses it.
func (sv *Service) DeleteTrait(ctx context.Context, id string) error {
	return sv.delete(ctx, id, sv.store.DeleteTrait)
}

// DeleteAudience removes an audience unless another one references it. Its member items are
// removed; profiles drop the membership at their next evaluation.
func (sv *Service) DeleteAudience(ctx context.Context, id string) error {
	if err := sv.delete(ctx, id, sv.store.DeleteAudience); err != nil {
		return err
	}
	for {
		ms, _, err := sv.store.Members(ctx, id, 25, "")
		if err != nil || len(ms) == 0 {
			return err
		}
		for _, m := range ms {
			if err := sv.store.DeleteMember(ctx, id, m.ProfileID); err != nil {
				return err
			}
		}
	}
}

func (sv *Service) delete(ctx context.Context, id string, del func(context.Context, string) error) error {
	defs, err := sv.store.LoadDefinitions(ctx)
	if err != nil {
		return err
	}
	if err := sv.check(defs, nil, nil, id); err != nil {
		return &ValidationError{Message: "still in use: " + err.Error()}
	}
	if err := del(ctx, id); errors.Is(err, ErrNotFound) {
		return fmt.Errorf("%s: %w", id, ErrNotFound)
	} else if err != nil {
		return err
	}
	sv.OnChange()
	return nil
}

// Members lists an audience's members, limit at a time; next continues a listing.
func (sv *Service) Members(ctx context.Context, audienceID string, limit int, next string) ([]Member, string, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	return sv.store.Members(ctx, audienceID, limit, next)
}

// ProfileAudience is one audience a profile is in.
type ProfileAudience struct {
	ID        string    `json:"id"`
	Key       string    `json:"key"`
	Name      string    `json:"name"`
	EnteredAt time.Time `json:"enteredAt"`
}

// ProfileView is what the segments stage knows about one profile.
type ProfileView struct {
	ProfileID      string                     `json:"profileId"`
	MergedInto     string                     `json:"mergedInto,omitempty"`
	Audiences      []ProfileAudience          `json:"audiences"`
	ComputedTraits map[string]json.RawMessage `json:"computedTraits"`
}

// Profile returns a profile's audiences and computed traits (following merges).
func (sv *Service) Profile(ctx context.Context, pid string) (*ProfileView, error) {
	defs, err := sv.store.LoadDefinitions(ctx)
	if err != nil {
		return nil, err
	}
	byID := map[string]*Audience{}
	for _, a := range defs.Audiences {
		byID[a.ID] = a
	}
	view := &ProfileView{ProfileID: pid, Audiences: []ProfileAudience{}, ComputedTraits: map[string]json.RawMessage{}}
	for hops := 0; hops < 8; hops++ {
		l, err := sv.store.Load(ctx, pid, true)
		if err != nil {
			return nil, err
		}
		st := l.State
		if st == nil || st.Erased {
			return nil, fmt.Errorf("profile %s: %w", pid, ErrNotFound)
		}
		if st.MergedInto != "" {
			view.MergedInto, pid = st.MergedInto, st.MergedInto
			continue
		}
		for _, id := range st.InAudiences() {
			if a := byID[id]; a != nil {
				view.Audiences = append(view.Audiences, ProfileAudience{ID: id, Key: a.Key, Name: a.Name, EnteredAt: st.Members[id].EnteredAt})
			}
		}
		view.ComputedTraits = st.Computed
		return view, nil
	}
	return nil, fmt.Errorf("profile %s: merge chain too long", pid)
}

// PreviewResult says how many profiles a draft audience matches.
type PreviewResult struct {
	Matched  int      `json:"matched"`
	Scanned  int      `json:"scanned"`
	Complete bool     `json:"complete"` // false when the limit stopped the scan
	Sample   []string `json:"sample"`   // up to 10 matching profile ids
}

// Preview counts the profiles a draft audience would match now, without saving it, looking at
// up to limit profiles (default 10,000).
func (sv *Service) Preview(ctx context.Context, draft Audience, limit int) (*PreviewResult, error) {
	if limit <= 0 {
		limit = 10000
	}
	if draft.ID == "" {
		draft.ID = "draft"
	}
	defs, err := sv.store.LoadDefinitions(ctx)
	if err != nil {
		return nil, err
	}
	resolveKeys(&draft.Condition, defs.Audiences)
	if err := draft.Validate(); err != nil {
		return nil, err
	}
	if err := sv.check(defs, nil, &draft, ""); err != nil {
		return nil, err
	}
	now := sv.clock().UTC()
	res := &PreviewResult{Complete: true, Sample: []string{}}
	for shard := 0; shard < regShards; shard++ {
		next := ""
		for {
			ids, nx, err := sv.store.Profiles(ctx, shard, 100, next)
			if err != nil {
				return nil, err
			}
			for _, pid := range ids {
				if res.Scanned >= limit {
					res.Complete = false
					return res, nil
				}
				l, err := sv.store.Load(ctx, pid, false)
				if err != nil {
					return nil, err
				}
				if l.State == nil || l.State.MergedInto != "" || l.State.Erased {
					continue
				}
				res.Scanned++
				x := newEvalCtx(l.State, now)
				if x.extra, err = sv.draftAggs(ctx, l.State, &draft.Condition, now); err != nil {
					return nil, err
				}
				if evalCondition(&draft.Condition, x) {
					res.Matched++
					if len(res.Sample) < 10 {
						res.Sample = append(res.Sample, pid)
					}
				}
			}
			if next = nx; next == "" {
				break
			}
		}
	}
	return res, nil
}

// draftAggs builds, from the timeline, the accumulators of a draft's event conditions the
// profile's state lacks (as a backfill would).
func (sv *Service) draftAggs(ctx context.Context, st *State, cond *Condition, now time.Time) (map[string]*Acc, error) {
	c := &Catalog{specs: map[string]*aggSpec{}}
	cond.Walk(func(n *Condition) {
		if n.Event != nil {
			if s := condSpec(n.Event); st.Aggs[s.sig] == nil {
				c.specs[s.sig] = s
			}
		}
	})
	if len(c.specs) == 0 {
		return nil, nil
	}
	tmp := &State{ProfileID: st.ProfileID, Seen: st.Seen, Legacy: st.Legacy}
	if _, err := c.ensureAggs(ctx, tmp, sv.History, now); err != nil {
		return nil, err
	}
	return tmp.Aggs, nil
}

// resolveKeys turns audience references by key into references by id.
func resolveKeys(c *Condition, auds []*Audience) {
	c.Walk(func(n *Condition) {
		if n.Audience == nil || n.Audience.ID != "" || n.Audience.Key == "" {
			return
		}
		for _, a := range auds {
			if a.Key == n.Audience.Key {
				n.Audience.ID, n.Audience.Key = a.ID, ""
			}
		}
	})
}

// TraitByKey finds a computed trait by key (config files name definitions by key).
func (sv *Service) TraitByKey(ctx context.Context, key string) (*TraitView, error) {
	list, err := sv.Traits(ctx)
	if err != nil {
		return nil, err
	}
	for i := range list {
		if list[i].Key == key {
			return &list[i], nil
		}
	}
	return nil, fmt.Errorf("computed trait %q: %w", key, ErrNotFound)
}

// AudienceByKey finds an audience by key.
func (sv *Service) AudienceByKey(ctx context.Context, key string) (*AudienceView, error) {
	defs, err := sv.store.LoadDefinitions(ctx)
	if err != nil {
		return nil, err
	}
	for _, a := range defs.Audiences {
		if a.Key == key {
			return sv.Audience(ctx, a.ID)
		}
	}
	return nil, fmt.Errorf("audience %q: %w", key, ErrNotFound)
}
