package importer

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/serverless-cdp/cdp/internal/ingest"
	"github.com/serverless-cdp/cdp/internal/stream"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

// The importer's tests run against the real tracking API handler (internal/ingest), whose
// publisher keeps the records in memory, so what the importer sends is checked by the same code
// that checks live events.

const testKey = "import-test-key"

type keys struct{}

func (keys) ResolveWriteKey(_ context.Context, key string) (ingest.Source, error) {
	if key != testKey {
		return ingest.Source{}, ingest.ErrUnknownKey
	}
	return ingest.Source{ID: "src_import", Enabled: true}, nil
}

// trackingAPI is the real handler with a recording publisher and hooks for failures.
type trackingAPI struct {
	mu       sync.Mutex
	records  []tracking.Record
	requests int
	// before, when set, may answer a request itself (status, body, headers) instead of the handler.
	before func(n int, body []byte) (int, string, map[string]string)
	// after runs once the handler has answered 200.
	after func(n int)
}

func (a *trackingAPI) Put(_ context.Context, recs []stream.Record) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, r := range recs {
		var rec tracking.Record
		if err := json.Unmarshal(r.Data, &rec); err != nil {
			return err
		}
		a.records = append(a.records, rec)
	}
	return nil
}

func (a *trackingAPI) start(t testing.TB) string {
	t.Helper()
	h := ingest.New(keys{}, a, ingest.Config{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.requests++
		n, before, after := a.requests, a.before, a.after
		a.mu.Unlock()
		if before != nil {
			raw := readAll(r)
			if st, body, hdr := before(n, raw); st != 0 {
				for k, v := range hdr {
					w.Header().Set(k, v)
				}
				w.WriteHeader(st)
				fmt.Fprint(w, body)
				return
			}
			r.Body = nopBody(raw)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
		if rec.Code == 200 && after != nil {
			after(n)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// stored is how many records each messageId has.
func (a *trackingAPI) stored() map[string]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[string]int{}
	for _, r := range a.records {
		out[r.Message.MessageID]++
	}
	return out
}

func (a *trackingAPI) snapshot() ([]tracking.Record, int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]tracking.Record(nil), a.records...), a.requests
}

func newTestClient(t *testing.T, url string, waits *[]time.Duration) *Client {
	t.Helper()
	c, err := NewClient(url, testKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	c.sleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		defer mu.Unlock()
		if waits != nil {
			*waits = append(*waits, d)
		}
		return ctx.Err()
	}
	return c
}

func writeInput(t testing.TB, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// customersCSV is a CSV of n customers; rows whose index is in bad get a value that is not a
// number in the age column.
func customersCSV(n int, bad map[int]bool) string {
	var b strings.Builder
	b.WriteString("customer_id,email,name,age,vip,signed_up\n")
	for i := 1; i <= n; i++ {
		age := fmt.Sprint(20 + i%50)
		if bad[i] {
			age = "old"
		}
		fmt.Fprintf(&b, "c%d,c%d@example.com,Customer %d,%s,%t,2024-01-%02dT10:00:00Z\n", i, i, i, age, i%2 == 0, 1+i%28)
	}
	return b.String()
}

func customersMapping() Mapping {
	return Mapping{Type: CallIdentify, UserID: "customer_id", Email: "email", Timestamp: "signed_up",
		Traits: map[string]string{"name": TypeString, "age": TypeNumber, "vip": TypeBool}}
}

func readReport(t *testing.T, path string) []string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(bytes.NewReader(raw)).ReadAll()
	if err != nil {
		t.Fatalf("report is not CSV: %v", err)
	}
	var lines []string
	for _, r := range recs[1:] { // after the header
		lines = append(lines, strings.Join(r, ","))
	}
	return lines
}
