//go:build integration

package local_test

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/serverless-cdp/cdp/internal/importer"
)

// importRows is the size of the generated CSV: 3,000 rows (two batches) in `make test`;
// CDP_IMPORT_ROWS=100000 runs the 100,000-row import (make test-import-100k).
func importRows(t *testing.T) int {
	n := 3000
	if v := os.Getenv("CDP_IMPORT_ROWS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 3000 {
			t.Fatalf("CDP_IMPORT_ROWS=%q: want a number of rows ≥ 3000 (two batches at least)", v)
		}
	}
	return n
}

// importCSV writes n purchase rows for users imp-u0…imp-u(users-1) (row i belongs to user
// i % users); every 97th row is bad (a total that is not a number). It returns the path, the
// valid rows of each user and the lines of the bad rows.
func importCSV(t *testing.T, n, users int) (string, map[string]int, map[int]bool) {
	t.Helper()
	var b strings.Builder
	b.WriteString("order_id,user_id,email,total,placed_at\n")
	want, bad := map[string]int{}, map[int]bool{}
	for i := 0; i < n; i++ {
		user := fmt.Sprintf("imp-u%d", i%users)
		total := fmt.Sprintf("%d.%02d", i%500, i%100)
		if i%97 == 50 {
			total, bad[i+2] = "n/a", true // line i+2: the header is line 1
		} else {
			want[user]++
		}
		fmt.Fprintf(&b, "o%d,%s,%s@example.com,%s,2025-%02d-%02dT12:00:00Z\n", i, user, user, total, 1+i%12, 1+i%28)
	}
	p := filepath.Join(t.TempDir(), "orders.csv")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p, want, bad
}

var importMapping = importer.Mapping{Type: importer.CallTrack, EventName: "Order Completed", UserID: "user_id",
	Email: "email", Timestamp: "placed_at", MessageID: "order_id", Properties: map[string]string{"total": importer.TypeNumber, "order_id": importer.TypeString}}

// cancelAfter is a transport that cancels the import once `after` batches were acknowledged: the
// next batch fails as a killed process's would.
type cancelAfter struct {
	mu     sync.Mutex
	acked  int
	after  int
	cancel context.CancelFunc
}

func (c *cancelAfter) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil && resp.StatusCode == 200 {
		c.mu.Lock()
		if c.acked++; c.acked == c.after {
			c.cancel()
		}
		c.mu.Unlock()
	}
	return resp, err
}

// waitCounts waits until every user's profile counts exactly want[user]+extra events, failing
// at once if one counts more.
func waitCounts(t *testing.T, api *scnAPI, want map[string]int, extra int, timeout time.Duration) {
	t.Helper()
	eventually(t, "imported events stored", timeout, func() bool {
		for user, n := range want {
			m, ok := api.meta("user_id:" + user)
			if m.EventCount > n+extra {
				t.Fatalf("%s has %d events, want %d: a row was stored twice", user, m.EventCount, n+extra)
			}
			if !ok || m.EventCount < n+extra {
				return false
			}
		}
		return true
	})
}

// TestImportCSVEndToEnd imports a generated CSV through the real tracking API and pipeline
// (one of its users suppressed beforehand, whose rows must not be stored):
// the first run is killed after its first acknowledged batch, the rerun resumes and every valid row is stored
// once, every bad row is in the report by line; a third run without the checkpoint resends every
// row and stores nothing new (checked with one sentinel event per user sent after it, on the
// same partition key, so it is processed after the resent rows).
func TestImportCSVEndToEnd(t *testing.T) {
	stack, _, writeKey := startStack(t)
	n := importRows(t)
	users := max(10, n/100)
	in, want, bad := importCSV(t, n, users)
	valid := n - len(bad)

	// A suppressed person never comes back through an import: identity drops their rows.
	pa := privacyAPI{t: t, base: stack.URL}
	pa.wait(pa.submit("suppress", "user_id:imp-u1"), time.Now(), time.Minute)
	delete(want, "imp-u1")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	killer := &cancelAfter{after: 1, cancel: cancel}
	client, err := importer.NewClient(stack.URL, writeKey, &http.Client{Transport: killer, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	o := importer.Options{File: in, Mapping: importMapping, Client: client}
	if _, err := importer.Run(ctx, o); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: %v", err)
	}
	start := time.Now()
	o.Client, _ = importer.NewClient(stack.URL, writeKey, nil)
	sum, err := importer.Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	sent := time.Since(start)
	if sum.Sent != valid || sum.Bad != len(bad) || !sum.Resumed || sum.Skipped == 0 {
		t.Fatalf("summary %+v, want a resumed run, %d sent and %d bad", sum, valid, len(bad))
	}
	api := newScnAPI(t, stack.URL)
	timeout := max(5*time.Minute, time.Duration(n)*20*time.Millisecond) // the local pipeline stores ≥ 50 rows/s
	waitCounts(t, api, want, 0, timeout)
	stored := time.Since(start)
	t.Logf("%d rows (%d resumed after the interruption): at the API in %v (%.0f rows/s), stored in %v (%.0f rows/s)",
		n, n-sum.Skipped, sent.Round(time.Millisecond), float64(n-sum.Skipped)/sent.Seconds(), stored.Round(time.Millisecond), float64(n-sum.Skipped)/stored.Seconds())
	checkImportReport(t, sum.ReportPath, bad)

	// Again, with no checkpoint: every row is resent under the same ids and deduped.
	if err := os.Remove(sum.StatePath); err != nil {
		t.Fatal(err)
	}
	if again, err := importer.Run(context.Background(), o); err != nil || again.Sent != valid || again.Skipped != 0 {
		t.Fatalf("third run: %+v %v", again, err)
	}
	sentinel := filepath.Join(t.TempDir(), "sentinel.csv")
	var b strings.Builder
	b.WriteString("order_id,user_id,email,total,placed_at\n")
	for u := 0; u < users; u++ {
		fmt.Fprintf(&b, "sentinel-%d,imp-u%d,,1,2025-12-31T00:00:00Z\n", u, u)
	}
	_ = os.WriteFile(sentinel, []byte(b.String()), 0o600)
	if _, err := importer.Run(context.Background(), importer.Options{File: sentinel, Mapping: importMapping, Client: o.Client}); err != nil {
		t.Fatal(err)
	}
	waitCounts(t, api, want, 1, timeout)
	// Every other user's sentinel is stored, so every row before it in the stream's shards was
	// processed, imp-u1's included.
	if m, ok := api.meta("user_id:imp-u1"); ok {
		t.Errorf("the suppressed user has a profile with %d events", m.EventCount)
	}
}

func checkImportReport(t *testing.T, path string, bad map[int]bool) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	got := map[int]bool{}
	for _, r := range recs[1:] {
		line, _ := strconv.Atoi(r[0])
		if !bad[line] || r[1] != "total" || r[2] != "not a number" || got[line] {
			t.Errorf("report row %q", r)
		}
		got[line] = true
	}
	if len(got) != len(bad) {
		t.Errorf("report has %d rows, want %d", len(got), len(bad))
	}
}
