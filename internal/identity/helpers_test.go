package identity

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/serverless-cdp/cdp/internal/tracking"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// storeUnderTest is what the tests use of a store: the ports and the Profile API's read model.
type storeUnderTest interface {
	GraphStore
	AttemptCounter
	Profile(ctx context.Context, id string) (*Profile, error)
	Lookup(ctx context.Context, id Identifier) (*Profile, error)
	Events(ctx context.Context, p *Profile, page Page) ([]StoredEvent, string, error)
	MergeLog(ctx context.Context, p *Profile, page Page) ([]LogEntry, string, error)
}

// noise is n characters of base64 that compress to no less than three quarters of their size
// (items are stored compressed, so a test that needs an item over a size limit cannot use
// repeated characters).
func noise(n int) string {
	r := rand.New(rand.NewChaCha8([32]byte{1}))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return base64.RawStdEncoding.EncodeToString(b)[:n]
}

// backendData reaches behind a store's port, for checks and set-ups the port does not offer.
type backendData interface {
	// another opens a second store on the same data, as another Lambda invocation would.
	another() storeUnderTest
	// snapshot reads the whole identity graph.
	snapshot(t testing.TB) *graphSnapshot
	// putLegacyMarker stores a dedupe marker as written before dedupe was per source.
	putLegacyMarker(t testing.TB, messageID, source, profile string, msg tracking.Message)
}

// backend is a storage implementation the tests run on: the in-memory store always, DynamoDB
// Local with the integration build tag.
type backend struct {
	name string
	open func(t testing.TB) (storeUnderTest, backendData)
}

// memBackend is the in-memory store.
var memBackend = backend{name: "mem", open: func(testing.TB) (storeUnderTest, backendData) {
	m := NewMemStore(nil)
	return m, memData{m}
}}

// backends lists the storage implementations available to this test run.
func backends() []backend { return append([]backend{memBackend}, integrationBackends()...) }

// eachBackend runs fn as a subtest per backend.
func eachBackend(t *testing.T, fn func(t *testing.T, b backend)) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) { fn(t, b) })
	}
}

type env struct {
	store storeUnderTest
	data  backendData
	proc  *Processor
}

func (b backend) newEnv(t testing.TB, rules *Compiled) *env {
	t.Helper()
	if rules == nil {
		var err error
		if rules, err = Compile(Rules{}); err != nil {
			t.Fatal(err)
		}
	}
	s, data := b.open(t)
	return &env{store: s, data: data, proc: NewProcessor(s, StaticRules{rules}, Options{})}
}

// rec builds a record. fields: "uid", "aid", "traits" (JSON), "ctx" (JSON), "event", "prev", "group".
func rec(typ, mid string, minute int, fields map[string]string) tracking.Record {
	m := tracking.Message{
		Type: typ, MessageID: mid, UserID: fields["uid"], AnonymousID: fields["aid"],
		PreviousID: fields["prev"], Event: fields["event"], GroupID: fields["group"],
		Timestamp: t0.Add(time.Duration(minute) * time.Minute), ReceivedAt: t0.Add(time.Duration(minute) * time.Minute),
	}
	if v := fields["traits"]; v != "" {
		m.Traits = json.RawMessage(v)
	}
	if v := fields["ctx"]; v != "" {
		m.Context = json.RawMessage(v)
	}
	return tracking.Record{SourceID: "src1", Message: m}
}

func (e *env) process(t testing.TB, recs ...tracking.Record) []Result {
	t.Helper()
	res, _, err := e.proc.Process(context.Background(), recs)
	if err != nil {
		t.Fatalf("process: %v", err)
	}
	for i, r := range res {
		if r.Outcome == Failed {
			t.Fatalf("record %d (%s) failed: %v", i, recs[i].Message.MessageID, r.Err)
		}
	}
	return res
}

// liveProfiles returns every live profile, sorted by their identifiers.
func (e *env) liveProfiles(t testing.TB) []*Profile {
	t.Helper()
	var out []*Profile
	for _, p := range e.data.snapshot(t).live {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return idsString(out[i]) < idsString(out[j]) })
	return out
}

// memData reaches into a MemStore.
type memData struct{ m *MemStore }

func (d memData) another() storeUnderTest { return d.m }

func (d memData) snapshot(t testing.TB) *graphSnapshot {
	t.Helper()
	g := &graphSnapshot{live: map[string]*Profile{}, tombstones: map[string]*Profile{}, index: map[Identifier]string{}, msgs: map[string]string{}, seqs: map[string]int64{}}
	d.m.mu.Lock()
	ids := make([]string, 0, len(d.m.profiles))
	for id := range d.m.profiles {
		ids = append(ids, id)
	}
	for id, pid := range d.m.index {
		g.index[id] = pid
	}
	for r, e := range d.m.events {
		g.msgs[r.hash()] = e.profile
		g.seqs[r.hash()] = e.seq
	}
	d.m.mu.Unlock()
	ps, err := d.m.Profiles(context.Background(), ids, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if p.Live() {
			g.live[p.ID] = p
		} else {
			g.tombstones[p.ID] = p
		}
	}
	return g
}

func (d memData) putLegacyMarker(_ testing.TB, messageID, source, profile string, msg tracking.Message) {
	b, _ := json.Marshal(msg)
	d.m.mu.Lock()
	defer d.m.mu.Unlock()
	d.m.legacy[messageID] = memEvent{profile: profile, source: source, msg: b}
}

func idsString(p *Profile) string {
	var s []string
	for _, id := range p.Identifiers {
		s = append(s, id.String())
	}
	return strings.Join(s, " ")
}

// shape renders the live profiles as sorted identifier lists.
func (e *env) shape(t testing.TB) []string {
	var out []string
	for _, p := range e.liveProfiles(t) {
		out = append(out, idsString(p))
	}
	return out
}

func wantShape(t *testing.T, e *env, want ...string) {
	t.Helper()
	got := e.shape(t)
	sort.Strings(want)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("profiles:\n got  %q\n want %q", got, want)
	}
}

func (e *env) byID(t testing.TB, id string) *Profile {
	t.Helper()
	typ, v, _ := strings.Cut(id, ":")
	p, err := e.store.Lookup(context.Background(), Identifier{typ, v})
	if err != nil || p == nil {
		t.Fatalf("lookup %s: %v %v", id, p, err)
	}
	return p
}

func traitsJSON(p *Profile) string {
	b, _ := json.Marshal(TraitValues(p.Traits))
	return string(b)
}
