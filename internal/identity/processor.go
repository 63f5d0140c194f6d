package identity

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/serverless-cdp/cdp/internal/backoff"
	"github.com/serverless-cdp/cdp/internal/budget"
	"github.com/serverless-cdp/cdp/internal/change"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

// Outcome of processing one record.
type Outcome int

// Outcomes.
const (
	Processed    Outcome = iota + 1 // applied to a profile
	Duplicate                       // its messageId was processed before: nothing changed (re-emitted)
	Unresolvable                    // no usable identifier (all blocked): nothing changed
	Failed                          // not applied; Err says why; safe to retry
	Rejected                        // refused by the store for what it holds (isolated): retrying cannot help
	Deferred                        // not started: the time budget ran out first; nothing was attempted
)

func (o Outcome) String() string {
	switch o {
	case Processed:
		return "processed"
	case Duplicate:
		return "duplicate"
	case Unresolvable:
		return "unresolvable"
	case Failed:
		return "failed"
	case Rejected:
		return "rejected"
	case Deferred:
		return "deferred"
	}
	return "unknown"
}

// Result is what happened to one record.
type Result struct {
	Outcome   Outcome
	ProfileID string
	Err       error
}

// RulesSource yields the identity rules in force (cached by the implementation).
type RulesSource interface {
	Compiled(ctx context.Context) (*Compiled, error)
}

// StaticRules is a RulesSource that never changes.
type StaticRules struct{ C *Compiled }

// Compiled returns the rules.
func (s StaticRules) Compiled(context.Context) (*Compiled, error) { return s.C, nil }

// Options tune a Processor.
type Options struct {
	// Retention is how long timeline events are kept (default 90 days). It is also the dedupe
	// window, so it is never shorter than 24 hours.
	Retention time.Duration
	// MaxConflicts is how often one record is re-planned after a concurrent change before it
	// is reported failed (default 10).
	MaxConflicts int
	// Parallel commits (default 8).
	Parallel int
	// Reserve: no new round or commit is started when less than this remains before the
	// context's deadline; the records concerned are Deferred (default 500 ms).
	Reserve time.Duration
	// SkipLegacyDedupe stops reading the dedupe markers written before dedupe became per
	// source (key MSG#<messageId>). Leave it off until every such marker has expired (the
	// retention after the upgrade), so that a redelivery or a replay of an event processed
	// before the upgrade is still recognised.
	SkipLegacyDedupe bool
	// CacheIndexEntries and CacheProfileBytes bound the in-process cache of identity index
	// entries and profiles (see graphCache; defaults DefaultCacheIndexEntries and
	// DefaultCacheProfileBytes; negative: no cache).
	CacheIndexEntries int
	CacheProfileBytes int
	Now               func() time.Time
	Logger            *slog.Logger
	// Erased, when set, tells which profile ids privacy requests erased: a new profile never
	// takes one (see newProfileID).
	Erased ErasedProfiles
}

// DefaultRetention is the timeline retention unless configured.
const DefaultRetention = 90 * 24 * time.Hour

// Processor resolves identities for batches of tracking records and stores the outcome.
type Processor struct {
	store GraphStore
	rules RulesSource
	opt   Options
	cache *graphCache // nil: none
}

// NewProcessor wires a processor.
func NewProcessor(s GraphStore, rules RulesSource, opt Options) *Processor {
	if opt.Retention <= 0 {
		opt.Retention = DefaultRetention
	}
	if opt.Retention < 24*time.Hour {
		opt.Retention = 24 * time.Hour
	}
	if opt.MaxConflicts <= 0 {
		opt.MaxConflicts = 10
	}
	if opt.Parallel <= 0 {
		opt.Parallel = 8
	}
	if opt.Reserve <= 0 {
		opt.Reserve = 500 * time.Millisecond
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	p := &Processor{store: s, rules: rules, opt: opt}
	if opt.CacheIndexEntries >= 0 && opt.CacheProfileBytes >= 0 {
		p.cache = newGraphCache(cmp.Or(opt.CacheIndexEntries, DefaultCacheIndexEntries), cmp.Or(opt.CacheProfileBytes, DefaultCacheProfileBytes), opt.Now)
	}
	return p
}

// graph is the store as the planner reads it: through the cache if there is one.
func (p *Processor) graph() GraphStore {
	if p.cache == nil {
		return p.store
	}
	return cachedGraph{GraphStore: p.store, c: p.cache}
}

// Process applies records in order. Every record gets a Result; changes holds one record per
// surviving profile touched by committed work, or holding messages found already processed
// (those are re-emitted with the profile's current state; nothing is written for them). A
// message is identified by its source and messageId. Records the store refuses (a value it
// cannot hold) are isolated by bisection and reported Rejected on their own; the others
// proceed. The returned error is set only when nothing could be attempted (e.g. the rules
// cannot be read); all results are then Failed.
func (p *Processor) Process(ctx context.Context, recs []tracking.Record) ([]Result, []change.Record, error) {
	results := make([]Result, len(recs))
	rules, err := p.rules.Compiled(ctx)
	if err != nil {
		err = fmt.Errorf("identity rules: %w", err)
		for i := range results {
			results[i] = Result{Outcome: Failed, Err: err}
		}
		return results, nil, err
	}
	first := map[MessageRef]int{}
	var pending []int
	for i, r := range recs {
		ref := refOf(&r)
		if _, dup := first[ref]; dup {
			results[i] = Result{Outcome: Duplicate}
			continue
		}
		first[ref] = i
		pending = append(pending, i)
	}
	changes := newChangeSet()
	p.run(ctx, &runState{recs: recs, rules: rules, results: results, changes: changes}, pending, false)
	return results, changes.records(), nil
}

// runState is what the rounds of one Process call share.
type runState struct {
	recs    []tracking.Record
	rules   *Compiled
	results []Result
	changes *changeSet
}

// refusal is a group of records the store refused together (one plan or one component).
type refusal struct {
	records []int
	err     error
}

// run processes pending records; a group the store refuses is split in halves and each half
// is run again, until the record responsible stands alone.
func (p *Processor) run(ctx context.Context, st *runState, pending []int, consistent bool) {
	for _, rf := range p.rounds(ctx, st, pending, consistent) {
		if len(rf.records) == 1 {
			st.results[rf.records[0]] = Result{Outcome: Rejected, Err: rf.err}
			continue
		}
		mid := len(rf.records) / 2
		p.run(ctx, st, rf.records[:mid], true)
		p.run(ctx, st, rf.records[mid:], true)
	}
}

// lowOnTime reports whether less than the reserve remains before ctx's deadline.
func (p *Processor) lowOnTime(ctx context.Context) bool {
	return budget.New(ctx, p.opt.Reserve, 0).Over()
}

func settleAll(results []Result, idx []int, res Result) {
	for _, i := range idx {
		results[i] = res
	}
}

// rounds plans and commits pending records until each has an outcome, re-planning records
// whose commit met a concurrent change. It returns the groups the store refused.
func (p *Processor) rounds(ctx context.Context, st *runState, pending []int, consistent bool) []refusal {
	var refused []refusal
	conflicts := map[int]int{}
	for round := 0; len(pending) > 0; round++ {
		if ctx.Err() != nil || p.lowOnTime(ctx) {
			// Not started (again): these records are not to blame for the time running out.
			settleAll(st.results, pending, Result{Outcome: Deferred, Err: errDeferred})
			break
		}
		pl, err := p.plan(ctx, st.recs, pending, st.rules, consistent || round > 0)
		if err != nil {
			if isRefused(err) {
				refused = append(refused, refusal{records: pending, err: err})
			} else {
				settleAll(st.results, pending, Result{Outcome: Failed, Err: err})
			}
			break
		}
		for i, r := range pl.results {
			st.results[i] = r
		}
		// Added before this round's commits, so that a commit touching the same profile folds
		// over them (its state is newer).
		for _, r := range pl.dupChanges(p.opt.Now()) {
			st.changes.addFull(r)
		}
		outs, apps := p.commitAll(ctx, pl)
		retry, rf := p.settleCommits(st, pl, outs, apps, conflicts)
		refused = append(refused, rf...)
		pending = append(retry, pl.rest...)
		sort.Ints(pending)
		if len(retry) > 0 {
			// Back off with jitter so competing writers interleave instead of colliding again.
			if err := backoff.Sleep(ctx, conflictPolicy.Delay(round+1)); err != nil {
				continue // the loop defers what is pending
			}
		}
	}
	return refused
}

// settleCommits records the outcome of each component's commit; it returns the records to
// re-plan (conflicts) and the components the store refused.
func (p *Processor) settleCommits(st *runState, pl *plan, outcomes []error, apps [][]Appended, conflicts map[int]int) ([]int, []refusal) {
	var retry []int
	var refused []refusal
	for ci, c := range pl.comps {
		err := outcomes[ci]
		switch {
		case err == nil && apps[ci] != nil:
			p.settleAppend(st, pl, c, apps[ci])
		case err == nil:
			surv := pl.g.follow(c.root)
			settleAll(st.results, c.records, Result{Outcome: Processed, ProfileID: surv.ID})
			st.changes.add(pl.change(c, surv, p.opt.Now()))
			st.changes.consentChanged(surv.ID, pl.consentChanged(surv))
		case errors.Is(err, errDeferred):
			settleAll(st.results, c.records, Result{Outcome: Deferred, Err: err})
		case errors.Is(err, ErrConflict):
			for _, i := range c.records {
				conflicts[i]++
				if conflicts[i] > p.opt.MaxConflicts {
					st.results[i] = Result{Outcome: Failed, Err: err}
				} else {
					retry = append(retry, i)
				}
			}
		case isRefused(err):
			recs := append([]int(nil), c.records...)
			sort.Ints(recs)
			refused = append(refused, refusal{records: recs, err: err})
		default:
			settleAll(st.results, c.records, Result{Outcome: Failed, Err: err})
		}
	}
	return retry, refused
}

// conflictPolicy paces the re-planning of records whose commit met a concurrent change.
var conflictPolicy = backoff.Policy{Base: 20 * time.Millisecond, Max: 160 * time.Millisecond}

// errDeferred marks work not started because the time budget ran out.
var errDeferred = errors.New("identity: not started: the invocation's time budget ran out")

// commitAll commits the components of a plan in parallel. It returns each one's outcome and,
// for a component written by GraphStore.Append (one stored profile and its events, nothing
// else), the outcome of each of its events.
func (p *Processor) commitAll(ctx context.Context, pl *plan) ([]error, [][]Appended) {
	errs := make([]error, len(pl.comps))
	apps := make([][]Appended, len(pl.comps))
	var g errgroup.Group
	g.SetLimit(p.opt.Parallel)
	for ci := range pl.comps {
		c := pl.commit(pl.comps[ci])
		g.Go(func() error {
			if p.lowOnTime(ctx) {
				errs[ci] = errDeferred
				return nil
			}
			if !appendable(c) {
				errs[ci] = p.store.Commit(ctx, c)
				if p.cache != nil {
					p.cache.committed(c, errs[ci])
				}
				return nil
			}
			apps[ci], errs[ci] = p.store.Append(ctx, c)
			p.afterAppend(ctx, c, apps[ci], errs[ci])
			return nil
		})
	}
	_ = g.Wait() // the outcomes are in errs
	return errs, apps
}

// afterAppend updates the cache after an Append and, when some of its events turned out to be
// stored already or certainly failed to be stored, takes them off the profile's event count
// (uncount): the profile's write counted them, and the earlier delivery counted the former,
// the redelivery will count the latter.
func (p *Processor) afterAppend(ctx context.Context, c *Commit, apps []Appended, err error) {
	dups := 0
	for _, a := range apps {
		if a.Dup != nil || a.Unwritten {
			dups++
		}
	}
	if p.cache != nil {
		p.cache.committed(c, err)
		if dups > 0 {
			p.cache.evictProfile(c.Profiles[0].ID)
		}
	}
	if err == nil && dups > 0 {
		p.uncount(ctx, c.Profiles[0].ID, int64(dups))
	}
}

// uncount takes n events off a profile's event count (following merges): its write counted
// events that turned out to be stored already (by an earlier delivery; their traits and
// timestamps, applied again, changed nothing) or that were certainly not stored (they will be
// counted when redelivered). It re-reads and retries on a concurrent change; if it fails, the
// count stays n too high (logged).
func (p *Processor) uncount(ctx context.Context, id string, n int64) {
	var err error
	for attempt := 0; attempt <= p.opt.MaxConflicts; attempt++ {
		ps := map[string]*Profile{}
		if err = loadProfiles(ctx, p.store, ps, []string{id}, true); err != nil {
			break
		}
		surv := follow(ps, id)
		if surv == nil {
			return
		}
		surv.EventCount = max(0, surv.EventCount-n)
		if err = p.store.Commit(ctx, &Commit{Profiles: []*Profile{surv}}); !errors.Is(err, ErrConflict) {
			break
		}
		if backoff.Sleep(ctx, conflictPolicy.Delay(attempt+1)) != nil {
			break
		}
	}
	if err != nil {
		p.opt.Logger.Warn("identity: event count of a profile not corrected for redelivered events", "profile", id, "events", n, "err", err)
	}
}

// settleAppend records the outcome of each event of a component written by GraphStore.Append:
// a stored event is Processed; one found stored already is a Duplicate, re-emitted with its
// original stamp, while the stamp allocated to it goes out as void (change.Record.Void); one
// whose put failed is Failed (retried), or Rejected if the store refused it (dead-lettered
// alone). The stamp of a failed put is void if the put certainly wrote nothing, else never sent
// (a gap: the event may be stored with it, and a redelivery re-emits it then).
func (p *Processor) settleAppend(st *runState, pl *plan, c *component, apps []Appended) {
	surv := pl.g.follow(c.root)
	r := pl.change(c, surv, p.opt.Now())
	r.Events, r.Stamps = nil, nil
	dups := false
	for k, i := range c.records {
		a, ev := apps[k], c.events[k]
		if a.Unwritten {
			r.Void = append(r.Void, c.stamps[k])
		}
		switch {
		case a.Err != nil && isRefused(a.Err):
			st.results[i] = Result{Outcome: Rejected, Err: a.Err}
		case a.Err != nil:
			st.results[i] = Result{Outcome: Failed, Err: a.Err}
		case a.Dup != nil:
			st.results[i] = Result{Outcome: Duplicate, ProfileID: surv.ID}
			r.Void = append(r.Void, c.stamps[k])
			dups = true
			if a.Dup.Profile == surv.ID || containsStr(surv.MergedFrom, a.Dup.Profile) {
				msg := ev.Message
				if a.Dup.Msg != nil {
					msg = *a.Dup.Msg
				}
				r.Events = append(r.Events, msg)
				r.Stamps = append(r.Stamps, change.Stamp{Profile: a.Dup.Profile, Seq: a.Dup.Seq})
			}
		default:
			st.results[i] = Result{Outcome: Processed, ProfileID: surv.ID}
			r.Events = append(r.Events, ev.Message)
			r.Stamps = append(r.Stamps, c.stamps[k])
		}
	}
	if dups {
		st.changes.addFull(r)
	} else {
		st.changes.add(r)
	}
	st.changes.consentChanged(surv.ID, pl.consentChanged(surv))
}

// ---- planning ----

// graph is the in-memory view of the identity graph a batch works on.
type graph struct {
	index    map[Identifier]string // identifier → profile id, as stored or planned
	profiles map[string]*Profile
	orig     map[string]*Profile // profiles as loaded, for change records
}

func (g *graph) follow(id string) *Profile { return follow(g.profiles, id) }

func (g *graph) lookup(id Identifier) *Profile {
	pid, ok := g.index[id]
	if !ok {
		return nil
	}
	return g.follow(pid)
}

// component is the records whose effects must commit together: they touch overlapping profiles.
type component struct {
	root     string
	records  []int
	profiles map[string]bool
	ids      []Identifier
	events   []StoredEvent
	stamps   []change.Stamp // stamps[i] of events[i], given when the commit is built
	logs     []LogEntry
	bytes    int
}

func (c *component) items() int { return len(c.profiles) + len(c.ids) + len(c.events) + len(c.logs) }

type plan struct {
	g       *graph
	comps   []*component
	results map[int]Result // decided without a commit: duplicates, unresolvable
	rest    []int          // records left for the next round (the transaction limit was reached)
	dups    []dupEvent     // messages processed before (by an earlier delivery), to re-emit
	ret     time.Duration
}

func (p *Processor) plan(ctx context.Context, recs []tracking.Record, pending []int, rules *Compiled, consistent bool) (*plan, error) {
	ex, markers, g, err := p.load(ctx, recs, pending, consistent)
	if err != nil {
		return nil, err
	}
	pn := &planner{ctx: ctx, p: p, rules: rules, uf: map[string]string{}, byRoot: map[string]*component{},
		pl: &plan{g: g, results: map[int]Result{}, ret: p.opt.Retention}}
	for k, i := range pending {
		rec := &recs[i]
		if mk, dup := markers[refOf(rec)]; dup {
			pn.duplicate(i, rec, mk)
			continue
		}
		if !pn.add(i, rec, ex[i]) {
			pn.pl.rest = append(pn.pl.rest, pending[k:]...)
			break
		}
	}
	pl := pn.pl
	for _, c := range pn.byRoot {
		pl.comps = append(pl.comps, c)
	}
	sort.Slice(pl.comps, func(a, b int) bool { return pl.comps[a].records[0] < pl.comps[b].records[0] })
	return pl, nil
}

// load extracts the identifiers of the pending records and reads what planning needs: their
// dedupe markers, the index items of their identifiers and the profiles these name.
func (p *Processor) load(ctx context.Context, recs []tracking.Record, pending []int, consistent bool) (map[int]Extracted, map[MessageRef]Marker, *graph, error) {
	ex := make(map[int]Extracted, len(pending))
	var ids []Identifier
	var refs []MessageRef
	seen := map[Identifier]bool{}
	want := func(id Identifier) {
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	for _, i := range pending {
		e := Extract(&recs[i].Message)
		ex[i] = e
		for _, id := range e.IDs {
			want(id)
		}
		if e.PreviousID != "" {
			want(NewIdentifier(TypeUserID, e.PreviousID))
			want(NewIdentifier(TypeAnonymousID, e.PreviousID))
		}
		refs = append(refs, refOf(&recs[i]))
	}
	markers, err := p.markers(ctx, refs, consistent)
	if err != nil {
		return nil, nil, nil, err
	}
	gs := p.graph()
	index, err := gs.Index(ctx, ids, consistent)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("load identifiers: %w", err)
	}
	g := &graph{index: index, profiles: map[string]*Profile{}, orig: map[string]*Profile{}}
	var pids []string
	for _, pid := range index {
		pids = append(pids, pid)
	}
	for _, r := range refs {
		// A redelivered message is re-emitted with its profile; usually that profile is
		// already wanted through the message's identifiers, so this adds no read.
		if mk, dup := markers[r]; dup && mk.Profile != "" {
			pids = append(pids, mk.Profile)
		}
	}
	if err := loadProfiles(ctx, gs, g.profiles, pids, consistent); err != nil {
		return nil, nil, nil, err
	}
	for id, pr := range g.profiles {
		g.orig[id] = pr.clone()
	}
	return ex, markers, g, nil
}

// markers reads the dedupe markers of the messages. A first attempt (not consistent) reads
// only those of messages this processor remembers committing: the commit writes each event on
// the condition that its marker does not exist, so any other message processed before fails
// its component's commit (ErrConflict), and the re-planning round, which reads consistently,
// finds its marker. Redeliveries are rare and mostly come back to the Lambda that committed
// them, so this saves a read per event at the price of a failed commit per redelivery to
// another one. Markers written before dedupe was per source (legacy) have another key, so
// with legacy on they are all read.
func (p *Processor) markers(ctx context.Context, refs []MessageRef, consistent bool) (map[MessageRef]Marker, error) {
	legacy := !p.opt.SkipLegacyDedupe
	if !consistent && !legacy {
		if p.cache == nil {
			return map[MessageRef]Marker{}, nil
		}
		if refs = p.cache.seen(refs); len(refs) == 0 {
			return map[MessageRef]Marker{}, nil
		}
	}
	markers, err := p.store.Markers(ctx, refs, consistent, legacy)
	if err != nil {
		return nil, fmt.Errorf("load dedupe markers: %w", err)
	}
	return markers, nil
}

// planner builds one plan: records are grouped into components (union-find over the profiles
// they touch) whose effects commit together.
type planner struct {
	ctx    context.Context
	p      *Processor
	rules  *Compiled
	pl     *plan
	uf     map[string]string // profile id → parent
	byRoot map[string]*component
}

func (pn *planner) find(x string) string {
	if px, ok := pn.uf[x]; ok && px != x {
		r := pn.find(px)
		pn.uf[x] = r
		return r
	}
	pn.uf[x] = x
	return x
}

// duplicate records a message processed before: nothing is written, it is re-emitted.
func (pn *planner) duplicate(i int, rec *tracking.Record, mk Marker) {
	pid := mk.Profile
	if surv := follow(pn.pl.g.orig, mk.Profile); surv != nil {
		pid = surv.ID
	}
	pn.pl.results[i] = Result{Outcome: Duplicate, ProfileID: pid}
	ev := mk.Msg
	if ev == nil {
		ev = &rec.Message
	}
	pn.pl.dups = append(pn.pl.dups, dupEvent{profile: mk.Profile, msg: *ev, stamp: change.Stamp{Profile: mk.Profile, Seq: mk.Seq}})
}

// identifiers returns the identifiers a record may use (blocked ones are logged as actions)
// and the one to prefer (alias: the userId).
func (pn *planner) identifiers(m *tracking.Message, e Extracted) ([]Identifier, *Identifier, []Action) {
	var use []Identifier
	var actions []Action
	block := func(id Identifier) bool {
		if why := pn.rules.Blocked(id); why != "" {
			actions = append(actions, Action{Kind: ActionBlocked, Identifiers: []Identifier{id}, Rule: why})
			return true
		}
		return false
	}
	for _, id := range e.IDs {
		if !block(id) {
			use = append(use, id)
		}
	}
	var prefer *Identifier
	if e.PreviousID != "" {
		prev := NewIdentifier(TypeUserID, e.PreviousID)
		if pn.pl.g.lookup(prev) == nil {
			prev = NewIdentifier(TypeAnonymousID, e.PreviousID)
		}
		if !block(prev) && !contains(use, prev) {
			use = append(use, prev)
		}
		if uid := NewIdentifier(TypeUserID, m.UserID); contains(use, uid) {
			prefer = &uid
		}
	}
	return use, prefer, actions
}

// fits reports whether a record's effects fit in one transaction with its component.
func (pn *planner) fits(d Decision, evBytes int) bool {
	roots := map[string]bool{}
	add := 2 + len(d.Attach) // event, log line, new index items
	if d.Target == nil {
		add++
	}
	for _, pr := range append([]*Profile{d.Target}, d.Merge...) {
		if pr == nil {
			continue
		}
		if _, touched := pn.uf[pr.ID]; touched {
			roots[pn.find(pr.ID)] = true
		} else {
			add++
		}
	}
	cur, curBytes := 0, 0
	for r := range roots {
		cur += pn.byRoot[r].items()
		curBytes += pn.byRoot[r].bytes
	}
	return (cur+add <= maxTxItems && curBytes+evBytes <= maxTxBytes) || len(pn.byRoot) == 0
}

// component returns the component a profile belongs to, creating it if needed.
func (pn *planner) component(id string) *component {
	c := pn.byRoot[pn.find(id)]
	if c == nil {
		c = &component{root: id, profiles: map[string]bool{}}
		pn.byRoot[pn.find(id)] = c
	}
	return c
}

// add plans one record. It returns false, planning nothing, if the record would push its
// component past one transaction (it is left for the next round).
func (pn *planner) add(i int, rec *tracking.Record, e Extracted) bool {
	m := &rec.Message
	g := pn.pl.g
	use, prefer, actions := pn.identifiers(m, e)
	if len(use) == 0 {
		pn.pl.results[i] = Result{Outcome: Unresolvable, Err: errors.New("no usable identifier: every identifier is missing or blocked")}
		return true
	}
	d := Resolve(g.lookup, use, prefer, pn.rules)
	evBytes := len(m.Properties) + len(m.Traits) + len(m.Context) + 512
	if !pn.fits(d, evBytes) {
		return false
	}
	now := pn.p.opt.Now()
	target := d.Target
	if target == nil {
		target = &Profile{ID: pn.newProfileID(rec.SourceID, m.MessageID), CreatedAt: now, UpdatedAt: now}
		g.profiles[target.ID] = target
		actions = append(actions, Action{Kind: ActionCreate, Identifiers: d.Attach, Profiles: []string{target.ID}, Rule: "flat matching: no identifier matched a profile"})
	}
	c := pn.component(target.ID)
	actions = pn.merge(c, target, d, now, actions)
	if d.Target != nil && len(d.Attach) > 0 {
		actions = append(actions, Action{Kind: ActionAttach, Identifiers: d.Attach, Profiles: []string{target.ID}, Rule: "flat matching: new identifiers within limits"})
	}
	for _, id := range d.Attach {
		target.addIdentifier(IdentifierRecord{Identifier: id, SourceID: rec.SourceID, Encoding: e.Encoding[id], CreatedAt: now, MessageID: m.MessageID})
		g.index[id] = target.ID
		c.ids = append(c.ids, id)
	}
	for _, dr := range d.Dropped {
		actions = append(actions, Action{Kind: ActionDrop, Identifiers: []Identifier{dr.Identifier}, Profiles: dr.Conflicts, Rule: dr.Rule})
	}
	if refused := target.ApplyMessage(m, rec.SourceID, now); len(refused) > 0 {
		actions = append(actions, Action{Kind: ActionRefused, Traits: refused, Profiles: []string{target.ID}, Rule: RuleTraitBudget})
	}
	c.profiles[target.ID] = true
	c.records = append(c.records, i)
	c.events = append(c.events, StoredEvent{SourceID: rec.SourceID, Message: *m, Expires: now.Add(pn.p.opt.Retention)})
	c.bytes += evBytes
	if len(actions) > 0 {
		c.logs = append(c.logs, LogEntry{At: now, MessageID: m.MessageID, Actions: actions})
	}
	return true
}

// merge absorbs the profiles the decision merges into target (logging each merge, and the
// traits the budget refused) and unions their components into c.
func (pn *planner) merge(c *component, target *Profile, d Decision, now time.Time, actions []Action) []Action {
	for _, mp := range d.Merge {
		var via []Identifier
		for _, id := range d.Kept {
			if pn.pl.g.lookup(id) == mp {
				via = append(via, id)
			}
		}
		actions = append(actions, Action{Kind: ActionMerge, Identifiers: via, Profiles: []string{mp.ID, target.ID}, Rule: "flat matching: identifiers shared by both profiles"})
		if refused := target.absorb(mp, now); len(refused) > 0 {
			actions = append(actions, Action{Kind: ActionRefused, Traits: refused, Profiles: []string{mp.ID, target.ID}, Rule: RuleTraitBudget})
		}
		ra, rb := pn.find(target.ID), pn.find(mp.ID)
		if ra != rb {
			if other := pn.byRoot[rb]; other != nil {
				c.records = append(c.records, other.records...)
				for id := range other.profiles {
					c.profiles[id] = true
				}
				c.ids = append(c.ids, other.ids...)
				c.events = append(c.events, other.events...)
				c.logs = append(c.logs, other.logs...)
				c.bytes += other.bytes
				delete(pn.byRoot, rb)
			}
			pn.uf[rb] = ra
		}
		c.profiles[mp.ID] = true
	}
	return actions
}

func contains(ids []Identifier, id Identifier) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// commit builds the atomic write of a component; everything points at the final survivor,
// and each event takes the survivor's next sequence number (its stamp), which the survivor's
// document stores in the same commit. It is called once per component of a plan.
func (pl *plan) commit(c *component) *Commit {
	surv := pl.g.follow(c.root)
	c.stamps = make([]change.Stamp, len(c.events))
	t := &Commit{IDs: map[Identifier]string{}}
	pids := make([]string, 0, len(c.profiles))
	for id := range c.profiles {
		pids = append(pids, id)
	}
	sort.Strings(pids)
	for _, id := range pids {
		t.Profiles = append(t.Profiles, pl.g.profiles[id])
	}
	for _, id := range c.ids {
		t.IDs[id] = surv.ID
	}
	for i, e := range c.events {
		surv.Seq++
		e.ProfileID, e.Seq = surv.ID, surv.Seq
		c.stamps[i] = e.Stamp()
		t.Events = append(t.Events, e)
	}
	for _, l := range c.logs {
		l.ProfileID = surv.ID
		t.Logs = append(t.Logs, l)
	}
	return t
}

// dupEvent is a message found already processed: its stored event, the profile it went to
// and its original stamp.
type dupEvent struct {
	profile string
	msg     tracking.Message
	stamp   change.Stamp
}

// dupChanges describes, per surviving profile, the messages of this plan that had been
// processed before: their events as stored, with their original stamps, and the profile's
// state as read. Nothing is written for them; re-emitting lets a redelivery (e.g. after a
// publish that failed and could not be dead-lettered) make up for change records that were
// lost. Consumers dedupe events (by stamp, or by messageId), so a re-emitted event is
// harmless. An event stored before stamps existed is re-emitted with its profile and Seq 0.
func (pl *plan) dupChanges(now time.Time) []change.Record {
	byID := map[string]*change.Record{}
	var order []string
	for _, d := range pl.dups {
		surv := follow(pl.g.orig, d.profile)
		if surv == nil {
			continue // the profile cannot be read (gone): nothing to describe
		}
		r := byID[surv.ID]
		if r == nil {
			r = &change.Record{ProfileID: surv.ID, Version: surv.Version, Traits: TraitValues(surv.Traits), Consent: consentCopy(surv.Consent), EmittedAt: now}
			r.Identifiers = []change.Identifier{}
			for _, id := range surv.Identifiers {
				r.Identifiers = append(r.Identifiers, change.Identifier{Type: id.Type, Value: id.Value})
			}
			byID[surv.ID] = r
			order = append(order, surv.ID)
		}
		r.Events = append(r.Events, d.msg)
		r.Stamps = append(r.Stamps, d.stamp)
	}
	out := make([]change.Record, 0, len(order))
	for _, id := range order {
		out = append(out, *byID[id])
	}
	return out
}

// change describes a committed component for the changes stream.
func (pl *plan) change(c *component, surv *Profile, now time.Time) change.Record {
	orig := pl.g.orig[surv.ID]
	r := change.Record{
		ProfileID: surv.ID,
		Version:   surv.Version + 1,
		Created:   orig == nil,
		Traits:    TraitValues(surv.Traits),
		Consent:   consentCopy(surv.Consent),
		EmittedAt: now,
	}
	for _, id := range surv.MergedFrom {
		if orig == nil || !containsStr(orig.MergedFrom, id) {
			r.MergedFrom = append(r.MergedFrom, id)
		}
	}
	for k, t := range surv.Traits {
		if orig != nil {
			if o, ok := orig.Traits[k]; ok && bytes.Equal(o.Value, t.Value) {
				continue
			}
		}
		if r.ChangedTraits == nil {
			r.ChangedTraits = map[string]json.RawMessage{}
		}
		r.ChangedTraits[k] = t.Value
	}
	for _, id := range surv.Identifiers {
		ci := change.Identifier{Type: id.Type, Value: id.Value}
		r.Identifiers = append(r.Identifiers, ci)
		if orig == nil || !orig.Has(id.Identifier) {
			r.AddedIdentifiers = append(r.AddedIdentifiers, ci)
		}
	}
	for _, e := range c.events {
		r.Events = append(r.Events, e.Message)
	}
	r.Stamps = append([]change.Stamp(nil), c.stamps...)
	return r
}

// consentChanged reports whether a committed survivor's consent differs from what was read.
func (pl *plan) consentChanged(surv *Profile) bool {
	orig := pl.g.orig[surv.ID]
	if orig == nil {
		return surv.Consent != nil
	}
	return !sameConsent(orig.Consent, surv.Consent)
}

func containsStr(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
