package archive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/serverless-cdp/cdp/internal/blocklist"
	"github.com/serverless-cdp/cdp/internal/privacy"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

// testIdentifiers stands in for identity's extraction: user_id, anonymous_id and the email
// trait, "type:value", emails lower-cased.
func testIdentifiers(m *tracking.Message) []string {
	var ids []string
	if m.UserID != "" {
		ids = append(ids, "user_id:"+m.UserID)
	}
	if m.AnonymousID != "" {
		ids = append(ids, "anonymous_id:"+m.AnonymousID)
	}
	var traits struct{ Email string }
	if json.Unmarshal(m.Traits, &traits) == nil && traits.Email != "" {
		ids = append(ids, "email:"+strings.ToLower(traits.Email))
	}
	return ids
}

func personData(src, id, user, anon, email string) []byte {
	m := tracking.Message{Type: "identify", MessageID: id, UserID: user, AnonymousID: anon, ReceivedAt: t0, Timestamp: t0}
	if email != "" {
		m.Traits = json.RawMessage(fmt.Sprintf(`{"email":%q}`, email))
	}
	b, _ := json.Marshal(tracking.Record{SourceID: src, Message: m})
	return b
}

// seedArchive writes, through the Writer, an archive where Ann (user ann-1, anonymous a-77,
// email Ann@Example.com) has events among other people's, an object holding only her events,
// an invalid record naming her email, and an event older than the holder's window.
func seedArchive(t *testing.T, st Store) (annLines map[string]bool) {
	t.Helper()
	type rec struct {
		arrival time.Time
		data    []byte
		ann     bool
	}
	recs := []rec{
		{t0, personData("src_web", "w1", "ann-1", "", ""), true},
		{t0, personData("src_web", "w2", "bob-1", "", ""), false},
		{t0, personData("src_web", "w3", "", "a-77", ""), true},
		{t0, personData("src_web", "w4", "", "b-88", "bob@example.com"), false},
		{t0, personData("src_pos", "p1", "", "", "ANN@example.com"), true},
		{t0.Add(time.Hour), personData("src_web", "w5", "ann-1", "", ""), true},
		{t0, []byte(`{"note":"invalid, for Ann@Example.com"}`), true},
		{t0, []byte(`{"note":"invalid, for someone else"}`), false},
		{t0.Add(-30 * 24 * time.Hour), personData("src_web", "old", "ann-1", "", ""), false}, // outside the window
	}
	annLines = map[string]bool{}
	var batch []events.KinesisEventRecord
	for i, r := range recs {
		batch = append(batch, kinesisRecord("shardId-000000000000", i+1, r.arrival, r.data))
		if r.ann {
			annLines[string(r.data)] = true
		}
	}
	if resp, err := (&Writer{Store: st, Logger: quiet}).Handle(context.Background(), events.KinesisEvent{Records: batch}); err != nil || len(resp.BatchItemFailures) > 0 {
		t.Fatalf("seed: %v %v", resp, err)
	}
	return annLines
}

var ann = privacy.Person{Profiles: []string{"prof_ann"}, Identifiers: []string{"user_id:ann-1", "anonymous_id:a-77", "email:ann@example.com"}}

func newTestHolder(st Store) *Holder {
	return NewHolder(st, HolderOptions{
		Identifiers: testIdentifiers, Window: 7 * 24 * time.Hour,
		Now: func() time.Time { return t0.Add(2 * time.Hour) },
	})
}

// exported returns what Export emits, as the lines' text (an invalid line by its data).
func exported(t *testing.T, h *Holder, p privacy.Person) []string {
	t.Helper()
	var out []string
	err := h.Export(context.Background(), p, func(kind string, item any) error {
		if kind != KindEvents {
			t.Errorf("kind %q", kind)
		}
		raw, _ := json.Marshal(item)
		var inv InvalidLine
		if json.Unmarshal(raw, &inv) == nil && inv.Reason != "" {
			raw = inv.Data
		}
		out = append(out, string(raw))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// allLines is every line in the store, invalid lines by their data.
func allLines(t *testing.T, st Store) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, key := range listAll(t, st, "") {
		body, err := st.Get(context.Background(), key)
		if err != nil {
			t.Fatal(err)
		}
		_ = Lines(body, func(l []byte) error {
			var inv InvalidLine
			if json.Unmarshal(l, &inv) == nil && inv.Reason != "" {
				l = inv.Data
			}
			out[string(l)]++
			return nil
		})
	}
	return out
}

// TestHolderExportsAndErasesAPersonsEvents: export returns exactly the person's archived
// lines; erase removes exactly them (rewriting shared objects, deleting an object left empty),
// leaves every other line byte for byte, returns the count export emitted, and erasing again
// erases 0.
func TestHolderExportsAndErasesAPersonsEvents(t *testing.T) {
	forEachStore(t, func(t *testing.T, st Store) {
		ctx := context.Background()
		annLines := seedArchive(t, st)
		before := allLines(t, st)
		h := newTestHolder(st)
		if h.Name() != "archive" {
			t.Fatalf("name %q", h.Name())
		}
		want := slices.Sorted(func(yield func(string) bool) {
			for l := range annLines {
				if !yield(l) {
					return
				}
			}
		})
		if got := exported(t, h, ann); !slices.Equal(got, want) {
			t.Fatalf("export:\n got %q\nwant %q", got, want)
		}
		n, err := h.Erase(ctx, ann)
		if err != nil || n[KindEvents] != len(annLines) {
			t.Fatalf("erase: %v %v, want %d events", n, err, len(annLines))
		}
		after := allLines(t, st)
		for l, c := range before {
			switch {
			case annLines[l] && after[l] != 0:
				t.Errorf("still archived: %s", l)
			case !annLines[l] && after[l] != c:
				t.Errorf("other line changed or lost: %s", l)
			}
		}
		if len(after) != len(before)-len(annLines) {
			t.Errorf("%d lines after erase, want %d", len(after), len(before)-len(annLines))
		}
		for _, key := range listAll(t, st, "") {
			if strings.HasPrefix(key, "source=src_pos/") || strings.Contains(key, "hour=11/") {
				t.Errorf("an object holding only the person's events is kept: %s", key)
			}
		}
		if n, err := h.Erase(ctx, ann); err != nil || n[KindEvents] != 0 {
			t.Fatalf("second erase: %v %v", n, err)
		}
		if got := exported(t, h, ann); len(got) != 0 {
			t.Fatalf("export after erase: %q", got)
		}
		if got := exported(t, h, privacy.Person{}); len(got) != 0 {
			t.Fatalf("a person without identifiers matched %q", got)
		}
	})
}

// failAfterStore fails every Put and Delete after the first n.
type failAfterStore struct {
	Store
	mu sync.Mutex
	n  int
}

func (f *failAfterStore) spend() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n == 0 {
		return errors.New("injected: store unavailable")
	}
	f.n--
	return nil
}

func (f *failAfterStore) Put(ctx context.Context, key string, body []byte) error {
	if err := f.spend(); err != nil {
		return err
	}
	return f.Store.Put(ctx, key, body)
}

func (f *failAfterStore) Delete(ctx context.Context, key string) error {
	if err := f.spend(); err != nil {
		return err
	}
	return f.Store.Delete(ctx, key)
}

// TestHolderEraseResumes: an erase cut short (the store fails after one rewrite) leaves every
// object rewritten or untouched; the next run erases the rest, and the counts add up.
func TestHolderEraseResumes(t *testing.T) {
	forEachStore(t, func(t *testing.T, st Store) {
		ctx := context.Background()
		annLines := seedArchive(t, st)
		first, err := newTestHolder(&failAfterStore{Store: st, n: 1}).Erase(ctx, ann)
		if err == nil || first[KindEvents] == 0 || first[KindEvents] >= len(annLines) {
			t.Fatalf("first erase: %v %v (want a partial count and an error)", first, err)
		}
		second, err := newTestHolder(st).Erase(ctx, ann)
		if err != nil || first[KindEvents]+second[KindEvents] != len(annLines) {
			t.Fatalf("resumed erase: %v + %v %v, want %d in all", first, second, err, len(annLines))
		}
		if got := exported(t, newTestHolder(st), ann); len(got) != 0 {
			t.Fatalf("export after erase: %q", got)
		}
	})
}

// TestHolderWindow: objects older than the window are not read (their lifecycle removes them).
func TestHolderWindow(t *testing.T) {
	st := Folder{Root: t.TempDir()}
	seedArchive(t, st)
	h := NewHolder(st, HolderOptions{Identifiers: testIdentifiers, Now: func() time.Time { return t0 }})
	all := exported(t, h, ann)
	if len(all) != 6 {
		t.Fatalf("without a window every object is read: %d lines", len(all))
	}
	if got := exported(t, newTestHolder(st), ann); len(got) != 5 {
		t.Fatalf("within 7 days: %d lines, want 5", len(got))
	}
}

var testHasher = blocklist.NewHasher([]byte("archive-test-privacy-key-0123456789"))

// hashesOf is what a privacy request keeps of a person once it is scrubbed: keyed hashes.
func hashesOf(p privacy.Person) []string {
	var out []string
	for _, id := range p.Identifiers {
		out = append(out, privacy.IdentifierHash(testHasher, id))
	}
	return out
}

// TestHolderFollowUpByHashSince: the follow-up erase of a completed delete (privacy.Lagging)
// knows the person only by keyed hashes and reads only the hours of arrival from its lower
// bound on: it removes the person's records there (matched by the hash of their identifiers,
// emails in any case), GETs no object of an earlier hour nor any object outside the layout,
// and leaves earlier hours alone. Without the bound it would read every object.
func TestHolderFollowUpByHashSince(t *testing.T) {
	ctx := context.Background()
	st := Folder{Root: t.TempDir()}
	seedArchive(t, st)
	if err := st.Put(ctx, "errors/processing-failed/x.json.gz", []byte(`{"rawData":"ann-1"}`)); err != nil {
		t.Fatal(err)
	}
	cs := &countingStore{Store: st}
	h := NewHolder(cs, HolderOptions{
		Identifiers: testIdentifiers, Window: 7 * 24 * time.Hour, Lag: 20 * time.Minute, Hasher: testHasher,
		Now: func() time.Time { return t0.Add(2 * time.Hour) },
	})
	if h.Lag() != 20*time.Minute {
		t.Fatalf("lag %v", h.Lag())
	}
	late := privacy.Person{Hashes: hashesOf(ann), Since: t0.Add(70 * time.Minute)} // hour 11 on
	n, err := h.Erase(ctx, late)
	if err != nil || n[KindEvents] != 1 {
		t.Fatalf("follow-up from hour 11: %v %v, want w5 only", n, err)
	}
	if got, total := cs.gets.Load(), len(listAll(t, st, "")); got != 1 || total < 5 {
		t.Fatalf("%d GETs, want 1 (the object of hour 11, of %d objects)", got, total)
	}
	if got := exported(t, newTestHolder(st), ann); len(got) != 5 {
		t.Fatalf("earlier hours touched: %d of Ann's lines left, want 5", len(got))
	}
	n, err = h.Erase(ctx, privacy.Person{Hashes: hashesOf(ann), Since: t0})
	if err != nil || n[KindEvents] != 3 {
		t.Fatalf("follow-up from hour 10: %v %v, want w1, w3, p1", n, err)
	}
	left := exported(t, newTestHolder(st), ann)
	if len(left) != 2 || !strings.Contains(left[0], "invalid, for Ann") || !strings.Contains(left[1], "rawData") {
		t.Fatalf("left %q: only lines a hash cannot match (no identifier to hash) may stay", left)
	}
	bob := privacy.Person{Hashes: hashesOf(privacy.Person{Identifiers: []string{"user_id:nobody"}}), Since: t0}
	if n, err := h.Erase(ctx, bob); err != nil || n[KindEvents] != 0 {
		t.Fatalf("someone else's hashes: %v %v", n, err)
	}
}

// BenchmarkHolderFollowUp: the follow-up erase of a delete (by keyed hash, from the lower
// bound the runner sets: the first erase's start minus a 20-minute lag and an hour) against
// the first erase (every object in the window), on an archive of 30 days of 2 sources, one
// object of 20 events per source and hour (1,440 objects); the person has one event in the
// last hour's object of each source. One op = one erase: requests per erase and time.
func BenchmarkHolderFollowUp(b *testing.B) {
	const days, perObject = 30, 20
	now := t0.Add(30 * time.Minute)
	for _, be := range backends() {
		st := be.open(b)
		seedDays(b, st, now, days, perObject)
		for _, mode := range []string{"first", "followup"} {
			b.Run(be.name+"/"+mode, func(b *testing.B) {
				cs := &countingStore{Store: st}
				h := NewHolder(cs, HolderOptions{Identifiers: testIdentifiers, Window: 40 * 24 * time.Hour, Lag: 20 * time.Minute,
					Hasher: testHasher, Now: func() time.Time { return now }})
				p := ann
				if mode == "followup" {
					p = privacy.Person{Hashes: hashesOf(ann), Since: now.Add(-80 * time.Minute)}
				}
				b.ResetTimer()
				for range b.N {
					if _, err := h.Erase(context.Background(), p); err != nil { // nothing to rewrite after the first op: reads only
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(cs.gets.Load())/float64(b.N), "GET/erase")
				b.ReportMetric(float64(cs.lists.Load())/float64(b.N), "LIST/erase")
				b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/erase")
				b.ReportMetric(0, "RU/erase")
			})
		}
	}
}

// seedDays writes days of hourly objects of two sources ending at now's hour; Ann's event is
// in the last hour's object of each source.
func seedDays(b *testing.B, st Store, now time.Time, days, perObject int) {
	b.Helper()
	for _, src := range []string{"src_web", "src_pos"} {
		for hr := range days * 24 {
			hour := now.Truncate(time.Hour).Add(-time.Duration(hr) * time.Hour)
			lines := make([][]byte, 0, perObject)
			for i := range perObject {
				user := fmt.Sprint("u", hr, "-", i)
				if hr == 0 && i == 0 {
					user = "ann-1"
				}
				lines = append(lines, eventData(src, fmt.Sprint(src, "-", hr, "-", i), user, hour))
			}
			body, err := Encode(lines)
			if err == nil {
				err = st.Put(context.Background(), Key(src, hour, "o"), body)
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	}
}
