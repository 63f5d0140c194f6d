package archive

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// countingStore counts requests and bytes written.
type countingStore struct {
	Store
	puts, gets, lists, deletes, bytes atomic.Int64
}

func (c *countingStore) Put(ctx context.Context, key string, body []byte) error {
	c.puts.Add(1)
	c.bytes.Add(int64(len(body)))
	return c.Store.Put(ctx, key, body)
}

func (c *countingStore) Get(ctx context.Context, key string) ([]byte, error) {
	c.gets.Add(1)
	return c.Store.Get(ctx, key)
}

func (c *countingStore) List(ctx context.Context, prefix string, fn func(string) error) error {
	c.lists.Add(1)
	return c.Store.List(ctx, prefix, fn)
}

func (c *countingStore) Delete(ctx context.Context, key string) error {
	c.deletes.Add(1)
	return c.Store.Delete(ctx, key)
}

// BenchmarkWriter archives batches of 100 events of two sources (one op = one event):
// requests and compressed bytes per event. The archive costs no DynamoDB request unit.
func BenchmarkWriter(b *testing.B) {
	for _, be := range backends() {
		b.Run(be.name, func(b *testing.B) {
			cs := &countingStore{Store: be.open(b)}
			w := &Writer{Store: cs, Logger: quiet}
			const batch = 100
			var recs []events.KinesisEventRecord
			seq := 0
			b.ResetTimer()
			for i := range b.N {
				seq++
				src := []string{"src_web", "src_pos"}[i%2]
				recs = append(recs, kinesisRecord("shardId-000000000000", seq, t0, eventData(src, fmt.Sprint("m-", i), fmt.Sprint("u", i%1000), t0)))
				if len(recs) == batch || i == b.N-1 {
					if _, err := w.Handle(context.Background(), events.KinesisEvent{Records: recs}); err != nil {
						b.Fatal(err)
					}
					recs = recs[:0]
				}
			}
			b.ReportMetric(float64(cs.puts.Load())/float64(b.N), "PUT/event")
			b.ReportMetric(float64(cs.bytes.Load())/float64(b.N), "gzB/event")
			b.ReportMetric(0, "RU/event")
		})
	}
}

// BenchmarkHolderErase erases one person from an archive of 200 objects of 50 events each,
// the person's events in 10 of them (one op = one erase over the whole archive): requests
// and time per object read.
func BenchmarkHolderErase(b *testing.B) {
	for _, be := range backends() {
		b.Run(be.name, func(b *testing.B) {
			const objects, perObject = 200, 50
			st := be.open(b)
			cs := &countingStore{Store: st}
			h := NewHolder(cs, HolderOptions{Identifiers: testIdentifiers, Window: 48 * time.Hour, Now: func() time.Time { return t0 }})
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				seedObjects(b, st, objects, perObject)
				b.StartTimer()
				n, err := h.Erase(context.Background(), ann)
				if err != nil || n[KindEvents] != 10 {
					b.Fatalf("erase: %v %v", n, err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N*objects), "ms/object")
			b.ReportMetric(float64(cs.gets.Load())/float64(b.N*objects), "GET/object")
			b.ReportMetric(float64(cs.puts.Load()+cs.deletes.Load())/float64(b.N), "PUT+DELETE/erase")
			b.ReportMetric(float64(cs.lists.Load())/float64(b.N), "LIST/erase")
		})
	}
}

// seedObjects writes the archive BenchmarkHolderErase erases: Ann's event in every 20th object.
func seedObjects(b *testing.B, st Store, objects, perObject int) {
	b.Helper()
	for o := range objects {
		lines := make([][]byte, 0, perObject)
		for i := range perObject {
			user := fmt.Sprint("u", o*perObject+i)
			if o%20 == 0 && i == 0 {
				user = "ann-1"
			}
			lines = append(lines, eventData("src_web", fmt.Sprint("m-", o, "-", i), user, t0))
		}
		body, err := Encode(lines)
		if err != nil {
			b.Fatal(err)
		}
		if err := st.Put(context.Background(), Key("src_web", t0.Add(-time.Duration(o%24)*time.Hour), fmt.Sprint("o-", o)), body); err != nil {
			b.Fatal(err)
		}
	}
}
