//go:build integration

package privacy

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/serverless-cdp/cdp/internal/emulator/testenv"
	"github.com/serverless-cdp/cdp/internal/store"
	"github.com/serverless-cdp/cdp/internal/store/ru"
)

// meter is a store.Client that adds up the modelled request units of every call.
type meter struct {
	store.Client
	mu          sync.Mutex
	read, write float64
}

func (m *meter) add(in, out any) {
	u := ru.Model{}.Call(in, out)
	m.mu.Lock()
	m.read += u.Read
	m.write += u.Write
	m.mu.Unlock()
}

func (m *meter) reset() (r, w float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, w, m.read, m.write = m.read, m.write, 0, 0
	return r, w
}

func (m *meter) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	out, err := m.Client.GetItem(ctx, in, o...)
	m.add(in, out)
	return out, err
}

func (m *meter) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	out, err := m.Client.PutItem(ctx, in, o...)
	m.add(in, out)
	return out, err
}

func (m *meter) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	out, err := m.Client.DeleteItem(ctx, in, o...)
	m.add(in, out)
	return out, err
}

func (m *meter) Query(ctx context.Context, in *dynamodb.QueryInput, o ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	out, err := m.Client.Query(ctx, in, o...)
	m.add(in, out)
	return out, err
}

func dynamoWorld(t testing.TB) (*world, *meter, string) {
	c := testenv.Clients(t)
	table := testenv.Table(t, c.DynamoDB)
	m := &meter{Client: c.DynamoDB}
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
					} else if z, err := gunzip(x.Value, MaxExport); err == nil {
						fmt.Fprintf(&b, "%s=%s\n", name, z)
					}
				}
			}
		}
	}
	for _, z := range parts {
		if doc, err := gunzip(z, MaxExport); err == nil {
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
			m.reset()
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
			rd, wr := m.reset()
			b.ReportMetric(rd/float64(b.N), "RRU/request")
			b.ReportMetric(wr/float64(b.N), "WRU/request")
		})
	}
}
