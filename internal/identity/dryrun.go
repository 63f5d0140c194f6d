package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/serverless-cdp/cdp/internal/idrules"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

// Bounds of an identity-rule dry run.
const (
	// DefaultDryRunEvents is how many records a dry run reads unless told otherwise;
	// MaxDryRunEvents is the most it ever reads. Both runs' stores are held in memory: about
	// 4 KB per record (BenchmarkDryRun), so 25,000 records take about 100 MB.
	DefaultDryRunEvents = 25_000
	MaxDryRunEvents     = 1_000_000
	// DefaultDryRunExamples is how many split and merge examples a report holds unless told
	// otherwise; MaxDryRunExamples the most.
	DefaultDryRunExamples = 10
	MaxDryRunExamples     = 100
	// DefaultDryRunReserve is the time kept before ctx's deadline for comparing the two
	// results: no history is read past that point.
	DefaultDryRunReserve = 2 * time.Second
	dryRunBatch          = 500
)

// History yields records in arrival order; it stops early (returning the error) when yield
// returns an error.
type History func(yield func(tracking.Record) error) error

// SuppressionList is the part of the privacy block list a dry run reads (blocklist.Checker
// implements it): a suppressed person's records are left out, as the identity function drops
// them.
type SuppressionList interface {
	Suppressed(ctx context.Context, identifiers []string) (bool, error)
}

// DryRunOptions bound a dry run.
type DryRunOptions struct {
	MaxEvents   int           // records read at most (0: DefaultDryRunEvents; capped at MaxDryRunEvents)
	MaxExamples int           // examples of each kind (0: DefaultDryRunExamples; capped at MaxDryRunExamples)
	Reserve     time.Duration // time kept before ctx's deadline to compare (0: DefaultDryRunReserve)
	// Suppressions, when set, leaves out the records of suppressed people.
	Suppressions SuppressionList
	Now          func() time.Time
}

// DryRunReport is what a dry run found. Identifiers are shown in full ("type:value"): the
// report is for an administrator.
type DryRunReport struct {
	Events       int    `json:"events"`       // records read from the history
	Suppressed   int    `json:"suppressed"`   // left out: a suppressed person's
	Duplicates   int    `json:"duplicates"`   // a messageId seen before in the same source
	Unresolvable int    `json:"unresolvable"` // no usable identifier under the current rules
	Rejected     int    `json:"rejected"`     // refused (too large to store) under the current rules
	Truncated    bool   `json:"truncated"`    // the budget ran out before the end of the history
	TruncatedBy  string `json:"truncatedBy,omitempty"`
	Current      Side   `json:"current"`
	Candidate    Side   `json:"candidate"`
	// Splits counts the profiles of the current rules whose identifiers would be spread over
	// several profiles under the candidate; Merges the candidate's profiles whose identifiers
	// are spread over several profiles now.
	Splits        int             `json:"splits"`
	Merges        int             `json:"merges"`
	SplitExamples []DryRunExample `json:"splitExamples"`
	MergeExamples []DryRunExample `json:"mergeExamples"`
	// Detached counts identifiers held by a profile now and by none under the candidate
	// (dropped or blocked); Attached the reverse.
	Detached int `json:"detached"`
	Attached int `json:"attached"`
}

// Side is the outcome of one run.
type Side struct {
	Profiles    int `json:"profiles"`
	Identifiers int `json:"identifiers"` // held by a profile
}

// DryRunExample is one profile that would split or merge: how its identifiers are grouped into
// profiles under each rule set, and the decisions that differ between the two runs.
type DryRunExample struct {
	Current   [][]string `json:"current"`   // one list of identifiers per profile
	Candidate [][]string `json:"candidate"` // idem
	// Unheld are identifiers of the example held by no profile in that run (dropped or blocked).
	CurrentUnheld   []string         `json:"currentUnheld,omitempty"`
	CandidateUnheld []string         `json:"candidateUnheld,omitempty"`
	Decisions       []DryRunDecision `json:"decisions"`
}

// DryRunDecision is a merge-log decision (a drop or a block) taken in one run only.
type DryRunDecision struct {
	Rules      string `json:"rules"` // "current" or "candidate"
	MessageID  string `json:"messageId"`
	Action     string `json:"action"` // drop or blocked
	Rule       string `json:"rule"`   // e.g. "limit email=1"
	Identifier string `json:"identifier"`
	Text       string `json:"text"` // e.g. "candidate: limit email=1 dropped email:a@x.com"
}

var (
	errDryRunEvents = errors.New("identity: dry run: event budget reached")
	errDryRunTime   = errors.New("identity: dry run: time budget reached")
)

// DryRun replays history through identity resolution twice, on fresh in-memory stores (nothing
// is written anywhere): once under the current rules, once under the candidate, batch by batch
// in arrival order, and compares the partitions of identifiers into profiles. It stops reading
// at opts.MaxEvents records, or when less than opts.Reserve remains before ctx's deadline, and
// then says so (Truncated). An invalid rule set is an *idrules.ValidationError.
func DryRun(ctx context.Context, history History, current, candidate idrules.Rules, opts DryRunOptions) (*DryRunReport, error) {
	opts = dryRunDefaults(opts)
	cur, err := newDryRunSide(current, opts)
	if err != nil {
		return nil, err
	}
	cand, err := newDryRunSide(candidate, opts)
	if err != nil {
		return nil, err
	}
	rep := &DryRunReport{}
	feed := &dryRunFeed{ctx: ctx, opts: opts, rep: rep, cur: cur, cand: cand}
	err = history(feed.add)
	switch {
	case errors.Is(err, errDryRunEvents):
		rep.Truncated, rep.TruncatedBy = true, "events"
	case errors.Is(err, errDryRunTime):
		rep.Truncated, rep.TruncatedBy = true, "time"
	case err != nil:
		return nil, fmt.Errorf("identity: dry run: %w", err)
	}
	// What was read (before the budget ran out, if it did) is compared.
	if err := feed.flush(); err != nil {
		return nil, fmt.Errorf("identity: dry run: %w", err)
	}
	return compareRuns(cur.partition(), cand.partition(), opts.MaxExamples, rep), nil
}

func dryRunDefaults(o DryRunOptions) DryRunOptions {
	if o.MaxEvents <= 0 {
		o.MaxEvents = DefaultDryRunEvents
	}
	o.MaxEvents = min(o.MaxEvents, MaxDryRunEvents)
	if o.MaxExamples <= 0 {
		o.MaxExamples = DefaultDryRunExamples
	}
	o.MaxExamples = min(o.MaxExamples, MaxDryRunExamples)
	if o.Reserve <= 0 {
		o.Reserve = DefaultDryRunReserve
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// dryRunSide is one run: a processor on its own in-memory store.
type dryRunSide struct {
	mem  *MemStore
	proc *Processor
}

func newDryRunSide(r idrules.Rules, opts DryRunOptions) (*dryRunSide, error) {
	c, err := Compile(r)
	if err != nil {
		return nil, err
	}
	mem := NewMemStore(opts.Now)
	// No cache (the store is memory already); a reserve of a nanosecond because the feed keeps
	// its own, and processes each batch on a context without deadline.
	proc := NewProcessor(mem, StaticRules{c}, Options{Now: opts.Now, CacheIndexEntries: -1, CacheProfileBytes: -1, Reserve: time.Nanosecond, Parallel: 1})
	return &dryRunSide{mem: mem, proc: proc}, nil
}

// dryRunFeed batches the history into both runs.
type dryRunFeed struct {
	ctx       context.Context
	opts      DryRunOptions
	rep       *DryRunReport
	cur, cand *dryRunSide
	batch     []tracking.Record
}

func (f *dryRunFeed) add(rec tracking.Record) error {
	if f.rep.Events >= f.opts.MaxEvents {
		return errDryRunEvents
	}
	if err := f.ctx.Err(); err != nil {
		return err
	}
	if f.lowOnTime() {
		return errDryRunTime
	}
	f.rep.Events++
	if f.opts.Suppressions != nil {
		s, err := f.opts.Suppressions.Suppressed(f.ctx, MessageIdentifiers(&rec.Message))
		if err != nil {
			return fmt.Errorf("read the suppression list: %w", err)
		}
		if s {
			f.rep.Suppressed++
			return nil
		}
	}
	f.batch = append(f.batch, identityOnly(rec))
	if len(f.batch) < dryRunBatch {
		return nil
	}
	return f.flush()
}

// lowOnTime reports whether less than the reserve remains before ctx's deadline (by the
// options' clock).
func (f *dryRunFeed) lowOnTime() bool {
	dl, ok := f.ctx.Deadline()
	return ok && dl.Sub(f.opts.Now()) < f.opts.Reserve
}

// flush processes the pending batch under both rule sets at once. A batch is at most
// dryRunBatch records in memory, so it is not cut by the deadline (add stops reading instead).
func (f *dryRunFeed) flush() error {
	if len(f.batch) == 0 {
		return nil
	}
	recs := f.batch
	f.batch = nil
	work := context.WithoutCancel(f.ctx)
	var curRes []Result
	var g errgroup.Group
	g.Go(func() error {
		var err error
		curRes, _, err = f.cur.proc.Process(work, recs)
		return err
	})
	g.Go(func() error {
		_, _, err := f.cand.proc.Process(work, recs)
		return err
	})
	if err := g.Wait(); err != nil {
		return err
	}
	for _, r := range curRes {
		switch r.Outcome {
		case Duplicate:
			f.rep.Duplicates++
		case Unresolvable:
			f.rep.Unresolvable++
		case Rejected:
			f.rep.Rejected++
		case Failed, Deferred:
			return fmt.Errorf("in-memory processing failed: %w", r.Err)
		}
	}
	return nil
}

// idPartition is how one run grouped identifiers: each held identifier's profile, the profiles'
// members, and the drop and block decisions per identifier.
type idPartition struct {
	owner     map[Identifier]string
	members   map[string][]Identifier
	decisions map[Identifier][]DryRunDecision
}

func (s *dryRunSide) partition() *idPartition {
	m := s.mem
	m.mu.Lock()
	defer m.mu.Unlock()
	into := make(map[string]string, len(m.profiles))
	for id, p := range m.profiles {
		var ptr struct {
			MergedInto string `json:"mergedInto"`
		}
		_ = json.Unmarshal(p.data, &ptr) // written by this package: always a profile
		into[id] = ptr.MergedInto
	}
	root := func(id string) string {
		for i := 0; i < maxMergeChain && into[id] != ""; i++ {
			id = into[id]
		}
		return id
	}
	pt := &idPartition{owner: make(map[Identifier]string, len(m.index)), members: map[string][]Identifier{}, decisions: map[Identifier][]DryRunDecision{}}
	for id, pid := range m.index {
		r := root(pid)
		pt.owner[id] = r
		pt.members[r] = append(pt.members[r], id)
	}
	for _, lines := range m.logs {
		for _, l := range lines {
			pt.addDecisions(l)
		}
	}
	return pt
}

func (pt *idPartition) addDecisions(l LogEntry) {
	for _, a := range l.Actions {
		if a.Kind != ActionDrop && a.Kind != ActionBlocked {
			continue
		}
		verb := "dropped"
		if a.Kind == ActionBlocked {
			verb = "blocked"
		}
		for _, id := range a.Identifiers {
			pt.decisions[id] = append(pt.decisions[id], DryRunDecision{
				MessageID: l.MessageID, Action: a.Kind, Rule: a.Rule, Identifier: id.String(),
				Text: a.Rule + " " + verb + " " + id.String(),
			})
		}
	}
}

// compareRuns fills the report from the two partitions.
func compareRuns(cur, cand *idPartition, maxExamples int, rep *DryRunReport) *DryRunReport {
	rep.Current = Side{Profiles: len(cur.members), Identifiers: len(cur.owner)}
	rep.Candidate = Side{Profiles: len(cand.members), Identifiers: len(cand.owner)}
	rep.SplitExamples, rep.MergeExamples = []DryRunExample{}, []DryRunExample{}
	for id := range cur.owner {
		if _, ok := cand.owner[id]; !ok {
			rep.Detached++
		}
	}
	for id := range cand.owner {
		if _, ok := cur.owner[id]; !ok {
			rep.Attached++
		}
	}
	for _, ids := range sortedGroups(cur.members) {
		if spread(ids, cand.owner) > 1 {
			rep.Splits++
			if len(rep.SplitExamples) < maxExamples {
				rep.SplitExamples = append(rep.SplitExamples, example(ids, cur, cand))
			}
		}
	}
	for _, ids := range sortedGroups(cand.members) {
		if spread(ids, cur.owner) > 1 {
			rep.Merges++
			if len(rep.MergeExamples) < maxExamples {
				rep.MergeExamples = append(rep.MergeExamples, example(ids, cur, cand))
			}
		}
	}
	return rep
}

// sortedGroups returns the members of each profile, sorted, the profiles ordered by their
// smallest identifier (profile ids are random: this makes the report deterministic).
func sortedGroups(members map[string][]Identifier) [][]Identifier {
	out := make([][]Identifier, 0, len(members))
	for _, ids := range members {
		ids = append([]Identifier(nil), ids...)
		sortIDs(ids)
		out = append(out, ids)
	}
	sort.Slice(out, func(i, j int) bool { return idLess(out[i][0], out[j][0]) })
	return out
}

func idLess(a, b Identifier) bool {
	if a.Type != b.Type {
		return a.Type < b.Type
	}
	return a.Value < b.Value
}

func sortIDs(ids []Identifier) {
	sort.Slice(ids, func(i, j int) bool { return idLess(ids[i], ids[j]) })
}

// spread counts the profiles of the other run that hold some of ids.
func spread(ids []Identifier, owner map[Identifier]string) int {
	seen := map[string]bool{}
	for _, id := range ids {
		if p, ok := owner[id]; ok {
			seen[p] = true
		}
	}
	return len(seen)
}

// example describes the profiles of both runs that hold any of ids, closed over both runs (the
// identifiers of every profile involved, in either run).
func example(ids []Identifier, cur, cand *idPartition) DryRunExample {
	all := closure(ids, cur, cand)
	ex := DryRunExample{
		Current: groups(all, cur), Candidate: groups(all, cand),
		CurrentUnheld: unheld(all, cur), CandidateUnheld: unheld(all, cand),
		Decisions: []DryRunDecision{},
	}
	for _, id := range all {
		ex.Decisions = append(ex.Decisions, onlyIn("current", cur.decisions[id], cand.decisions[id])...)
		ex.Decisions = append(ex.Decisions, onlyIn("candidate", cand.decisions[id], cur.decisions[id])...)
	}
	sort.SliceStable(ex.Decisions, func(i, j int) bool { return ex.Decisions[i].Rules > ex.Decisions[j].Rules })
	return ex
}

// maxExampleIDs bounds the identifiers of one example (a large profile could hold thousands).
const maxExampleIDs = 200

// closure is ids and the identifiers of every profile holding one of them, in either run,
// transitively, up to maxExampleIDs, sorted.
func closure(ids []Identifier, cur, cand *idPartition) []Identifier {
	in := map[Identifier]bool{}
	queue := append([]Identifier(nil), ids...)
	for len(queue) > 0 && len(in) < maxExampleIDs {
		id := queue[0]
		queue = queue[1:]
		if in[id] {
			continue
		}
		in[id] = true
		for _, pt := range []*idPartition{cur, cand} {
			if p, ok := pt.owner[id]; ok {
				queue = append(queue, pt.members[p]...)
			}
		}
	}
	out := make([]Identifier, 0, len(in))
	for id := range in {
		out = append(out, id)
	}
	sortIDs(out)
	return out
}

// groups splits ids by the profile holding them in one run (ids held by none are left out).
func groups(ids []Identifier, pt *idPartition) [][]string {
	by := map[string][]string{}
	var order []string
	for _, id := range ids {
		p, ok := pt.owner[id]
		if !ok {
			continue
		}
		if by[p] == nil {
			order = append(order, p)
		}
		by[p] = append(by[p], id.String())
	}
	out := make([][]string, 0, len(order))
	for _, p := range order {
		out = append(out, by[p])
	}
	return out
}

func unheld(ids []Identifier, pt *idPartition) []string {
	var out []string
	for _, id := range ids {
		if _, ok := pt.owner[id]; !ok {
			out = append(out, id.String())
		}
	}
	return out
}

// onlyIn returns the decisions of one run that the other run did not take (same message, action,
// rule and identifier), labelled with the run.
func onlyIn(run string, mine, theirs []DryRunDecision) []DryRunDecision {
	var out []DryRunDecision
	for _, d := range mine {
		same := false
		for _, o := range theirs {
			if o.MessageID == d.MessageID && o.Action == d.Action && o.Rule == d.Rule {
				same = true
				break
			}
		}
		if !same {
			d.Rules = run
			d.Text = run + ": " + strings.TrimSpace(d.Text)
			out = append(out, d)
		}
	}
	return out
}

// identityOnly is the part of a record identity resolution reads: its type, ids, timestamps
// and the fields identifiers are extracted from (traits and context keep only email, phone,
// device ids and externalIds). Properties, other traits and other context are dropped, so
// the two in-memory runs hold about a tenth of a real event.
func identityOnly(rec tracking.Record) tracking.Record {
	m := rec.Message
	slim := tracking.Message{
		Type: m.Type, MessageID: m.MessageID, UserID: m.UserID, AnonymousID: m.AnonymousID,
		PreviousID: m.PreviousID, GroupID: m.GroupID, Timestamp: m.Timestamp, ReceivedAt: m.ReceivedAt,
	}
	if m.Type == tracking.TypeIdentify {
		slim.Traits = pick(m.Traits, "email", "phone")
	}
	if ctx := pick(m.Context, "traits", "device", "externalIds"); ctx != nil {
		var fields map[string]json.RawMessage
		_ = json.Unmarshal(ctx, &fields) // pick returned an object
		if t, ok := fields["traits"]; ok {
			fields["traits"] = pick(t, "email", "phone")
		}
		if d, ok := fields["device"]; ok {
			fields["device"] = pick(d, "id", "advertisingId")
		}
		slim.Context = mustObject(fields)
	}
	return tracking.Record{SourceID: rec.SourceID, Message: slim}
}

// pick returns the object raw with only the keys given that it has (nil if it has none, or is
// not an object).
func pick(raw json.RawMessage, keys ...string) json.RawMessage {
	if len(raw) == 0 {
		return nil
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(raw, &fields) != nil {
		return nil
	}
	out := map[string]json.RawMessage{}
	for _, k := range keys {
		if v, ok := fields[k]; ok && v != nil {
			out[k] = v
		}
	}
	if len(out) == 0 {
		return nil
	}
	return mustObject(out)
}

func mustObject(fields map[string]json.RawMessage) json.RawMessage {
	for k, v := range fields {
		if v == nil {
			delete(fields, k)
		}
	}
	b, err := json.Marshal(fields)
	if err != nil || len(fields) == 0 {
		return nil
	}
	return b
}
