package blocklist

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Entry kinds.
const (
	KindIdentifier = "identifier"
	KindProfile    = "profile"
)

// DefaultInterval is how often a Checker re-reads the version unless configured.
const DefaultInterval = time.Second

// MaxGroupBytes bounds a group name (a privacy request id) so that keys stay valid.
const MaxGroupBytes = 256

// Store is the list: the write side (privacy.Blocklist) and what checkers and the admin API read.
type Store interface {
	// Suppress adds the identifiers ("type:value") under group with their masked labels
	// (labels[i] belongs to identifiers[i]). Idempotent: an entry already there is kept as is.
	Suppress(ctx context.Context, group string, identifiers, labels []string) error
	// Unsuppress removes every identifier entry of every group that holds any of the
	// identifiers and returns how many entries it removed. Erased-profile entries stay (they
	// expire on their own).
	Unsuppress(ctx context.Context, identifiers []string) (int, error)
	// BlockProfiles adds erased profiles under group, expiring after ttl. Idempotent.
	BlockProfiles(ctx context.Context, group string, profiles []string, ttl time.Duration) error
	// PropagationDelay is how long after a change every Checker is certain to see it.
	PropagationDelay() time.Duration
	// Suppressions lists the groups holding suppressed identifiers, oldest first.
	Suppressions(ctx context.Context) ([]Group, error)
	// CountDropped adds n to the count of records of source dropped as suppressed.
	CountDropped(ctx context.Context, source string, n int64) error
	// DroppedBySource returns the dropped counts per source.
	DroppedBySource(ctx context.Context) (map[string]int64, error)
	// Version returns the list's version, read strongly consistent (0: never changed).
	Version(ctx context.Context) (int64, error)
	// Load returns the current hashes (erased profiles not expired yet).
	Load(ctx context.Context) (Snapshot, error)
}

// Group is one group of suppressed identifiers: a request's, shown by masked labels.
type Group struct {
	Group     string    `json:"group"`
	Labels    []string  `json:"labels"`
	CreatedAt time.Time `json:"createdAt"`
}

// Snapshot is the list as a checker holds it: the keyed hashes of suppressed identifiers, and
// those of erased profiles with when their entry expires (the latest if several groups hold
// one).
type Snapshot struct {
	Identifiers map[string]bool
	Profiles    map[string]time.Time
}

// Options configure a store.
type Options struct {
	// CheckInterval is the interval of the checkers reading this store (default
	// DefaultInterval); PropagationDelay is derived from it.
	CheckInterval time.Duration
	// Now is the clock (default time.Now): createdAt, and expiry of erased-profile entries.
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.CheckInterval <= 0 {
		o.CheckInterval = DefaultInterval
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// propagationDelay is 2×interval + 1 s: a checker re-reads the version at most one interval
// after its last read, so one interval after a change every checker that serves a record has
// seen it, except one whose refresh started just before the change and is still loading (a
// second interval covers that reload and the check racing it); the second adds margin for the
// write to return to the caller and for clock steps between the caller and the stages.
func propagationDelay(interval time.Duration) time.Duration { return 2*interval + time.Second }

// entry is one stored entry.
type entry struct {
	kind, hash, group, label string
	created, expires         time.Time // expires: zero for identifiers
}

func (e entry) key() string { return entryKey(e.kind, e.hash, e.group) }

// Sort-key prefixes of entries.
const (
	skVersion    = "VERSION"
	skIdentifier = "I#"
	skProfile    = "P#"
)

func entryKey(kind, hash, group string) string {
	if kind == KindProfile {
		return skProfile + hash + "#" + group
	}
	return skIdentifier + hash + "#" + group
}

var errBadInput = errors.New("blocklist: bad input")

// identifierEntries builds the entries of a Suppress call.
func identifierEntries(h Hasher, group string, identifiers, labels []string, now time.Time) ([]entry, error) {
	if err := checkGroup(group); err != nil {
		return nil, err
	}
	if len(labels) != len(identifiers) {
		return nil, fmt.Errorf("%w: %d labels for %d identifiers", errBadInput, len(labels), len(identifiers))
	}
	out := make([]entry, 0, len(identifiers))
	for i, id := range identifiers {
		out = append(out, entry{kind: KindIdentifier, hash: h.Identifier(id), group: group, label: labels[i], created: now})
	}
	return out, nil
}

// profileEntries builds the entries of a BlockProfiles call.
func profileEntries(h Hasher, group string, profiles []string, ttl time.Duration, now time.Time) ([]entry, error) {
	if err := checkGroup(group); err != nil {
		return nil, err
	}
	if ttl <= 0 {
		return nil, fmt.Errorf("%w: ttl %v", errBadInput, ttl)
	}
	out := make([]entry, 0, len(profiles))
	for _, p := range profiles {
		out = append(out, entry{kind: KindProfile, hash: h.Profile(p), group: group, created: now, expires: now.Add(ttl)})
	}
	return out, nil
}

func checkGroup(g string) error {
	if g == "" || len(g) > MaxGroupBytes || strings.ContainsRune(g, '#') {
		return fmt.Errorf("%w: group must be 1..%d bytes without '#'", errBadInput, MaxGroupBytes)
	}
	return nil
}

// toRemove returns the identifier entries of every group holding any of the hashes.
func toRemove(all []entry, hashes map[string]bool) []entry {
	groups := map[string]bool{}
	for _, e := range all {
		if e.kind == KindIdentifier && hashes[e.hash] {
			groups[e.group] = true
		}
	}
	var out []entry
	for _, e := range all {
		if e.kind == KindIdentifier && groups[e.group] {
			out = append(out, e)
		}
	}
	return out
}

// groupsOf folds identifier entries into groups, oldest first (labels sorted).
func groupsOf(all []entry) []Group {
	by := map[string]*Group{}
	for _, e := range all {
		if e.kind != KindIdentifier {
			continue
		}
		g := by[e.group]
		if g == nil {
			g = &Group{Group: e.group, CreatedAt: e.created}
			by[e.group] = g
		}
		g.Labels = append(g.Labels, e.label)
		if e.created.Before(g.CreatedAt) {
			g.CreatedAt = e.created
		}
	}
	out := make([]Group, 0, len(by))
	for _, g := range by {
		sort.Strings(g.Labels)
		out = append(out, *g)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].Group < out[j].Group
	})
	return out
}

// snapshotOf builds the sets of the entries alive at now.
func snapshotOf(all []entry, now time.Time) Snapshot {
	s := Snapshot{Identifiers: map[string]bool{}, Profiles: map[string]time.Time{}}
	for _, e := range all {
		switch {
		case e.kind == KindIdentifier:
			s.Identifiers[e.hash] = true
		case e.expires.After(now) && e.expires.After(s.Profiles[e.hash]):
			s.Profiles[e.hash] = e.expires
		}
	}
	return s
}

func hashSet(h Hasher, identifiers []string) map[string]bool {
	out := make(map[string]bool, len(identifiers))
	for _, id := range identifiers {
		out[h.Identifier(id)] = true
	}
	return out
}
