package identity

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/serverless-cdp/cdp/internal/emulator/testenv"
	"github.com/serverless-cdp/cdp/internal/store"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

type env struct {
	db    *dynamodb.Client
	table string
	store *Store
	proc  *Processor
}

func newEnv(t testing.TB, rules *Compiled) *env {
	t.Helper()
	c := testenv.Clients(t)
	table := testenv.Table(t, c.DynamoDB)
	if rules == nil {
		var err error
		if rules, err = Compile(Rules{}); err != nil {
			t.Fatal(err)
		}
	}
	s := NewStore(c.DynamoDB, table)
	return &env{db: c.DynamoDB, table: table, store: s, proc: NewProcessor(s, StaticRules{rules}, Options{})}
}

// rec builds a record. fields: "uid", "aid", "traits" (JSON), "ctx" (JSON), "event", "prev", "group".
func rec(typ, mid string, minute int, fields map[string]string) tracking.Record {
	m := tracking.Message{
		Type: typ, MessageID: mid, UserID: fields["uid"], AnonymousID: fields["aid"],
		PreviousID: fields["prev"], Event: fields["event"], GroupID: fields["group"],
		Timestamp: t0.Add(time.Duration(minute) * time.Minute), ReceivedAt: t0.Add(time.Duration(minute) * time.Minute),
	}
	if v := fields["traits"]; v != "" {
		m.Traits = json.RawMessage(v)
	}
	if v := fields["ctx"]; v != "" {
		m.Context = json.RawMessage(v)
	}
	return tracking.Record{SourceID: "src1", Message: m}
}

func (e *env) process(t testing.TB, recs ...tracking.Record) []Result {
	t.Helper()
	res, _, err := e.proc.Process(context.Background(), recs)
	if err != nil {
		t.Fatalf("process: %v", err)
	}
	for i, r := range res {
		if r.Outcome == Failed {
			t.Fatalf("record %d (%s) failed: %v", i, recs[i].Message.MessageID, r.Err)
		}
	}
	return res
}

// liveProfiles scans the table for every live profile.
func (e *env) liveProfiles(t testing.TB) []*Profile {
	t.Helper()
	var out []*Profile
	p := dynamodb.NewScanPaginator(e.db, &dynamodb.ScanInput{TableName: aws.String(e.table), ConsistentRead: aws.Bool(true)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("scan: %v", err)
		}
		for _, it := range page.Items {
			if store.GetS(it, "sk") != skProfile {
				continue
			}
			pr, err := decodeProfile(it)
			if err != nil {
				t.Fatal(err)
			}
			if pr.Live() {
				out = append(out, pr)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return idsString(out[i]) < idsString(out[j]) })
	return out
}

func idsString(p *Profile) string {
	var s []string
	for _, id := range p.Identifiers {
		s = append(s, id.String())
	}
	return strings.Join(s, " ")
}

// shape renders the live profiles as sorted identifier lists.
func (e *env) shape(t testing.TB) []string {
	var out []string
	for _, p := range e.liveProfiles(t) {
		out = append(out, idsString(p))
	}
	return out
}

func wantShape(t *testing.T, e *env, want ...string) {
	t.Helper()
	got := e.shape(t)
	sort.Strings(want)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("profiles:\n got  %q\n want %q", got, want)
	}
}

func (e *env) byID(t testing.TB, id string) *Profile {
	t.Helper()
	typ, v, _ := strings.Cut(id, ":")
	p, err := e.store.Lookup(context.Background(), Identifier{typ, v})
	if err != nil || p == nil {
		t.Fatalf("lookup %s: %v %v", id, p, err)
	}
	return p
}

func traitsJSON(p *Profile) string {
	b, _ := json.Marshal(TraitValues(p.Traits))
	return string(b)
}
