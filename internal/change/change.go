// Package change is the record format of the `changes` Kinesis stream: what the identity stage
// tells the segments stage about every profile it touched.
//
// The identity stage emits exactly one Record per surviving profile touched per Kinesis batch
// (split into numbered parts only if the record would exceed the stream's record size of 1 MiB:
// the first part carries the profile state and the events that fit, the others only
// ProfileID, Version and events), with the partition key set to ProfileID, so all changes of
// one profile stay in order on one shard.
// Delivery is at-least-once: a consumer dedupes events by their Stamps (or by source and
// Message.MessageID) and treats Traits/Identifiers as the current state (last write wins by
// Version). A re-emitted event (a redelivery) carries its original stamp; an event committed
// before stamps existed is re-emitted with Seq 0 (it was sent in its original record then).
// A stamp the identity stage allocated for an event that turned out to be stored already is
// sent in Void, so a consumer that tracks sequence numbers can close that gap; a stamp allocated
// by a write that crashed before storing its event is never sent, and stays a gap.
package change

import (
	"encoding/json"
	"time"

	"github.com/serverless-cdp/cdp/internal/consent"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

// Identifier is one identity of a profile, e.g. {user_id, abc} or {email, a@b.c}.
type Identifier struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// Record describes what one identity batch did to one profile.
type Record struct {
	// ProfileID is the surviving profile (after any merges in this batch).
	ProfileID string `json:"profileId"`
	// Version is the profile's stored version after this batch; a higher version is newer.
	Version int64 `json:"version"`
	// Created is true when the profile did not exist before this batch.
	Created bool `json:"created,omitempty"`
	// MergedFrom lists profiles merged into ProfileID in this batch (and those that had been
	// merged into them). They no longer exist as separate profiles: a consumer moves their
	// state (audience membership, computed traits) to ProfileID.
	MergedFrom []string `json:"mergedFrom,omitempty"`
	// ChangedTraits are the traits whose value changed in this batch, with their new values.
	ChangedTraits map[string]json.RawMessage `json:"changedTraits,omitempty"`
	// Traits are all of the profile's current traits, so consumers need not read the profile.
	// They are present only when they changed in this batch (ChangedTraits), the profile was
	// created or absorbed others (MergedFrom), or the record re-emits messages processed before
	// (a redelivery); otherwise they are null and a consumer keeps its own copy ({} means the
	// profile has no traits). A profile's traits are bounded (identity.MaxTraitBytes).
	Traits map[string]json.RawMessage `json:"traits"`
	// Identifiers are all of the profile's current identifiers (omitted in parts after the first).
	Identifiers []Identifier `json:"identifiers,omitempty"`
	// AddedIdentifiers are the identifiers that became part of the profile in this batch
	// (attached, or brought in by a merge).
	AddedIdentifiers []Identifier `json:"addedIdentifiers,omitempty"`
	// Consent is the profile's consent (per category the newest preference by event time) when
	// it changed in this batch or Traits are present; nil otherwise (a consumer keeps its own
	// copy). A profile with no preferences has none.
	Consent *consent.Profile `json:"consent,omitempty"`
	// Events are the messages this batch attributed to the profile, oldest first. A record split
	// into parts carries each event in exactly one part.
	Events []tracking.Message `json:"events,omitempty"`
	// Stamps[i] is the stamp of Events[i]: consumers that keep aggregates instead of events
	// dedupe by it (see Stamp). Absent in records written before stamps existed.
	Stamps []Stamp `json:"stamps,omitempty"`
	// Void lists stamps the identity stage allocated that carry no event (the event turned
	// out to be stored already): a consumer marks them seen without counting anything. They
	// are sent in the first part of a split record.
	Void []Stamp `json:"void,omitempty"`
	// Part and Parts number the pieces of a record split for size (1-based; both 1 if whole).
	Part  int `json:"part"`
	Parts int `json:"parts"`
	// EmittedAt is when the identity stage wrote the record.
	EmittedAt time.Time `json:"emittedAt"`
}

// Stamp identifies one stored event for consumers that dedupe without keeping events: the
// profile whose timeline the event was committed to (the survivor at that commit; it stays the
// same when the event is re-emitted later, even after that profile was merged away) and the
// event's sequence number in that profile's events. Sequence numbers are dense per profile:
// 1, 2, 3, … with every committed event taking the next one, so a consumer can keep "highest
// seen" plus the few gaps below it (events published out of order) instead of message ids.
type Stamp struct {
	Profile string `json:"p"`
	Seq     int64  `json:"s"`
}
