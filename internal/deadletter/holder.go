package deadletter

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/serverless-cdp/cdp/internal/privacy"
	"github.com/serverless-cdp/cdp/internal/store"
)

// Privacy: the pipeline's dead letters hold records as the stages received them, so a person's
// events, profile changes and activation records can sit there. Holder finds the entries that
// mention a person, in every stage's partition, and exports or erases them (chunks included).
//
// Every stage that puts an entry is registered (`DLQSTAGES` / `<stage>`, written once per stage
// and process by Put), so the holder reads exactly the partitions that exist, plus KnownStages
// (entries put before the registry existed) — never a scan of the table.

// Names of the holder and of its kind of data (privacy.Holder).
const (
	HolderName = "dead_letters"
	KindEntry  = "dead_letters"
)

// KnownStages are the stages that wrote dead letters before stages were registered.
var KnownStages = []string{"identity", "segments", "activation"}

const (
	pkStages = "DLQSTAGES"
	// minRawMatch is the shortest value matched inside a payload that is not JSON (as bytes):
	// shorter ones would match unrelated records.
	minRawMatch = 5
)

// registerStage records that a stage has dead letters (once per stage and process).
func (s *Store) registerStage(ctx context.Context, stage string) error {
	if _, done := s.stages.Load(stage); done {
		return nil
	}
	_, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: store.Key(pkStages, stage)})
	if err != nil {
		return fmt.Errorf("dead letter register stage: %w", err)
	}
	s.stages.Store(stage, true)
	return nil
}

// Stages lists every stage that has (or had) dead letters: the registered ones and KnownStages.
func (s *Store) Stages(ctx context.Context) ([]string, error) {
	set := map[string]bool{}
	for _, st := range KnownStages {
		set[st] = true
	}
	in := &dynamodb.QueryInput{TableName: aws.String(s.table), KeyConditionExpression: aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": sv(pkStages)}}
	pages := dynamodb.NewQueryPaginator(s.db, in)
	for pages.HasMorePages() {
		out, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("dead letter stages: %w", err)
		}
		for _, it := range out.Items {
			set[store.GetS(it, store.SK)] = true
		}
	}
	stages := make([]string, 0, len(set))
	for st := range set {
		stages = append(stages, st)
	}
	slices.Sort(stages)
	return stages, nil
}

// Holder is the pipeline dead letters' privacy.Holder.
type Holder struct{ store *Store }

var _ privacy.Holder = (*Holder)(nil)

// NewHolder returns the holder over the dead-letter store.
func NewHolder(s *Store) *Holder { return &Holder{store: s} }

// Name is "dead_letters".
func (h *Holder) Name() string { return HolderName }

// Export emits every entry that mentions the person (kind "dead_letters"), payload included.
func (h *Holder) Export(ctx context.Context, p privacy.Person, emit func(kind string, item any) error) error {
	return h.each(ctx, p, func(e Entry) error { return emit(KindEntry, e) })
}

// Erase deletes every entry that mentions the person, with its payload chunks.
func (h *Holder) Erase(ctx context.Context, p privacy.Person) (map[string]int, error) {
	n := map[string]int{}
	err := h.each(ctx, p, func(e Entry) error {
		if err := h.store.Delete(ctx, e.Stage, e.ID); err != nil {
			return err
		}
		n[KindEntry]++
		return nil
	})
	return n, err
}

// each calls fn for every entry, of every stage, that mentions the person. The entries of a
// page are matched before fn runs, so fn may delete them.
func (h *Holder) each(ctx context.Context, p privacy.Person, fn func(Entry) error) error {
	m := newMatcher(p)
	if m.empty() {
		return nil
	}
	stages, err := h.store.Stages(ctx)
	if err != nil {
		return err
	}
	for _, stage := range stages {
		next := ""
		for {
			es, more, err := h.store.List(ctx, stage, 100, next)
			if err != nil {
				return fmt.Errorf("dead letters of %s: %w", stage, err)
			}
			for _, e := range es {
				if !m.entry(e) {
					continue
				}
				if err := fn(e); err != nil {
					return err
				}
			}
			if more == "" {
				break
			}
			next = more
		}
	}
	return nil
}

// matcher decides whether an entry mentions a person: a string value of its JSON payload (or a
// value of its meta) equal to one of the person's profile ids or identifier values (emails,
// like every identifier, case-insensitively), or for a payload that is not JSON, the bytes of
// such a value (of at least minRawMatch bytes) anywhere in it. Gzip payloads are decompressed.
type matcher struct {
	values map[string]bool // lower-cased
	raw    [][]byte        // lower-cased, for payloads that are not JSON
}

func newMatcher(p privacy.Person) *matcher {
	m := &matcher{values: map[string]bool{}}
	add := func(v string) {
		v = strings.ToLower(strings.TrimSpace(v))
		if v == "" || m.values[v] {
			return
		}
		m.values[v] = true
		if len(v) >= minRawMatch {
			m.raw = append(m.raw, []byte(v))
		}
	}
	for _, pid := range p.Profiles {
		add(pid)
	}
	for _, id := range p.Identifiers {
		if _, v, ok := strings.Cut(id, ":"); ok {
			add(v)
		}
	}
	return m
}

func (m *matcher) empty() bool { return len(m.values) == 0 }

func (m *matcher) entry(e Entry) bool {
	for _, v := range e.Meta {
		if m.values[strings.ToLower(v)] {
			return true
		}
	}
	return m.payload(e.Payload, 0)
}

// payload matches a payload: JSON (string values, and JSON nested in strings), gzip (once), or
// raw bytes.
func (m *matcher) payload(b []byte, depth int) bool {
	if len(b) > 1 && b[0] == 0x1f && b[1] == 0x8b && depth == 0 {
		if zr, err := gzip.NewReader(bytes.NewReader(b)); err == nil {
			if out, err := io.ReadAll(io.LimitReader(zr, MaxPayload*8)); err == nil {
				return m.payload(out, depth+1)
			}
		}
	}
	var v any
	if json.Unmarshal(b, &v) == nil {
		return m.walk(v, depth)
	}
	low := bytes.ToLower(b)
	for _, r := range m.raw {
		if bytes.Contains(low, r) {
			return true
		}
	}
	return false
}

func (m *matcher) walk(v any, depth int) bool {
	switch x := v.(type) {
	case string:
		if m.values[strings.ToLower(x)] {
			return true
		}
		t := strings.TrimSpace(x)
		if depth < 4 && len(t) > 1 && (t[0] == '{' || t[0] == '[') {
			var inner any
			return json.Unmarshal([]byte(t), &inner) == nil && m.walk(inner, depth+1)
		}
	case map[string]any:
		for _, e := range x {
			if m.walk(e, depth) {
				return true
			}
		}
	case []any:
		for _, e := range x {
			if m.walk(e, depth) {
				return true
			}
		}
	}
	return false
}
