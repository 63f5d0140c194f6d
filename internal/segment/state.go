package segment

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/serverless-cdp/cdp/internal/activations"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

// Retention of a profile's event log (see State.Events).
const (
	DefaultMaxEvents = 2000
	DefaultMaxAge    = 400 * 24 * time.Hour
)

// Event is the part of a track event the segments stage keeps.
type Event struct {
	ID   string          `json:"i"`
	Name string          `json:"n"`
	T    time.Time       `json:"t"`
	P    json.RawMessage `json:"p,omitempty"`

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

// EventFrom converts a tracked message; ok is false for messages that are not track events.
func EventFrom(m *tracking.Message) (Event, bool) {
	if m.Type != tracking.TypeTrack || m.Event == "" || m.MessageID == "" {
		return Event{}, false
	}
	return Event{ID: m.MessageID, Name: m.Event, T: m.Timestamp.UTC(), P: m.Properties}, true
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
	// Events are the profile's track events, oldest first, deduplicated by message id, at most
	// DefaultMaxEvents and DefaultMaxAge (older ones are dropped, so all-time aggregates count
	// what is retained).
	Events   []Event                    `json:"events,omitempty"`
	Computed map[string]json.RawMessage `json:"computed,omitempty"` // by computed trait key
	Members  map[string]*Membership     `json:"members,omitempty"`  // by audience id
	// NextAt is when a windowed definition can next change with no new event (zero: never).
	NextAt time.Time `json:"nextAt,omitzero"`
	// MergedInto is set when this profile was merged into another one.
	MergedInto string `json:"mergedInto,omitempty"`

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

// hasEvent reports whether a message id is already in the log.
func (s *State) hasEvent(id string) bool {
	for i := len(s.Events) - 1; i >= 0; i-- {
		if s.Events[i].ID == id {
			return true
		}
	}
	return false
}

// addEvents inserts new events (skipping known message ids) and returns those added.
func (s *State) addEvents(evs []Event) []Event {
	var added []Event
	seen := map[string]bool{}
	for _, e := range evs {
		if seen[e.ID] || s.hasEvent(e.ID) {
			continue
		}
		seen[e.ID] = true
		added = append(added, e)
	}
	if len(added) == 0 {
		return nil
	}
	s.Events = append(s.Events, added...)
	sortEvents(s.Events)
	return added
}

func sortEvents(evs []Event) {
	sort.SliceStable(evs, func(i, j int) bool {
		if !evs[i].T.Equal(evs[j].T) {
			return evs[i].T.Before(evs[j].T)
		}
		return evs[i].ID < evs[j].ID
	})
}

// trim applies the retention limits.
func (s *State) trim(now time.Time, maxEvents int, maxAge time.Duration) {
	cut := 0
	for cut < len(s.Events) && now.Sub(s.Events[cut].T) > maxAge {
		cut++
	}
	if len(s.Events)-cut > maxEvents {
		cut = len(s.Events) - maxEvents
	}
	if cut > 0 {
		s.Events = append([]Event(nil), s.Events[cut:]...)
	}
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

func encodeState(s *State) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzipWriter(&buf)
	defer releaseGzip(zw)
	if err := json.NewEncoder(zw).Encode(s); err != nil {
		return nil, fmt.Errorf("encode state: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("encode state: %w", err)
	}
	return buf.Bytes(), nil
}

func decodeState(b []byte, ver int64) (*State, error) {
	zr, err := gzipReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("decode state: %w", err)
	}
	defer releaseGunzip(zr)
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("decode state: %w", err)
	}
	s := &State{}
	if err := json.Unmarshal(raw, s); err != nil {
		return nil, fmt.Errorf("decode state: %w", err)
	}
	if s.Computed == nil {
		s.Computed = map[string]json.RawMessage{}
	}
	if s.Members == nil {
		s.Members = map[string]*Membership{}
	}
	s.Ver = ver
	return s, nil
}

// identity fills the identifier fields of an activation record.
func (s *State) stamp(r activations.Record) activations.Record {
	r.ProfileID, r.UserID, r.AnonymousID, r.Email = s.ProfileID, s.UserID, s.AnonymousID, s.Email
	return r
}
