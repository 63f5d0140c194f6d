package importer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// A CSV of 6,000 customers with bad rows: every good row is stored once, typed as mapped, in
// three batches (2,500 + 2,500 + the rest); every bad row is reported by line and column, with
// none of its values.
func TestImportCSVStoresGoodRowsOnceAndReportsBadOnes(t *testing.T) {
	api := &trackingAPI{}
	url := api.start(t)
	bad := map[int]bool{7: true, 2600: true, 5999: true}
	in := writeInput(t, "customers.csv", customersCSV(6000, bad))
	sum, err := Run(context.Background(), Options{File: in, Mapping: customersMapping(), Client: newTestClient(t, url, nil)})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Rows != 6000 || sum.Sent != 5997 || sum.Bad != 3 {
		t.Fatalf("summary %+v, want 6000 rows, 5997 sent, 3 bad", sum)
	}
	recs, requests := api.snapshot()
	if requests != 3 {
		t.Errorf("%d requests, want 3 (batches of 2,500)", requests)
	}
	for id, n := range api.stored() {
		if n != 1 {
			t.Errorf("messageId %s stored %d times", id, n)
		}
	}
	if len(recs) != 5997 {
		t.Fatalf("%d records, want 5997", len(recs))
	}
	m := recs[0].Message
	var traits map[string]any
	_ = json.Unmarshal(m.Traits, &traits)
	if m.Type != "identify" || m.UserID != "c1" || traits["email"] != "c1@example.com" || traits["age"] != float64(21) ||
		traits["vip"] != false || traits["name"] != "Customer 1" || m.Timestamp.Format(time.RFC3339) != "2024-01-02T10:00:00Z" {
		t.Errorf("first message %+v traits %v", m, traits)
	}
	if !strings.Contains(string(m.Context), "cdp-import") {
		t.Errorf("context %s does not name the library", m.Context)
	}
	want := []string{`8,age,not a number`, `2601,age,not a number`, `6000,age,not a number`}
	if got := readReport(t, sum.ReportPath); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("report %q, want %q", got, want)
	}
}

// Running the same file again sends nothing (the checkpoint says it is done); with the
// checkpoint gone it sends every row again under the same ids, so dedupe stores nothing new.
func TestImportRerunIsIdempotent(t *testing.T) {
	api := &trackingAPI{}
	url := api.start(t)
	in := writeInput(t, "customers.csv", customersCSV(3000, map[int]bool{5: true}))
	o := Options{File: in, Mapping: customersMapping(), Client: newTestClient(t, url, nil)}
	if _, err := Run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	first := api.stored()
	_, req1 := api.snapshot()
	sum, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if _, req2 := api.snapshot(); req2 != req1 || sum.Skipped != 3000 || sum.Sent != 2999 || sum.Bad != 1 {
		t.Errorf("second run: %d more requests, summary %+v", req2-req1, sum)
	}
	if got := readReport(t, sum.ReportPath); len(got) != 1 {
		t.Errorf("report after rerun: %q", got)
	}
	if err := os.Remove(o.File + ".import-state.json"); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	again := api.stored()
	if len(again) != len(first) || len(first) != 2999 {
		t.Fatalf("ids after a rerun without checkpoint: %d, before %d", len(again), len(first))
	}
	for id := range first {
		if again[id] != 2 {
			t.Fatalf("id %s sent %d times in two full runs, want 2 (same ids)", id, again[id])
		}
	}
}

// A run stopped after its first acknowledged batch resumes after it: the rows of that batch are
// not sent again, and every row is stored exactly once in all.
func TestImportResumesAfterInterruption(t *testing.T) {
	api := &trackingAPI{}
	url := api.start(t)
	in := writeInput(t, "customers.csv", customersCSV(6000, map[int]bool{10: true, 4000: true}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first := 0
	api.before = func(n int, body []byte) (int, string, map[string]string) {
		if n == 1 {
			var b struct{ Batch []json.RawMessage }
			_ = json.Unmarshal(body, &b)
			first = len(b.Batch)
		}
		if n == 2 { // the first batch was acknowledged; the run is killed during the second
			cancel()
			return 503, "", nil
		}
		return 0, "", nil
	}
	o := Options{File: in, Mapping: customersMapping(), Client: newTestClient(t, url, nil)}
	if _, err := Run(ctx, o); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: %v, want context.Canceled", err)
	}
	cp, err := LoadCheckpoint(in + ".import-state.json")
	if err != nil || first < 1000 || cp.Rows != first+1 || cp.Sent != first || cp.Done {
		t.Fatalf("checkpoint %+v (%v), want the first batch's %d rows sent and the bad row before it handled", cp, err, first)
	}
	api.before = nil
	sum, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if !sum.Resumed || sum.Skipped != first+1 || sum.Sent != 5998 || sum.Bad != 2 {
		t.Errorf("resumed summary %+v", sum)
	}
	stored := api.stored()
	if len(stored) != 5998 {
		t.Errorf("%d distinct ids stored, want 5998", len(stored))
	}
	for id, n := range stored {
		if n != 1 {
			t.Fatalf("id %s stored %d times", id, n)
		}
	}
	want := []string{`11,age,not a number`, `4001,age,not a number`}
	if got := readReport(t, sum.ReportPath); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("report %q, want %q", got, want)
	}
}

// 429 waits for Retry-After and retries; a 503 halves a batch of several rows at once and is
// retried with backoff for a single row; the rows are stored once.
func TestImportRetriesThrottlingAndServerErrors(t *testing.T) {
	for _, rows := range []int{10, 1} {
		t.Run(fmt.Sprint(rows, " rows"), func(t *testing.T) {
			api := &trackingAPI{}
			url := api.start(t)
			api.before = func(n int, _ []byte) (int, string, map[string]string) {
				switch n {
				case 1:
					return 429, `{"code":"rate_limited"}`, map[string]string{"Retry-After": "7"}
				case 2:
					return 503, `{"code":"unavailable"}`, nil
				}
				return 0, "", nil
			}
			var waits []time.Duration
			in := writeInput(t, "c.csv", customersCSV(rows, nil))
			sum, err := Run(context.Background(), Options{File: in, Mapping: customersMapping(), Client: newTestClient(t, url, &waits)})
			if err != nil {
				t.Fatal(err)
			}
			_, requests := api.snapshot()
			if sum.Sent != rows || len(api.stored()) != rows {
				t.Errorf("sent %d, stored %d", sum.Sent, len(api.stored()))
			}
			if rows > 1 && (len(waits) != 1 || waits[0] != 7*time.Second || requests != 4) {
				t.Errorf("waits %v, %d requests; want Retry-After's 7s, then the two halves at once", waits, requests)
			}
			if rows == 1 && (len(waits) != 2 || waits[0] != 7*time.Second || waits[1] <= 0 || waits[1] > time.Second || requests != 3) {
				t.Errorf("waits %v, %d requests; want Retry-After's 7s then a backoff", waits, requests)
			}
		})
	}
}

// After a batch is halved the next ones are smaller too, and grow back once batches go through.
func TestImportAdaptsBatchSize(t *testing.T) {
	api := &trackingAPI{}
	url := api.start(t)
	var sizes []int
	api.before = func(n int, body []byte) (int, string, map[string]string) {
		var b struct{ Batch []json.RawMessage }
		_ = json.Unmarshal(body, &b)
		sizes = append(sizes, len(b.Batch))
		if n == 1 {
			return 503, "", nil
		}
		return 0, "", nil
	}
	in := writeInput(t, "c.csv", customersCSV(12000, nil))
	if _, err := Run(context.Background(), Options{File: in, Mapping: customersMapping(), Client: newTestClient(t, url, nil)}); err != nil {
		t.Fatal(err)
	}
	full := sizes[0]
	want := []int{full, full / 2, full - full/2, full / 2, full / 2}
	for i, w := range want {
		if sizes[i] != w {
			t.Fatalf("batch sizes %v, want them to start %v", sizes, want)
		}
	}
	if slicesMax(sizes[5:]) <= full/2 {
		t.Errorf("batch sizes %v never grow back", sizes)
	}
}

func slicesMax(s []int) int {
	m := 0
	for _, v := range s {
		m = max(m, v)
	}
	return m
}

// A row the API refuses (400 naming batch[i]) is reported with its line, without its values, and
// the other rows of its batch are stored; a refusal naming no item is narrowed down by halving.
func TestImportReportsRowsTheAPIRefuses(t *testing.T) {
	for _, named := range []bool{true, false} {
		t.Run(fmt.Sprint("named=", named), func(t *testing.T) {
			api := &trackingAPI{}
			url := api.start(t)
			api.before = func(_ int, body []byte) (int, string, map[string]string) {
				var b struct{ Batch []struct{ UserID string } }
				_ = json.Unmarshal(body, &b)
				for i, m := range b.Batch {
					if m.UserID == "c42" {
						msg := fmt.Sprintf(`batch[%d]: userId \"c42\" is refused`, i)
						if !named {
							msg = "something in this batch"
						}
						return 400, `{"code":"invalid_field","message":"` + msg + `"}`, nil
					}
				}
				return 0, "", nil
			}
			in := writeInput(t, "c.csv", customersCSV(100, nil))
			sum, err := Run(context.Background(), Options{File: in, Mapping: customersMapping(), Client: newTestClient(t, url, nil)})
			if err != nil {
				t.Fatal(err)
			}
			if sum.Sent != 99 || sum.Bad != 1 || len(api.stored()) != 99 {
				t.Errorf("summary %+v, stored %d", sum, len(api.stored()))
			}
			got := readReport(t, sum.ReportPath)
			if len(got) != 1 || !strings.HasPrefix(got[0], "43,,refused by the tracking API: invalid_field") || strings.Contains(got[0], "c42") {
				t.Errorf("report %q", got)
			}
		})
	}
}

// A bad write key stops the import with an error (nothing to retry); the checkpoint is untouched.
func TestImportBadWriteKeyStops(t *testing.T) {
	api := &trackingAPI{}
	url := api.start(t)
	c, _ := NewClient(url, "wrong", nil)
	in := writeInput(t, "c.csv", customersCSV(10, nil))
	_, err := Run(context.Background(), Options{File: in, Mapping: customersMapping(), Client: c})
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("err %v, want a 401", err)
	}
	if _, requests := api.snapshot(); requests != 1 {
		t.Errorf("%d requests, want 1 (no retry)", requests)
	}
}

// --dry-run reads and checks every row and sends nothing.
func TestImportDryRunSendsNothing(t *testing.T) {
	in := writeInput(t, "c.csv", customersCSV(50, map[int]bool{3: true}))
	sum, err := Run(context.Background(), Options{File: in, Mapping: customersMapping(), DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Sent != 49 || sum.Bad != 1 {
		t.Errorf("summary %+v", sum)
	}
	if _, err := os.Stat(in + ".import-state.json"); !os.IsNotExist(err) {
		t.Errorf("a dry run wrote a checkpoint: %v", err)
	}
}

// A file over the row or byte limit is refused (bytes: before anything is sent; rows: at the
// limit, having imported the rows before it).
func TestImportFileLimits(t *testing.T) {
	api := &trackingAPI{}
	url := api.start(t)
	in := writeInput(t, "c.csv", customersCSV(20, nil))
	_, err := Run(context.Background(), Options{File: in, Mapping: customersMapping(), Client: newTestClient(t, url, nil), MaxBytes: 100})
	if err == nil || !strings.Contains(err.Error(), "the limit is 100") {
		t.Errorf("byte limit: %v", err)
	}
	sum, err := Run(context.Background(), Options{File: in, Mapping: customersMapping(), Client: newTestClient(t, url, nil), MaxRows: 15})
	if err == nil || !strings.Contains(err.Error(), "more than 15 rows") {
		t.Errorf("row limit: %v", err)
	}
	if sum.Rows != 15 {
		t.Errorf("read %d rows before the limit", sum.Rows)
	}
}

// A JSONL file of orders: numbers and booleans keep their JSON types, blank lines are skipped,
// a line that is not an object is reported, and the order id makes the messageId.
func TestImportJSONLOrders(t *testing.T) {
	api := &trackingAPI{}
	url := api.start(t)
	in := writeInput(t, "orders.jsonl", `{"order":"o1","user":"u1","total":12.5,"gift":true,"at":"2024-03-01"}

not json
{"order":"o2","user":"u2","total":"7","gift":"no","at":"2024-03-02T08:00:00Z"}
{"order":"o3","anon":"a3","total":3,"gift":false}
`)
	m := Mapping{Type: CallTrack, EventName: "Order Completed", UserID: "user", AnonymousID: "anon", MessageID: "order",
		Timestamp: "at", Properties: map[string]string{"total": TypeNumber, "gift": TypeBool, "order": TypeString}}
	sum, err := Run(context.Background(), Options{File: in, Mapping: m, Client: newTestClient(t, url, nil)})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Rows != 4 || sum.Sent != 2 || sum.Bad != 2 {
		t.Fatalf("summary %+v", sum)
	}
	recs, _ := api.snapshot()
	if recs[0].Message.Event != "Order Completed" || string(recs[0].Message.Properties) != `{"gift":true,"order":"o1","total":12.5}` {
		t.Errorf("first order %+v %s", recs[0].Message, recs[0].Message.Properties)
	}
	if recs[1].Message.AnonymousID != "a3" || recs[1].Message.UserID != "" {
		t.Errorf("third order %+v", recs[1].Message)
	}
	want := []string{`3,,not a JSON object`, `4,gift,not a bool (true/false, 1/0)`}
	if got := readReport(t, sum.ReportPath); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("report %q, want %q", got, want)
	}
}

// A batch the API keeps failing with 5xx (a stage that cannot store that many events in its
// time) is halved until the parts go through; every row is stored once.
func TestImportHalvesBatchesTheAPIKeepsFailing(t *testing.T) {
	api := &trackingAPI{}
	url := api.start(t)
	api.before = func(_ int, body []byte) (int, string, map[string]string) {
		var b struct{ Batch []json.RawMessage }
		_ = json.Unmarshal(body, &b)
		if len(b.Batch) > 300 {
			return 503, `{"code":"unavailable"}`, nil
		}
		return 0, "", nil
	}
	in := writeInput(t, "c.csv", customersCSV(2000, nil))
	sum, err := Run(context.Background(), Options{File: in, Mapping: customersMapping(), Client: newTestClient(t, url, nil)})
	if err != nil {
		t.Fatal(err)
	}
	stored := api.stored()
	if sum.Sent != 2000 || sum.Bad != 0 || len(stored) != 2000 {
		t.Fatalf("summary %+v, %d stored", sum, len(stored))
	}
	for id, n := range stored {
		if n != 1 {
			t.Fatalf("%s stored %d times", id, n)
		}
	}
}
