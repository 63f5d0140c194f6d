package ingest_test

import (
	"context"
	"encoding/json"
	"os"
	"testing"

	"github.com/serverless-cdp/cdp/internal/ingest"
	"github.com/serverless-cdp/cdp/internal/stream"
)

type discard struct{}

func (discard) Put(context.Context, []stream.Record) error { return nil }

func loadBatch(b *testing.B) (string, int) {
	raw, err := os.ReadFile("../../testdata/batch-100.json")
	if err != nil {
		b.Fatal(err)
	}
	var env struct{ Batch []json.RawMessage }
	if err := json.Unmarshal(raw, &env); err != nil {
		b.Fatal(err)
	}
	return string(raw), len(env.Batch)
}

// BenchmarkHandleBatch100 is the whole handler on a realistic analytics.js batch: parse,
// validate, normalize, merge the envelope, encode the records (publishing discarded).
func BenchmarkHandleBatch100(b *testing.B) {
	body, n := loadBatch(b)
	h := ingest.New(keys{"bench-key": {ID: "src_web", Enabled: true}}, discard{}, ingest.Config{})
	req := post("/v1/batch", body)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	run := func() {
		if resp, _ := h.Handle(context.Background(), req); resp.StatusCode != 200 {
			b.Fatalf("status %d %s", resp.StatusCode, resp.Body)
		}
	}
	for i := 0; i < b.N; i++ {
		run()
	}
	reportPerEvent(b, n, run)
}

// BenchmarkBaselineJSON is the irreducible work: decode the batch and encode each event once.
func BenchmarkBaselineJSON(b *testing.B) {
	body, n := loadBatch(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	run := func() {
		var env struct {
			Batch []map[string]any `json:"batch"`
		}
		if err := json.Unmarshal([]byte(body), &env); err != nil {
			b.Fatal(err)
		}
		for _, m := range env.Batch {
			if _, err := json.Marshal(m); err != nil {
				b.Fatal(err)
			}
		}
	}
	for i := 0; i < b.N; i++ {
		run()
	}
	reportPerEvent(b, n, run)
}

// reportPerEvent adds per-event metrics, the unit users reason in (cost per million events).
func reportPerEvent(b *testing.B, n int, run func()) {
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/event")
	b.ReportMetric(testing.AllocsPerRun(5, run)/float64(n), "allocs/event")
}
