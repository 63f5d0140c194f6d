package identity

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/serverless-cdp/cdp/internal/change"
	"github.com/serverless-cdp/cdp/internal/timeline"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

// The ports of this package: what the Processor and the Handler need from storage. Store is
// the DynamoDB adapter; MemStore the in-memory implementation (for tests without emulators).
// One conformance suite (store_conformance_test.go) runs against both.

// GraphStore holds the identity graph, the profiles and the timelines. Reads may be
// eventually consistent unless consistent is set.
type GraphStore interface {
	// Markers returns the dedupe markers of the messages among refs already processed. With
	// legacy, markers written before dedupe was per source (keyed by messageId alone) count
	// too, for a message of the same source (or any source if the marker names none).
	Markers(ctx context.Context, refs []MessageRef, consistent, legacy bool) (map[MessageRef]Marker, error)
	// Index returns the profile id each identifier's index entry names (absent: not indexed).
	Index(ctx context.Context, ids []Identifier, consistent bool) (map[Identifier]string, error)
	// Profiles returns the stored profiles with these ids (merged-away ones included, as
	// pointers; unknown ids absent), each with its Version.
	Profiles(ctx context.Context, ids []string, consistent bool) (map[string]*Profile, error)
	// Commit writes one component atomically: each profile conditioned on the version read
	// (Version 0: must not exist yet) and stored with Version+1; each new index entry and each
	// event (timeline item and dedupe marker) conditioned on not existing. A failed condition
	// returns an error wrapping ErrConflict and writes nothing; so does an error wrapping
	// ErrRefused when the store cannot hold what the commit holds (an item too large).
	Commit(ctx context.Context, c *Commit) error
	// Append writes a commit of exactly one stored profile (Version > 0) and events, with no
	// index entries and no merge-log lines, as single-item writes instead of a transaction
	// (half the write units): first the profile, conditioned on the version read (a failed
	// condition returns an error wrapping ErrConflict and writes nothing; so does ErrRefused
	// when an item of the commit is more than the store can hold), then each event,
	// conditioned on not existing. It returns one outcome per event, in c.Events' order; the
	// profile is written when the error is nil.
	Append(ctx context.Context, c *Commit) ([]Appended, error)
}

// Appended is the outcome of one event put of GraphStore.Append: stored (Dup and Err nil),
// found stored already (Dup: its marker, with the stamp it was stored with), or failed (Err;
// Unwritten if the store certainly wrote nothing, e.g. the request was throttled or refused,
// else the event may or may not be stored).
type Appended struct {
	Dup       *Marker
	Err       error
	Unwritten bool
}

// appendable reports whether a commit may take GraphStore.Append: one stored profile, events,
// nothing else.
func appendable(c *Commit) bool {
	return len(c.Profiles) == 1 && c.Profiles[0].Version > 0 && len(c.IDs) == 0 && len(c.Logs) == 0 && len(c.Events) > 0
}

// errNotAppendable is Append's answer to a commit that must be a transaction.
var errNotAppendable = errors.New("identity: append: the commit needs a transaction (not one stored profile and events only)")

// AttemptCounter counts the failed processing attempts of a message (kept a week).
type AttemptCounter interface {
	// Attempts returns how many attempts of a message have failed so far.
	Attempts(ctx context.Context, sourceID, messageID string) (int, error)
	// CountAttempt increments and returns the failure count of a message.
	CountAttempt(ctx context.Context, sourceID, messageID string) (int, error)
}

// ErrConflict means a condition of a commit failed: another writer changed what this one read
// (the records are re-planned).
var ErrConflict = errors.New("identity: concurrent change, retry")

// ErrRefused means the store refused a request for what it holds (a key too long, an item too
// large, an invalid value): retrying the same records can never succeed.
var ErrRefused = errors.New("identity: refused by the store")

func isRefused(err error) bool { return errors.Is(err, ErrRefused) }

// MessageRef identifies a message: messageId is unique within a source (as Segment scopes
// it), so the same id from two sources is two events.
type MessageRef struct{ Source, ID string }

func refOf(r *tracking.Record) MessageRef {
	return MessageRef{Source: r.SourceID, ID: r.Message.MessageID}
}

// hash is the fixed-length form of a message reference used in keys, so a key is always valid.
func (r MessageRef) hash() string { return timeline.MessageHash(r.Source, r.ID) }

// Marker is the dedupe marker of a processed message: the timeline item it wrote.
type Marker struct {
	Profile string            // the profile the message went to (follow merges for the survivor)
	Msg     *tracking.Message // the event as stored; nil if it cannot be decoded
	// Seq is the event's sequence number in Profile's events (its stamp is {Profile, Seq});
	// 0 for an event stored before stamps existed.
	Seq int64
}

// Commit is the atomic write of one component of a batch: the profiles it changes (conditioned
// on the versions read), new identifier index entries, the events (timeline and dedupe marker
// in one item) and merge log lines.
type Commit struct {
	Profiles []*Profile
	IDs      map[Identifier]string
	Events   []StoredEvent
	Logs     []LogEntry
}

// Page asks for the newest items older than the cursor Next (opaque; "" for the first page).
type Page struct {
	Limit int
	Next  string
}

// CursorError is a `next` value this store did not issue.
type CursorError struct{}

func (*CursorError) Error() string { return "invalid paging cursor" }

// maxMergeChain bounds how many merge pointers a read follows.
const maxMergeChain = 64

// loadProfiles reads profiles by id into `into` and follows merge pointers until every
// survivor is loaded.
func loadProfiles(ctx context.Context, g GraphStore, into map[string]*Profile, ids []string, consistent bool) error {
	want := ids
	for round := 0; len(want) > 0; round++ {
		if round > maxMergeChain {
			return fmt.Errorf("load profiles: merge pointers form a chain longer than %d", maxMergeChain)
		}
		var next []string
		seen := map[string]bool{}
		for _, id := range want {
			if _, ok := into[id]; !ok && !seen[id] {
				seen[id] = true
				next = append(next, id)
			}
		}
		if len(next) == 0 {
			return nil
		}
		got, err := g.Profiles(ctx, next, consistent)
		if err != nil {
			return fmt.Errorf("load profiles: %w", err)
		}
		want = nil
		for _, p := range got {
			into[p.ID] = p
			if p.MergedInto != "" {
				want = append(want, p.MergedInto)
			}
		}
	}
	return nil
}

// follow returns the live profile id leads to through merge pointers; nil if unknown.
func follow(ps map[string]*Profile, id string) *Profile {
	for i := 0; i < 100; i++ {
		p, ok := ps[id]
		if !ok {
			return nil
		}
		if p.MergedInto == "" {
			return p
		}
		id = p.MergedInto
	}
	return nil
}

// readProfile returns the live profile with this id, following merge pointers; nil if unknown.
func readProfile(ctx context.Context, g GraphStore, id string) (*Profile, error) {
	ps := map[string]*Profile{}
	if err := loadProfiles(ctx, g, ps, []string{id}, false); err != nil {
		return nil, err
	}
	return follow(ps, id), nil
}

// lookup returns the live profile holding an identifier; nil if none does.
func lookup(ctx context.Context, g GraphStore, id Identifier) (*Profile, error) {
	idx, err := g.Index(ctx, []Identifier{id}, false)
	if err != nil {
		return nil, fmt.Errorf("load identifiers: %w", err)
	}
	pid, ok := idx[id]
	if !ok {
		return nil, nil
	}
	return readProfile(ctx, g, pid)
}

// sortTime formats a time with fixed width so that it sorts lexically.
func sortTime(t time.Time) string { return timeline.SortTime(t) }

// eventSortKey orders a profile's timeline (gsi1sk of timeline items).
func eventSortKey(e StoredEvent) string { return timeline.SortKey(timelineEvent(&e)) }

// logSortKey orders a profile's merge log (sk of merge log items).
func logSortKey(l LogEntry) string { return prefixLog + sortTime(l.At) + "#" + l.MessageID }

// sorted is a timeline or merge log entry with its sort key.
type sorted[T any] struct {
	key string
	val T
}

// defaultPageLimit is the page size when none is asked for.
const defaultPageLimit = 10

// pageBounds returns the page size and the sort key before which a page starts ("" for the
// first page); a cursor that does not name an item of this kind is a *CursorError.
func pageBounds(page Page, prefix string) (int, string, error) {
	limit := page.Limit
	if limit <= 0 {
		limit = defaultPageLimit
	}
	if page.Next == "" {
		return limit, "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(page.Next)
	if err != nil || !strings.HasPrefix(string(b), prefix) {
		return 0, "", &CursorError{}
	}
	return limit, string(b), nil
}

// newestPage merges the entries of several partitions newest (largest sort key) first and
// cuts a page of limit entries; the cursor names the last one if more remain.
func newestPage[T any](all []sorted[T], limit int) ([]T, string) {
	sort.SliceStable(all, func(i, j int) bool { return all[i].key > all[j].key })
	next := ""
	if len(all) > limit {
		all = all[:limit]
		next = base64.RawURLEncoding.EncodeToString([]byte(all[limit-1].key))
	}
	out := make([]T, len(all))
	for i, e := range all {
		out[i] = e.val
	}
	return out, next
}

// LogEntry is one line of a profile's merge log: what one message did to the identity graph.
type LogEntry struct {
	At        time.Time `json:"at"`
	MessageID string    `json:"messageId"`
	ProfileID string    `json:"profileId"` // the profile the message went to
	Actions   []Action  `json:"actions"`
}

// Action kinds in the merge log.
const (
	ActionCreate  = "create"  // a new profile with these identifiers
	ActionAttach  = "attach"  // identifiers added to an existing profile
	ActionMerge   = "merge"   // profiles merged into the target
	ActionDrop    = "drop"    // an identifier left out because a limit would break
	ActionBlocked = "blocked" // an identifier ignored because its value is blocked
	ActionRefused = "refused" // trait updates not applied (Traits names them), e.g. for the trait budget
)

// Action is one decision: which identifiers, which profiles, which rule.
type Action struct {
	Kind        string       `json:"kind"`
	Identifiers []Identifier `json:"identifiers,omitempty"`
	Profiles    []string     `json:"profiles,omitempty"`
	// Traits are the trait keys a refused action concerns.
	Traits []string `json:"traits,omitempty"`
	Rule   string   `json:"rule,omitempty"`
}

// StoredEvent is a timeline item.
type StoredEvent struct {
	ProfileID string           `json:"profileId"`
	SourceID  string           `json:"sourceId"`
	Message   tracking.Message `json:"message"`
	Expires   time.Time        `json:"expires"`
	// Seq is the event's number in ProfileID's dense event sequence: its change.Stamp is
	// {ProfileID, Seq}. 0 for an event stored before stamps existed.
	Seq int64 `json:"seq,omitempty"`
}

// Stamp is the stamp of a stored event (see change.Stamp).
func (e StoredEvent) Stamp() change.Stamp { return change.Stamp{Profile: e.ProfileID, Seq: e.Seq} }

// Suppressions is the suppression list as the identity stage sees it (blocklist.Checker): an
// optional port of the Handler. A record carrying a suppressed identifier is dropped before any
// store call and counted per source.
type Suppressions interface {
	// Suppressed reports whether any of the identifiers ("type:value", Identifier.String()) is
	// suppressed. An error means the list could not be read: the caller retries its records
	// (never treats them as not suppressed).
	Suppressed(ctx context.Context, identifiers []string) (bool, error)
	// CountDropped adds n to the count of records of source dropped as suppressed.
	CountDropped(ctx context.Context, source string, n int64) error
}

// MessageIdentifiers are the identifiers ("type:value", normalized) a message carries: those it
// would be resolved by, and an alias's previousId under both types it may have. Suppression,
// the archive's privacy holder and replay match messages to people with it.
func MessageIdentifiers(m *tracking.Message) []string {
	e := Extract(m)
	out := make([]string, 0, len(e.IDs)+2)
	for _, id := range e.IDs {
		out = append(out, id.String())
	}
	if e.PreviousID != "" {
		out = append(out, NewIdentifier(TypeUserID, e.PreviousID).String(), NewIdentifier(TypeAnonymousID, e.PreviousID).String())
	}
	return out
}
