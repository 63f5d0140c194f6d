//go:build integration

package activation

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/serverless-cdp/cdp/internal/activations"
	"github.com/serverless-cdp/cdp/internal/consent"
	"github.com/serverless-cdp/cdp/internal/destination"
	"github.com/serverless-cdp/cdp/internal/emulator/testenv"
	"github.com/serverless-cdp/cdp/internal/store"
	"github.com/serverless-cdp/cdp/internal/store/ru"
	"github.com/serverless-cdp/cdp/internal/webhook"
)

// unitMeter wraps the table client and models each call's request units (internal/store/ru:
// DynamoDB Local under-reports).
type unitMeter struct {
	store.Client
	mu       sync.Mutex
	rru, wru float64
}

func (m *unitMeter) add(in, out any) {
	u := ru.Model{}.Call(in, out)
	m.mu.Lock()
	m.rru += u.Read
	m.wru += u.Write
	m.mu.Unlock()
}

func (m *unitMeter) take() (float64, float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, w := m.rru, m.wru
	m.rru, m.wru = 0, 0
	return r, w
}

func metered[In, Out any](m *unitMeter, call func(context.Context, In, ...func(*dynamodb.Options)) (Out, error), ctx context.Context, in In, o []func(*dynamodb.Options)) (Out, error) {
	out, err := call(ctx, in, o...)
	if err == nil {
		m.add(in, out)
	} else {
		m.add(in, nil)
	}
	return out, err
}

func (m *unitMeter) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	return metered(m, m.Client.GetItem, ctx, in, o)
}
func (m *unitMeter) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	return metered(m, m.Client.PutItem, ctx, in, o)
}
func (m *unitMeter) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	return metered(m, m.Client.UpdateItem, ctx, in, o)
}
func (m *unitMeter) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	return metered(m, m.Client.DeleteItem, ctx, in, o)
}
func (m *unitMeter) Query(ctx context.Context, in *dynamodb.QueryInput, o ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	return metered(m, m.Client.Query, ctx, in, o)
}
func (m *unitMeter) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	return metered(m, m.Client.TransactWriteItems, ctx, in, o)
}

// BenchmarkActivationUnits delivers audience records (batches of 100, one destination, a 200
// receiver) and reports the request units per message: "plain" is a destination without
// consent settings and no erased-profile list; "consent" gates by a category the profile
// granted and checks every record against an erased-profile list (in memory, as
// blocklist.Checker is); "filtered" is the same with the category denied (the message is
// recorded as filtered_consent instead of sent).
func BenchmarkActivationUnits(b *testing.B) {
	c := testenv.Clients(b)
	for _, v := range []struct {
		name    string
		cats    []string
		granted bool
		erased  ErasedProfiles
	}{{"plain", nil, true, nil}, {"consent", []string{"advertising"}, true, erasedSet{"someone_else": true}},
		{"filtered", []string{"advertising"}, false, erasedSet{"someone_else": true}}} {
		b.Run(v.name, func(b *testing.B) {
			m := &unitMeter{Client: c.DynamoDB}
			table := testenv.Table(b, c.DynamoDB)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(200) }))
			b.Cleanup(srv.Close)
			dests := destination.NewService(m, table, destination.WithPolicy(webhook.Policy{AllowLoopback: true}))
			if _, _, err := dests.Create(context.Background(), destination.Spec{Name: "d", URL: srv.URL,
				Subscriptions: destination.Subscriptions{Audiences: []string{"*"}}, ConsentCategories: v.cats}); err != nil {
				b.Fatal(err)
			}
			d := New(m, dests, webhook.NewClient(webhook.Options{Policy: webhook.Policy{AllowLoopback: true}}),
				Config{Table: table, Erased: v.erased, Logger: slog.New(slog.DiscardHandler), InBatchWindow: time.Minute, InBatchTimeout: 5 * time.Second})
			m.take()
			b.ResetTimer()
			var msgs int
			for i := 0; i < b.N; i++ {
				var recs []activations.Record
				for k := range 100 {
					rec := audienceRecord(fmt.Sprintf("aud-prof_%d_%d-1", i, k), activations.KindAudienceEntered)
					rec.ProfileID = fmt.Sprintf("prof_%d_%d", i, k)
					rec.Consent = consent.Preferences{"advertising": v.granted}
					recs = append(recs, rec)
				}
				resp, err := d.HandleKinesis(context.Background(), kinesisEvent(b, recs...))
				if err != nil || len(resp.BatchItemFailures) > 0 {
					b.Fatalf("%v %v", err, resp.BatchItemFailures)
				}
				msgs += len(recs)
			}
			b.StopTimer()
			rru, wru := m.take()
			b.ReportMetric(rru/float64(msgs), "RRU/msg")
			b.ReportMetric(wru/float64(msgs), "WRU/msg")
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(msgs), "ms/msg")
		})
	}
}
