package replay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/serverless-cdp/cdp/internal/archive"
	"github.com/serverless-cdp/cdp/internal/stream"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

// day1 and day2 are the two archived days of the tests.
var (
	day1 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	day2 = day1.Add(24 * time.Hour)
)

// clock is a test clock; step (if set) is added on every reading, so work takes time.
type clock struct {
	mu   sync.Mutex
	t    time.Time
	step time.Duration
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(c.step)
	return c.t
}

// peek reads the clock without moving it.
func (c *clock) peek() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// line is one archived record and where it is.
type line struct {
	key  string
	n    int
	data []byte
	rec  tracking.Record
}

// archiveFixture writes objects to a folder archive and remembers every line.
type archiveFixture struct {
	t     testing.TB
	store archive.Folder
	lines []line
}

func newArchive(t testing.TB) *archiveFixture {
	return &archiveFixture{t: t, store: archive.Folder{Root: t.TempDir()}}
}

// msg is a track message of user at, named event.
func msg(id, user, event string, at time.Time) tracking.Message {
	return tracking.Message{Type: tracking.TypeTrack, MessageID: id, UserID: user, Event: event, Timestamp: at, ReceivedAt: at,
		Properties: json.RawMessage(`{"n":1}`)}
}

// put writes one object of source at hour named name holding msgs (and raw lines as given).
func (a *archiveFixture) put(source string, hour time.Time, name string, items ...any) string {
	a.t.Helper()
	key := archive.Key(source, hour, name)
	var raw [][]byte
	for i, it := range items {
		var b []byte
		var rec tracking.Record
		switch v := it.(type) {
		case tracking.Message:
			rec = tracking.Record{SourceID: source, Message: v}
			b, _ = json.Marshal(rec)
		case string:
			b = []byte(v)
		}
		raw = append(raw, b)
		a.lines = append(a.lines, line{key: key, n: i + 1, data: b, rec: rec})
	}
	body, err := archive.Encode(raw)
	if err != nil {
		a.t.Fatal(err)
	}
	if err := a.store.Put(context.Background(), key, body); err != nil {
		a.t.Fatal(err)
	}
	return key
}

// publisher records what is put, and fails while fail returns an error.
type publisher struct {
	mu   sync.Mutex
	recs []stream.Record
	at   []time.Time
	now  func() time.Time
	fail func(n int) error
}

func (p *publisher) Put(_ context.Context, recs []stream.Record) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail != nil {
		if err := p.fail(len(p.recs)); err != nil {
			return err
		}
	}
	p.recs = append(p.recs, recs...)
	if p.now != nil {
		p.at = append(p.at, p.now())
	}
	return nil
}

func (p *publisher) sent() []stream.Record {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.recs)
}

// fakeBlocklist is a fake block list.
type fakeBlocklist struct {
	suppressed map[string]bool
	erased     map[string]bool
	err        error
}

func (b *fakeBlocklist) Suppressed(_ context.Context, ids []string) (bool, error) {
	if b.err != nil {
		return false, b.err
	}
	return slices.ContainsFunc(ids, func(id string) bool { return b.suppressed[id] }), nil
}

func (b *fakeBlocklist) Erased(_ context.Context, pid string) (bool, error) {
	return b.erased[pid], b.err
}

// profiles maps identifiers to profiles and counts lookups.
type profiles struct {
	mu    sync.Mutex
	of    map[string]string
	calls int
}

func (p *profiles) ProfileOf(_ context.Context, ids []string) (string, bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	for _, id := range ids {
		if pid, ok := p.of[id]; ok {
			return pid, true, nil
		}
	}
	return "", false, nil
}

// identifiers is a small stand-in for the identity stage's extraction.
func identifiers(m *tracking.Message) []string {
	var out []string
	if m.UserID != "" {
		out = append(out, "user_id:"+m.UserID)
	}
	if m.AnonymousID != "" {
		out = append(out, "anonymous_id:"+m.AnonymousID)
	}
	return out
}

// crashingStore is a JobStore whose process dies after `after` successful updates: every
// later call fails.
type crashingStore struct {
	JobStore
	mu      sync.Mutex
	after   int
	updates int
}

var errCrashed = errors.New("crashed")

func (c *crashingStore) dead() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.updates >= c.after
}

func (c *crashingStore) Update(ctx context.Context, id string, fn func(*Job) error) error {
	if c.dead() {
		return errCrashed
	}
	err := c.JobStore.Update(ctx, id, fn)
	c.mu.Lock()
	if err == nil {
		c.updates++
	}
	c.mu.Unlock()
	return err
}

func (c *crashingStore) Get(ctx context.Context, id string) (Job, error) {
	if c.dead() {
		return Job{}, errCrashed
	}
	return c.JobStore.Get(ctx, id)
}

// messageIDs are the messageIds of sent pipeline records.
func messageIDs(t *testing.T, recs []stream.Record) []string {
	t.Helper()
	var out []string
	for _, r := range recs {
		var rec tracking.Record
		if err := json.Unmarshal(r.Data, &rec); err != nil {
			t.Fatal(err)
		}
		out = append(out, rec.Message.MessageID)
	}
	return out
}

func countsString(c Counts) string {
	return fmt.Sprintf("read %d matched %d sent %d skipped %v", c.Read, c.Matched, c.Sent, c.Skipped)
}
