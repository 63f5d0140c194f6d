package segment

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/serverless-cdp/cdp/internal/activations"
	"github.com/serverless-cdp/cdp/internal/predict"
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
	pkMembersPfx = "AUD#"
	skMemberPfx  = "M#"
	pkSchedPfx   = "SEGSCHED#"
	skNext       = "NEXT"
	maxTxItems   = 100
)

// Store is the DynamoDB adapter of the segments stage's ports (StateStore, DefinitionStore):
// its items in the shared table.
type Store struct {
	db    store.Client
	table string
}

var _ Stores = (*Store)(nil)

// NewStore returns a store over the named table.
func NewStore(db store.Client, table string) *Store { return &Store{db: db, table: table} }

// Items, as attributevalue encodes them.
type (
	// blobItem is a profile's state (Ver set) with its outbox (Out, JSON), or an outbox of
	// the layout before v12 (an item of its own).
	blobItem struct {
		PK   string `dynamodbav:"pk"`
		SK   string `dynamodbav:"sk"`
		Data []byte `dynamodbav:"data"`
		Ver  int64  `dynamodbav:"ver,omitempty"`
		Out  []byte `dynamodbav:"out,omitempty"`
	}
	// defItem is a definition (Ver) or a backfill job (JobVer), as JSON.
	defItem struct {
		PK     string `dynamodbav:"pk"`
		SK     string `dynamodbav:"sk"`
		Data   string `dynamodbav:"data,omitempty"`
		Ver    int64  `dynamodbav:"ver,omitempty"`
		JobVer int64  `dynamodbav:"jv,omitempty"`
		Blob   []byte `dynamodbav:"blob,omitempty"` // a model (model_store.go)
	}
	memberItem struct {
		PK        string `dynamodbav:"pk"`
		SK        string `dynamodbav:"sk"`
		ProfileID string `dynamodbav:"profileId"`
		EnteredAt string `dynamodbav:"enteredAt"`
	}
	// schedItem is a profile's schedule entry, found by Tick through gsi1.
	schedItem struct {
		PK        string `dynamodbav:"pk"`
		SK        string `dynamodbav:"sk"`
		ProfileID string `dynamodbav:"profileId"`
		GSI1PK    string `dynamodbav:"gsi1pk"`
		GSI1SK    string `dynamodbav:"gsi1sk"`
	}
)

func marshal(v any) map[string]types.AttributeValue {
	item, _ := attributevalue.MarshalMap(v) // the item types above (strings, numbers, bytes) always encode
	return item
}

// partition builds the key condition pk = <pk>.
func (st *Store) partition(pk string) *dynamodb.QueryInput {
	e, _ := expression.NewBuilder().WithKeyCondition(expression.Key(store.PK).Equal(expression.Value(pk))).Build()
	return &dynamodb.QueryInput{TableName: aws.String(st.table), KeyConditionExpression: e.KeyCondition(),
		ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values()}
}

// queryAll runs a query to its end, calling fn for each item.
func (st *Store) queryAll(ctx context.Context, in *dynamodb.QueryInput, fn func(map[string]types.AttributeValue) error) error {
	p := dynamodb.NewQueryPaginator(st.db, in)
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return err
		}
		for _, it := range out.Items {
			if err := fn(it); err != nil {
				return err
			}
		}
	}
	return nil
}

// LoadDefinitions reads every definition (one partition, usually one request).
func (st *Store) LoadDefinitions(ctx context.Context) (*Definitions, error) {
	d := &Definitions{Jobs: map[string]*Job{}}
	in := st.partition(pkDefs)
	in.ConsistentRead = aws.Bool(true)
	err := st.queryAll(ctx, in, func(it map[string]types.AttributeValue) error {
		var di defItem
		if err := attributevalue.UnmarshalMap(it, &di); err != nil {
			return err
		}
		if err := d.add(di.SK, []byte(di.Data), di.Blob); err != nil {
			return fmt.Errorf("%s: %w", di.SK, err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load definitions: %w", err)
	}
	return d, nil
}

// add decodes one stored definition, job, training run or model (blob: gzip JSON) by its sort
// key.
func (d *Definitions) add(sk string, data, blob []byte) error {
	var err error
	switch {
	case strings.HasPrefix(sk, skModelPfx):
		m := &predict.Model{}
		err = gunzipJSON(blob, m)
		if d.Models == nil {
			d.Models = map[string]*predict.Model{}
		}
		d.Models[strings.TrimPrefix(sk, skModelPfx)] = m
	case strings.HasPrefix(sk, skTrainPfx):
		t := &Training{}
		err = json.Unmarshal(data, t)
		if d.Trainings == nil {
			d.Trainings = map[string]*Training{}
		}
		d.Trainings[t.TraitID] = t
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
	return err
}

// PutTrait stores a computed trait (see DefinitionStore).
func (st *Store) PutTrait(ctx context.Context, t *ComputedTrait, j *Job) error {
	return st.putDef(ctx, skTraitPfx+t.ID, t, t.Version, j)
}

// PutAudience stores an audience (see DefinitionStore).
func (st *Store) PutAudience(ctx context.Context, a *Audience, j *Job) error {
	return st.putDef(ctx, skAudPfx+a.ID, a, a.Version, j)
}

// versionCond is "no item" for prev 0, else "attribute name = prev".
func versionCond(name string, prev int64) expression.Expression {
	c := expression.AttributeNotExists(expression.Name(store.PK))
	if prev != 0 {
		c = expression.Name(name).Equal(expression.Value(prev))
	}
	e, _ := expression.NewBuilder().WithCondition(c).Build()
	return e
}

func jobItem(j *Job) map[string]types.AttributeValue {
	jd, _ := json.Marshal(j)
	return marshal(defItem{PK: pkDefs, SK: skJobPfx + j.DefinitionID, Data: string(jd), JobVer: j.Version})
}

// putDef writes a definition (and optionally its job) if the stored version is version-1.
func (st *Store) putDef(ctx context.Context, sk string, def any, version int64, job *Job) error {
	data, err := json.Marshal(def)
	if err != nil {
		return fmt.Errorf("encode definition: %w", err)
	}
	c := versionCond("ver", version-1)
	items := []types.TransactWriteItem{{Put: &types.Put{TableName: aws.String(st.table),
		Item:                marshal(defItem{PK: pkDefs, SK: sk, Data: string(data), Ver: version}),
		ConditionExpression: c.Condition(), ExpressionAttributeNames: c.Names(), ExpressionAttributeValues: c.Values()}}}
	if job != nil {
		items = append(items, st.put(jobItem(job)))
	}
	return st.transact(ctx, items)
}

// PutJob writes a job's progress (see DefinitionStore).
func (st *Store) PutJob(ctx context.Context, j *Job) error {
	c, _ := expression.NewBuilder().WithCondition(expression.Name("jv").Equal(expression.Value(j.Version))).Build()
	_, err := st.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(st.table), Item: jobItem(j),
		ConditionExpression: c.Condition(), ExpressionAttributeNames: c.Names(), ExpressionAttributeValues: c.Values()})
	if store.IsConditionFailed(err) {
		return ErrConflict
	}
	if err != nil {
		return fmt.Errorf("put job: %w", err)
	}
	return nil
}

// DeleteTrait removes a computed trait and its job.
func (st *Store) DeleteTrait(ctx context.Context, id string) error {
	return st.deleteDef(ctx, skTraitPfx+id, id)
}

// DeleteAudience removes an audience and its job.
func (st *Store) DeleteAudience(ctx context.Context, id string) error {
	return st.deleteDef(ctx, skAudPfx+id, id)
}

func (st *Store) deleteDef(ctx context.Context, sk, id string) error {
	c, _ := expression.NewBuilder().WithCondition(expression.AttributeExists(expression.Name(store.PK))).Build()
	_, err := st.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Delete: &types.Delete{TableName: aws.String(st.table), Key: store.Key(pkDefs, sk),
			ConditionExpression: c.Condition(), ExpressionAttributeNames: c.Names()}},
		st.del(pkDefs, skJobPfx+id), st.del(pkDefs, skModelPfx+id), st.del(pkDefs, skTrainPfx+id),
	}})
	if failed := store.FailedConditions(err); len(failed) > 0 && failed[0] {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("delete definition: %w", err)
	}
	return nil
}

func (st *Store) transact(ctx context.Context, items []types.TransactWriteItem) error {
	_, err := st.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	if store.IsConditionFailed(err) {
		return ErrConflict
	}
	if err != nil {
		return fmt.Errorf("transact write: %w", err)
	}
	return nil
}

// Load reads a profile's state and outbox in one query (which also finds outboxes the layout
// before v12 stored as items of their own).
func (st *Store) Load(ctx context.Context, pid string, consistent bool) (*Snapshot, error) {
	var (
		state  *State
		data   []byte
		legacy []int64
	)
	outbox := map[int64][]activations.Record{}
	in := st.partition(pkStatePfx + pid)
	in.ConsistentRead = aws.Bool(consistent)
	err := st.queryAll(ctx, in, func(it map[string]types.AttributeValue) error {
		var b blobItem
		if err := attributevalue.UnmarshalMap(it, &b); err != nil || b.Data == nil {
			return err
		}
		switch {
		case b.SK == skState:
			s, err := decodeState(b.Data, b.Ver)
			if err != nil {
				return err
			}
			state, data = s, b.Data
			return decodeOutbox(outbox, b.Ver, b.Out)
		case strings.HasPrefix(b.SK, skOutboxPfx):
			v, _ := strconv.ParseInt(strings.TrimPrefix(b.SK, skOutboxPfx), 10, 64)
			legacy = append(legacy, v)
			return decodeOutbox(outbox, v, b.Data)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load state %s: %w", pid, err)
	}
	l := NewSnapshot(state, outbox)
	l.data, l.legacy = data, legacy
	return l, nil
}

// Commit stores the states (conditionally on their versions) with their outboxes, and the
// membership items, schedule items and registry entries that changed. One state whose derived
// items do not change is one conditional put; otherwise the states decide in one transaction,
// the derived items riding along when they fit and written afterwards otherwise (idempotent
// puts and deletes). A profile stored for the first time on its own is registered by a plain
// put just before (half a transaction's price; a registered profile without a state, left by a
// crash or a lost race, is skipped by backfills and previews).
func (st *Store) Commit(ctx context.Context, ws []Write, limit int) error {
	var head, tail []types.TransactWriteItem
	for i, w := range ws {
		h, data, err := st.stateWrite(w, limit)
		if err != nil {
			return err
		}
		ws[i].stored = data
		head = append(head, h)
		tail = append(tail, st.derivedWrites(w, len(ws) == 1)...)
	}
	if len(ws) == 1 && ws[0].State.Ver == 0 {
		if err := st.register(ctx, ws[0].State.ProfileID); err != nil {
			return err
		}
	}
	if len(head)+len(tail) <= maxTxItems {
		head, tail = append(head, tail...), nil
	}
	if err := st.writeHead(ctx, head); err != nil {
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

func (st *Store) register(ctx context.Context, pid string) error {
	_, err := st.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(st.table), Item: store.Key(pkRegPfx+regShard(pid), pid)})
	if err != nil {
		return fmt.Errorf("register profile: %w", err)
	}
	return nil
}

// writeHead writes the deciding items: one conditional put, or a transaction.
func (st *Store) writeHead(ctx context.Context, head []types.TransactWriteItem) error {
	if len(head) != 1 || head[0].Put == nil {
		return st.transact(ctx, head)
	}
	p := head[0].Put
	_, err := st.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: p.TableName, Item: p.Item,
		ConditionExpression: p.ConditionExpression, ExpressionAttributeNames: p.ExpressionAttributeNames,
		ExpressionAttributeValues: p.ExpressionAttributeValues})
	if store.IsConditionFailed(err) {
		return ErrConflict
	}
	if err != nil {
		return fmt.Errorf("put state: %w", err)
	}
	return nil
}

func (st *Store) put(item map[string]types.AttributeValue) types.TransactWriteItem {
	return types.TransactWriteItem{Put: &types.Put{TableName: aws.String(st.table), Item: item}}
}

func (st *Store) del(pk, sk string) types.TransactWriteItem {
	return types.TransactWriteItem{Delete: &types.Delete{TableName: aws.String(st.table), Key: store.Key(pk, sk)}}
}

// stateWrite is a profile's state put with its outbox, conditional on its version, and the
// encoded state.
func (st *Store) stateWrite(w Write, limit int) (types.TransactWriteItem, []byte, error) {
	data, outbox, err := encodeWrite(w, limit)
	if err != nil {
		return types.TransactWriteItem{}, nil, err
	}
	c := versionCond("ver", w.State.Ver)
	return types.TransactWriteItem{Put: &types.Put{TableName: aws.String(st.table),
		Item:                marshal(blobItem{PK: pkStatePfx + w.State.ProfileID, SK: skState, Data: data, Ver: w.State.Ver + 1, Out: outbox}),
		ConditionExpression: c.Condition(), ExpressionAttributeNames: c.Names(), ExpressionAttributeValues: c.Values()}}, data, nil
}

// derivedWrites are the items derived from a profile's state: registry entry (unless
// registered apart), membership items and schedule item (idempotent puts and deletes), and the
// deletes of outbox items of the layout before v12.
func (st *Store) derivedWrites(w Write, registeredApart bool) []types.TransactWriteItem {
	var tail []types.TransactWriteItem
	pid := w.State.ProfileID
	d := deriveWrite(w)
	if d.register && !registeredApart {
		tail = append(tail, st.put(store.Key(pkRegPfx+regShard(pid), pid)))
	}
	if d.unregister {
		tail = append(tail, st.del(pkRegPfx+regShard(pid), pid))
	}
	for _, v := range w.Was.legacy {
		tail = append(tail, st.del(pkStatePfx+pid, skOutboxPfx+strconv.FormatInt(v, 10)))
	}
	for id, at := range d.enter {
		tail = append(tail, st.put(marshal(memberItem{PK: pkMembersPfx + id, SK: skMemberPfx + pid,
			ProfileID: pid, EnteredAt: at.UTC().Format(time.RFC3339Nano)})))
	}
	for _, id := range d.exit {
		tail = append(tail, st.del(pkMembersPfx+id, skMemberPfx+pid))
	}
	switch {
	case d.unschedule:
		tail = append(tail, st.del(pkSchedPfx+pid, skNext))
	case !d.schedule.IsZero():
		tail = append(tail, st.put(marshal(schedItem{PK: pkSchedPfx + pid, SK: skNext, ProfileID: pid,
			GSI1PK: pkSchedPfx + strconv.Itoa(shardOf(pid, schedShards)), GSI1SK: schedKey(pid, d.schedule)})))
	}
	return tail
}

// Due lists due profiles of one schedule shard from the schedule index (gsi1).
func (st *Store) Due(ctx context.Context, shard int, now time.Time, limit int) ([]string, error) {
	if limit <= 0 {
		return nil, nil
	}
	e, _ := expression.NewBuilder().WithKeyCondition(expression.KeyAnd(
		expression.Key(store.GSI1PK).Equal(expression.Value(pkSchedPfx+strconv.Itoa(shard))),
		expression.Key(store.GSI1SK).LessThan(expression.Value(dueBefore(now))))).Build()
	p := dynamodb.NewQueryPaginator(st.db, &dynamodb.QueryInput{
		TableName: aws.String(st.table), IndexName: aws.String(store.GSI1),
		KeyConditionExpression: e.KeyCondition(), ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values(),
		Limit: aws.Int32(int32(min(limit, 1000))),
	})
	var ids []string
	for p.HasMorePages() && len(ids) < limit {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("due profiles: %w", err)
		}
		for _, it := range out.Items {
			ids = append(ids, store.GetS(it, "profileId"))
		}
	}
	return ids[:min(len(ids), limit)], nil
}

// Unschedule removes a profile's schedule entry.
func (st *Store) Unschedule(ctx context.Context, pid string) error {
	_, err := st.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(st.table), Key: store.Key(pkSchedPfx+pid, skNext)})
	if err != nil {
		return fmt.Errorf("unschedule: %w", err)
	}
	return nil
}

// page runs one page of a query on a partition; next is a page token ("" at the end).
func (st *Store) page(ctx context.Context, pk string, limit int, token string) ([]map[string]types.AttributeValue, string, error) {
	in := st.partition(pk)
	if limit > 0 {
		in.Limit = aws.Int32(int32(limit))
	}
	if token != "" {
		sk, err := parseToken(token)
		if err != nil {
			return nil, "", err
		}
		in.ExclusiveStartKey = store.Key(pk, sk)
	}
	out, err := st.db.Query(ctx, in)
	if err != nil {
		return nil, "", fmt.Errorf("query %s: %w", pk, err)
	}
	next := ""
	if out.LastEvaluatedKey != nil {
		next = pageToken(store.GetS(out.LastEvaluatedKey, store.SK))
	}
	return out.Items, next, nil
}

// Members lists an audience's current members, a page at a time.
func (st *Store) Members(ctx context.Context, audienceID string, limit int, next string) ([]Member, string, error) {
	items, next, err := st.page(ctx, pkMembersPfx+audienceID, limit, next)
	if err != nil {
		return nil, "", err
	}
	ms := make([]Member, 0, len(items))
	for _, it := range items {
		var mi memberItem
		if err := attributevalue.UnmarshalMap(it, &mi); err != nil {
			return nil, "", fmt.Errorf("member of %s: %w", audienceID, err)
		}
		t, _ := time.Parse(time.RFC3339Nano, mi.EnteredAt)
		ms = append(ms, Member{ProfileID: mi.ProfileID, EnteredAt: t})
	}
	return ms, next, nil
}

// Size counts an audience's current members.
func (st *Store) Size(ctx context.Context, audienceID string) (int, error) {
	in := st.partition(pkMembersPfx + audienceID)
	in.Select = types.SelectCount
	p := dynamodb.NewQueryPaginator(st.db, in)
	total := 0
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return 0, fmt.Errorf("size of %s: %w", audienceID, err)
		}
		total += int(out.Count)
	}
	return total, nil
}

// Profiles lists registered profile ids of one registry shard, a page at a time.
func (st *Store) Profiles(ctx context.Context, shard int, limit int, cursor string) ([]string, string, error) {
	items, next, err := st.page(ctx, pkRegPfx+strconv.Itoa(shard), limit, cursor)
	if err != nil {
		return nil, "", err
	}
	ids := make([]string, 0, len(items))
	for _, it := range items {
		ids = append(ids, store.GetS(it, store.SK))
	}
	return ids, next, nil
}

// DeleteMember removes one member item.
func (st *Store) DeleteMember(ctx context.Context, audienceID, pid string) error {
	_, err := st.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(st.table), Key: store.Key(pkMembersPfx+audienceID, skMemberPfx+pid)})
	if err != nil {
		return fmt.Errorf("delete member: %w", err)
	}
	return nil
}
