package segment

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/serverless-cdp/cdp/internal/activations"
	"github.com/serverless-cdp/cdp/internal/privacy"
)

// Privacy: what the segments stage keeps about a profile, for export and erasure (Holder), and
// how an erased profile stays erased. Erasing replaces the profile's state item with a tombstone
// (Erased, no personal data, version+1, expiring after TombstoneTTL): a commit prepared from a
// stale or cached state fails its version condition, and a change record for the profile that
// was still in flight is dropped (counted in Dropped) instead of recreating state, memberships
// or activation records. Tick and backfills skip tombstones.

// Kinds of data the segments stage keeps about a profile (privacy.Holder).
const (
	KindProfileState = "profile_state"        // PSEG#<pid>/STATE: traits, identifiers, consent, computed traits, memberships, accumulators, outbox
	KindOutbox       = "outbox"               // PSEG#<pid>/OUT#<ver>: an outbox item of the layout before v12
	KindMemberships  = "audience_memberships" // AUD#<aud>/M#<pid>
	KindSchedule     = "schedule"             // SEGSCHED#<pid>/NEXT
	KindRegistration = "registrations"        // PSEGIDX#<n>/<pid>
)

// TombstoneTTL is how long an erased profile's tombstone is kept: longer than a record can stay
// in the changes stream (7 days at most).
const TombstoneTTL = 8 * 24 * time.Hour

// HolderName names the segments stage's holder in privacy request results.
const HolderName = "segments"

// PersonalItem is one stored item about a profile, as exported.
type PersonalItem struct {
	Kind  string
	Value any
}

// PersonalStore finds and erases what the stores keep about one profile. Store and MemStore
// implement it (conformance: PersonalDataErased).
type PersonalStore interface {
	// ProfileData returns every item kept about a profile: its state (none for a tombstone)
	// with its outbox, outbox items of the old layout, its membership items in the given
	// audiences and in every audience its state names, its schedule entry and its registry
	// entry.
	ProfileData(ctx context.Context, profileID string, audiences []string) ([]PersonalItem, error)
	// EraseProfile deletes the items ProfileData returns and replaces the state with a
	// tombstone (stored version+1, expiring at expires; also when no state was stored, so that
	// a change still in flight cannot create one). It returns how many items of each kind it
	// deleted (ProfileData's kinds and counts; the tombstone is not counted) and is idempotent.
	EraseProfile(ctx context.Context, profileID string, audiences []string, expires time.Time) (map[string]int, error)
	// AddDropped counts n change records dropped because their profile was erased.
	AddDropped(ctx context.Context, n int) error
	// Dropped returns that count.
	Dropped(ctx context.Context) (int64, error)
}

// ErasedProfiles says whether a profile was erased (the lead wires blocklist.Checker into
// Options.Erased): the handler drops change records of an erased profile before loading its
// state, and never absorbs an erased profile named in MergedFrom.
type ErasedProfiles interface {
	Erased(ctx context.Context, profileID string) (bool, error)
}

// Holder is the segments stage's privacy.Holder.
type Holder struct {
	store interface {
		PersonalStore
		DefinitionStore
	}
	clock func() time.Time
}

var _ privacy.Holder = (*Holder)(nil)

// NewHolder returns the holder over the stage's stores; clock (nil: time.Now) dates tombstones.
func NewHolder(st Stores, clock func() time.Time) *Holder {
	if clock == nil {
		clock = time.Now
	}
	return &Holder{store: st, clock: clock}
}

// Name is "segments".
func (h *Holder) Name() string { return HolderName }

// audiences lists every defined audience: a profile's membership items are among them or
// among the audiences its state names (the store adds those).
func (h *Holder) audiences(ctx context.Context) ([]string, error) {
	ids, _, err := h.definedAudiences(ctx)
	return ids, err
}

// definedAudiences lists every defined audience's id, and each one's key and name by id.
func (h *Holder) definedAudiences(ctx context.Context) ([]string, map[string][2]string, error) {
	defs, err := h.store.LoadDefinitions(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("segments holder: %w", err)
	}
	ids := make([]string, 0, len(defs.Audiences))
	names := make(map[string][2]string, len(defs.Audiences))
	for _, a := range defs.Audiences {
		ids = append(ids, a.ID)
		names[a.ID] = [2]string{a.Key, a.Name}
	}
	return ids, names, nil
}

// Export emits every item kept about each of the person's profiles; memberships name their
// audience's key and name, so the person can read them.
func (h *Holder) Export(ctx context.Context, p privacy.Person, emit func(kind string, item any) error) error {
	auds, names, err := h.definedAudiences(ctx)
	if err != nil {
		return err
	}
	for _, pid := range p.Profiles {
		items, err := h.store.ProfileData(ctx, pid, auds)
		if err != nil {
			return fmt.Errorf("segments holder: export: %w", err)
		}
		for _, it := range items {
			if m, ok := it.Value.(ExportedMembership); ok {
				m.AudienceKey, m.AudienceName = names[m.AudienceID][0], names[m.AudienceID][1]
				it.Value = m
			}
			if err := emit(it.Kind, it.Value); err != nil {
				return err
			}
		}
	}
	return nil
}

// Erase erases every item kept about each of the person's profiles and leaves tombstones.
func (h *Holder) Erase(ctx context.Context, p privacy.Person) (map[string]int, error) {
	auds, err := h.audiences(ctx)
	if err != nil {
		return nil, err
	}
	total := map[string]int{}
	expires := h.clock().Add(TombstoneTTL)
	for _, pid := range p.Profiles {
		n, err := h.store.EraseProfile(ctx, pid, auds, expires)
		if err != nil {
			return total, fmt.Errorf("segments holder: erase: %w", err)
		}
		for k, v := range n {
			total[k] += v
		}
	}
	return total, nil
}

// ExportedState is a profile's state as exported: the state and its unpublished outbox.
type ExportedState struct {
	State  *State               `json:"state"`
	Outbox []activations.Record `json:"outbox,omitempty"`
}

// ExportedMembership is a membership item as exported.
type ExportedMembership struct {
	AudienceID   string    `json:"audienceId"`
	AudienceKey  string    `json:"audienceKey,omitempty"`  // "" for an audience since deleted
	AudienceName string    `json:"audienceName,omitempty"` // likewise
	ProfileID    string    `json:"profileId"`
	EnteredAt    time.Time `json:"enteredAt"`
}

// ExportedSchedule is a schedule entry as exported.
type ExportedSchedule struct {
	ProfileID string `json:"profileId"`
	Next      string `json:"next"` // the minute bucket, UTC
}

// ExportedRegistration is a registry entry as exported.
type ExportedRegistration struct {
	ProfileID string `json:"profileId"`
	Shard     string `json:"shard"`
}

// tombstone is the state an erased profile's item holds.
func tombstone(pid string, ver int64) *State {
	return &State{ProfileID: pid, Ver: ver, Erased: true}
}

// memberAudiences is the union of the given audiences and those a state names, sorted.
func memberAudiences(st *State, audiences []string) []string {
	set := map[string]bool{}
	for _, a := range audiences {
		set[a] = true
	}
	if st != nil {
		for a := range st.Members {
			set[a] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// exportState is the export of a loaded (not erased) state and its outboxes.
func exportState(l *Snapshot) ExportedState {
	e := ExportedState{State: l.State}
	for _, v := range slices.Sorted(maps.Keys(l.Outbox)) {
		e.Outbox = append(e.Outbox, l.Outbox[v]...)
	}
	return e
}

// dropErased counts change records dropped because their profile is erased (no dead letter:
// it would keep personal data). A failure to count is logged, not retried: the records are
// dropped either way.
func (h *Handler) dropErased(ctx context.Context, n int) {
	h.log.Info("segments: change records of an erased profile dropped", "records", n)
	if n == 0 {
		return
	}
	bctx, cancel := h.bookkeeping(ctx)
	defer cancel()
	if err := h.personal.AddDropped(bctx, n); err != nil {
		h.log.Error("segments: counting dropped records failed", "err", err)
	}
}

// tombstoned reports whether a loaded state (nil: none) is an erased profile's tombstone.
func (s *State) tombstoned() bool { return s != nil && s.Erased }

// skipErased handles a tombstone instead of evaluating it: nothing is applied, stored or
// published; its change records are counted as dropped. Items derived from the state that an
// attempt on a stale read may have written before its commit failed (the registry entry a new
// profile gets first) are erased again: the tombstone stays, so this costs a read and two
// deletes, only for records that reach a tombstone.
func (h *Handler) skipErased(ctx context.Context, pid string, m mode) error {
	if m.tick {
		return h.state.Unschedule(ctx, pid)
	}
	if len(m.recs) == 0 {
		return nil
	}
	if _, err := h.personal.EraseProfile(ctx, pid, nil, h.opt.Clock().Add(TombstoneTTL)); err != nil {
		return err
	}
	h.dropErased(ctx, len(m.recs))
	return nil
}

// erased reports whether Options.Erased says a profile was erased (false without it).
func (h *Handler) erased(ctx context.Context, pid string) (bool, error) {
	if h.opt.Erased == nil {
		return false, nil
	}
	gone, err := h.opt.Erased.Erased(ctx, pid)
	if err != nil {
		return false, fmt.Errorf("erased profiles: %w", err)
	}
	return gone, nil
}
