package identity

import (
	"fmt"
	"sort"
)

// Lookup returns the live profile an identifier currently belongs to (after following merge
// pointers), or nil if no profile holds it.
type Lookup func(Identifier) *Profile

// Decision is how one message's identifiers resolve against the graph (Segment's flat matching).
type Decision struct {
	// Target receives the message; nil means a new profile.
	Target *Profile
	// Merge are the profiles merged into Target.
	Merge []*Profile
	// Attach are the message's identifiers not yet on Target or on any merged profile.
	Attach []Identifier
	// Kept are the identifiers that took part in the resolution (all minus Dropped).
	Kept []Identifier
	// Dropped are identifiers left out because keeping them would break a limit.
	Dropped []Drop
}

// Drop is an identifier left out of a resolution and why.
type Drop struct {
	Identifier Identifier `json:"identifier"`
	Rule       string     `json:"rule"`
	// Conflicts are the profiles whose identifiers, together with the message's, broke the limit.
	Conflicts []string `json:"conflicts,omitempty"`
}

// Resolve applies flat matching to the (unblocked) identifiers of one message:
//   - no identifier matches a profile: a new profile;
//   - all matches are one profile: attach the new identifiers to it;
//   - several profiles match: merge them, unless the union would hold more values of a type than
//     its limit; then drop the lowest-priority identifier of the message that brings in a value
//     of that type (a new value, or a profile holding such values) and resolve again.
//
// prefer (optional) is kept over identifiers of equal priority and chooses the survivor when
// several profiles merge (alias: the userId's profile). Otherwise the survivor is the profile
// matched by the highest-priority identifier, then the oldest, then the smallest id.
func Resolve(lookup Lookup, ids []Identifier, prefer *Identifier, rules *Compiled) Decision {
	kept := append([]Identifier(nil), ids...)
	var dropped []Drop
	for {
		matched := map[string]*Profile{}
		owner := make([]*Profile, len(kept))
		for i, id := range kept {
			if p := lookup(id); p != nil {
				matched[p.ID] = p
				owner[i] = p
			}
		}
		typ, ok := violated(matched, kept, owner, rules)
		if !ok {
			return decide(matched, kept, owner, dropped, prefer, rules)
		}
		// Causers: identifiers that bring a value of typ into the union.
		var causers []int
		for i, id := range kept {
			if owner[i] == nil && id.Type == typ {
				causers = append(causers, i)
			} else if owner[i] != nil && owner[i].CountType(typ) > 0 {
				causers = append(causers, i)
			}
		}
		if len(causers) == 0 { // cannot happen: the limit was broken by someone
			return decide(matched, kept, owner, dropped, prefer, rules)
		}
		victim := causers[0]
		for _, i := range causers[1:] {
			if lowerThan(kept[i], kept[victim], prefer, rules) {
				victim = i
			}
		}
		var conflicts []string
		for _, p := range matched {
			if p.CountType(typ) > 0 {
				conflicts = append(conflicts, p.ID)
			}
		}
		sort.Strings(conflicts)
		dropped = append(dropped, Drop{
			Identifier: kept[victim],
			Rule:       fmt.Sprintf("limit %s=%d", typ, rules.Limit(typ)),
			Conflicts:  conflicts,
		})
		kept = append(kept[:victim:victim], kept[victim+1:]...)
	}
}

// lowerThan reports whether a should be dropped before b.
func lowerThan(a, b Identifier, prefer *Identifier, rules *Compiled) bool {
	if a.Type != b.Type {
		return rules.Higher(b.Type, a.Type)
	}
	if prefer != nil {
		if b == *prefer {
			return true
		}
		if a == *prefer {
			return false
		}
	}
	return a.Value > b.Value
}

// violated returns the highest-priority type whose limit the union of the matched profiles and
// the message's identifiers breaks.
func violated(matched map[string]*Profile, kept []Identifier, owner []*Profile, rules *Compiled) (string, bool) {
	values := map[string]map[string]bool{}
	add := func(id Identifier) {
		if values[id.Type] == nil {
			values[id.Type] = map[string]bool{}
		}
		values[id.Type][id.Value] = true
	}
	for _, p := range matched {
		for _, r := range p.Identifiers {
			add(r.Identifier)
		}
	}
	for i, id := range kept {
		if owner[i] == nil {
			add(id)
		}
	}
	var bad []string
	for typ, vs := range values {
		if len(vs) > rules.Limit(typ) {
			bad = append(bad, typ)
		}
	}
	if len(bad) == 0 {
		return "", false
	}
	sort.Slice(bad, func(i, j int) bool { return rules.Higher(bad[i], bad[j]) })
	return bad[0], true
}

func decide(matched map[string]*Profile, kept []Identifier, owner []*Profile, dropped []Drop, prefer *Identifier, rules *Compiled) Decision {
	d := Decision{Kept: kept, Dropped: dropped}
	for i, id := range kept {
		if owner[i] == nil {
			d.Attach = append(d.Attach, id)
		}
	}
	if len(matched) == 0 {
		return d
	}
	// Survivor: via prefer, else the profile of the highest-priority identifier.
	var best *Profile
	var bestID Identifier
	for i, id := range kept {
		p := owner[i]
		if p == nil {
			continue
		}
		if prefer != nil && id == *prefer {
			best = p
			break
		}
		if best == nil || rules.Higher(id.Type, bestID.Type) ||
			(id.Type == bestID.Type && older(p, best)) {
			best, bestID = p, id
		}
	}
	d.Target = best
	ids := make([]string, 0, len(matched))
	for id := range matched {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if id != best.ID {
			d.Merge = append(d.Merge, matched[id])
		}
	}
	return d
}

func older(a, b *Profile) bool {
	if !a.CreatedAt.Equal(b.CreatedAt) {
		return a.CreatedAt.Before(b.CreatedAt)
	}
	return a.ID < b.ID
}
