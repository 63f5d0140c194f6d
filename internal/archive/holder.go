package archive

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/serverless-cdp/cdp/internal/blocklist"
	"github.com/serverless-cdp/cdp/internal/privacy"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

// Privacy: the archive keeps every event as it arrived, so a person's events sit in it until
// the lifecycle rule expires them. Holder is its privacy.Holder: export returns the archived
// records that carry any of the person's identifiers, delete REWRITES each object that holds
// such records without them (and deletes an object left empty). The archive is written from
// the events stream, before identity resolution and the blocklist: a suppressed person's new
// events still land in it, and whoever reads it back (replay, the dry run) filters them.
//
// The archive lags the stream (Firehose buffers up to 15 minutes; the local writer a few
// seconds): an event of the person that was on its way when the erase ran lands after it. So
// the holder is a privacy.Lagging holder (HolderOptions.Lag): a delete erases it once more
// after the lag, by the keyed hashes of the person's identifiers (the request holds no
// cleartext by then: a line matches when the hash of one of its identifiers is among them),
// reading only the hours of arrival from Person.Since on.

// Names of the holder and of its kind of data (privacy.Holder).
const (
	HolderName = "archive"
	KindEvents = "events"
)

// minRawMatch is the shortest identifier value matched inside a line that is not an event
// record (as bytes): shorter ones would match unrelated records.
const minRawMatch = 5

// HolderOptions configure the archive's privacy holder.
type HolderOptions struct {
	// Identifiers returns the identifiers ("type:value", normalized as identity normalizes
	// them) an event carries: the composition root passes identity's extraction. Required.
	Identifiers func(*tracking.Message) []string
	// Window is how far back, in hours of arrival, objects are read: the retention plus the
	// lifecycle rule's lag (S3 expires objects asynchronously, usually within a day). Objects
	// whose key is outside the layout are always read (but by a follow-up erase). 0 reads every
	// object.
	Window time.Duration
	// Lag is how long after an erase an event of the person can still land in the archive:
	// the writer's buffering and a margin (the composition root: Firehose's 15 minutes and 5,
	// or a few seconds for the local writer). 0: no follow-up erase.
	Lag time.Duration
	// Hasher keys the hashes a follow-up erase matches by (privacy.Person.Hashes): the
	// deployment's privacy key, as the privacy requests hash identifiers. Required with Lag.
	Hasher blocklist.Hasher
	// Workers is how many objects are read at once (default 8).
	Workers int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Holder is the archive's privacy.Holder. Its cost is one LIST per 1,000 objects and one GET
// per object in the window, whoever it holds, plus one PUT (or DELETE) per object that holds
// the person; a follow-up erase (privacy.Person.Since set) GETs only the objects of the hours
// from Since on — a few per source — and skips objects outside the layout. It is idempotent (a second erase finds nothing: 0) and resumable: an erase cut
// short leaves every object either rewritten or untouched, and the next run does the rest.
type Holder struct {
	store Store
	opt   HolderOptions
}

var _ privacy.Lagging = (*Holder)(nil)

// NewHolder returns the holder over an archive store.
func NewHolder(st Store, opt HolderOptions) *Holder {
	if opt.Workers <= 0 {
		opt.Workers = 8
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	return &Holder{store: st, opt: opt}
}

// Name is "archive".
func (h *Holder) Name() string { return HolderName }

// Lag implements privacy.Lagging: HolderOptions.Lag.
func (h *Holder) Lag() time.Duration { return h.opt.Lag }

// Export emits every archived line that carries one of the person's identifiers (kind
// "events"), exactly as archived (an event record, or an InvalidLine).
func (h *Holder) Export(ctx context.Context, p privacy.Person, emit func(kind string, item any) error) error {
	return h.walk(ctx, p, func(_ string, o object) error {
		for _, l := range o.matched {
			if err := emit(KindEvents, json.RawMessage(l)); err != nil {
				return err
			}
		}
		return nil
	})
}

// Erase rewrites every object holding lines that carry one of the person's identifiers
// without those lines (an object left empty is deleted) and returns how many lines it
// removed (kind "events": the count Export emits).
func (h *Holder) Erase(ctx context.Context, p privacy.Person) (map[string]int, error) {
	n := map[string]int{}
	err := h.walk(ctx, p, func(key string, o object) error {
		if len(o.kept) == 0 {
			if err := h.store.Delete(ctx, key); err != nil {
				return err
			}
		} else {
			body, err := Encode(o.kept)
			if err != nil {
				return err
			}
			if err := h.store.Put(ctx, key, body); err != nil {
				return err
			}
		}
		n[KindEvents] += len(o.matched)
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("archive erase: %w", err)
	}
	return n, nil
}

// object is one archive object split into the person's lines and the others.
type object struct{ matched, kept [][]byte }

// walk calls fn, in key order, for every object in the window (and from p.Since's hour on,
// if set) that holds lines of the person. Objects are read Workers at a time, in chunks; fn
// runs alone.
func (h *Holder) walk(ctx context.Context, p privacy.Person, fn func(key string, o object) error) error {
	if h.opt.Identifiers == nil {
		return errors.New("archive holder: no Identifiers function")
	}
	m := newMatcher(p, h.opt.Identifiers, h.opt.Hasher)
	if len(m.ids) == 0 && len(m.hashes) == 0 {
		return nil
	}
	keys, err := h.keys(ctx, p.Since)
	if err != nil {
		return err
	}
	const chunk = 64
	for start := 0; start < len(keys); start += chunk {
		part := keys[start:min(start+chunk, len(keys))]
		objs := make([]object, len(part))
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(h.opt.Workers)
		for i, key := range part {
			g.Go(func() error { return h.read(gctx, m, key, &objs[i]) })
		}
		if err := g.Wait(); err != nil {
			return err
		}
		for i, o := range objs {
			if len(o.matched) == 0 {
				continue
			}
			if err := fn(part[i], o); err != nil {
				return err
			}
		}
	}
	return nil
}

// keys lists the objects in the window whose hour of arrival is from lower's hour on (lower
// zero: every hour). With a lower bound (a follow-up erase), objects outside the layout are
// not read: Firehose's error output is not lines a keyed hash can match.
func (h *Holder) keys(ctx context.Context, lower time.Time) ([]string, error) {
	var since time.Time
	if h.opt.Window > 0 {
		since = h.opt.Now().UTC().Add(-h.opt.Window).Truncate(time.Hour)
	}
	if l := lower.UTC().Truncate(time.Hour); l.After(since) {
		since = l
	}
	var keys []string
	err := h.store.List(ctx, "", func(key string) error {
		_, hour, ok := ParseKey(key)
		if (ok && hour.Before(since)) || (!ok && !lower.IsZero()) {
			return nil
		}
		keys = append(keys, key)
		return nil
	})
	return keys, err
}

// read splits one object's lines; an object gone meanwhile (expired) holds nothing.
func (h *Holder) read(ctx context.Context, m *matcher, key string, o *object) error {
	body, err := h.store.Get(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	err = Lines(body, func(line []byte) error {
		l := bytes.Clone(line)
		if m.line(l) {
			o.matched = append(o.matched, l)
		} else {
			o.kept = append(o.kept, l)
		}
		return nil
	})
	if len(o.matched) == 0 {
		o.kept = nil // nothing to rewrite: do not hold the object until its chunk is done
	}
	if err != nil {
		return fmt.Errorf("archive: read %s: %w", key, err)
	}
	return nil
}

// matcher decides whether a line belongs to the person: by identifier, or by the keyed hash
// of an identifier (a follow-up erase).
type matcher struct {
	ids         map[string]bool
	hashes      map[string]bool
	hasher      blocklist.Hasher
	raw         [][]byte // lower-cased identifier values, for lines that are not records
	identifiers func(*tracking.Message) []string
}

func newMatcher(p privacy.Person, identifiers func(*tracking.Message) []string, hasher blocklist.Hasher) *matcher {
	m := &matcher{ids: map[string]bool{}, hashes: map[string]bool{}, hasher: hasher, identifiers: identifiers}
	for _, x := range p.Hashes {
		m.hashes[x] = true
	}
	for _, id := range p.Identifiers {
		m.ids[id] = true
		if _, v, ok := strings.Cut(id, ":"); ok && len(v) >= minRawMatch {
			m.raw = append(m.raw, []byte(strings.ToLower(v)))
		}
	}
	return m
}

// line matches an event record by its identifiers; an InvalidLine by the identifiers of the
// record it holds, if it is one, else by the identifier values inside its bytes; any other
// line by the values inside it.
func (m *matcher) line(l []byte) bool {
	var rec tracking.Record
	if json.Unmarshal(l, &rec) == nil && rec.Message.MessageID != "" {
		return m.message(&rec.Message)
	}
	var inv InvalidLine
	if json.Unmarshal(l, &inv) == nil && inv.Reason != "" {
		var inner tracking.Record
		if json.Unmarshal(inv.Data, &inner) == nil && m.message(&inner.Message) {
			return true
		}
		return m.rawMatch(inv.Data)
	}
	return m.rawMatch(l)
}

func (m *matcher) message(msg *tracking.Message) bool {
	for _, id := range m.identifiers(msg) {
		if m.ids[id] || (len(m.hashes) > 0 && m.hashes[privacy.IdentifierHash(m.hasher, id)]) {
			return true
		}
	}
	return false
}

func (m *matcher) rawMatch(b []byte) bool {
	lower := bytes.ToLower(b)
	for _, v := range m.raw {
		if bytes.Contains(lower, v) {
			return true
		}
	}
	return false
}
