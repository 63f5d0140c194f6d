package identity

import (
	"bytes"
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"sort"
	"strings"
	"time"

	"github.com/serverless-cdp/cdp/internal/consent"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

// ProfileIDPrefix starts every profile id (Segment's ids look alike: use_…).
const ProfileIDPrefix = "use_"

// Profile is one person as the identity graph knows them. A profile merged into another keeps
// only MergedInto (a pointer to the survivor) and is otherwise empty.
type Profile struct {
	ID         string   `json:"id"`
	MergedInto string   `json:"mergedInto,omitempty"`
	MergedFrom []string `json:"mergedFrom,omitempty"` // every profile merged into this one, transitively
	// Identifiers, sorted by type then value.
	Identifiers []IdentifierRecord          `json:"identifiers,omitempty"`
	Traits      map[string]Trait            `json:"traits,omitempty"`
	Groups      map[string]map[string]Trait `json:"groups,omitempty"` // group id → group traits
	CreatedAt   time.Time                   `json:"createdAt"`
	UpdatedAt   time.Time                   `json:"updatedAt"`
	// FirstMessageAt and LastMessageAt are event timestamps (as corrected by ingest).
	FirstMessageAt time.Time `json:"firstMessageAt,omitzero"`
	LastMessageAt  time.Time `json:"lastMessageAt,omitzero"`
	LastSourceID   string    `json:"lastSourceId,omitempty"`
	EventCount     int64     `json:"eventCount"`
	// Seq is the last sequence number allocated to an event of this profile (its stamp,
	// change.Stamp): each committed event takes the next one, written with the event or (one
	// stored profile, GraphStore.Append) just before it, so the numbers are unique per profile;
	// one allocated to an event found stored already is void (change.Record.Void), one whose
	// event write was interrupted is never used. A profile stored before stamps
	// existed has none (0), so its first stamped event is 1: no stamp was ever given under it
	// before. A merge does not carry it over: the survivor keeps counting its own sequence, and
	// events committed to the absorbed profile keep their stamps.
	Seq int64 `json:"seq,omitempty"`
	// Consent is the person's consent: per category the newest preference by event time, from
	// the events' context.consent.categoryPreferences (nil: none sent yet).
	Consent *consent.Profile `json:"consent,omitempty"`

	// Version is the stored version (0: not stored yet); it is kept outside the JSON document.
	Version int64 `json:"-"`
}

// IdentifierRecord is an identifier held by a profile.
type IdentifierRecord struct {
	Identifier
	SourceID  string    `json:"sourceId,omitempty"`
	Encoding  string    `json:"encoding,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	MessageID string    `json:"messageId,omitempty"` // the message that attached it
}

// Trait is one trait value with the timestamp of the event that set it; a trait only changes
// to a value from a newer event (ties go to the larger message id, so order never matters).
type Trait struct {
	Value     json.RawMessage `json:"v"`
	At        time.Time       `json:"at"`
	MessageID string          `json:"m,omitempty"`
}

func (t Trait) newerThan(o Trait) bool {
	if !t.At.Equal(o.At) {
		return t.At.After(o.At)
	}
	return t.MessageID > o.MessageID
}

// NewProfileID derives a profile id from the message that created the profile, so a retried
// attempt creates the same id.
func NewProfileID(messageID string) string {
	sum := sha256.Sum256([]byte("profile\x00" + messageID))
	return ProfileIDPrefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:])[:26])
}

// profileIDFor derives the id of a profile created by a message: a message is identified by
// its source and messageId (ids from the empty source keep the original derivation).
func profileIDFor(sourceID, messageID string) string {
	if sourceID == "" {
		return NewProfileID(messageID)
	}
	return NewProfileID(sourceID + "\x00" + messageID)
}

// Live reports whether the profile has not been merged into another.
func (p *Profile) Live() bool { return p.MergedInto == "" }

// Has reports whether the profile holds id.
func (p *Profile) Has(id Identifier) bool {
	i := sort.Search(len(p.Identifiers), func(i int) bool { return !identLess(p.Identifiers[i].Identifier, id) })
	return i < len(p.Identifiers) && p.Identifiers[i].Identifier == id
}

// CountType is how many values of typ the profile holds.
func (p *Profile) CountType(typ string) int {
	n := 0
	for _, r := range p.Identifiers {
		if r.Type == typ {
			n++
		}
	}
	return n
}

// IDs returns the profile's identifiers.
func (p *Profile) IDs() []Identifier {
	out := make([]Identifier, len(p.Identifiers))
	for i, r := range p.Identifiers {
		out[i] = r.Identifier
	}
	return out
}

func identLess(a, b Identifier) bool {
	if a.Type != b.Type {
		return a.Type < b.Type
	}
	return a.Value < b.Value
}

func (p *Profile) addIdentifier(r IdentifierRecord) bool {
	if p.Has(r.Identifier) {
		return false
	}
	p.Identifiers = append(p.Identifiers, r)
	sort.Slice(p.Identifiers, func(i, j int) bool { return identLess(p.Identifiers[i].Identifier, p.Identifiers[j].Identifier) })
	return true
}

// MergeTraits merges incoming traits set at time at by message msgID into dst: per trait, the
// value from the newer event wins. It returns the keys whose value changed.
func MergeTraits(dst map[string]Trait, incoming map[string]json.RawMessage, at time.Time, msgID string) []string {
	var changed []string
	for k, v := range incoming {
		nt := Trait{Value: v, At: at, MessageID: msgID}
		if old, ok := dst[k]; ok && !nt.newerThan(old) {
			continue
		}
		if old, ok := dst[k]; !ok || !bytes.Equal(old.Value, v) {
			changed = append(changed, k)
		}
		dst[k] = nt
	}
	sort.Strings(changed)
	return changed
}

// MaxTraitBytes is the budget of a profile's traits, and separately of all its group traits
// together, measured as stored: per trait its key, its value (JSON), the id of the message
// that set it and 48 bytes of bookkeeping. 64 KiB holds hundreds of ordinary traits, keeps a
// profile item (compressed, with its identifiers) far below DynamoDB's 400 KB and a change
// record (traits and changed traits) far below Kinesis's 1 MiB.
const MaxTraitBytes = 64 << 10

// RuleTraitBudget is the merge-log rule of a refused trait update.
const RuleTraitBudget = "trait budget: the profile's traits would exceed 65536 bytes (MaxTraitBytes)"

func traitCost(k string, t Trait) int { return len(k) + len(t.Value) + len(t.MessageID) + 48 }

func traitsCost(ts map[string]Trait) int {
	n := 0
	for k, t := range ts {
		n += traitCost(k, t)
	}
	return n
}

func groupsCost(gs map[string]map[string]Trait) int {
	n := 0
	for gid, g := range gs {
		n += len(gid) + traitsCost(g)
	}
	return n
}

// mergeBounded merges incoming traits into dst (per trait, the newer event wins) as long as
// dst's cost stays within budget; used is dst's cost so far and is kept up to date. Keys are
// taken in sorted order; a key whose new value would take dst over the budget is refused and
// keeps its old value (a value that shrinks or keeps its size is always accepted). It returns
// the refused keys.
func mergeBounded(dst, incoming map[string]Trait, used *int, budget int) []string {
	keys := make([]string, 0, len(incoming))
	for k := range incoming {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var refused []string
	for _, k := range keys {
		t := incoming[k]
		old, had := dst[k]
		if had && !t.newerThan(old) {
			continue
		}
		delta := traitCost(k, t)
		if had {
			delta -= traitCost(k, old)
		}
		if delta > 0 && *used+delta > budget {
			refused = append(refused, k)
			continue
		}
		dst[k] = t
		*used += delta
	}
	return refused
}

func stamped(incoming map[string]json.RawMessage, at time.Time, msgID string) map[string]Trait {
	out := make(map[string]Trait, len(incoming))
	for k, v := range incoming {
		out[k] = Trait{Value: v, At: at, MessageID: msgID}
	}
	return out
}

// ApplyMessage records one message on the profile: metadata, counters and (identify, group)
// traits within MaxTraitBytes. The caller guarantees each message is applied once (dedupe by
// messageId). It returns the trait keys refused for the budget (group traits as
// groups.<groupId>.<key>); the message itself is always counted.
func (p *Profile) ApplyMessage(m *tracking.Message, sourceID string, now time.Time) []string {
	ts := m.Timestamp
	if p.EventCount == 0 || ts.Before(p.FirstMessageAt) {
		p.FirstMessageAt = ts
	}
	if p.EventCount == 0 || !ts.Before(p.LastMessageAt) {
		p.LastMessageAt = ts
		p.LastSourceID = sourceID
	}
	p.EventCount++
	p.UpdatedAt = now
	if prefs, ok := consent.FromContext(m.Context); ok {
		p.applyConsent(prefs, ts)
	}
	switch m.Type {
	case tracking.TypeIdentify:
		if tr := objectFields(m.Traits); len(tr) > 0 {
			return p.mergeTraits(stamped(tr, ts, m.MessageID))
		}
	case tracking.TypeGroup:
		if gid := strings.TrimSpace(m.GroupID); gid != "" {
			return p.mergeGroup(gid, stamped(objectFields(m.Traits), ts, m.MessageID))
		}
	}
	return nil
}

func (p *Profile) mergeTraits(incoming map[string]Trait) []string {
	if len(incoming) == 0 {
		return nil
	}
	if p.Traits == nil {
		p.Traits = map[string]Trait{}
	}
	used := traitsCost(p.Traits)
	return mergeBounded(p.Traits, incoming, &used, MaxTraitBytes)
}

func (p *Profile) mergeGroup(gid string, incoming map[string]Trait) []string {
	if p.Groups == nil {
		p.Groups = map[string]map[string]Trait{}
	}
	used := groupsCost(p.Groups)
	g := p.Groups[gid]
	if g == nil {
		if used+len(gid) > MaxTraitBytes {
			return []string{"groups." + gid}
		}
		g = map[string]Trait{}
		p.Groups[gid] = g
		used += len(gid)
	}
	var refused []string
	for _, k := range mergeBounded(g, incoming, &used, MaxTraitBytes) {
		refused = append(refused, "groups."+gid+"."+k)
	}
	return refused
}

// absorb merges other into p: identifiers, traits (per trait, newest wins, within
// MaxTraitBytes), groups, counters and metadata. other becomes a pointer to p. It returns the
// trait keys of other refused for the budget.
func (p *Profile) absorb(other *Profile, now time.Time) []string {
	for _, r := range other.Identifiers {
		p.addIdentifier(r)
	}
	refused := p.mergeTraits(other.Traits)
	gids := make([]string, 0, len(other.Groups))
	for gid := range other.Groups {
		gids = append(gids, gid)
	}
	sort.Strings(gids)
	for _, gid := range gids {
		refused = append(refused, p.mergeGroup(gid, other.Groups[gid])...)
	}
	if other.EventCount > 0 {
		if p.EventCount == 0 || other.FirstMessageAt.Before(p.FirstMessageAt) {
			p.FirstMessageAt = other.FirstMessageAt
		}
		if p.EventCount == 0 || other.LastMessageAt.After(p.LastMessageAt) {
			p.LastMessageAt = other.LastMessageAt
			p.LastSourceID = other.LastSourceID
		}
	}
	p.EventCount += other.EventCount
	p.absorbConsent(other.Consent)
	if !other.CreatedAt.IsZero() && other.CreatedAt.Before(p.CreatedAt) {
		p.CreatedAt = other.CreatedAt
	}
	p.MergedFrom = appendUnique(p.MergedFrom, other.ID)
	for _, id := range other.MergedFrom {
		p.MergedFrom = appendUnique(p.MergedFrom, id)
	}
	p.UpdatedAt = now
	*other = Profile{ID: other.ID, MergedInto: p.ID, CreatedAt: other.CreatedAt, UpdatedAt: now, Version: other.Version}
	return refused
}

// applyConsent records preferences sent by an event at time at (newest by timestamp wins).
func (p *Profile) applyConsent(prefs consent.Preferences, at time.Time) {
	if len(prefs) == 0 {
		return
	}
	if p.Consent == nil {
		p.Consent = &consent.Profile{}
	}
	p.Consent.Apply(prefs, at)
}

// absorbConsent merges a merged-away profile's consent: per category the newer preference wins
// (at a tie the survivor's stays).
func (p *Profile) absorbConsent(other *consent.Profile) {
	if other == nil {
		return
	}
	keys := make([]string, 0, len(other.Categories))
	for k := range other.Categories {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		c := other.Categories[k]
		if p.Consent != nil {
			if cur, ok := p.Consent.Categories[k]; ok && !c.At.After(cur.At) {
				continue
			}
		}
		p.applyConsent(consent.Preferences{k: c.Granted}, c.At)
	}
}

// sameConsent reports whether two consents grant the same categories (when a preference was
// set is not compared: a library sends the same preferences with every event, and only a
// changed decision is news to the stages downstream).
func sameConsent(a, b *consent.Profile) bool {
	var ac, bc map[string]consent.Category
	if a != nil {
		ac = a.Categories
	}
	if b != nil {
		bc = b.Categories
	}
	if len(ac) != len(bc) {
		return false
	}
	for k, x := range ac {
		if y, ok := bc[k]; !ok || x.Granted != y.Granted {
			return false
		}
	}
	return true
}

// consentCopy is a copy of a profile's consent for a change record (nil when it holds none).
func consentCopy(c *consent.Profile) *consent.Profile {
	if c == nil || len(c.Categories) == 0 {
		return nil
	}
	out := &consent.Profile{Categories: make(map[string]consent.Category, len(c.Categories))}
	for k, v := range c.Categories {
		out.Categories[k] = v
	}
	return out
}

func appendUnique(s []string, v string) []string {
	for _, x := range s {
		if x == v {
			return s
		}
	}
	return append(s, v)
}

func objectFields(raw json.RawMessage) map[string]json.RawMessage {
	if len(raw) == 0 {
		return nil
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return nil
	}
	return m
}

// TraitValues returns the plain trait values.
func TraitValues(ts map[string]Trait) map[string]json.RawMessage {
	out := make(map[string]json.RawMessage, len(ts))
	for k, t := range ts {
		out[k] = t.Value
	}
	return out
}

func (p *Profile) clone() *Profile {
	b, _ := json.Marshal(p)
	var c Profile
	_ = json.Unmarshal(b, &c)
	c.Version = p.Version
	return &c
}
