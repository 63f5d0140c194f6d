package replay

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/serverless-cdp/cdp/internal/store"
)

// Keys in the shared table.
const (
	jobsPK     = "REPLAY"     // every job: sk JOB#<id>
	jobSK      = "JOB#"       //
	pendingGSI = "REPLAYPEND" // gsi1pk of a job not yet completed or failed (sparse)
)

// DynamoStore is the JobStore on the shared table: one item per job (its JSON document, under
// 4 KB: one read unit and at most four write units per save).
type DynamoStore struct {
	db    store.Client
	table string
}

var _ JobStore = (*DynamoStore)(nil)

// NewDynamoStore returns the store on the named table.
func NewDynamoStore(db store.Client, table string) *DynamoStore {
	return &DynamoStore{db: db, table: table}
}

func jobKey(id string) map[string]types.AttributeValue { return store.Key(jobsPK, jobSK+id) }

func encodeJob(j Job) (map[string]types.AttributeValue, error) {
	doc, err := json.Marshal(j)
	if err != nil {
		return nil, fmt.Errorf("replay job encode: %w", err)
	}
	item := jobKey(j.ID)
	item["v"] = store.N(int64(j.Version))
	item["status"] = store.S(j.Status)
	item["doc"] = store.S(string(doc))
	if !j.Terminal() {
		item[store.GSI1PK] = store.S(pendingGSI)
		item[store.GSI1SK] = store.S(j.ID)
	}
	return item, nil
}

func decodeJob(item map[string]types.AttributeValue) (Job, error) {
	var j Job
	if err := json.Unmarshal([]byte(store.GetS(item, "doc")), &j); err != nil {
		return Job{}, fmt.Errorf("replay job decode: %w", err)
	}
	j.Version = int(store.GetN(item, "v"))
	return j, nil
}

// Create implements JobStore.
func (s *DynamoStore) Create(ctx context.Context, j Job) error {
	j.Version = 1
	item, err := encodeJob(j)
	if err != nil {
		return err
	}
	_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(s.table), Item: item, ConditionExpression: aws.String("attribute_not_exists(pk)"),
	})
	if store.IsConditionFailed(err) {
		return ErrConflict
	}
	if err != nil {
		return fmt.Errorf("replay job create: %w", err)
	}
	return nil
}

// Get implements JobStore (a strongly consistent read).
func (s *DynamoStore) Get(ctx context.Context, id string) (Job, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: jobKey(id), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return Job{}, fmt.Errorf("replay job get: %w", err)
	}
	if out.Item == nil {
		return Job{}, ErrNotFound
	}
	return decodeJob(out.Item)
}

// List implements JobStore: one query of the jobs partition, newest first.
func (s *DynamoStore) List(ctx context.Context, limit int, next string) ([]Job, string, error) {
	if limit <= 0 || limit > 100 {
		limit = 100
	}
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		KeyConditionExpression:    aws.String("pk = :pk AND begins_with(sk, :sk)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": store.S(jobsPK), ":sk": store.S(jobSK)},
		ScanIndexForward:          aws.Bool(false),
		Limit:                     aws.Int32(int32(limit)),
	}
	if next != "" {
		in.ExclusiveStartKey = jobKey(next)
	}
	out, err := s.db.Query(ctx, in)
	if err != nil {
		return nil, "", fmt.Errorf("replay job list: %w", err)
	}
	jobs := make([]Job, 0, len(out.Items))
	for _, it := range out.Items {
		j, err := decodeJob(it)
		if err != nil {
			return nil, "", err
		}
		jobs = append(jobs, j)
	}
	cursor := ""
	if out.LastEvaluatedKey != nil && len(jobs) > 0 {
		cursor = jobs[len(jobs)-1].ID
	}
	return jobs, cursor, nil
}

// Update implements JobStore: a read, then a put conditional on the version read.
func (s *DynamoStore) Update(ctx context.Context, id string, fn func(*Job) error) error {
	for range maxUpdateRetries {
		cur, err := s.Get(ctx, id)
		if err != nil {
			return err
		}
		old := cur.Version
		if err := fn(&cur); err != nil {
			return err
		}
		cur.ID, cur.Version = id, old+1
		item, err := encodeJob(cur)
		if err != nil {
			return err
		}
		_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{
			TableName: aws.String(s.table), Item: item,
			ConditionExpression:       aws.String("v = :old"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":old": store.N(int64(old))},
		})
		if store.IsConditionFailed(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("replay job update: %w", err)
		}
		return nil
	}
	return fmt.Errorf("replay job update %s: %w", id, ErrConflict)
}

// Pending implements JobStore: a query of the sparse index entry only unfinished jobs carry, so
// its cost does not grow with the finished ones.
func (s *DynamoStore) Pending(ctx context.Context) ([]Job, error) {
	var out []Job
	pages := dynamodb.NewQueryPaginator(s.db, &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		IndexName:                 aws.String(store.GSI1),
		KeyConditionExpression:    aws.String("gsi1pk = :p"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":p": store.S(pendingGSI)},
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("replay pending jobs: %w", err)
		}
		for _, it := range page.Items {
			j, err := decodeJob(it)
			if err != nil {
				return nil, err
			}
			out = append(out, j)
		}
	}
	return out, nil
}
