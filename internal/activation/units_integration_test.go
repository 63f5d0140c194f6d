//go:build integration

package activation

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/serverless-cdp/cdp/internal/activations"
	"github.com/serverless-cdp/cdp/internal/consent"
	"github.com/serverless-cdp/cdp/internal/destination"
	"github.com/serverless-cdp/cdp/internal/emulator/testenv"
	"github.com/serverless-cdp/cdp/internal/store/ru"
	"github.com/serverless-cdp/cdp/internal/webhook"
)

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
			m := ru.NewMeter(c.DynamoDB)
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
			m.Take()
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
			u := m.Take()
			rru, wru := u.Read, u.Write
			b.ReportMetric(rru/float64(msgs), "RRU/msg")
			b.ReportMetric(wru/float64(msgs), "WRU/msg")
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(msgs), "ms/msg")
		})
	}
}
