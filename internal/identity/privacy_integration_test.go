//go:build integration

package identity

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/serverless-cdp/cdp/internal/store"
	"github.com/serverless-cdp/cdp/internal/store/ru"
	"github.com/serverless-cdp/cdp/internal/timeline"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

func (d dynamoData) putLegacyEvent(t testing.TB, e StoredEvent) {
	t.Helper()
	it, err := encodeEvent(e)
	if err != nil {
		t.Fatal(err)
	}
	it[store.PK] = store.S(prefixMsgV1 + e.Message.MessageID)
	if _, err := d.db.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(d.table), Item: it}); err != nil {
		t.Fatal(err)
	}
}

// tableText is every item of the table as text: string and number values, binary values
// decompressed when they are gzip (the profile document, messages), keys included.
func (d dynamoData) tableText(t testing.TB) []string {
	t.Helper()
	var out []string
	p := dynamodb.NewScanPaginator(d.db, &dynamodb.ScanInput{TableName: aws.String(d.table), ConsistentRead: aws.Bool(true)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("scan: %v", err)
		}
		for _, it := range page.Items {
			var b strings.Builder
			for name, v := range it {
				b.WriteString(name + "=")
				writeValue(&b, v)
				b.WriteString(" ")
			}
			out = append(out, b.String())
		}
	}
	return out
}

func writeValue(b *strings.Builder, v types.AttributeValue) {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		b.WriteString(v.Value)
	case *types.AttributeValueMemberN:
		b.WriteString(v.Value)
	case *types.AttributeValueMemberB:
		if raw, err := timeline.Gunzip(v.Value); err == nil {
			b.Write(raw)
		} else {
			b.Write(v.Value)
		}
	case *types.AttributeValueMemberSS:
		b.WriteString(strings.Join(v.Value, ","))
	case *types.AttributeValueMemberL:
		for _, x := range v.Value {
			writeValue(b, x)
			b.WriteString(",")
		}
	case *types.AttributeValueMemberM:
		for k, x := range v.Value {
			b.WriteString(k + ":")
			writeValue(b, x)
			b.WriteString(",")
		}
	default:
		fmt.Fprint(b, v)
	}
}

// After the erasure a scan of the whole table, compressed attributes decompressed, finds none of
// Ann's identifier or trait values; Bob's are all still there.
func TestPrivacyEraseLeavesNothingInTheTable(t *testing.T) {
	e, d := newDynamoEnv(t, nil)
	seedPeople(t, e)
	text := strings.Join(d.tableText(t), "\n")
	for _, v := range append(append([]string{}, annSecrets...), bobSecrets...) {
		if !strings.Contains(text, v) {
			t.Fatalf("the scan cannot see %q before the erasure: the check would prove nothing", v)
		}
	}
	for _, attr := range []string{"dataz=", "msgz="} { // compressed attributes are read decompressed
		if !strings.Contains(text, attr) {
			t.Fatalf("no %s attribute in the table: the check would not cover compressed data", attr)
		}
	}
	pv := NewPrivacy(NewStore(d.db, d.table), PrivacyOptions{})
	if _, err := pv.Erase(context.Background(), resolve(t, pv, "email:ann.secret@example.com")); err != nil {
		t.Fatal(err)
	}
	for _, item := range d.tableText(t) {
		for _, v := range annSecrets {
			if strings.Contains(strings.ToLower(item), strings.ToLower(v)) {
				t.Errorf("found %q in %.300s", v, item)
			}
		}
	}
	text = strings.Join(d.tableText(t), "\n")
	for _, v := range bobSecrets {
		if !strings.Contains(text, v) {
			t.Errorf("Bob's %q is gone", v)
		}
	}
}

func (m *ruMeter) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	c := *in
	c.ReturnConsumedCapacity = total
	out, err := m.Client.BatchWriteItem(ctx, &c, o...)
	m.recordDeletes(in, out)
	return out, err
}

func (m *ruMeter) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	c := *in
	c.ReturnConsumedCapacity = total
	out, err := m.Client.DeleteItem(ctx, &c, o...)
	m.recordDeletes(in, out)
	return out, err
}

// recordDeletes meters a delete: a timeline item's delete removes its gsi1 entry too.
func (m *ruMeter) recordDeletes(params, result any) {
	indexed := func(key ru.Item) bool {
		pk := store.GetS(key, store.PK)
		return strings.HasPrefix(pk, prefixMsg) || strings.HasPrefix(pk, prefixMsgV1)
	}
	u := ru.Model{IndexedKey: indexed}.Call(params, result)
	r, w := ru.Reported(result)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.u.Requests++
	m.u.ModelReadUnits += u.Read
	m.u.ModelWriteUnits += u.Write
	m.u.ReadUnits += r
	m.u.WriteUnits += w
}

// seedEvents stores a person with n events (about 400 bytes each) over one profile.
func seedEvents(b testing.TB, e *env, person string, n int) {
	b.Helper()
	for start := 0; start < n; start += 100 {
		var recs []tracking.Record
		for i := start; i < min(start+100, n); i++ {
			recs = append(recs, rec("track", fmt.Sprintf("%s-%d", person, i), i%1000, map[string]string{"uid": person + "-u", "aid": person + "-a",
				"event": "Viewed", "ctx": `{"page":{"url":"https://example.com/products/` + noise(200) + `"}}`}))
		}
		e.process(b, recs...)
	}
}

// BenchmarkPrivacyEraseThousandEvents erases a person with 1,000 timeline events (one profile,
// two identifiers, a merge-log line) on DynamoDB Local, and reports the request units of the
// erasure (as AWS bills them, by internal/store/ru) and its time.
func BenchmarkPrivacyEraseThousandEvents(b *testing.B) {
	var ms time.Duration
	var units usage
	var counts map[string]int
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		e, meter := newMeteredEnv(b)
		seedEvents(b, e, fmt.Sprintf("p%d", i), 1000)
		seedEvents(b, e, fmt.Sprintf("other%d", i), 10)
		pv := NewPrivacy(e.store.(PersonStore), PrivacyOptions{})
		person, err := pv.Resolve(context.Background(), []string{fmt.Sprintf("user_id:p%d-u", i)})
		if err != nil {
			b.Fatal(err)
		}
		before := meter.usage()
		b.StartTimer()
		start := time.Now()
		counts, err = pv.Erase(context.Background(), person)
		ms += time.Since(start)
		b.StopTimer()
		if err != nil || counts[KindEvents] != 1000 {
			b.Fatalf("erase: %v %v", counts, err)
		}
		after := meter.usage()
		units.ModelReadUnits += after.ModelReadUnits - before.ModelReadUnits
		units.ModelWriteUnits += after.ModelWriteUnits - before.ModelWriteUnits
		units.Requests += after.Requests - before.Requests
	}
	n := float64(b.N)
	b.ReportMetric(units.ModelReadUnits/n, "RRU/erase")
	b.ReportMetric(units.ModelWriteUnits/n, "WRU/erase")
	b.ReportMetric(float64(units.Requests)/n, "requests/erase")
	b.ReportMetric(float64(ms.Milliseconds())/n, "ms/erase")
	b.Logf("erased %v", counts)
}
