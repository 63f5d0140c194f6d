//go:build integration

package identity

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/serverless-cdp/cdp/internal/change"
	"github.com/serverless-cdp/cdp/internal/deadletter"
	"github.com/serverless-cdp/cdp/internal/emulator/testenv"
	"github.com/serverless-cdp/cdp/internal/store"
	"github.com/serverless-cdp/cdp/internal/stream"
)

// poisonDB fails every transaction that writes the marker of a chosen message.
type poisonDB struct {
	store.Client
	poison string
}

func (p *poisonDB) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	for _, it := range in.TransactItems {
		if it.Put != nil && store.GetS(it.Put.Item, "pk") == store.GetS(msgKey(MessageRef{Source: "src1", ID: p.poison}), "pk") {
			return nil, errors.New("injected: item too large")
		}
	}
	return p.Client.TransactWriteItems(ctx, in, o...)
}

func TestHandlerDeadLettersAndChanges(t *testing.T) {
	c := testenv.Clients(t)
	table := testenv.Table(t, c.DynamoDB)
	changes := testenv.Stream(t, c.Kinesis, "changes", 1)
	rules, _ := Compile(Rules{})
	st := NewStore(&poisonDB{Client: c.DynamoDB, poison: "poison"}, table)
	dl := deadletter.NewStore(c.DynamoDB, table)
	h := NewHandler(HandlerConfig{
		Processor: NewProcessor(st, StaticRules{rules}, Options{}), Store: st,
		Changes: stream.NewPublisher(c.Kinesis, changes), DeadLetters: dl, MaxAttempts: 3,
	})
	ev := kinesisEvent(t,
		rec("identify", "m1", 0, f{"uid": "u1", "aid": "a1", "traits": `{"name":"Ann"}`}),
		[]byte("{not json"),
		rec("track", "poison", 1, f{"uid": "u2", "event": "x"}),
		rec("track", "m3", 2, f{"aid": "anonymous", "event": "x"}),
		rec("track", "m4", 3, f{"aid": "a1", "event": "y"}),
	)
	ctx := context.Background()
	for attempt := 1; attempt <= 3; attempt++ {
		resp, err := h.Handle(ctx, ev)
		if err != nil {
			t.Fatal(err)
		}
		want := 1
		if attempt == 3 {
			want = 0 // dead-lettered and acknowledged
		}
		if len(resp.BatchItemFailures) != want || (want == 1 && resp.BatchItemFailures[0].ItemIdentifier != "1002") {
			t.Fatalf("attempt %d: failures %+v", attempt, resp.BatchItemFailures)
		}
	}
	entries, _, err := dl.List(ctx, Stage, 10, "")
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]int{}
	for _, e := range entries {
		reasons[e.Reason]++
	}
	if len(entries) != 3 || reasons["decode"] != 1 || reasons["no_identifiers"] != 1 || reasons["retries_exhausted"] != 1 {
		t.Fatalf("dead letters: %v", reasons)
	}
	// The first attempt emits the change; the two retries re-emit its events (duplicates now)
	// with the unchanged profile state, which consumers dedupe by messageId.
	recs := testenv.ReadStream(t, c.Kinesis, changes, 3, 5*time.Second)
	if len(recs) != 3 {
		t.Fatalf("changes: %d records, want 1 and 2 re-emissions", len(recs))
	}
	var ch change.Record
	_ = json.Unmarshal(recs[0].Data, &ch)
	if !ch.Created || len(ch.Events) != 2 || string(ch.ChangedTraits["name"]) != `"Ann"` || len(ch.Identifiers) != 2 || aws.ToString(recs[0].PartitionKey) != ch.ProfileID {
		t.Fatalf("change record: %+v", ch)
	}
	for _, r := range recs[1:] {
		var re change.Record
		_ = json.Unmarshal(r.Data, &re)
		if re.ProfileID != ch.ProfileID || re.Version != ch.Version || re.Created || len(re.ChangedTraits) != 0 || len(re.AddedIdentifiers) != 0 ||
			len(re.Events) != 2 || re.Events[0].MessageID != "m1" || re.Events[1].MessageID != "m4" || string(re.Traits["name"]) != `"Ann"` || len(re.Identifiers) != 2 {
			t.Fatalf("re-emitted change record: %+v", re)
		}
	}
	// The poison pill is fixed: replay it from the dead letters.
	h.cfg.Processor = NewProcessor(NewStore(c.DynamoDB, table), StaticRules{rules}, Options{})
	svc := deadletter.NewService(dl, map[string]deadletter.Replayer{Stage: h})
	for _, e := range entries {
		err := svc.Replay(ctx, Stage, e.ID)
		switch e.Reason {
		case "retries_exhausted":
			if err != nil {
				t.Fatalf("replay: %v", err)
			}
		default:
			if err == nil {
				t.Fatalf("replay of %s succeeded", e.Reason)
			}
		}
	}
	if _, err := NewStore(c.DynamoDB, table).Lookup(ctx, Identifier{TypeUserID, "u2"}); err != nil {
		t.Fatal(err)
	}
	if recs := testenv.ReadStream(t, c.Kinesis, changes, 4, 5*time.Second); len(recs) != 4 {
		t.Fatalf("replay emitted %d change records in all", len(recs))
	}
}

type failingPublisher struct{}

func (failingPublisher) Put(context.Context, []stream.Record) error {
	return errors.New("kinesis down")
}

func TestHandlerDeadLettersUnpublishedChanges(t *testing.T) {
	c := testenv.Clients(t)
	table := testenv.Table(t, c.DynamoDB)
	rules, _ := Compile(Rules{})
	st := NewStore(c.DynamoDB, table)
	dl := deadletter.NewStore(c.DynamoDB, table)
	h := NewHandler(HandlerConfig{Processor: NewProcessor(st, StaticRules{rules}, Options{}), Store: st, Changes: failingPublisher{}, DeadLetters: dl})
	resp, err := h.Handle(context.Background(), kinesisEvent(t, rec("track", "m1", 0, f{"uid": "u", "event": "e"})))
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("%v %+v", err, resp)
	}
	es, _, _ := dl.List(context.Background(), Stage, 10, "")
	if len(es) != 1 || es[0].Kind != KindChange || !strings.Contains(string(es[0].Payload), `"messageId":"m1"`) {
		t.Fatalf("entries %+v", es)
	}
}

func TestRulesServiceValidationAndCache(t *testing.T) {
	c := testenv.Clients(t)
	table := testenv.Table(t, c.DynamoDB)
	s := NewRulesService(c.DynamoDB, table, time.Minute)
	now := time.Unix(1000, 0)
	s.now = func() time.Time { return now }
	ctx := context.Background()
	r, err := s.Get(ctx)
	if err != nil || len(r.Types) != 2 {
		t.Fatalf("defaults %+v %v", r, err)
	}
	bad := []struct {
		r    Rules
		want string
	}{
		{Rules{Types: []TypeRule{{Type: "email", Blocked: []BlockedValue{{Match: "regex", Value: "(["}}}}}, "types[0].blocked[0].value: invalid regex"},
		{Rules{Types: []TypeRule{{Type: "email", Limit: -1}}}, "types[0].limit: limit -1 is out of range"},
		{Rules{Types: []TypeRule{{Type: "email", Limit: 1000}}}, "types[0].limit"},
		{Rules{Types: []TypeRule{{Type: "Bad Type"}}}, "types[0].type"},
		{Rules{Types: []TypeRule{{Type: "crm_id", Priority: 1}}}, `share priority 1`},
		{Rules{Types: []TypeRule{{Type: "email"}, {Type: "email"}}}, "more than one rule"},
		{Rules{Types: []TypeRule{{Type: "email", Blocked: []BlockedValue{{Match: "glob", Value: "*"}}}}}, "types[0].blocked[0].match"},
	}
	for _, b := range bad {
		err := s.Put(ctx, b.r)
		var ve *ValidationError
		if !errors.As(err, &ve) || !strings.Contains(err.Error(), b.want) {
			t.Fatalf("Put(%+v) = %v, want validation error containing %q", b.r, err, b.want)
		}
	}
	other := NewRulesService(c.DynamoDB, table, time.Minute)
	other.now = func() time.Time { return now }
	c1, err := other.Compiled(ctx)
	if err != nil || c1.Limit("crm_id") != DefaultLimit {
		t.Fatal(err)
	}
	if err := s.Put(ctx, Rules{Types: []TypeRule{{Type: "crm_id", Priority: 3, Limit: 1}}}); err != nil {
		t.Fatal(err)
	}
	if c2, _ := other.Compiled(ctx); c2.Limit("crm_id") != DefaultLimit {
		t.Fatal("cache not used")
	}
	now = now.Add(61 * time.Second)
	c3, _ := other.Compiled(ctx)
	if c3.Limit("crm_id") != 1 || c3.Limit(TypeUserID) != 1 || !c3.Higher("crm_id", "anonymous_id") || !c3.Higher(TypeEmail, "crm_id") {
		t.Fatal("new rules not in force after the cache TTL")
	}
}
