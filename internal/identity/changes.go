package identity

import (
	"encoding/json"
	"sort"

	"github.com/serverless-cdp/cdp/internal/change"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

// changeSet folds the change records of a batch into one per surviving profile.
type changeSet struct {
	byID map[string]*change.Record
	// full are the profiles whose record keeps the full traits whatever changed: a
	// re-emission (a redelivery) may stand in for a record that carried a trait change, and a
	// record folded in again (by the handler) has been through records() once already.
	full map[string]bool
	// consent are the profiles whose consent changed in the batch: their record carries it
	// even without traits.
	consent map[string]bool
}

func newChangeSet() *changeSet {
	return &changeSet{byID: map[string]*change.Record{}, full: map[string]bool{}, consent: map[string]bool{}}
}

// consentChanged notes that a profile's consent changed in the batch.
func (s *changeSet) consentChanged(id string, changed bool) {
	if changed {
		s.consent[id] = true
	}
}

// addFull adds a record that keeps its full traits.
func (s *changeSet) addFull(r change.Record) {
	s.add(r)
	s.full[r.ProfileID] = true
}

func (s *changeSet) add(r change.Record) {
	// Profiles merged into this one earlier in the batch: fold their changes in.
	for _, from := range r.MergedFrom {
		if old, ok := s.byID[from]; ok {
			delete(s.byID, from)
			fold(&r, old, false)
			if s.full[from] {
				s.full[r.ProfileID] = true
			}
			s.consentChanged(r.ProfileID, s.consent[from])
		}
	}
	if old, ok := s.byID[r.ProfileID]; ok {
		fold(&r, old, true)
	}
	s.byID[r.ProfileID] = &r
}

// fold merges an earlier record old into the newer r. sameProfile tells whether old described
// the same profile (so its Created flag carries over).
func fold(r, old *change.Record, sameProfile bool) {
	if sameProfile && old.Created {
		r.Created = true
	}
	if sameProfile && r.Traits == nil {
		r.Traits = old.Traits // r changed no trait: old's are still current
	}
	if sameProfile && r.Consent == nil {
		r.Consent = old.Consent // categories are never removed: old's is still current
	}
	for _, id := range old.MergedFrom {
		if !containsStr(r.MergedFrom, id) {
			r.MergedFrom = append(r.MergedFrom, id)
		}
	}
	if !sameProfile && !containsStr(r.MergedFrom, old.ProfileID) {
		r.MergedFrom = append(r.MergedFrom, old.ProfileID)
	}
	for k, v := range old.ChangedTraits {
		if _, newer := r.ChangedTraits[k]; !newer {
			if r.ChangedTraits == nil {
				r.ChangedTraits = map[string]json.RawMessage{}
			}
			// Report the current value: the trait may since have been overwritten by a merge.
			if cur, ok := r.Traits[k]; ok {
				v = cur
			}
			r.ChangedTraits[k] = v
		}
	}
	have := map[change.Identifier]bool{}
	for _, id := range r.AddedIdentifiers {
		have[id] = true
	}
	for _, id := range old.AddedIdentifiers {
		if !have[id] {
			r.AddedIdentifiers = append(r.AddedIdentifiers, id)
		}
	}
	r.Events = append(old.Events, r.Events...)
	r.Stamps = append(old.Stamps, r.Stamps...)
	r.Void = append(old.Void, r.Void...)
}

func (s *changeSet) records() []change.Record {
	out := make([]change.Record, 0, len(s.byID))
	for _, r := range s.byID {
		sortEvents(r)
		sort.Strings(r.MergedFrom)
		r.Part, r.Parts = 1, 1
		// Traits (the full set) only when they changed, the profile is new or absorbed others,
		// or the record stands in for one that may have been lost: consumers keep their own
		// copy, and a large profile would otherwise ride along with every event.
		if !r.Created && len(r.MergedFrom) == 0 && len(r.ChangedTraits) == 0 && !s.full[r.ProfileID] {
			r.Traits = nil
		}
		// Consent (the profile's current one) when it changed or the traits go along.
		if r.Traits == nil && !s.consent[r.ProfileID] {
			r.Consent = nil
		}
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ProfileID < out[j].ProfileID })
	return out
}

// sortEvents orders a record's events oldest first, keeping each stamp with its event.
func sortEvents(r *change.Record) {
	if len(r.Stamps) != len(r.Events) {
		sort.SliceStable(r.Events, func(i, j int) bool { return r.Events[i].Timestamp.Before(r.Events[j].Timestamp) })
		return
	}
	idx := make([]int, len(r.Events))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return r.Events[idx[a]].Timestamp.Before(r.Events[idx[b]].Timestamp) })
	evs := make([]tracking.Message, len(idx))
	sts := make([]change.Stamp, len(idx))
	for k, i := range idx {
		evs[k], sts[k] = r.Events[i], r.Stamps[i]
	}
	r.Events, r.Stamps = evs, sts
}
