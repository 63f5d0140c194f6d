package identityrules_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/serverless-cdp/cdp/internal/admin"
	"github.com/serverless-cdp/cdp/internal/admin/admintest"
	"github.com/serverless-cdp/cdp/internal/admin/identityrules"
	"github.com/serverless-cdp/cdp/internal/archive"
	"github.com/serverless-cdp/cdp/internal/identity"
	"github.com/serverless-cdp/cdp/internal/idrules"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

// spyStore is an archive store that counts writes.
type spyStore struct {
	archive.Store
	mu             sync.Mutex
	puts, deletes  int
	gets, listings int
}

func (s *spyStore) Put(ctx context.Context, key string, body []byte) error {
	s.mu.Lock()
	s.puts++
	s.mu.Unlock()
	return s.Store.Put(ctx, key, body)
}

func (s *spyStore) Delete(ctx context.Context, key string) error {
	s.mu.Lock()
	s.deletes++
	s.mu.Unlock()
	return s.Store.Delete(ctx, key)
}

func (s *spyStore) Get(ctx context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	s.gets++
	s.mu.Unlock()
	return s.Store.Get(ctx, key)
}

func (s *spyStore) List(ctx context.Context, prefix string, fn func(string) error) error {
	s.mu.Lock()
	s.listings++
	s.mu.Unlock()
	return s.Store.List(ctx, prefix, fn)
}

var day = time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)

func rec(src string, at time.Time, id, typ, user, anon, traits string) tracking.Record {
	m := tracking.Message{Type: typ, MessageID: id, UserID: user, AnonymousID: anon, Timestamp: at, ReceivedAt: at}
	if traits != "" {
		m.Traits = json.RawMessage(traits)
	}
	if typ == tracking.TypeTrack {
		m.Event = "Viewed"
		m.Context = json.RawMessage(`{"traits":` + traits + `}`)
		m.Traits = nil
	}
	return tracking.Record{SourceID: src, Message: m}
}

// writeHistory archives, for n people, an identify of user u<i> with email x<i> (source web,
// hour 10), a visit of an<i> with email y<i> (source pos, hour 10) and, an hour later, an identify
// tying u<i> to an<i> (source web): one profile under the default rules, two under email
// limit 1. Objects of one source and hour hold records out of arrival order across sources.
func writeHistory(t *testing.T, st archive.Store, n int) {
	t.Helper()
	byKey := map[string][][]byte{}
	add := func(r tracking.Record, name string) {
		line, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		k := archive.Key(r.SourceID, r.Message.ReceivedAt, name)
		byKey[k] = append(byKey[k], line)
	}
	h10, h11 := day.Add(10*time.Hour), day.Add(11*time.Hour)
	for i := 0; i < n; i++ {
		at := h10.Add(time.Duration(i) * time.Second)
		add(rec("web", at, fmt.Sprintf("w%d", i), tracking.TypeIdentify, fmt.Sprintf("u%d", i), "", fmt.Sprintf(`{"email":"x%d@t.test"}`, i)), "a")
		add(rec("pos", at.Add(time.Millisecond), fmt.Sprintf("p%d", i), tracking.TypeTrack, "", fmt.Sprintf("an%d", i), fmt.Sprintf(`{"email":"y%d@t.test"}`, i)), "a")
		add(rec("web", h11.Add(time.Duration(i)*time.Second), fmt.Sprintf("t%d", i), tracking.TypeIdentify, fmt.Sprintf("u%d", i), fmt.Sprintf("an%d", i), ""), "b")
	}
	for k, lines := range byKey {
		body, err := archive.Encode(lines)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Put(context.Background(), k, body); err != nil {
			t.Fatal(err)
		}
	}
}

func setup(t *testing.T, n int) (*spyStore, *memRules, http.Handler, string) {
	t.Helper()
	dir := t.TempDir()
	writeHistory(t, archive.Folder{Root: dir}, n)
	spy := &spyStore{Store: archive.Folder{Root: dir}}
	svc := &memRules{rules: idrules.DefaultRules()}
	h := admin.New(admintest.OneToken{}, nil, func(r *admin.Router) {
		identityrules.RegisterDryRun(r, svc, identityrules.DryRunConfig{Archive: spy})
	})
	return spy, svc, h, dir
}

func dryRun(t *testing.T, h http.Handler, body string) (int, string) {
	t.Helper()
	return admintest.Call(t, h, "POST", "/admin/v1/identity-rules/dry-run", body)
}

// snapshot lists the archive folder's files with their sizes and times.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %d %s\n", p, info.Size(), info.ModTime())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestDryRunRouteReportsSplitsAndWritesNothing: email limit 1 on the archived history reports
// exactly the people whose two profiles the tie merged now; the rules and the archive are
// untouched.
func TestDryRunRouteReportsSplitsAndWritesNothing(t *testing.T) {
	const n = 4
	spy, svc, h, dir := setup(t, n)
	before := snapshot(t, dir)
	status, body := dryRun(t, h, `{"rules":{"types":[{"type":"email","priority":2,"limit":1}]},"from":"2026-11-02T00:00:00Z","to":"2026-11-03T00:00:00Z","maxExamples":10}`)
	if status != 200 {
		t.Fatalf("%d %s", status, body)
	}
	var out struct {
		identity.DryRunReport
		Sources  []string `json:"sources"`
		BadLines int      `json:"badLines"`
	}
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatal(err)
	}
	if out.Events != 3*n || out.Splits != n || out.Merges != 0 || out.Truncated || len(out.SplitExamples) != n {
		t.Fatalf("%s", body)
	}
	for i, ex := range out.SplitExamples {
		want := fmt.Sprintf("[[anonymous_id:an%[1]d email:x%[1]d@t.test email:y%[1]d@t.test user_id:u%[1]d]] [[anonymous_id:an%[1]d email:y%[1]d@t.test] [email:x%[1]d@t.test user_id:u%[1]d]]", i)
		if got := fmt.Sprint(ex.Current, ex.Candidate); got != want {
			t.Errorf("example %d: %s, want %s", i, got, want)
		}
		if len(ex.Decisions) != 1 || ex.Decisions[0].Text != fmt.Sprintf("candidate: limit email=1 dropped anonymous_id:an%d", i) || ex.Decisions[0].MessageID != fmt.Sprintf("t%d", i) {
			t.Errorf("example %d: decisions %+v", i, ex.Decisions)
		}
	}
	if spy.puts != 0 || spy.deletes != 0 || svc.puts != 0 || snapshot(t, dir) != before {
		t.Fatalf("something was written: %d puts %d deletes, %d rule puts", spy.puts, spy.deletes, svc.puts)
	}
	// The rules in force: no difference.
	if _, body := dryRun(t, h, `{"rules":{"types":[]},"from":"2026-11-02T00:00:00Z","to":"2026-11-03T00:00:00Z"}`); !strings.Contains(body, `"splits":0,"merges":0`) {
		t.Fatalf("same rules: %s", body)
	}
}

// TestDryRunRouteRange: only the hours and sources asked for are read.
func TestDryRunRouteRange(t *testing.T) {
	_, _, h, _ := setup(t, 3)
	for _, c := range []struct {
		body   string
		events string
	}{
		// Hour 10 only: no ties, no splits.
		{`"from":"2026-11-02T10:00:00Z","to":"2026-11-02T11:00:00Z"`, `"events":6,`},
		{`"from":"2026-11-02T10:30:00Z","to":"2026-11-02T11:00:01Z"`, `"events":9,`}, // hours 10 and 11
		{`"from":"2026-11-02T00:00:00Z","to":"2026-11-03T00:00:00Z","sources":["web"]`, `"events":6,`},
		{`"from":"2026-11-03T00:00:00Z","to":"2026-11-04T00:00:00Z"`, `"events":0,`},
	} {
		status, body := dryRun(t, h, `{"rules":{"types":[{"type":"email","priority":2,"limit":1}]},`+c.body+`}`)
		if status != 200 || !strings.Contains(body, c.events) {
			t.Errorf("%s: %d %s", c.body, status, body)
		}
	}
}

// TestDryRunRouteValidation: a bad request is a 400 naming the field; nothing is read.
func TestDryRunRouteValidation(t *testing.T) {
	spy, _, h, _ := setup(t, 1)
	const rng = `"from":"2026-11-02T00:00:00Z","to":"2026-11-03T00:00:00Z"`
	for body, want := range map[string]string{
		`{` + rng + `}`: "rules: required",
		`{"rules":{"types":[{"type":"email","limit":1000}]},` + rng + `}`:                  "rules.types[0].limit: limit 1000 is out of range",
		`{"rules":{"types":[{"type":"Bad Type"}]},` + rng + `}`:                            "rules.types[0].type",
		`{"rules":{"types":[]},"to":"2026-11-03T00:00:00Z"}`:                               "from: required",
		`{"rules":{"types":[]},"from":"yesterday","to":"2026-11-03T00:00:00Z"}`:            "from: not an RFC 3339 time",
		`{"rules":{"types":[]},"from":"2026-11-03T00:00:00Z","to":"2026-11-02T00:00:00Z"}`: "to: must be after from",
		`{"rules":{"types":[]},"from":"2026-01-01T00:00:00Z","to":"2026-11-03T00:00:00Z"}`: "to: the range is at most 31 days",
		`{"rules":{"types":[]},` + rng + `,"sources":["web","web"]}`:                       "sources[1]",
		`{"rules":{"types":[]},` + rng + `,"maxEvents":-1}`:                                "maxEvents",
		`{"rules":{"types":[]},` + rng + `,"maxExamples":1000}`:                            "maxExamples",
		`{"rules":{"types":[]},` + rng + `,"typo":1}`:                                      "typo",
	} {
		status, got := dryRun(t, h, body)
		if status != 400 || !strings.Contains(got, want) {
			t.Errorf("%s: %d %s (want %q)", body, status, got, want)
		}
	}
	if spy.gets != 0 || spy.listings != 0 {
		t.Fatalf("the archive was read for invalid requests: %d gets %d listings", spy.gets, spy.listings)
	}
}

// TestDryRunRouteBudget: maxEvents bounds the run and the answer says it was truncated.
func TestDryRunRouteBudget(t *testing.T) {
	_, _, h, _ := setup(t, 5)
	status, body := dryRun(t, h, `{"rules":{"types":[]},"from":"2026-11-02T00:00:00Z","to":"2026-11-03T00:00:00Z","maxEvents":4}`)
	if status != 200 || !strings.Contains(body, `"events":4,`) || !strings.Contains(body, `"truncated":true,"truncatedBy":"events"`) {
		t.Fatalf("%d %s", status, body)
	}
}

// TestDryRunRouteWithoutArchive: a deployment without an archive answers 404, after validation.
func TestDryRunRouteWithoutArchive(t *testing.T) {
	h := admin.New(admintest.OneToken{}, nil, func(r *admin.Router) {
		identityrules.RegisterDryRun(r, &memRules{}, identityrules.DryRunConfig{})
	})
	if status, body := dryRun(t, h, `{"rules":{"types":[]},"from":"2026-11-02T00:00:00Z","to":"2026-11-03T00:00:00Z"}`); status != 404 || !strings.Contains(body, "no event archive") {
		t.Fatalf("%d %s", status, body)
	}
}

// TestArchiveHistoryArrivalOrder: records of one hour are yielded in receivedAt order across
// sources (each source's objects are read one after the other), bad lines counted.
func TestArchiveHistoryArrivalOrder(t *testing.T) {
	st := archive.Folder{Root: t.TempDir()}
	writeHistory(t, st, 2)
	body, _ := archive.Encode([][]byte{[]byte("not json")})
	if err := st.Put(context.Background(), archive.Key("pos", day.Add(10*time.Hour), "z"), body); err != nil {
		t.Fatal(err)
	}
	bad := 0
	var got []string
	hist := identityrules.ArchiveHistory(context.Background(), st, archive.Range{From: day, To: day.Add(24 * time.Hour)}, 0, &bad)
	err := hist(func(r tracking.Record) error {
		got = append(got, r.Message.MessageID)
		return nil
	})
	if err != nil || bad != 1 || strings.Join(got, " ") != "w0 p0 w1 p1 t0 t1" {
		t.Fatalf("%v bad %d order %v", err, bad, got)
	}
}
