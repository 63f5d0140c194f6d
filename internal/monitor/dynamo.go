package monitor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/serverless-cdp/cdp/internal/store"
)

// DynamoStore keeps the counts in the shared table (layout in the package comment).
type DynamoStore struct {
	db    store.Client
	table string
	now   func() time.Time
}

// NewStore returns the table's monitor store.
func NewStore(db store.Client, table string) *DynamoStore {
	return &DynamoStore{db: db, table: table, now: time.Now}
}

const (
	pkHour     = "MON#"
	pkReject   = "MON#REJ"
	skCount    = "C#"
	skLag      = "L#"
	hourLayout = "2006-01-02T15"
	attrAcc    = "acc"
	attrRej    = "r_"
	attrN      = "n"
	attrMaxAge = "maxAgeMs"
	// skTime sorts as text in time order (fixed width, unlike RFC3339Nano).
	skTime = "2006-01-02T15:04:05.000000Z"
)

func hourPK(t time.Time) string { return pkHour + t.UTC().Format(hourLayout) }

func minuteSK(prefix string, t time.Time, name string) string {
	return prefix + t.UTC().Format("04") + "#" + name
}

func (s *DynamoStore) ttl(d time.Duration) types.AttributeValue {
	return store.N(s.now().Add(d).Unix())
}

// Write adds each count and lag with one UpdateItem (ADD) and puts the rejection samples.
func (s *DynamoStore) Write(ctx context.Context, b Batch) error {
	for _, c := range b.Counts {
		if err := s.addCount(ctx, c); err != nil {
			return err
		}
	}
	for _, l := range b.Lags {
		if err := s.addLag(ctx, l); err != nil {
			return err
		}
	}
	return s.putRejections(ctx, b.Rejections)
}

func (s *DynamoStore) addCount(ctx context.Context, c Count) error {
	names := map[string]string{"#acc": attrAcc, "#ttl": store.TTL}
	values := map[string]types.AttributeValue{":acc": store.N(c.Accepted), ":ttl": s.ttl(CountTTL)}
	adds := []string{"#acc :acc"}
	i := 0
	for code, n := range c.Rejected {
		names[fmt.Sprintf("#r%d", i)] = attrRej + code
		values[fmt.Sprintf(":r%d", i)] = store.N(n)
		adds = append(adds, fmt.Sprintf("#r%d :r%d", i, i))
		i++
	}
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.table),
		Key:                       store.Key(hourPK(c.Minute), minuteSK(skCount, c.Minute, c.Source)),
		UpdateExpression:          aws.String("ADD " + strings.Join(adds, ", ") + " SET #ttl = :ttl"),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	})
	if err != nil {
		return fmt.Errorf("monitor: add counts: %w", err)
	}
	return nil
}

// addLag adds the records and raises the largest age: one conditional UpdateItem, and a
// second without the age when the stored age is already larger.
func (s *DynamoStore) addLag(ctx context.Context, l Lag) error {
	in := &dynamodb.UpdateItemInput{
		TableName:                aws.String(s.table),
		Key:                      store.Key(hourPK(l.Minute), minuteSK(skLag, l.Minute, l.Stage)),
		UpdateExpression:         aws.String("ADD #n :n SET #ttl = :ttl, #age = :age"),
		ConditionExpression:      aws.String("attribute_not_exists(#age) OR #age < :age"),
		ExpressionAttributeNames: map[string]string{"#n": attrN, "#ttl": store.TTL, "#age": attrMaxAge},
		ExpressionAttributeValues: map[string]types.AttributeValue{":n": store.N(l.Records),
			":ttl": s.ttl(CountTTL), ":age": store.N(l.MaxAge.Milliseconds())},
	}
	_, err := s.db.UpdateItem(ctx, in)
	if store.IsConditionFailed(err) {
		in.UpdateExpression = aws.String("ADD #n :n SET #ttl = :ttl")
		in.ConditionExpression = nil
		delete(in.ExpressionAttributeNames, "#age")
		delete(in.ExpressionAttributeValues, ":age")
		_, err = s.db.UpdateItem(ctx, in)
	}
	if err != nil {
		return fmt.Errorf("monitor: add lag: %w", err)
	}
	return nil
}

func (s *DynamoStore) putRejections(ctx context.Context, rs []Rejection) error {
	for start := 0; start < len(rs); start += 25 {
		var reqs []types.WriteRequest
		for _, r := range rs[start:min(start+25, len(rs))] {
			var nonce [4]byte
			_, _ = rand.Read(nonce[:])
			reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: map[string]types.AttributeValue{
				store.PK: store.S(pkReject), store.SK: store.S(r.At.UTC().Format(skTime) + "#" + hex.EncodeToString(nonce[:])),
				"at": store.S(r.At.UTC().Format(time.RFC3339Nano)), "src": store.S(r.Source), "code": store.S(r.Code),
				"msg": store.S(r.Message), "path": store.S(r.Path), store.TTL: s.ttl(RejectionTTL),
			}}})
		}
		if err := s.batchWrite(ctx, reqs); err != nil {
			return err
		}
	}
	return nil
}

func (s *DynamoStore) batchWrite(ctx context.Context, reqs []types.WriteRequest) error {
	for attempt := 0; len(reqs) > 0; attempt++ {
		if attempt == 3 {
			return fmt.Errorf("monitor: %d rejection samples unprocessed", len(reqs))
		}
		out, err := s.db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{
			RequestItems: map[string][]types.WriteRequest{s.table: reqs}})
		if err != nil {
			return fmt.Errorf("monitor: put rejections: %w", err)
		}
		reqs = out.UnprocessedItems[s.table]
	}
	return nil
}

// hours queries the hour partitions from since to now for sort keys with prefix, from
// since's minute on in the first hour.
func (s *DynamoStore) hours(ctx context.Context, since time.Time, prefix string, fn func(hour time.Time, it map[string]types.AttributeValue)) error {
	since = minute(since)
	now := s.now().UTC()
	for h := since.Truncate(time.Hour); !h.After(now); h = h.Add(time.Hour) {
		lo := prefix
		if h.Equal(since.Truncate(time.Hour)) {
			lo = prefix + since.Format("04")
		}
		p := dynamodb.NewQueryPaginator(s.db, &dynamodb.QueryInput{
			TableName:                 aws.String(s.table),
			KeyConditionExpression:    aws.String("#pk = :pk AND #sk BETWEEN :lo AND :hi"),
			ExpressionAttributeNames:  map[string]string{"#pk": store.PK, "#sk": store.SK},
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": store.S(hourPK(h)), ":lo": store.S(lo), ":hi": store.S(prefix + "~")},
		})
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				return fmt.Errorf("monitor: query %s: %w", hourPK(h), err)
			}
			for _, it := range out.Items {
				fn(h, it)
			}
		}
	}
	return nil
}

// parseSK splits "C#<mm>#<name>" into the minute (within hour) and the name.
func parseSK(hour time.Time, sk string) (time.Time, string, bool) {
	parts := strings.SplitN(sk, "#", 3)
	if len(parts) != 3 {
		return time.Time{}, "", false
	}
	m, err := strconv.Atoi(parts[1])
	if err != nil {
		return time.Time{}, "", false
	}
	return hour.Add(time.Duration(m) * time.Minute), parts[2], true
}

// Counts reads the hour partitions since since (one Query per hour).
func (s *DynamoStore) Counts(ctx context.Context, since time.Time) ([]Count, error) {
	var out []Count
	err := s.hours(ctx, since, skCount, func(h time.Time, it map[string]types.AttributeValue) {
		m, src, ok := parseSK(h, store.GetS(it, store.SK))
		if !ok {
			return
		}
		c := Count{Source: src, Minute: m, Accepted: store.GetN(it, attrAcc)}
		for name := range it {
			if code, ok := strings.CutPrefix(name, attrRej); ok {
				if c.Rejected == nil {
					c.Rejected = map[string]int64{}
				}
				c.Rejected[code] = store.GetN(it, name)
			}
		}
		out = append(out, c)
	})
	return out, err
}

// Lags reads the hour partitions since since (one Query per hour).
func (s *DynamoStore) Lags(ctx context.Context, since time.Time) ([]Lag, error) {
	var out []Lag
	err := s.hours(ctx, since, skLag, func(h time.Time, it map[string]types.AttributeValue) {
		if m, stage, ok := parseSK(h, store.GetS(it, store.SK)); ok {
			out = append(out, Lag{Stage: stage, Minute: m, Records: store.GetN(it, attrN),
				MaxAge: time.Duration(store.GetN(it, attrMaxAge)) * time.Millisecond})
		}
	})
	return out, err
}

// Rejections reads the newest samples: one Query.
func (s *DynamoStore) Rejections(ctx context.Context, limit int) ([]Rejection, error) {
	out, err := s.db.Query(ctx, &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		KeyConditionExpression:    aws.String("#pk = :pk AND #sk > :since"),
		ExpressionAttributeNames:  map[string]string{"#pk": store.PK, "#sk": store.SK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": store.S(pkReject), ":since": store.S(s.now().Add(-RejectionTTL).UTC().Format(skTime))},
		ScanIndexForward:          aws.Bool(false),
		Limit:                     aws.Int32(int32(limit)),
	})
	if err != nil {
		return nil, fmt.Errorf("monitor: query rejections: %w", err)
	}
	rs := make([]Rejection, 0, len(out.Items))
	for _, it := range out.Items {
		at, _ := time.Parse(time.RFC3339Nano, store.GetS(it, "at"))
		rs = append(rs, Rejection{At: at, Source: store.GetS(it, "src"), Code: store.GetS(it, "code"),
			Message: store.GetS(it, "msg"), Path: store.GetS(it, "path")})
	}
	return rs, nil
}
