package segment

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/serverless-cdp/cdp/internal/activations"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

// Input is what happened to a profile since its state was last evaluated.
type Input struct {
	NewEvents     []Event  // events not seen before
	ChangedTraits []string // top-level trait keys whose value changed
	// All re-evaluates every definition (scheduled re-evaluation, backfill, merges).
	All bool
}

// Transition is a profile entering (In) or leaving an audience.
type Transition struct {
	AudienceID string
	In         bool
	At         time.Time
}

// Result is what one evaluation changed.
type Result struct {
	Transitions     []Transition
	ChangedComputed map[string]json.RawMessage // computed traits whose value changed (nil: no value)
	Records         []activations.Record       // the transitions and trait changes to publish
	Evaluated       int                        // audiences evaluated (for tests and benchmarks)
}

// Evaluate updates st in place at now: recomputes the computed traits and audiences the input
// can affect, records transitions in st.Members and returns what changed. It is pure: the
// caller stores st and publishes Result.Records (their ids derive from st.ProfileID, the
// audience's transition count and st.Ver, so a retried evaluation yields the same ids).
// Unknown lists the computed traits ("trait:<key>") and audiences ("audience:<id>") the
// profile's state holds that the catalog does not know. Evaluate forgets those, which is right
// only if the catalog is current: a stale one has simply not seen definitions created since.
func (c *Catalog) Unknown(st *State) []string {
	var out []string
	for k := range st.Computed {
		if c.traitByKey[k] == nil {
			out = append(out, "trait:"+k)
		}
	}
	for id := range st.Members {
		if c.audByID[id] == nil {
			out = append(out, "audience:"+id)
		}
	}
	for sig := range st.Aggs {
		if c.specs[sig] == nil {
			out = append(out, "agg:"+sig)
		}
	}
	return out
}

func (c *Catalog) Evaluate(st *State, in Input, now time.Time) Result {
	var res Result
	at := transitionTime(in.NewEvents, now)
	names := eventKeys(in.NewEvents)
	traits := c.Traits
	// A new profile gets every computed trait, as a backfill would give it (a count of 0 is a
	// value): otherwise its traits would depend on whether it existed when they were defined.
	if !in.All && st.Ver != 0 {
		traits = c.affectedTraits(names)
	}
	changedComputed := c.updateComputed(st, traits, now, &res)
	c.forgetUnknown(st, now)
	auds := c.Audiences
	if !in.All {
		var extra []*Audience
		if st.Ver == 0 {
			extra = c.emptyMatch
		}
		auds = c.affectedAudiences(names, in.ChangedTraits, changedComputed, extra)
	}
	x := newEvalCtx(st, now)
	x.cat = c
	for _, a := range auds {
		res.Evaluated++
		if rec, ok := transition(st, a, evalCondition(&a.Condition, x), at); ok {
			res.Transitions = append(res.Transitions, Transition{AudienceID: a.ID, In: st.Members[a.ID].In, At: at})
			res.Records = append(res.Records, rec)
		}
	}
	if len(res.ChangedComputed) > 0 {
		res.Records = append(res.Records, traitsRecord(st, res.ChangedComputed, at))
	}
	st.NextAt = c.NextChange(st, now)
	return res
}

// transitionTime is when transitions caused by new events happen: at the latest track, page or
// screen event's time, never in the future (now when there is none).
func transitionTime(evs []Event, now time.Time) time.Time {
	var at time.Time
	for i := range evs {
		switch evs[i].eventType() {
		case tracking.TypeTrack, tracking.TypePage, tracking.TypeScreen:
			if evs[i].T.After(at) {
				at = evs[i].T
			}
		}
	}
	if at.IsZero() || at.After(now) {
		return now
	}
	return at
}

// updateComputed recomputes traits into st.Computed, records the changed values in
// res.ChangedComputed and returns their keys.
func (c *Catalog) updateComputed(st *State, traits []*ComputedTrait, now time.Time, res *Result) []string {
	var changed []string
	for _, t := range traits {
		var v json.RawMessage
		if IsPredictive(t.Kind) {
			v = toJSON(c.predictive(st, t, now))
		} else {
			s := c.traitSpecs[t.Key]
			v = toJSON(Compute(t, st.Aggs[s.sig].at(s, now), now))
		}
		old, had := st.Computed[t.Key]
		if had && bytes.Equal(old, v) || !had && v == nil {
			continue
		}
		if res.ChangedComputed == nil {
			res.ChangedComputed = map[string]json.RawMessage{}
		}
		res.ChangedComputed[t.Key] = v
		changed = append(changed, t.Key)
		if v == nil {
			delete(st.Computed, t.Key)
		} else {
			st.Computed[t.Key] = v
		}
	}
	return changed
}

// forgetUnknown drops values and accumulators of definitions that no longer exist, and the
// buckets that have left their windows.
func (c *Catalog) forgetUnknown(st *State, now time.Time) {
	for k := range st.Computed {
		if c.traitByKey[k] == nil {
			delete(st.Computed, k)
		}
	}
	for id := range st.Members {
		if c.audByID[id] == nil {
			delete(st.Members, id)
		}
	}
	for sig, acc := range st.Aggs {
		switch s := c.specs[sig]; {
		case s == nil:
			delete(st.Aggs, sig)
		case s.window > 0:
			acc.prune(s, now)
		}
	}
}

// transition records in st.Members whether the profile now matches an audience; when that
// changed it returns the activation record of the entry or exit.
func transition(st *State, a *Audience, match bool, at time.Time) (activations.Record, bool) {
	m := st.Members[a.ID]
	if m == nil {
		m = &Membership{}
	}
	if match == m.In {
		return activations.Record{}, false
	}
	m.In = match
	m.Seq++
	kind := activations.KindAudienceExited
	if match {
		m.EnteredAt, kind = at, activations.KindAudienceEntered
	} else {
		m.ExitedAt = at
	}
	st.Members[a.ID] = m
	return st.stamp(activations.Record{
		ID:         fmt.Sprintf("aud-%s-%s-%d", st.ProfileID, a.ID, m.Seq),
		Kind:       kind,
		Audience:   &activations.Audience{ID: a.ID, Key: a.Key, Name: a.Name},
		OccurredAt: at,
	}), true
}

// traitsRecord is the activation record of changed computed traits (removed ones as null).
func traitsRecord(st *State, changed map[string]json.RawMessage, at time.Time) activations.Record {
	keys := make([]string, 0, len(changed))
	for k := range changed {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	traits := make(map[string]json.RawMessage, len(keys))
	for _, k := range keys {
		v := changed[k]
		if v == nil {
			v = json.RawMessage("null")
		}
		traits[k] = v
	}
	return st.stamp(activations.Record{
		ID:         fmt.Sprintf("ct-%s-%d", st.ProfileID, st.Ver+1),
		Kind:       activations.KindTraitsChanged,
		Traits:     traits,
		OccurredAt: at,
	})
}
