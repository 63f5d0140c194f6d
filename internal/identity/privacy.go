package identity

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/serverless-cdp/cdp/internal/backoff"
	"github.com/serverless-cdp/cdp/internal/privacy"
)

// What the identity stage keeps about a person, by kind (privacy.Holder): Export emits these
// kinds and Erase erases the same items.
//
//   - identifiers: the index entries (ID#<type>:<value> / ID) naming one of the person's
//     profiles;
//   - profiles: the profile items (PROFILE#<id> / PROFILE) of the person's profiles, merged-away
//     ones (pointers) included: identifiers, traits, group traits, consent, metadata;
//   - events: the timeline items committed to those profiles (MSGSRC#… and legacy MSG#…,
//     found through gsi1 PROFILE#<id>), including items past their retention that DynamoDB has
//     not deleted yet (still stored, so still shown and erased);
//   - merge_log: the merge-log lines (PROFILE#<id> / LOG#…).
//
// Identity also writes items that hold no personal data and are left alone: the failure counter
// of a message (ATTEMPT#identity#<hash> / ATTEMPT: a keyed hash of source and messageId, a
// count, a TTL of a week) and the identity rules (RULES / IDENTITY: configuration).
const (
	KindIdentifiers = "identifiers"
	KindProfiles    = "profiles"
	KindEvents      = "events"
	KindMergeLog    = "merge_log"
)

// privacyKinds lists the kinds in the order Export emits them.
var privacyKinds = []string{KindIdentifiers, KindProfiles, KindEvents, KindMergeLog}

// PersonStore is what the privacy Resolver and Holder need from storage: the lookups of
// resolution (always strongly consistent here) and the listing and deletion of everything the
// identity stage keeps about a set of profiles and identifiers. Store (DynamoDB) and MemStore
// implement it; one conformance suite (privacy_conformance_test.go) runs against both.
type PersonStore interface {
	// Index returns the profile id each identifier's index entry names (absent: not indexed).
	Index(ctx context.Context, ids []Identifier, consistent bool) (map[Identifier]string, error)
	// Profiles returns the stored profiles with these ids (merged-away ones as pointers).
	Profiles(ctx context.Context, ids []string, consistent bool) (map[string]*Profile, error)
	// ProfileEvents returns every timeline item committed to one profile (per-source and
	// legacy items, expired ones not deleted yet included), each with its key. It may be
	// eventually consistent.
	ProfileEvents(ctx context.Context, profile string) ([]KeyedEvent, error)
	// ProfileLog returns every merge-log line of one profile, each with its key.
	ProfileLog(ctx context.Context, profile string) ([]KeyedLog, error)
	// DeleteItems deletes items by key; a key that names nothing is no error.
	DeleteItems(ctx context.Context, keys []ItemKey) error
	// DeleteProfile deletes a profile item on the condition that it is stored at version: an
	// error wrapping ErrConflict if it is stored at another version (nothing is deleted), nil
	// if it is not stored at all.
	DeleteProfile(ctx context.Context, id string, version int64) error
}

// ItemKey is the table key of one stored item.
type ItemKey struct{ PK, SK string }

// KeyedEvent is a timeline item with its key.
type KeyedEvent struct {
	Key   ItemKey
	Event StoredEvent
}

// KeyedLog is a merge-log line with its key.
type KeyedLog struct {
	Key   ItemKey
	Entry LogEntry
}

func indexItemKey(id Identifier) ItemKey { return ItemKey{PK: prefixID + id.String(), SK: skID} }

// IndexExport is how an index entry is exported.
type IndexExport struct {
	Identifier string `json:"identifier"`
	ProfileID  string `json:"profileId"`
}

// Privacy is the identity stage's privacy.Resolver and privacy.Holder.
type Privacy struct {
	store PersonStore
	opt   PrivacyOptions
	// passes bounds Erase's rounds of listing and deleting (the last finds nothing).
	passes int
}

// PrivacyOptions tune a Privacy. The zero value is the default.
type PrivacyOptions struct {
	// Settle is how long after its last deletion Erase lists once more before it is done
	// (default DefaultEraseSettle; negative: no wait): the timeline index (gsi1) is
	// eventually consistent, so an event written just before (or by a processor's write in
	// progress) may show only later. The in-memory store needs none.
	Settle time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// DefaultEraseSettle is Erase's default settle time: DynamoDB propagates a write to a global
// secondary index within a fraction of a second in normal operation.
const DefaultEraseSettle = time.Second

var (
	_ privacy.Resolver = (*Privacy)(nil)
	_ privacy.Holder   = (*Privacy)(nil)
)

// NewPrivacy returns the identity stage's privacy resolver and holder on a store.
func NewPrivacy(s PersonStore, opt PrivacyOptions) *Privacy {
	if opt.Settle == 0 {
		opt.Settle = DefaultEraseSettle
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	return &Privacy{store: s, opt: opt, passes: 30}
}

// Name names the holder in request results.
func (*Privacy) Name() string { return "identity" }

// parseIdentifiers reads "type:value" identifiers, normalized as the identity stage normalizes
// an event's. An error names the position of a bad one, never its value.
func parseIdentifiers(in []string) ([]Identifier, error) {
	out := make([]Identifier, 0, len(in))
	for i, s := range in {
		id, ok := ParseIdentifier(s)
		switch {
		case !ok:
			return nil, fmt.Errorf("identifiers[%d]: not \"type:value\" with a non-empty type and value", i)
		case !withinLimits(id):
			return nil, fmt.Errorf("identifiers[%d]: too long or not valid UTF-8", i)
		}
		out = append(out, id)
	}
	return out, nil
}

// Resolve normalizes the identifiers and returns the person they name: every profile an index
// entry names, the survivor it was merged into and every profile merged into that survivor
// (transitively), and every identifier those profiles hold. All reads are strongly consistent.
func (pv *Privacy) Resolve(ctx context.Context, identifiers []string) (privacy.Person, error) {
	ids, err := parseIdentifiers(identifiers)
	if err != nil {
		return privacy.Person{}, err
	}
	idx, err := pv.store.Index(ctx, ids, true)
	if err != nil {
		return privacy.Person{}, fmt.Errorf("privacy resolve: read index: %w", err)
	}
	pids := map[string]bool{}
	for _, pid := range idx {
		pids[pid] = true
	}
	ps, err := pv.closure(ctx, pids)
	if err != nil {
		return privacy.Person{}, fmt.Errorf("privacy resolve: %w", err)
	}
	all := map[Identifier]bool{}
	for _, id := range ids {
		all[id] = true
	}
	for _, p := range ps {
		for _, r := range p.Identifiers {
			all[r.Identifier] = true
		}
	}
	return privacy.Person{Profiles: sortedKeys(pids), Identifiers: identifierStrings(all)}, nil
}

// closure adds to pids every profile linked to one of them by merges (the survivor each was
// merged into, every profile merged into a survivor) and returns the stored ones, read
// strongly consistently. A profile id whose item is gone stays in pids.
func (pv *Privacy) closure(ctx context.Context, pids map[string]bool) (map[string]*Profile, error) {
	ps := map[string]*Profile{}
	read := map[string]bool{}
	for round := 0; round <= maxMergeChain; round++ {
		var want []string
		for id := range pids {
			if !read[id] {
				want = append(want, id)
			}
		}
		if len(want) == 0 {
			return ps, nil
		}
		sort.Strings(want)
		got, err := pv.store.Profiles(ctx, want, true)
		if err != nil {
			return nil, fmt.Errorf("read profiles: %w", err)
		}
		for _, id := range want {
			read[id] = true
			p, ok := got[id]
			if !ok {
				continue
			}
			ps[id] = p
			for _, linked := range append([]string{p.MergedInto}, p.MergedFrom...) {
				if linked != "" {
					pids[linked] = true
				}
			}
		}
	}
	return nil, fmt.Errorf("read profiles: merge links form a chain longer than %d", maxMergeChain)
}

// holdings is everything the identity stage keeps about a person, as read by collect.
type holdings struct {
	index    map[Identifier]string
	profiles []*Profile
	events   []KeyedEvent
	logs     []KeyedLog
}

func (h *holdings) empty() bool {
	return len(h.index) == 0 && len(h.profiles) == 0 && len(h.events) == 0 && len(h.logs) == 0
}

// collect reads what is stored about the profiles and identifiers; both sets grow with what it
// finds (profiles linked by merges, identifiers the profiles hold or the merge log names).
// Index entries count when they name one of the profiles.
func (pv *Privacy) collect(ctx context.Context, pids map[string]bool, ids map[Identifier]bool) (*holdings, error) {
	ps, err := pv.closure(ctx, pids)
	if err != nil {
		return nil, err
	}
	h := &holdings{}
	for _, pid := range sortedKeys(pids) {
		if p, ok := ps[pid]; ok {
			h.profiles = append(h.profiles, p)
			for _, r := range p.Identifiers {
				ids[r.Identifier] = true
			}
		}
		logs, err := pv.store.ProfileLog(ctx, pid)
		if err != nil {
			return nil, fmt.Errorf("read merge log: %w", err)
		}
		h.logs = append(h.logs, logs...)
		for _, l := range logs {
			for _, a := range l.Entry.Actions {
				for _, id := range a.Identifiers {
					if withinLimits(id) {
						ids[id] = true
					}
				}
			}
		}
		evs, err := pv.store.ProfileEvents(ctx, pid)
		if err != nil {
			return nil, fmt.Errorf("read timeline: %w", err)
		}
		h.events = append(h.events, evs...)
	}
	if h.index, err = pv.indexOf(ctx, pids, ids); err != nil {
		return nil, err
	}
	return h, nil
}

// indexOf reads the index entries of ids (strongly consistent) and keeps those naming one of
// the profiles.
func (pv *Privacy) indexOf(ctx context.Context, pids map[string]bool, ids map[Identifier]bool) (map[Identifier]string, error) {
	want := make([]Identifier, 0, len(ids))
	for id := range ids {
		want = append(want, id)
	}
	sort.Slice(want, func(i, j int) bool { return identLess(want[i], want[j]) })
	idx, err := pv.store.Index(ctx, want, true)
	if err != nil {
		return nil, fmt.Errorf("read index: %w", err)
	}
	for id, pid := range idx {
		if !pids[pid] {
			delete(idx, id)
		}
	}
	return idx, nil
}

// startSets are the profile and identifier sets a request's person starts from.
func startSets(p privacy.Person) (map[string]bool, map[Identifier]bool, error) {
	ids, err := parseIdentifiers(p.Identifiers)
	if err != nil {
		return nil, nil, fmt.Errorf("privacy: %w", err)
	}
	idset := map[Identifier]bool{}
	for _, id := range ids {
		idset[id] = true
	}
	pids := map[string]bool{}
	for _, id := range p.Profiles {
		pids[id] = true
	}
	return pids, idset, nil
}

// Export emits everything the identity stage keeps about the person: identifiers (index
// entries), profiles, events (timeline items) and merge_log, in that order.
func (pv *Privacy) Export(ctx context.Context, p privacy.Person, emit func(kind string, item any) error) error {
	pids, ids, err := startSets(p)
	if err != nil {
		return err
	}
	h, err := pv.collect(ctx, pids, ids)
	if err != nil {
		return fmt.Errorf("privacy export: %w", err)
	}
	keys := make([]Identifier, 0, len(h.index))
	for id := range h.index {
		keys = append(keys, id)
	}
	sort.Slice(keys, func(i, j int) bool { return identLess(keys[i], keys[j]) })
	var items []func() error
	for _, id := range keys {
		items = append(items, func() error {
			return emit(KindIdentifiers, IndexExport{Identifier: id.String(), ProfileID: h.index[id]})
		})
	}
	for _, pr := range h.profiles {
		items = append(items, func() error { return emit(KindProfiles, pr) })
	}
	for _, e := range h.events {
		items = append(items, func() error { return emit(KindEvents, e.Event) })
	}
	for _, l := range h.logs {
		items = append(items, func() error { return emit(KindMergeLog, l.Entry) })
	}
	for _, f := range items {
		if err := f(); err != nil {
			return err
		}
	}
	return nil
}

// Erase deletes everything the identity stage keeps about the person and returns how many
// items of each kind it deleted. It lists and deletes in passes until a pass finds nothing and
// started at least Settle after the last deletion (an empty pass before that waits for it): what a processor commits meanwhile, or what
// the eventually consistent timeline index did not show yet, is found by a later pass. Profiles
// go last, each on the condition that it is still at the version read (else the next pass reads
// what changed), so a resumed erasure still finds the identifiers they hold. Each item is
// counted once, however many passes see it. It is idempotent and resumable after a cancel; it
// gives up when ctx ends or after its passes.
func (pv *Privacy) Erase(ctx context.Context, p privacy.Person) (map[string]int, error) {
	pids, ids, err := startSets(p)
	if err != nil {
		return nil, err
	}
	counts := map[string]int{}
	for _, k := range privacyKinds {
		counts[k] = 0
	}
	done := map[ItemKey]bool{}
	var last time.Time // the last deletion (zero: none yet)
	for pass := 0; pass < pv.passes; pass++ {
		start := pv.opt.Now()
		h, err := pv.collect(ctx, pids, ids)
		if err != nil {
			return counts, fmt.Errorf("privacy erase: %w", err)
		}
		if h.empty() {
			left := pv.opt.Settle - start.Sub(last)
			if last.IsZero() || left <= 0 {
				return counts, nil
			}
			if err := backoff.Sleep(ctx, left); err != nil {
				return counts, fmt.Errorf("privacy erase: %w", err)
			}
			continue
		}
		if err := pv.eraseOnce(ctx, h, counts, done); err != nil {
			return counts, fmt.Errorf("privacy erase: %w", err)
		}
		last = pv.opt.Now()
	}
	return counts, fmt.Errorf("privacy erase: items still found after %d passes (a writer keeps adding to the profiles)", pv.passes)
}

// eraseOnce deletes what one pass found: events and merge-log lines, then index entries, then
// profiles (conditioned on their version; a profile changed since it was read is left for the
// next pass). It counts each item the first time it is deleted.
func (pv *Privacy) eraseOnce(ctx context.Context, h *holdings, counts map[string]int, done map[ItemKey]bool) error {
	batches := []struct {
		kind string
		keys []ItemKey
	}{{kind: KindEvents}, {kind: KindMergeLog}, {kind: KindIdentifiers}}
	for _, e := range h.events {
		batches[0].keys = append(batches[0].keys, e.Key)
	}
	for _, l := range h.logs {
		batches[1].keys = append(batches[1].keys, l.Key)
	}
	for id := range h.index {
		batches[2].keys = append(batches[2].keys, indexItemKey(id))
	}
	for _, b := range batches {
		if len(b.keys) == 0 {
			continue
		}
		if err := pv.store.DeleteItems(ctx, b.keys); err != nil {
			return fmt.Errorf("delete %s: %w", b.kind, err)
		}
		countNew(counts, done, b.kind, b.keys)
	}
	for _, p := range h.profiles {
		err := pv.store.DeleteProfile(ctx, p.ID, p.Version)
		switch {
		case errors.Is(err, ErrConflict):
			continue // changed since read: the next pass reads it again
		case err != nil:
			return fmt.Errorf("delete profile: %w", err)
		}
		countNew(counts, done, KindProfiles, []ItemKey{{PK: prefixProfile + p.ID, SK: skProfile}})
	}
	return nil
}

func countNew(counts map[string]int, done map[ItemKey]bool, kind string, keys []ItemKey) {
	for _, k := range keys {
		if !done[k] {
			done[k] = true
			counts[kind]++
		}
	}
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func identifierStrings(m map[Identifier]bool) []string {
	out := make([]string, 0, len(m))
	for id := range m {
		out = append(out, id.String())
	}
	slices.Sort(out)
	return out
}

// ErasedProfiles is the erased-profile side of the privacy block list as the processor sees it
// (blocklist.Checker implements it): an optional port.
type ErasedProfiles interface {
	// Erased reports whether a privacy request erased the profile (recently: the entries
	// expire once nothing about it can still be in flight).
	Erased(ctx context.Context, profileID string) (bool, error)
}

// maxErasedIDs bounds the ids newProfileID tries.
const maxErasedIDs = 8

// newProfileID is the id of a profile a message creates: derived from the message (so a
// retried attempt creates the same id), unless privacy requests erased that id. A message that
// created an erased profile can come again (a redelivery, a record still in the stream, a
// client's resend); its dedupe marker is erased with the profile, so it is planned as new, and
// the derived id would bring the erased profile back. It then takes the next id in a sequence
// derived from the message that is not erased (still the same on every attempt while the
// block list holds the erased id). If the list cannot be read, the id is taken as erased: a
// fresh profile is right either way.
func (pn *planner) newProfileID(source, messageID string) string {
	id := profileIDFor(source, messageID)
	for n := 1; n <= maxErasedIDs && pn.p.opt.Erased != nil; n++ {
		if erased, err := pn.p.opt.Erased.Erased(pn.ctx, id); err == nil && !erased {
			return id
		}
		id = profileIDFor(source, fmt.Sprintf("%s\x00erased\x00%d", messageID, n))
	}
	return id
}
