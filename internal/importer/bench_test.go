package importer

import (
	"context"
	"os"
	"testing"
)

// BenchmarkImportCSV: rows per second through the importer alone — read, map, id, batch, POST to
// the real tracking API handler in-process (records kept in memory), checkpoint — so the number
// is the client's ceiling, not the pipeline's. The importer makes no DynamoDB call: an imported
// row costs the pipeline what a live event does.
func BenchmarkImportCSV(b *testing.B) {
	const rows = 10000
	api := &trackingAPI{}
	url := api.start(b)
	in := writeInput(b, "customers.csv", customersCSV(rows, nil))
	c, err := NewClient(url, testKey, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_ = os.Remove(in + ".import-state.json")
		sum, err := Run(context.Background(), Options{File: in, Mapping: customersMapping(), Client: c})
		if err != nil || sum.Sent != rows {
			b.Fatalf("%+v %v", sum, err)
		}
		api.mu.Lock()
		api.records = nil
		api.mu.Unlock()
	}
	b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(rows*b.N)/1e3, "µs/row")
}
