package segment

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/serverless-cdp/cdp/internal/activations"
	"github.com/serverless-cdp/cdp/internal/store"
)

// Keys (see the package documentation).
const (
	pkDefs       = "SEGDEF"
	skTraitPfx   = "CT#"
	skAudPfx     = "AUD#"
	skJobPfx     = "JOB#"
	pkStatePfx   = "PSEG#"
	skState      = "STATE"
	skOutboxPfx  = "OUT#"
	pkRegPfx     = "PSEGIDX#"
	regShards    = 16
	pkMembersPfx = "AUD#"
	skMemberPfx  = "M#"
	pkSchedPfx   = "SEGSCHED#"
	skNext       = "NEXT"
	schedShards  = 4
	maxTxItems   = 100
)

// ErrConflict means a conditional write lost a race; the caller re-reads and retries.
var ErrConflict = errors.New("segment: concurrent update")

// ErrNotFound is returned for an unknown definition.
var ErrNotFound = errors.New("segment: not found")

// DynamoAPI is the part of the DynamoDB client the store uses.
type DynamoAPI interface {
	GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	DeleteItem(context.Context, *dynamodb.DeleteItemInput, ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	Query(context.Context, *dynamodb.QueryInput, ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	TransactWriteItems(context.Context, *dynamodb.TransactWriteItemsInput, ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
}

// Store reads and writes the segments stage's items in the shared table.
type Store struct {
	db    DynamoAPI
	table string
}

// NewStore returns a store over the named table.
func NewStore(db DynamoAPI, table string) *Store { return &Store{db: db, table: table} }

func key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{store.PK: store.S(pk), store.SK: store.S(sk)}
}

// Job is the backfill of one definition over existing profiles.
type Job struct {
	DefinitionID string    `json:"definitionId"`
	Version      int64     `json:"version"` // the definition version being backfilled
	Status       string    `json:"status"`  // computing | live
	Shard        int       `json:"shard"`   // registry shard in progress
	Cursor       string    `json:"cursor,omitempty"`
	Processed    int       `json:"processed"`
	StartedAt    time.Time `json:"startedAt"`
	FinishedAt   time.Time `json:"finishedAt,omitzero"`
}

// Definitions are every stored definition and backfill job.
type Definitions struct {
	Traits    []*ComputedTrait
	Audiences []*Audience
	Jobs      map[string]*Job // by definition id
}

// LoadDefinitions reads every definition (one partition, usually one request).
func (st *Store) LoadDefinitions(ctx context.Context) (*Definitions, error) {
	d := &Definitions{Jobs: map[string]*Job{}}
	var start map[string]types.AttributeValue
	for {
		out, err := st.db.Query(ctx, &dynamodb.QueryInput{
			TableName: aws.String(st.table), KeyConditionExpression: aws.String("pk = :pk"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": store.S(pkDefs)},
			ConsistentRead:            aws.Bool(true), ExclusiveStartKey: start,
		})
		if err != nil {
			return nil, fmt.Errorf("load definitions: %w", err)
		}
		for _, it := range out.Items {
			sk, data := store.GetS(it, store.SK), []byte(store.GetS(it, "data"))
			var err error
			switch {
			case strings.HasPrefix(sk, skTraitPfx):
				c := &ComputedTrait{}
				err = json.Unmarshal(data, c)
				d.Traits = append(d.Traits, c)
			case strings.HasPrefix(sk, skAudPfx):
				a := &Audience{}
				err = json.Unmarshal(data, a)
				d.Audiences = append(d.Audiences, a)
			case strings.HasPrefix(sk, skJobPfx):
				j := &Job{}
				err = json.Unmarshal(data, j)
				d.Jobs[j.DefinitionID] = j
			}
			if err != nil {
				return nil, fmt.Errorf("load definitions: %s: %w", sk, err)
			}
		}
		if start = out.LastEvaluatedKey; start == nil {
			return d, nil
		}
	}
}

// putDef writes a definition (and optionally its job) if the stored version is prev (0: new).
func (st *Store) putDef(ctx context.Context, sk string, def any, version int64, job *Job) error {
	data, err := json.Marshal(def)
	if err != nil {
		return fmt.Errorf("encode definition: %w", err)
	}
	item := key(pkDefs, sk)
	item["data"], item["ver"] = store.S(string(data)), store.N(version)
	put := &types.Put{TableName: aws.String(st.table), Item: item}
	if version == 1 {
		put.ConditionExpression = aws.String("attribute_not_exists(pk)")
	} else {
		put.ConditionExpression = aws.String("ver = :prev")
		put.ExpressionAttributeValues = map[string]types.AttributeValue{":prev": store.N(version - 1)}
	}
	items := []types.TransactWriteItem{{Put: put}}
	if job != nil {
		jd, _ := json.Marshal(job)
		ji := key(pkDefs, skJobPfx+job.DefinitionID)
		ji["data"], ji["jv"] = store.S(string(jd)), store.N(job.Version)
		items = append(items, types.TransactWriteItem{Put: &types.Put{TableName: aws.String(st.table), Item: ji}})
	}
	return st.transact(ctx, items)
}

// putJob writes a job's progress, unless the job was restarted for a newer definition version
// meanwhile (ErrConflict).
func (st *Store) putJob(ctx context.Context, j *Job) error {
	jd, _ := json.Marshal(j)
	item := key(pkDefs, skJobPfx+j.DefinitionID)
	item["data"], item["jv"] = store.S(string(jd)), store.N(j.Version)
	_, err := st.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(st.table), Item: item,
		ConditionExpression:       aws.String("jv = :v"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":v": store.N(j.Version)}})
	var cf *types.ConditionalCheckFailedException
	if errors.As(err, &cf) {
		return ErrConflict
	}
	if err != nil {
		return fmt.Errorf("put job: %w", err)
	}
	return nil
}

// deleteDef removes a definition and its job.
func (st *Store) deleteDef(ctx context.Context, sk, id string) error {
	return st.transact(ctx, []types.TransactWriteItem{
		{Delete: &types.Delete{TableName: aws.String(st.table), Key: key(pkDefs, sk),
			ConditionExpression: aws.String("attribute_exists(pk)")}},
		{Delete: &types.Delete{TableName: aws.String(st.table), Key: key(pkDefs, skJobPfx+id)}},
	})
}

func (st *Store) transact(ctx context.Context, items []types.TransactWriteItem) error {
	_, err := st.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	var tc *types.TransactionCanceledException
	if errors.As(err, &tc) {
		for _, r := range tc.CancellationReasons {
			if aws.ToString(r.Code) == "ConditionalCheckFailed" {
				return ErrConflict
			}
		}
	}
	if err != nil {
		return fmt.Errorf("transact write: %w", err)
	}
	return nil
}

// loaded is a profile's stored state and any unpublished outboxes.
type loaded struct {
	state   *State // nil: no state yet
	outbox  map[int64][]activations.Record
	nextAt  time.Time       // NextAt as stored
	members map[string]bool // audiences the profile was in, as stored
}

// load reads a profile's state and outboxes in one query.
func (st *Store) load(ctx context.Context, pid string) (*loaded, error) {
	l := &loaded{outbox: map[int64][]activations.Record{}, members: map[string]bool{}}
	var start map[string]types.AttributeValue
	for {
		out, err := st.db.Query(ctx, &dynamodb.QueryInput{
			TableName: aws.String(st.table), KeyConditionExpression: aws.String("pk = :pk"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": store.S(pkStatePfx + pid)},
			ConsistentRead:            aws.Bool(true), ExclusiveStartKey: start,
		})
		if err != nil {
			return nil, fmt.Errorf("load state %s: %w", pid, err)
		}
		for _, it := range out.Items {
			sk := store.GetS(it, store.SK)
			b, _ := it["data"].(*types.AttributeValueMemberB)
			if b == nil {
				continue
			}
			switch {
			case sk == skState:
				if l.state, err = decodeState(b.Value, store.GetN(it, "ver")); err != nil {
					return nil, fmt.Errorf("profile %s: %w", pid, err)
				}
			case strings.HasPrefix(sk, skOutboxPfx):
				var recs []activations.Record
				if err := json.Unmarshal(b.Value, &recs); err != nil {
					return nil, fmt.Errorf("profile %s outbox: %w", pid, err)
				}
				v, _ := strconv.ParseInt(strings.TrimPrefix(sk, skOutboxPfx), 10, 64)
				l.outbox[v] = recs
			}
		}
		if start = out.LastEvaluatedKey; start == nil {
			break
		}
	}
	if l.state != nil {
		l.nextAt = l.state.NextAt
		for _, id := range l.state.InAudiences() {
			l.members[id] = true
		}
	}
	return l, nil
}

func (st *Store) deleteOutbox(ctx context.Context, pid string, ver int64) error {
	_, err := st.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(st.table), Key: key(pkStatePfx+pid, skOutboxPfx+fmt.Sprint(ver))})
	if err != nil {
		return fmt.Errorf("delete outbox: %w", err)
	}
	return nil
}

// minute is the schedule bucket of t: t rounded up to the minute, so a bucket is processed
// only once the change it stands for can be seen.
func minute(t time.Time) time.Time {
	m := t.UTC().Truncate(time.Minute)
	if m.Before(t) {
		m = m.Add(time.Minute)
	}
	return m
}

const schedLayout = "2006-01-02T15:04Z"

func shardOf(pid string, shards uint32) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(pid))
	return int(h.Sum32() % shards)
}

func regPK(pid string) string { return pkRegPfx + strconv.Itoa(shardOf(pid, regShards)) }

// schedItem is a profile's schedule entry, found by Tick through gsi1.
func schedItem(pid string, m time.Time) map[string]types.AttributeValue {
	it := key(pkSchedPfx+pid, skNext)
	it["profileId"] = store.S(pid)
	it[store.GSI1PK] = store.S(pkSchedPfx + strconv.Itoa(shardOf(pid, schedShards)))
	it[store.GSI1SK] = store.S(m.UTC().Format(schedLayout) + "#" + pid)
	return it
}

// write is one profile's state change, written atomically when it fits one transaction.
type write struct {
	st     *State // Ver is the version read (0: new); stored as Ver+1
	was    *loaded
	outbox []activations.Record
}

// commit stores the states (conditionally on their versions), their outboxes, membership
// items, schedule items and registry entries. The first write is the profile being evaluated;
// the others are merged profiles. A state or outbox over limit bytes is refused (ErrTooLarge). Items beyond one transaction are written afterwards
// (idempotent puts and deletes).
func (st *Store) commit(ctx context.Context, ws []write, limit int) error {
	var head, tail []types.TransactWriteItem
	for _, w := range ws {
		h, err := st.stateWrites(w, limit)
		if err != nil {
			return err
		}
		head = append(head, h...)
		tail = append(tail, st.derivedWrites(w)...)
	}
	// The state puts (and outboxes) decide; derived items ride along when they fit.
	if len(head)+len(tail) <= maxTxItems {
		head, tail = append(head, tail...), nil
	}
	if len(head) == 1 && head[0].Put != nil {
		p := head[0].Put
		_, err := st.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: p.TableName, Item: p.Item,
			ConditionExpression: p.ConditionExpression, ExpressionAttributeValues: p.ExpressionAttributeValues})
		var cf *types.ConditionalCheckFailedException
		if errors.As(err, &cf) {
			return ErrConflict
		}
		if err != nil {
			return fmt.Errorf("put state: %w", err)
		}
	} else if err := st.transact(ctx, head); err != nil {
		return err
	}
	for len(tail) > 0 {
		k := min(len(tail), maxTxItems)
		if err := st.transact(ctx, tail[:k]); err != nil {
			return err
		}
		tail = tail[k:]
	}
	return nil
}

func (st *Store) put(item map[string]types.AttributeValue) types.TransactWriteItem {
	return types.TransactWriteItem{Put: &types.Put{TableName: aws.String(st.table), Item: item}}
}

func (st *Store) del(pk, sk string) types.TransactWriteItem {
	return types.TransactWriteItem{Delete: &types.Delete{TableName: aws.String(st.table), Key: key(pk, sk)}}
}

// stateWrites is a profile's state put (conditional on its version) and its outbox, each
// refused (ErrTooLarge) over limit bytes.
func (st *Store) stateWrites(w write, limit int) ([]types.TransactWriteItem, error) {
	data, err := encodeState(w.st)
	if err != nil {
		return nil, err
	}
	if len(data) > limit {
		return nil, fmt.Errorf("profile %s: state of %d bytes: %w (limit %d)", w.st.ProfileID, len(data), ErrTooLarge, limit)
	}
	item := key(pkStatePfx+w.st.ProfileID, skState)
	item["data"] = &types.AttributeValueMemberB{Value: data}
	item["ver"] = store.N(w.st.Ver + 1)
	p := &types.Put{TableName: aws.String(st.table), Item: item}
	if w.st.Ver == 0 {
		p.ConditionExpression = aws.String("attribute_not_exists(pk)")
	} else {
		p.ConditionExpression = aws.String("ver = :v")
		p.ExpressionAttributeValues = map[string]types.AttributeValue{":v": store.N(w.st.Ver)}
	}
	out := []types.TransactWriteItem{{Put: p}}
	if len(w.outbox) > 0 {
		b, err := json.Marshal(w.outbox)
		if err != nil {
			return nil, fmt.Errorf("encode outbox: %w", err)
		}
		if len(b) > limit {
			return nil, fmt.Errorf("profile %s: outbox of %d bytes: %w (limit %d)", w.st.ProfileID, len(b), ErrTooLarge, limit)
		}
		o := key(pkStatePfx+w.st.ProfileID, skOutboxPfx+fmt.Sprint(w.st.Ver+1))
		o["data"] = &types.AttributeValueMemberB{Value: b}
		out = append(out, st.put(o))
	}
	return out, nil
}

// derivedWrites are the items derived from a profile's state: registry entry, membership items
// and schedule item (idempotent puts and deletes).
func (st *Store) derivedWrites(w write) []types.TransactWriteItem {
	var tail []types.TransactWriteItem
	pid := w.st.ProfileID
	if w.st.Ver == 0 {
		tail = append(tail, st.put(key(regPK(pid), pid)))
	}
	if w.st.MergedInto != "" && w.st.Ver != 0 {
		tail = append(tail, st.del(regPK(pid), pid))
	}
	now := map[string]bool{}
	for _, id := range w.st.InAudiences() {
		now[id] = true
		if !w.was.members[id] {
			m := key(pkMembersPfx+id, skMemberPfx+pid)
			m["profileId"] = store.S(pid)
			m["enteredAt"] = store.S(w.st.Members[id].EnteredAt.UTC().Format(time.RFC3339Nano))
			tail = append(tail, st.put(m))
		}
	}
	for id := range w.was.members {
		if !now[id] {
			tail = append(tail, st.del(pkMembersPfx+id, skMemberPfx+pid))
		}
	}
	oldB, newB := time.Time{}, time.Time{}
	if !w.was.nextAt.IsZero() {
		oldB = minute(w.was.nextAt)
	}
	if !w.st.NextAt.IsZero() {
		newB = minute(w.st.NextAt)
	}
	switch {
	case oldB.Equal(newB):
	case newB.IsZero():
		tail = append(tail, st.del(pkSchedPfx+pid, skNext))
	default:
		tail = append(tail, st.put(schedItem(pid, newB)))
	}
	return tail
}

// dueProfiles lists profiles whose scheduled minute is at or before now, from one shard of
// the schedule index (gsi1), at most limit.
func (st *Store) dueProfiles(ctx context.Context, shard int, now time.Time, limit int) ([]string, error) {
	upper := now.UTC().Truncate(time.Minute).Add(time.Minute).Format(schedLayout)
	var ids []string
	var start map[string]types.AttributeValue
	for len(ids) < limit {
		out, err := st.db.Query(ctx, &dynamodb.QueryInput{
			TableName: aws.String(st.table), IndexName: aws.String(store.GSI1),
			KeyConditionExpression: aws.String("gsi1pk = :pk AND gsi1sk < :upper"),
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":pk": store.S(pkSchedPfx + strconv.Itoa(shard)), ":upper": store.S(upper)},
			ExclusiveStartKey: start, Limit: aws.Int32(int32(min(limit-len(ids), 1000))),
		})
		if err != nil {
			return nil, fmt.Errorf("due profiles: %w", err)
		}
		for _, it := range out.Items {
			ids = append(ids, store.GetS(it, "profileId"))
		}
		if start = out.LastEvaluatedKey; start == nil {
			break
		}
	}
	return ids, nil
}

func (st *Store) unschedule(ctx context.Context, pid string) error {
	_, err := st.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(st.table), Key: key(pkSchedPfx+pid, skNext)})
	if err != nil {
		return fmt.Errorf("unschedule: %w", err)
	}
	return nil
}

// Member is one current member of an audience.
type Member struct {
	ProfileID string    `json:"profileId"`
	EnteredAt time.Time `json:"enteredAt"`
}

// page runs one page of a query on a partition; next is an opaque token ("" at the end).
func (st *Store) page(ctx context.Context, pk string, limit int32, token string, count bool) ([]map[string]types.AttributeValue, int, string, error) {
	in := &dynamodb.QueryInput{
		TableName: aws.String(st.table), KeyConditionExpression: aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": store.S(pk)},
	}
	if limit > 0 {
		in.Limit = aws.Int32(limit)
	}
	if count {
		in.Select = types.SelectCount
	}
	if token != "" {
		sk, err := base64.RawURLEncoding.DecodeString(token)
		if err != nil {
			return nil, 0, "", &ValidationError{Field: "next", Message: "is not a valid page token"}
		}
		in.ExclusiveStartKey = key(pk, string(sk))
	}
	out, err := st.db.Query(ctx, in)
	if err != nil {
		return nil, 0, "", fmt.Errorf("query %s: %w", pk, err)
	}
	next := ""
	if out.LastEvaluatedKey != nil {
		next = base64.RawURLEncoding.EncodeToString([]byte(store.GetS(out.LastEvaluatedKey, store.SK)))
	}
	return out.Items, int(out.Count), next, nil
}

// Members lists an audience's current members, a page at a time.
func (st *Store) Members(ctx context.Context, audienceID string, limit int32, next string) ([]Member, string, error) {
	items, _, next, err := st.page(ctx, pkMembersPfx+audienceID, limit, next, false)
	if err != nil {
		return nil, "", err
	}
	ms := make([]Member, 0, len(items))
	for _, it := range items {
		t, _ := time.Parse(time.RFC3339Nano, store.GetS(it, "enteredAt"))
		ms = append(ms, Member{ProfileID: store.GetS(it, "profileId"), EnteredAt: t})
	}
	return ms, next, nil
}

// Size counts an audience's current members.
func (st *Store) Size(ctx context.Context, audienceID string) (int, error) {
	total, next := 0, ""
	for {
		_, c, nx, err := st.page(ctx, pkMembersPfx+audienceID, 0, next, true)
		if err != nil {
			return 0, err
		}
		total += c
		if next = nx; next == "" {
			return total, nil
		}
	}
}

// profiles lists registered profile ids of one registry shard, a page at a time.
func (st *Store) profiles(ctx context.Context, shard int, limit int32, next string) ([]string, string, error) {
	items, _, next, err := st.page(ctx, pkRegPfx+strconv.Itoa(shard), limit, next, false)
	if err != nil {
		return nil, "", err
	}
	ids := make([]string, 0, len(items))
	for _, it := range items {
		ids = append(ids, store.GetS(it, store.SK))
	}
	return ids, next, nil
}

func (st *Store) deleteMember(ctx context.Context, audienceID, pid string) error {
	_, err := st.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(st.table), Key: key(pkMembersPfx+audienceID, skMemberPfx+pid)})
	if err != nil {
		return fmt.Errorf("delete member: %w", err)
	}
	return nil
}
