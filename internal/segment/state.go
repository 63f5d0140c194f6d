package segment

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/serverless-cdp/cdp/internal/activations"
	"github.com/serverless-cdp/cdp/internal/change"
	"github.com/serverless-cdp/cdp/internal/consent"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

// Event is the part of a tracked message the segments stage looks at while it applies it (it
// keeps no events: see State.Aggs).
type Event struct {
	ID   string          `json:"i"`
	Type string          `json:"y,omitempty"` // track (also when empty), page, screen, or another message type
	Name string          `json:"n"`           // the track event's name, or the page's or screen's name
	T    time.Time       `json:"t"`
	P    json.RawMessage `json:"p,omitempty"`
	// Stamp is the event's stamp from the change record (nil: a record from before stamps).
	Stamp *change.Stamp `json:"-"`

	decoded map[string]any
	done    bool
}

func (e *Event) props() map[string]any {
	if !e.done {
		e.done = true
		if len(e.P) > 0 {
			_ = json.Unmarshal(e.P, &e.decoded)
		}
	}
	return e.decoded
}

// eventType is the event's type, track when unset (events of the legacy log).
func (e *Event) eventType() string {
	if e.Type == "" {
		return tracking.TypeTrack
	}
	return e.Type
}

// eventOf converts any tracked message: track events by event name, page and screen views by
// name; other types match no filter but are still deduplicated by their stamp.
func eventOf(m *tracking.Message, stamp *change.Stamp) Event {
	e := Event{ID: m.MessageID, Type: m.Type, T: m.Timestamp.UTC(), Stamp: stamp}
	switch m.Type {
	case tracking.TypeTrack:
		e.Name, e.P = m.Event, m.Properties
	case tracking.TypePage, tracking.TypeScreen:
		e.Name, e.P = m.Name, m.Properties
	}
	return e
}

// forwarded reports whether an event is forwarded to destinations (track events).
func (e *Event) forwarded() bool {
	return e.Type == tracking.TypeTrack && e.Name != "" && e.ID != ""
}

// Membership is a profile's standing in one audience.
type Membership struct {
	In        bool      `json:"in"`
	EnteredAt time.Time `json:"enteredAt,omitzero"`
	ExitedAt  time.Time `json:"exitedAt,omitzero"`
	// Seq counts transitions; it makes activation record ids stable.
	Seq int `json:"seq"`
}

// State is everything the segments stage keeps about one profile.
type State struct {
	ProfileID string `json:"profileId"`
	// Ver is the optimistic-locking version of the stored item (0: not stored yet).
	Ver int64 `json:"-"`
	// ChangeVersion is the highest change.Record.Version applied (traits: last write wins).
	ChangeVersion int64                      `json:"changeVersion,omitempty"`
	Traits        map[string]json.RawMessage `json:"traits,omitempty"`
	UserID        string                     `json:"userId,omitempty"`
	AnonymousID   string                     `json:"anonymousId,omitempty"`
	Email         string                     `json:"email,omitempty"`
	// Aggs are the accumulators of the definitions' events, by signature (aggSpec): their size
	// depends on the definitions, not on the profile's history.
	Aggs map[string]*Acc `json:"aggs,omitempty"`
	// Seen says which events were applied, by origin profile of their stamps (change.Stamp).
	Seen map[string]*SeqSet `json:"seen,omitempty"`
	// Recent are the hashes (8 bytes each) of the message ids of the last MaxRecentIDs events
	// applied without a stamp.
	Recent []byte `json:"recent,omitempty"`
	// Legacy is the event log of a state stored before accumulators existed: the accumulators
	// are built from it once (ensureAggs), then it is dropped.
	Legacy   []Event                    `json:"events,omitempty"`
	Computed map[string]json.RawMessage `json:"computed,omitempty"` // by computed trait key
	Members  map[string]*Membership     `json:"members,omitempty"`  // by audience id
	// NextAt is when a windowed definition can next change with no new event (zero: never).
	NextAt time.Time `json:"nextAt,omitzero"`
	// MergedInto is set when this profile was merged into another one.
	MergedInto string `json:"mergedInto,omitempty"`
	// Consent is the profile's consent as the last change record that carried it said
	// (change.Record.Consent); audience and trait activation records carry its preferences.
	Consent *consent.Profile `json:"consent,omitempty"`
	// ConsentVersion is the change.Record.Version that set Consent (last write wins).
	ConsentVersion int64 `json:"consentVersion,omitempty"`
	// Erased marks a tombstone: the profile was erased by a privacy request (privacy.go). A
	// tombstone holds nothing else; changes for the profile are dropped, never applied.
	Erased bool `json:"erased,omitempty"`

	traitsDecoded map[string]any
}

// NewState is the state of a profile never seen before.
func NewState(profileID string) *State {
	return &State{ProfileID: profileID, Computed: map[string]json.RawMessage{}, Members: map[string]*Membership{}}
}

func (s *State) traits() map[string]any {
	if s.traitsDecoded == nil {
		s.traitsDecoded = make(map[string]any, len(s.Traits))
		for k, raw := range s.Traits {
			var v any
			if json.Unmarshal(raw, &v) == nil {
				s.traitsDecoded[k] = v
			}
		}
	}
	return s.traitsDecoded
}

func (s *State) setTraits(t map[string]json.RawMessage) {
	s.Traits = t
	s.traitsDecoded = nil
}

// InAudiences lists the ids of the audiences the profile is in.
func (s *State) InAudiences() []string {
	var ids []string
	for id, m := range s.Members {
		if m.In {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// setConsent keeps the consent a change record carries (nil: unchanged) unless a newer record
// set it already, and reports whether it changed.
func (s *State) setConsent(c *consent.Profile, version int64) bool {
	if c == nil || version < s.ConsentVersion {
		return false
	}
	s.ConsentVersion = version
	old, _ := json.Marshal(s.Consent)
	cur, _ := json.Marshal(c)
	s.Consent = c
	return !bytes.Equal(old, cur)
}

func encodeState(s *State) ([]byte, error) {
	b, err := gzipJSON(s)
	if err != nil {
		return nil, fmt.Errorf("encode state: %w", err)
	}
	return b, nil
}

func decodeState(b []byte, ver int64) (*State, error) {
	s := &State{}
	if err := gunzipJSON(b, s); err != nil {
		return nil, fmt.Errorf("decode state: %w", err)
	}
	if s.Computed == nil {
		s.Computed = map[string]json.RawMessage{}
	}
	if s.Members == nil {
		s.Members = map[string]*Membership{}
	}
	s.Ver = ver
	for _, e := range s.Legacy {
		if e.ID != "" {
			s.markApplied(nil, e.ID)
		}
	}
	return s, nil
}

// stamp fills the identifier fields of an activation record and, for audience and trait
// records, the profile's consent preferences (a forwarded event is checked against its own).
func (s *State) stamp(r activations.Record) activations.Record {
	r.ProfileID, r.UserID, r.AnonymousID, r.Email = s.ProfileID, s.UserID, s.AnonymousID, s.Email
	if r.Kind != activations.KindEvent {
		r.Consent = s.Consent.Preferences()
	}
	return r
}
