package segment

import (
	"bytes"
	"crypto/sha256"

	"github.com/serverless-cdp/cdp/internal/change"
)

// Bounds of the dedupe map (see README, "Computed traits").
const (
	// MaxGaps bounds the sequence numbers below an origin's highest one not seen yet (events
	// published out of order). Past it the oldest gaps are forgotten: such an event, arriving
	// later still, is not counted.
	MaxGaps = 1000
	// MaxRecentIDs bounds the message-id hashes kept for events that carry no stamp (change
	// records written before stamps existed, the upgrade path).
	MaxRecentIDs = 256
)

// SeqSet is what a profile's state knows of one origin's sequence numbers (change.Stamp): every
// number up to High was applied, except Gaps (ascending).
type SeqSet struct {
	High int64   `json:"h"`
	Gaps []int64 `json:"g,omitempty"`
}

func (s *SeqSet) gap(seq int64) int {
	for i, g := range s.Gaps {
		if g == seq {
			return i
		}
	}
	return -1
}

// covers reports whether the event of seq was applied.
func (s *SeqSet) covers(seq int64) bool {
	return s != nil && seq <= s.High && s.gap(seq) < 0
}

// mark records seq as applied; it reports false when it already was.
func (s *SeqSet) mark(seq int64) bool {
	switch {
	case seq > s.High:
		from := max(s.High+1, seq-MaxGaps)
		for g := from; g < seq; g++ {
			s.Gaps = append(s.Gaps, g)
		}
		if over := len(s.Gaps) - MaxGaps; over > 0 {
			s.Gaps = append(s.Gaps[:0], s.Gaps[over:]...)
		}
		s.High = seq
		return true
	case seq <= 0:
		return false
	}
	i := s.gap(seq)
	if i < 0 {
		return false
	}
	s.Gaps = append(s.Gaps[:i], s.Gaps[i+1:]...)
	return true
}

// valid reports whether a stamp can be used.
func valid(s *change.Stamp) bool { return s != nil && s.Profile != "" && s.Seq > 0 }

// markApplied records an event as applied and reports whether it is new: by its stamp, or (no
// stamp) by its message id among the last MaxRecentIDs unstamped ones. A stamped event whose
// message id is among those was applied before stamps existed.
func (s *State) markApplied(stamp *change.Stamp, messageID string) bool {
	h := idHash(messageID)
	before := messageID != "" && s.recent(h)
	if !valid(stamp) {
		if messageID == "" || before {
			return messageID == ""
		}
		s.Recent = append(s.Recent, h...)
		if over := len(s.Recent) - MaxRecentIDs*8; over > 0 {
			s.Recent = append(s.Recent[:0], s.Recent[over:]...)
		}
		return true
	}
	if s.Seen == nil {
		s.Seen = map[string]*SeqSet{}
	}
	set := s.Seen[stamp.Profile]
	if set == nil {
		set = &SeqSet{}
		s.Seen[stamp.Profile] = set
	}
	return set.mark(stamp.Seq) && !before
}

// markVoid records a stamp that carries no event (change.Record.Void: identity allocated it to
// an event that turned out to be stored already) as seen, so it leaves no gap in the dedupe
// map; nothing is counted. It reports whether the stamp was new.
func (s *State) markVoid(stamp change.Stamp) bool {
	return valid(&stamp) && s.markApplied(&stamp, "")
}

// covers reports whether an event with this stamp was applied (a backfill counts only those).
func (s *State) covers(stamp change.Stamp) bool {
	return valid(&stamp) && s.Seen[stamp.Profile].covers(stamp.Seq)
}

// coversAny reports whether any stamped event was applied (else a backfill has nothing to count).
func (s *State) coversAny() bool {
	for _, set := range s.Seen {
		if set.High > int64(len(set.Gaps)) {
			return true
		}
	}
	return false
}

func (s *State) recent(h []byte) bool {
	for i := 0; i+8 <= len(s.Recent); i += 8 {
		if bytes.Equal(s.Recent[i:i+8], h) {
			return true
		}
	}
	return false
}

func idHash(id string) []byte {
	h := sha256.Sum256([]byte(id))
	return h[:8]
}

// absorbSeen moves a merged profile's dedupe map into the survivor's.
func (s *State) absorbSeen(gone *State) {
	for origin, g := range gone.Seen {
		if s.Seen == nil {
			s.Seen = map[string]*SeqSet{}
		}
		set := s.Seen[origin]
		if set == nil {
			s.Seen[origin] = &SeqSet{High: g.High, Gaps: append([]int64(nil), g.Gaps...)}
			continue
		}
		s.Seen[origin] = unionSeq(set, g)
	}
	for i := 0; i+8 <= len(gone.Recent); i += 8 {
		if !s.recent(gone.Recent[i : i+8]) {
			s.Recent = append(s.Recent, gone.Recent[i:i+8]...)
		}
	}
	if over := len(s.Recent) - MaxRecentIDs*8; over > 0 {
		s.Recent = append(s.Recent[:0], s.Recent[over:]...)
	}
}

// unionSeq is the set of sequence numbers applied in either set.
func unionSeq(a, b *SeqSet) *SeqSet {
	if a.High < b.High {
		a, b = b, a
	}
	out := &SeqSet{High: a.High}
	for _, g := range a.Gaps {
		if !b.covers(g) {
			out.Gaps = append(out.Gaps, g)
		}
	}
	return out
}

// How the events applied to two states relate.
const (
	overlapNone = iota // disjoint
	overlapSome        // some applied to both
	overlapAll         // every event of the other was applied here too
)

// overlap compares the events applied to o with those applied to s (by stamp; unstamped
// events, by the message ids kept).
func (s *State) overlap(o *State) int {
	some, all := false, true
	for origin, set := range o.Seen {
		sm, al := seqOverlap(s.Seen[origin], set)
		some, all = some || sm, all && al
	}
	for i := 0; i+8 <= len(o.Recent); i += 8 {
		if s.recent(o.Recent[i : i+8]) {
			some = true
		} else {
			all = false
		}
	}
	switch {
	case !some:
		return overlapNone
	case all:
		return overlapAll
	}
	return overlapSome
}

// seqOverlap says whether some and whether all of the numbers o covers are covered by mine
// (each has at most MaxGaps gaps, so a few thousand numbers tell).
func seqOverlap(mine, o *SeqSet) (some, all bool) {
	if mine == nil {
		return false, o.High <= int64(len(o.Gaps))
	}
	lim := min(mine.High, o.High)
	for seq := lim; seq >= max(1, lim-2*MaxGaps-1) && !some; seq-- {
		some = mine.covers(seq) && o.covers(seq)
	}
	if o.High-mine.High > MaxGaps {
		return some, false
	}
	for seq := mine.High + 1; seq <= o.High; seq++ {
		if o.covers(seq) {
			return some, false
		}
	}
	for _, g := range mine.Gaps {
		if o.covers(g) {
			return some, false
		}
	}
	return some, true
}

// absorbAggs adds a merged profile's accumulators to the survivor's. An accumulator only one of
// them has is kept when the other has applied no event, else dropped (ensureAggs rebuilds it
// from the timeline of both); all are dropped when some of gone's events were applied to the
// survivor too (a profile revived by a late record and merged again), and none is added when
// all were.
func (s *State) absorbAggs(gone *State) {
	switch s.overlap(gone) {
	case overlapAll:
		return
	case overlapSome:
		s.Aggs = nil
		return
	}
	survEmpty, goneEmpty := s.appliedNone(), gone.appliedNone()
	for sig, sa := range s.Aggs {
		if ga := gone.Aggs[sig]; ga != nil {
			sa.merge(ga)
		} else if !goneEmpty {
			delete(s.Aggs, sig)
		}
	}
	if !survEmpty {
		return
	}
	for sig, ga := range gone.Aggs {
		if s.Aggs[sig] == nil {
			s.acc(sig).merge(ga)
		}
	}
}

// appliedNone reports whether no event was applied to the state.
func (s *State) appliedNone() bool {
	return !s.coversAny() && len(s.Recent) == 0 && len(s.Legacy) == 0
}
