//go:build integration

package privacy

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/serverless-cdp/cdp/internal/emulator/testenv"
	"github.com/serverless-cdp/cdp/internal/store"
	"github.com/serverless-cdp/cdp/internal/store/docs"
	"github.com/serverless-cdp/cdp/internal/store/ru"
)

func dynamoWorld(t testing.TB) (*world, *ru.Meter, string) {
	c := testenv.Clients(t)
	table := testenv.Table(t, c.DynamoDB)
	m := ru.NewMeter(c.DynamoDB)
	w := newWorldOn(func(now func() time.Time) RequestStore { return NewDynamoStore(m, table, WithClock(now)) })
	return w, m, table
}

// TestDynamoDeleteLeavesNothingReadable: an export, then a delete with the requests holder, on
// DynamoDB Local; a scan of the whole table (compressed documents and export parts
// decompressed) finds none of Ann's identifier values, profile ids or item values.
func TestDynamoDeleteLeavesNothingReadable(t *testing.T) {
	w, _, table := dynamoWorld(t)
	holder := NewRequestsHolder(w.store, testHasher)
	rn := w.runner(func(o *Options) { o.Holders = append(o.Holders, holder) })
	exp := w.submit(TypeExport, "anonymous_id:dev-a")
	if got, err := rn.RunOne(ctx, exp.ID); err != nil || got.Status != StatusCompleted {
		t.Fatalf("export: %+v %v", got, err)
	}
	if dump := scanTable(t, table); !strings.Contains(dump, "events of prof_ann1 Paris") || !strings.Contains(dump, "ann@example.com") {
		t.Fatal("the scan does not see the export result: the check below would prove nothing")
	}
	del := w.submit(TypeDelete, "email:ann@example.com")
	got, err := rn.RunOne(ctx, del.ID)
	if err != nil || got.Status != StatusCompleted || got.Results[HolderName][KindExportResults] != 1 {
		t.Fatalf("delete: %+v %v", got, err)
	}
	dump := scanTable(t, table)
	for _, v := range append(annPII, "prof_ann1 Paris") {
		if strings.Contains(strings.ToLower(dump), strings.ToLower(v)) {
			t.Errorf("the table still holds %q", v)
		}
	}
}

// scanTable returns every item of the table as text, gzip attributes decompressed and the
// export parts of each request joined and decompressed.
func scanTable(t *testing.T, table string) string {
	t.Helper()
	c := testenv.Clients(t)
	var b strings.Builder
	parts := map[string][]byte{}
	pages := dynamodb.NewScanPaginator(c.DynamoDB, &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range page.Items {
			for name, v := range it {
				switch x := v.(type) {
				case *types.AttributeValueMemberS:
					fmt.Fprintf(&b, "%s=%s\n", name, x.Value)
				case *types.AttributeValueMemberB:
					if name == "data" {
						pk := store.GetS(it, store.PK)
						parts[pk] = append(parts[pk], x.Value...)
					} else if z, err := docs.Gunzip(x.Value, MaxExport); err == nil {
						fmt.Fprintf(&b, "%s=%s\n", name, z)
					}
				}
			}
		}
	}
	for _, z := range parts {
		if doc, err := docs.Gunzip(z, MaxExport); err == nil {
			b.Write(doc)
		}
	}
	return b.String()
}

// BenchmarkDeleteRequest: the request store's cost of one suppress_with_delete request from
// submission to completion (fake holders, resolver and blocklist: their own costs are theirs),
// with 100 earlier requests in the audit log. Reports request units per request.
func BenchmarkDeleteRequest(b *testing.B) {
	for _, withHolder := range []bool{false, true} {
		b.Run(fmt.Sprint("requests_holder=", withHolder), func(b *testing.B) {
			w, m, _ := dynamoWorld(b)
			rn := w.runner(func(o *Options) {
				if withHolder {
					o.Holders = append(o.Holders, NewRequestsHolder(w.store, testHasher))
				}
			})
			for i := range 100 {
				old, _ := NewRequest(Input{Type: TypeExport, Identifiers: []string{fmt.Sprintf("user_id:old%d", i)}}, testHasher, w.clock.now())
				if err := w.store.Create(ctx, old); err != nil {
					b.Fatal(err)
				}
			}
			m.Take()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				r, err := NewRequest(Input{Type: TypeSuppressWithDelete, Identifiers: []string{"email:ann@example.com"}}, testHasher, w.clock.now())
				if err != nil {
					b.Fatal(err)
				}
				if err := w.store.Create(ctx, r); err != nil {
					b.Fatal(err)
				}
				if got, err := rn.RunOne(ctx, r.ID); err != nil || got.Status != StatusCompleted {
					b.Fatalf("%+v %v", got, err)
				}
				w.clock.advance(time.Millisecond)
			}
			b.StopTimer()
			u := m.Take()
			rd, wr := u.Read, u.Write
			b.ReportMetric(rd/float64(b.N), "RRU/request")
			b.ReportMetric(wr/float64(b.N), "WRU/request")
		})
	}
}
