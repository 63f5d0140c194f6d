package segment

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/serverless-cdp/cdp/internal/change"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

// History is the timeline the identity stage keeps (internal/timeline.Reader): the segments
// stage reads it to build the accumulators of a definition created or edited after a profile's
// state (a backfill), and for previews. It sees what identity retains (identity.DefaultRetention).
type History interface {
	// Events calls fn with the retained timeline events of a profile and of every profile
	// merged into it (any order), each with its stamp.
	Events(ctx context.Context, profileID string, fn func(m *tracking.Message, s change.Stamp) error) error
}

// addEvents builds the accumulators the profile lacks (ensureAggs), then applies the new events:
// each event once (by its stamp, see State.markApplied), to every accumulator whose filter it
// matches. It returns the catalog (reloaded if the state holds accumulators it does not know),
// the new events, and whether accumulators were built (every definition must be evaluated).
func (h *Handler) addEvents(ctx context.Context, cat *Catalog, st *State, evs []Event, now time.Time) (*Catalog, []Event, bool, error) {
	// A stale catalog would not count new events in accumulators a newer one created.
	cat, err := h.fresh(ctx, cat, st)
	if err != nil {
		return nil, nil, false, err
	}
	built, err := cat.ensureAggs(ctx, st, h.opt.History, now)
	if err != nil {
		return nil, nil, false, err
	}
	return cat, cat.addEvents(st, evs, now), built, nil
}

// addEvents applies events not applied before to the accumulators and returns them.
func (c *Catalog) addEvents(st *State, evs []Event, now time.Time) []Event {
	var added []Event
	for i := range evs {
		e := &evs[i]
		if !st.markApplied(e.Stamp, e.ID) {
			continue
		}
		added = append(added, *e)
		for _, s := range c.specsFor(e) {
			st.acc(s.sig).add(s, e, now)
		}
	}
	return added
}

// specsFor are the accumulators an event counts in.
func (c *Catalog) specsFor(e *Event) []*aggSpec {
	t := e.eventType()
	var out []*aggSpec
	keys := []string{evKey(t, e.Name), evKey(t, "*")}
	if e.Name == "*" {
		keys = keys[:1]
	}
	for _, k := range keys {
		for _, s := range c.specsByEvent[k] {
			if s.matches(e) {
				out = append(out, s)
			}
		}
	}
	return out
}

// acc returns the accumulator of a signature, creating it.
func (s *State) acc(sig string) *Acc {
	if s.Aggs == nil {
		s.Aggs = map[string]*Acc{}
	}
	a := s.Aggs[sig]
	if a == nil {
		a = &Acc{}
		s.Aggs[sig] = a
	}
	return a
}

// ensureAggs builds the accumulators of the catalog the state lacks (definitions created or
// edited since, or dropped by a merge) from the events already applied: the legacy event log of
// a state stored before accumulators existed, and the timeline events whose stamps the dedupe
// map covers, or (events applied without a stamp, the upgrade path) whose message ids it keeps;
// the others are still to come through the stream, and will be counted then. It reports
// whether it built any.
func (c *Catalog) ensureAggs(ctx context.Context, st *State, hist History, now time.Time) (bool, error) {
	var missing []*aggSpec
	for sig, s := range c.specs {
		if st.Aggs[sig] == nil {
			missing = append(missing, s)
		}
	}
	legacy := st.Legacy
	st.Legacy = nil
	if len(missing) == 0 {
		return legacy != nil, nil
	}
	for _, s := range missing {
		st.acc(s.sig)
	}
	count := func(e *Event) {
		for _, s := range missing {
			if s.matches(e) {
				st.Aggs[s.sig].add(s, e, now)
			}
		}
	}
	fromLog := make(map[string]bool, len(legacy))
	for i := range legacy {
		fromLog[legacy[i].ID] = true
		count(&legacy[i])
	}
	if hist == nil || !st.coversAny() && len(st.Recent) == 0 {
		return true, nil
	}
	type key struct {
		s  change.Stamp
		id string
	}
	seen := map[key]bool{}
	err := hist.Events(ctx, st.ProfileID, func(m *tracking.Message, stamp change.Stamp) error {
		k := key{stamp, m.MessageID}
		if seen[k] || fromLog[m.MessageID] || !st.covers(stamp) && !st.recent(idHash(m.MessageID)) {
			return nil
		}
		seen[k] = true
		e := eventOf(m, &stamp)
		count(&e)
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("backfill %s from the timeline: %w", st.ProfileID, err)
	}
	return true, nil
}

// MemHistory is an in-memory History for tests: events by profile, and merges.
type MemHistory struct {
	mu     sync.Mutex
	events map[string][]histEvent
	merged map[string][]string // survivor → profiles merged into it
}

type histEvent struct {
	m     tracking.Message
	stamp change.Stamp
}

// NewMemHistory returns an empty history.
func NewMemHistory() *MemHistory {
	return &MemHistory{events: map[string][]histEvent{}, merged: map[string][]string{}}
}

// Add keeps an event on a profile's timeline.
func (h *MemHistory) Add(profileID string, m tracking.Message, s change.Stamp) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events[profileID] = append(h.events[profileID], histEvent{m, s})
}

// Merge records that from was merged into into.
func (h *MemHistory) Merge(into, from string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.merged[into] = append(h.merged[into], from)
}

// Events implements History.
func (h *MemHistory) Events(ctx context.Context, profileID string, fn func(m *tracking.Message, s change.Stamp) error) error {
	h.mu.Lock()
	var list []histEvent
	seen := map[string]bool{}
	var walk func(p string)
	walk = func(p string) {
		if seen[p] {
			return
		}
		seen[p] = true
		list = append(list, h.events[p]...)
		for _, q := range h.merged[p] {
			walk(q)
		}
	}
	walk(profileID)
	h.mu.Unlock()
	for i := range list {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(&list[i].m, list[i].stamp); err != nil {
			return err
		}
	}
	return nil
}
