//go:build integration

package local_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/serverless-cdp/cdp/internal/awsenv"
	"github.com/serverless-cdp/cdp/internal/importer"
	"github.com/serverless-cdp/cdp/internal/local"
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

// badImportRow: every 97th row of importCSV has a total that is not a number.
func badImportRow(i int) bool { return i%97 == 50 }

// validRowsBefore counts the valid rows among the file's first rows, per user (less skip).
func validRowsBefore(rows, users int, skip string) map[string]int {
	want := map[string]int{}
	for i := 0; i < rows; i++ {
		if user := fmt.Sprintf("imp-u%d", i%users); !badImportRow(i) && user != skip {
			want[user]++
		}
	}
	return want
}

// importStacks runs the import test's local stacks. A large file (more than 20,000 rows)
// rolls to fresh streams on the same table between the test's phases: kinesis-mock's
// PutRecords slows in proportion to what a stream holds (BenchmarkEmulatorPutAsStreamGrows:
// 12x at 48,000 records), so 200,000 records in one stream would take hours. The table, and
// with it every stored event, profile, dedupe entry and the suppression, carries over, as on
// AWS when the stream's retention has passed.
type importStacks struct {
	t        *testing.T
	n        int
	table    string
	writeKey string
	stack    *local.Stack
}

func (s *importStacks) start() *local.Stack {
	stack, cfg, key := startStackLogging(s.t, slog.New(slog.DiscardHandler), func(o *local.Options, _ awsenv.Clients) {
		o.Shards = int32(max(2, s.n/25000))
		if s.table != "" {
			o.Config.Table = s.table
		}
	})
	if s.table == "" {
		s.table = cfg.Table
	}
	s.writeKey, s.stack = key, stack
	return stack
}

// roll moves a large import to a fresh stack once what was sent is stored (want, per user).
func (s *importStacks) roll(want map[string]int, timeout time.Duration) *local.Stack {
	if s.n <= 20000 {
		return s.stack
	}
	waitCounts(s.t, newScnAPI(s.t, s.stack.URL), want, 0, timeout)
	s.stack.Close()
	return s.start()
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
		if badImportRow(i) {
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

// haltHalfway is a reverse proxy to the tracking API that forwards batches until at least half
// of the file's rows were acknowledged, then holds the next batch open forever: the test kills
// the `cdp import` process while that request is in flight, as a crash or Ctrl-C would.
type haltHalfway struct {
	proxy   *httputil.ReverseProxy
	half    int
	mu      sync.Mutex
	acked   int
	held    chan struct{} // closed when a batch is being held
	release chan struct{} // closed by the test's cleanup
	once    sync.Once
}

func newHaltHalfway(t *testing.T, target string, half int) *haltHalfway {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	h := &haltHalfway{proxy: httputil.NewSingleHostReverseProxy(u), half: half, held: make(chan struct{}), release: make(chan struct{})}
	t.Cleanup(func() { close(h.release) })
	return h
}

func (h *haltHalfway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var b struct{ Batch []json.RawMessage }
	_ = json.Unmarshal(body, &b)
	h.mu.Lock()
	hold := h.acked >= h.half
	h.mu.Unlock()
	if hold {
		h.once.Do(func() { close(h.held) })
		select {
		case <-h.release:
		case <-r.Context().Done():
		}
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	rec := &statusRecorder{ResponseWriter: w}
	h.proxy.ServeHTTP(rec, r)
	if rec.code == http.StatusOK {
		h.mu.Lock()
		h.acked += len(b.Batch)
		h.mu.Unlock()
	}
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) { s.code = code; s.ResponseWriter.WriteHeader(code) }

// buildCLI builds cmd/cdp into a temporary folder.
func buildCLI(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "cdp")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/serverless-cdp/cdp/cmd/cdp").CombinedOutput()
	if err != nil {
		t.Fatalf("go build cmd/cdp: %v\n%s", err, out)
	}
	return bin
}

// importCLI is `cdp import` of file with importMapping, as a process.
func importCLI(t *testing.T, bin, base, writeKey, file string) *exec.Cmd {
	t.Helper()
	raw, _ := json.Marshal(importMapping)
	mapping := filepath.Join(t.TempDir(), "mapping.json")
	if err := os.WriteFile(mapping, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	return exec.Command(bin, "import", "-f", file, "--mapping", mapping, "--url", base, "--write-key", writeKey, "--no-progress")
}

// killHalfway runs `cdp import` through a haltHalfway proxy and kills the process (SIGKILL)
// while a batch past the half of the file is in flight; it returns the checkpoint left behind.
func killHalfway(t *testing.T, bin, base, writeKey, file string, n int) importer.Checkpoint {
	t.Helper()
	halt := newHaltHalfway(t, base, n/2)
	proxy := httptest.NewServer(halt)
	defer proxy.Close()
	cmd := importCLI(t, bin, proxy.URL, writeKey, file)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-halt.held:
	case <-time.After(max(10*time.Minute, time.Duration(n)*20*time.Millisecond)):
		_ = cmd.Process.Kill()
		t.Fatalf("the import never got halfway:\n%s", out.String())
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	cp, err := importer.LoadCheckpoint(file + ".import-state.json")
	if err != nil || cp.Done || cp.Rows < n/2 || cp.Rows >= n {
		t.Fatalf("checkpoint after the kill: %+v %v, want between %d and %d rows handled", cp, err, n/2, n)
	}
	return cp
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
	n := importRows(t)
	stacks := &importStacks{t: t, n: n}
	stack := stacks.start()
	users := max(10, n/100)
	in, want, bad := importCSV(t, n, users)
	valid := n - len(bad)
	timeout := max(5*time.Minute, time.Duration(n)*20*time.Millisecond) // the local pipeline stores ≥ 50 rows/s

	// A suppressed person never comes back through an import: identity drops their rows.
	pa := privacyAPI{t: t, base: stack.URL}
	pa.wait(pa.submit("suppress", "user_id:imp-u1"), time.Now(), time.Minute)
	delete(want, "imp-u1")

	// The first run is a `cdp import` process killed (SIGKILL) with a batch in flight past the
	// half of the file; the rerun resumes from its checkpoint.
	bin := buildCLI(t)
	begin := time.Now()
	killed := killHalfway(t, bin, stack.URL, stacks.writeKey, in, n)
	stack = stacks.roll(validRowsBefore(killed.Rows, users, "imp-u1"), timeout)
	start := time.Now()
	out, err := importCLI(t, bin, stack.URL, stacks.writeKey, in).CombinedOutput()
	if err != nil {
		t.Fatalf("resumed import: %v\n%s", err, out)
	}
	sent := time.Since(start)
	cp, err := importer.LoadCheckpoint(in + ".import-state.json")
	if err != nil || !cp.Done || cp.Sent != valid || cp.Bad != len(bad) || cp.Rows != n ||
		!strings.Contains(string(out), fmt.Sprintf("(%d handled by an earlier run, not sent again)", killed.Rows)) {
		t.Fatalf("resumed run: %s checkpoint %+v %v, want %d sent, %d bad after %d rows handled before the kill", out, cp, err, valid, len(bad), killed.Rows)
	}
	resumed := n - killed.Rows
	sum := importer.Summary{StatePath: in + ".import-state.json", ReportPath: in + ".errors.csv"}
	waitCounts(t, newScnAPI(t, stack.URL), want, 0, timeout)
	stored := time.Since(start)
	all := time.Since(begin)
	t.Logf("%d rows, the process killed after %d: the %d resumed rows at the API in %v (%.0f rows/s); every row stored %v after the resumed run started, %v after the first (%.0f rows/s overall, kill and restart included)",
		n, killed.Rows, resumed, sent.Round(time.Millisecond), float64(resumed)/sent.Seconds(), stored.Round(time.Millisecond), all.Round(time.Millisecond), float64(n)/all.Seconds())
	checkImportReport(t, sum.ReportPath, bad)

	// Again, with no checkpoint: every row is resent under the same ids and deduped.
	stack = stacks.roll(want, timeout)
	api := newScnAPI(t, stack.URL)
	o := importer.Options{File: in, Mapping: importMapping}
	o.Client, _ = importer.NewClient(stack.URL, stacks.writeKey, nil)
	againStart := time.Now()
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
	t.Logf("the second run (no checkpoint: every row resent, deduped) and the sentinels stored after %v", time.Since(againStart).Round(time.Millisecond))
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
