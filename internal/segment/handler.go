package segment

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"golang.org/x/sync/errgroup"

	"github.com/serverless-cdp/cdp/internal/activations"
	"github.com/serverless-cdp/cdp/internal/backoff"
	"github.com/serverless-cdp/cdp/internal/budget"
	"github.com/serverless-cdp/cdp/internal/change"
	"github.com/serverless-cdp/cdp/internal/deadletter"
	"github.com/serverless-cdp/cdp/internal/stream"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

// Options tune a Handler; zero values take defaults.
type Options struct {
	Clock       func() time.Time // default time.Now
	Logger      *slog.Logger     // default slog.Default()
	DefCacheTTL time.Duration    // how long definitions are cached; default 10s
	Concurrency int              // profiles processed in parallel per batch; default 16
	TickLimit   int              // profiles re-evaluated per Tick per schedule shard; default 2000
	// TimelineRetention is how long the identity stage keeps timeline events (backfills see
	// that much): windowed counts within it share the buckets of a numeric accumulator over the
	// same events. Default DefaultTimelineRetention.
	TimelineRetention time.Duration
	// StateCacheBytes bounds the in-process cache of profile states (see stateCache): encoded
	// states plus about 160 bytes and the profile id per entry. Default DefaultStateCacheBytes;
	// negative disables the cache.
	StateCacheBytes int
	// BackfillBudget bounds the time one Tick spends on backfill jobs; default 20s.
	BackfillBudget time.Duration
	// DeadLetters keeps change records that can never be processed (undecodable, or a profile
	// whose state or records the stores refuse), listable through the admin API. Without it
	// (tests only) they are only logged.
	DeadLetters DeadLetters
	// MaxStateBytes bounds a profile's stored state and outbox; default (and at most)
	// MaxStateBytes.
	MaxStateBytes int
	// Reserve is the part of an invocation's deadline left for bookkeeping: no profile is
	// started after the deadline less Reserve. Default 3 s.
	Reserve time.Duration
	// TickBudget bounds one Tick when its context has no deadline; default 50 s.
	TickBudget time.Duration
	// BookkeepingTimeout bounds writes that must happen even after the invocation's context
	// ended (dead letters, backfill progress); default 5 s.
	BookkeepingTimeout time.Duration
	// History reads a profile's retained timeline, to build the accumulators of definitions
	// created or edited after its state (a backfill). Without it (tests only) they start empty.
	History History
	// Erased says which profiles were erased by a privacy request (blocklist.Checker): their
	// change records are dropped and counted before their state is loaded, and they are never
	// absorbed by a merge. Without it the stored tombstones alone do that (privacy.go).
	Erased ErasedProfiles
	// WallClock measures time budgets against the context's deadline; default time.Now (tests
	// inject one that advances, so budgets run out deterministically).
	WallClock func() time.Time
	// RetrainEvery is how often the schedule retrains a predictive trait; default
	// DefaultRetrainEvery.
	RetrainEvery time.Duration
	// RescoreEvery is how often every profile's predictive scores are recomputed with the
	// published model when nothing else did (time passing moves churn and purchase scores: a
	// profile with no events drifts toward churn); default DefaultRescoreEvery.
	RescoreEvery time.Duration
	// Train fits a predictive trait's model; default predict.Train.
	Train Trainer
	// ChunkProfiles is how many profiles' features a training run stores per chunk; default
	// DefaultChunkProfiles. ChunkTTL is how long chunks are kept; default DefaultChunkTTL.
	ChunkProfiles int
	ChunkTTL      time.Duration
}

// DeadLetters stores records that cannot be processed (deadletter.Store).
type DeadLetters interface {
	Put(ctx context.Context, e deadletter.Entry) (deadletter.Entry, error)
}

// Dead-letter stage of this handler.
const Stage = "segments"

// Handler is the segments stage: the Kinesis handler on `changes` and the schedule's Tick.
type Handler struct {
	state    StateStore
	defs     DefinitionStore
	train    TrainingStore
	personal PersonalStore
	pub      Publisher
	opt      Options
	log      *slog.Logger
	cache    *stateCache

	mu    sync.Mutex
	cat   *Catalog
	catAt time.Time
	gone  map[string]bool // definitions a fresh reload confirmed deleted (see Catalog.Unknown)
}

// NewHandler wires the stage to its stores (the DynamoDB Store, or a MemStore in tests) and
// the activations stream.
func NewHandler(st Stores, pub Publisher, opt Options) *Handler {
	if opt.Clock == nil {
		opt.Clock = time.Now
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.DefCacheTTL == 0 {
		opt.DefCacheTTL = 10 * time.Second
	}
	if opt.Concurrency == 0 {
		opt.Concurrency = 16
	}
	if opt.StateCacheBytes == 0 {
		opt.StateCacheBytes = DefaultStateCacheBytes
	}
	if opt.TimelineRetention == 0 {
		opt.TimelineRetention = DefaultTimelineRetention
	}
	if opt.TickLimit == 0 {
		opt.TickLimit = 2000
	}
	if opt.BackfillBudget == 0 {
		opt.BackfillBudget = 20 * time.Second
	}
	if opt.MaxStateBytes <= 0 || opt.MaxStateBytes > MaxStateBytes {
		opt.MaxStateBytes = MaxStateBytes
	}
	if opt.Reserve == 0 {
		opt.Reserve = 3 * time.Second
	}
	if opt.TickBudget == 0 {
		opt.TickBudget = 50 * time.Second
	}
	if opt.BookkeepingTimeout == 0 {
		opt.BookkeepingTimeout = 5 * time.Second
	}
	if opt.WallClock == nil {
		opt.WallClock = time.Now
	}
	trainingDefaults(&opt)
	return &Handler{state: st, defs: st, train: st, personal: st, pub: &groupPublisher{pub: pub}, opt: opt, log: opt.Logger, cache: newStateCache(opt.StateCacheBytes)}
}

// newCatalog indexes stored definitions the way this handler evaluates them.
func (h *Handler) newCatalog(defs *Definitions) (*Catalog, error) {
	cat, err := NewCatalog(defs.Traits, defs.Audiences)
	if err != nil {
		return nil, err
	}
	cat.shareCounts(h.opt.TimelineRetention)
	cat.SetModels(defs.Models)
	return cat, nil
}

// catalog returns the indexed definitions, reloading them after DefCacheTTL.
func (h *Handler) catalog(ctx context.Context) (*Catalog, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cat != nil && time.Since(h.catAt) < h.opt.DefCacheTTL {
		return h.cat, nil
	}
	defs, err := h.defs.LoadDefinitions(ctx)
	if err != nil {
		return nil, err
	}
	cat, err := h.newCatalog(defs)
	if err != nil {
		return nil, fmt.Errorf("stored definitions: %w", err)
	}
	h.cat, h.catAt = cat, time.Now()
	return cat, nil
}

// deadLetter keeps a change record that can never be processed, on a context that outlives the
// invocation. reason is "decode" (undecodable) or "unprocessable" (the stores refuse its profile).
func (h *Handler) deadLetter(ctx context.Context, r events.KinesisEventRecord, reason string, cause error) error {
	msg := "missing profileId"
	if cause != nil {
		msg = cause.Error()
	}
	h.log.Error("segments: change record kept as dead letter", "seq", r.Kinesis.SequenceNumber, "reason", reason, "err", msg)
	if h.opt.DeadLetters == nil {
		return nil
	}
	bctx, cancel := h.bookkeeping(ctx)
	defer cancel()
	_, err := h.opt.DeadLetters.Put(bctx, deadletter.Entry{
		Stage: Stage, Kind: "change", Reason: reason, Error: msg, Payload: r.Kinesis.Data,
		Meta: map[string]string{"eventId": r.EventID, "partitionKey": r.Kinesis.PartitionKey, "sequenceNumber": r.Kinesis.SequenceNumber},
	})
	if err != nil {
		h.log.Error("segments: dead letter failed; record will be retried", "err", err)
	}
	return err
}

// allGone reports whether every reference was already confirmed deleted by a fresh reload.
func (h *Handler) allGone(refs []string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range refs {
		if !h.gone[r] {
			return false
		}
	}
	return true
}

func (h *Handler) markGone(refs []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.gone == nil {
		h.gone = map[string]bool{}
	}
	for _, r := range refs {
		h.gone[r] = true
	}
}

// Invalidate drops the cached definitions (the service calls it after a change).
func (h *Handler) Invalidate() {
	h.mu.Lock()
	h.cat = nil
	h.mu.Unlock()
}

// group is one profile's records in a batch.
type group struct {
	recs []change.Record
	raw  []events.KinesisEventRecord
}

// Handle processes a batch of change records: all records of one profile are coalesced into one
// evaluation and one state write. A record that can never be processed (undecodable, or its
// profile's state or output refused by the stores) goes to the dead letters on its own; the rest
// of the batch goes on. Profiles that fail transiently, or that were not started because the
// invocation's deadline (less Options.Reserve) came, are reported as batch item failures.
func (h *Handler) Handle(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
	var resp events.KinesisEventResponse
	plan := h.plan(ctx, 0)
	cat, err := h.catalog(ctx)
	if err != nil {
		return resp, err
	}
	var mu sync.Mutex
	fail := func(rs ...events.KinesisEventRecord) {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range rs {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.KinesisBatchItemFailure{ItemIdentifier: r.Kinesis.SequenceNumber})
		}
	}
	groups, order := h.groups(ctx, ev, fail)
	var g errgroup.Group
	g.SetLimit(h.opt.Concurrency)
	for _, pid := range order {
		gr := groups[pid]
		if plan.Over() {
			fail(gr.raw...) // not started: the next invocation gets them again
			continue
		}
		g.Go(func() error {
			h.handleProfile(ctx, cat, pid, gr, fail)
			return nil
		})
	}
	_ = g.Wait()
	return resp, nil
}

// groups decodes a batch into per-profile groups (in order of first appearance); records that
// cannot be decoded are dead-lettered.
func (h *Handler) groups(ctx context.Context, ev events.KinesisEvent, fail func(...events.KinesisEventRecord)) (map[string]*group, []string) {
	groups := map[string]*group{}
	var order []string
	for _, r := range ev.Records {
		var c change.Record
		err := json.Unmarshal(r.Kinesis.Data, &c)
		if err == nil && len(c.ProfileID) > MaxProfileIDBytes {
			err = fmt.Errorf("profile id of %d bytes is over the limit of %d", len(c.ProfileID), MaxProfileIDBytes)
		}
		if err != nil || c.ProfileID == "" {
			// Never processable: retrying would block the shard, so it goes to the dead letters
			// (kept, listable) and the shard moves on. If even that fails, it is retried.
			if derr := h.deadLetter(ctx, r, "decode", err); derr != nil {
				fail(r)
			}
			continue
		}
		gr := groups[c.ProfileID]
		if gr == nil {
			gr = &group{}
			groups[c.ProfileID] = gr
			order = append(order, c.ProfileID)
		}
		gr.recs = append(gr.recs, c)
		gr.raw = append(gr.raw, r)
	}
	return groups, order
}

// handleProfile processes one profile's records. When the stores refuse the profile for good
// (its state or output over a size limit, a value DynamoDB rejects), its records go to the dead
// letters, each on its own, and nothing else in the batch is affected.
func (h *Handler) handleProfile(ctx context.Context, cat *Catalog, pid string, gr *group, fail func(...events.KinesisEventRecord)) {
	gone, err := h.erased(ctx, pid)
	if gone {
		h.dropErased(ctx, len(gr.recs))
		return
	}
	if err == nil {
		err = h.process(ctx, cat, pid, mode{recs: gr.recs})
	}
	switch {
	case err == nil:
	case isPermanent(err):
		h.log.Error("segments: profile cannot be processed; its change records go to the dead letters", "profile", pid, "err", err)
		for _, r := range gr.raw {
			if derr := h.deadLetter(ctx, r, "unprocessable", err); derr != nil {
				fail(r)
			}
		}
	default:
		h.log.Error("segments: profile failed", "profile", pid, "err", err)
		fail(gr.raw...)
	}
}

// mode says why a profile is evaluated.
type mode struct {
	recs     []change.Record // from the changes stream
	tick     bool            // scheduled re-evaluation
	backfill bool            // a definition was added or changed
}

const maxConflictRetries = 8

// errUnverified means an attempt would have written nothing, judging by a state that may be
// stale (cached, or read eventually consistent): it is tried again on a consistent read.
var errUnverified = errors.New("segment: decision on an unverified state")

// process evaluates a profile, re-reading and re-evaluating it when another writer changed its
// state meanwhile (ErrConflict): at once, since a pause would let the winner move on and starve
// the loser. Change records start from the cached state or an eventually consistent read (the
// version condition of the commit catches a stale one); ticks, backfills and every retry read
// consistently.
func (h *Handler) process(ctx context.Context, cat *Catalog, pid string, m mode) error {
	consistent := m.tick || m.backfill
	return backoff.Retry(ctx, backoff.Policy{Attempts: 1 + maxConflictRetries}, func(ctx context.Context) error {
		err := h.processOnce(ctx, cat, pid, m, consistent)
		switch {
		case errors.Is(err, ErrConflict) || errors.Is(err, errUnverified):
			consistent = true // (commit dropped the stale entry; an unverified one may be current)
			return err
		case err != nil:
			return backoff.Permanent(err)
		}
		return nil
	})
}

func (h *Handler) processOnce(ctx context.Context, cat *Catalog, pid string, m mode, consistent bool) error {
	now := h.opt.Clock().UTC()
	l, st, all, err := h.begin(ctx, pid, m, now, consistent)
	if err != nil || st == nil {
		return err
	}
	in := Input{All: all}

	ap, err := h.apply(ctx, st, pid, m.recs)
	if err != nil {
		return err
	}
	merged, changed, msgs, incoming := ap.merged, ap.changed, ap.msgs, ap.incoming
	in.All = in.All || ap.all
	cat, added, built, err := h.addEvents(ctx, cat, st, incoming, now)
	if err != nil {
		return err
	}
	in.All = in.All || built
	in.NewEvents, in.ChangedTraits = added, changed
	if st.Ver != 0 && !in.All && len(added) == 0 && len(changed) == 0 && !ap.voided && !ap.consented {
		if !consistent && (len(incoming) > 0 || carriesState(m.recs)) {
			return errUnverified // a stale state could take news for a redelivery
		}
		return nil // a redelivery, or nothing the segments stage cares about
	}
	cat, err = h.fresh(ctx, cat, st)
	if err != nil {
		return err
	}
	res := cat.Evaluate(st, in, now)
	if err := h.forward(ctx, st, added, msgs); err != nil {
		return err
	}
	return h.commit(ctx, append([]Write{{State: st, Was: l, Outbox: res.Records}}, merged...))
}

// carriesState reports whether a record sets traits or consent. Records with neither, nor
// events the stage keeps, nor merges change no state, stale or not: writing nothing for them
// needs no consistent read.
func carriesState(recs []change.Record) bool {
	for _, r := range recs {
		if r.Traits != nil || r.Consent != nil {
			return true
		}
	}
	return false
}

// commit stores the writes (the first one's profile is the one evaluated) and publishes the
// first one's outbox. If publishing fails, the outbox stays in the state item: the retry, or
// whoever loads the profile next, publishes it.
func (h *Handler) commit(ctx context.Context, ws []Write) error {
	if err := h.state.Commit(ctx, ws, h.opt.MaxStateBytes); err != nil {
		for _, w := range ws {
			h.cache.drop(w.State.ProfileID)
		}
		return err
	}
	for _, w := range ws {
		h.cache.put(w.State.ProfileID, w.State.Ver+1, w.stored, len(w.Outbox) > 0)
	}
	w := ws[0]
	if len(w.Outbox) == 0 {
		return nil
	}
	if err := h.publish(ctx, w.State.ProfileID, w.Outbox); err != nil {
		return err
	}
	h.cache.published(w.State.ProfileID, w.State.Ver+1)
	return nil
}

// load reads a profile: from the cache when allowed and possible, else from the store.
func (h *Handler) load(ctx context.Context, pid string, consistent bool) (*Snapshot, error) {
	if !consistent {
		e, ok, pending := h.cache.get(pid)
		if ok {
			st, err := decodeState(e.data, e.ver)
			if err == nil {
				l := NewSnapshot(st, nil)
				l.data = e.data
				return l, nil
			}
			h.cache.drop(pid)
		}
		consistent = pending // this process left an outbox unpublished: see it for sure
	}
	return h.state.Load(ctx, pid, consistent)
}

// begin loads a profile (publishing what a crashed attempt left in its outbox) and returns
// its state to evaluate, or a nil state when there is nothing to do. all says every definition
// must be evaluated.
func (h *Handler) begin(ctx context.Context, pid string, m mode, now time.Time, consistent bool) (*Snapshot, *State, bool, error) {
	l, err := h.load(ctx, pid, consistent)
	if err != nil {
		return nil, nil, false, err
	}
	if err := h.flush(ctx, pid, l); err != nil {
		return nil, nil, false, err
	}
	if l.State.tombstoned() {
		return l, nil, false, h.skipErased(ctx, pid, m)
	}
	st, all := l.State, m.tick || m.backfill
	switch {
	case st == nil && len(m.recs) == 0 && m.tick:
		return l, nil, false, h.state.Unschedule(ctx, pid)
	case st == nil && len(m.recs) == 0:
		return l, nil, false, nil
	case st == nil:
		return l, NewState(pid), all, nil
	case st.MergedInto != "" && len(m.recs) == 0:
		return l, nil, false, nil
	case st.MergedInto != "":
		st.MergedInto, all = "", true // the profile is live again
	}
	if m.tick && st.NextAt.IsZero() {
		return l, nil, false, h.state.Unschedule(ctx, pid)
	}
	if m.tick && st.NextAt.After(now) {
		return l, nil, false, nil // rescheduled meanwhile; the index entry will move
	}
	return l, st, all, nil
}

// fresh returns a catalog that knows every definition the profile holds values of. When the
// cached one does not (definitions created, and backfilled, since it was loaded, or deleted),
// evaluating with it would forget new memberships silently, so it reloads; whatever the fresh
// catalog does not know either is really gone (remembered, so it costs one reload).
func (h *Handler) fresh(ctx context.Context, cat *Catalog, st *State) (*Catalog, error) {
	unknown := cat.Unknown(st)
	if len(unknown) == 0 || h.allGone(unknown) {
		return cat, nil
	}
	h.Invalidate()
	cat, err := h.catalog(ctx)
	if err != nil {
		return nil, err
	}
	h.markGone(cat.Unknown(st))
	return cat, nil
}

// forward publishes the new events. Events are facts: forwarding them before the state write
// means a crash can only repeat them (same ids), never lose them.
func (h *Handler) forward(ctx context.Context, st *State, added []Event, msgs map[string]*tracking.Message) error {
	var fwd []activations.Record
	for i := range added {
		if e := &added[i]; e.forwarded() && msgs[e.ID] != nil {
			fwd = append(fwd, st.stamp(activations.Record{ID: forwardID(st.ProfileID, e), Kind: activations.KindEvent,
				Event: msgs[e.ID], OccurredAt: e.T}))
		}
	}
	if len(fwd) == 0 {
		return nil
	}
	return h.publish(ctx, st.ProfileID, fwd)
}

// forwardID is a forwarded event's activation record id, "evt-<origin>-<n>" (see
// activations.ProfilePrefixes): origin is the profile the event was committed to (its stamp's;
// pid for an event without a stamp) and n its sequence number there, or, for an event stamped
// before sequence numbers (Seq 0) or not at all, "m" and a hash of its messageId. Both stay the
// same when the event is redelivered or re-emitted (a re-emit keeps its stamp).
func forwardID(pid string, e *Event) string {
	origin := pid
	if e.Stamp != nil && e.Stamp.Profile != "" {
		origin = e.Stamp.Profile
	}
	if e.Stamp != nil && e.Stamp.Seq > 0 {
		return "evt-" + origin + "-" + strconv.FormatInt(e.Stamp.Seq, 10)
	}
	sum := sha256.Sum256([]byte(e.ID))
	return "evt-" + origin + "-m" + hex.EncodeToString(sum[:12])
}

// applied is what a profile's change records bring: merged profiles (to store emptied), changed
// trait keys, the events (with their stamps; not deduplicated yet) and the track messages.
type applied struct {
	merged    []Write
	changed   []string
	msgs      map[string]*tracking.Message
	incoming  []Event
	all       bool // a merge happened: every definition must be evaluated
	voided    bool // a void stamp was marked seen (change.Record.Void): the state changed
	consented bool // the profile's consent changed
}

// apply folds a profile's change records into its state: merges, traits (last version wins; nil
// traits mean unchanged), identifiers, void stamps (marked seen, counting nothing) and events.
func (h *Handler) apply(ctx context.Context, st *State, pid string, recs []change.Record) (*applied, error) {
	ap := &applied{msgs: map[string]*tracking.Message{}}
	seenMerge := map[string]bool{pid: true}
	for i := range recs {
		r := &recs[i]
		for _, mid := range r.MergedFrom {
			if seenMerge[mid] {
				continue
			}
			seenMerge[mid] = true
			if gone, err := h.erased(ctx, mid); gone || err != nil {
				if err != nil {
					return nil, err
				}
				continue // erased: its state is never brought back
			}
			ml, err := h.state.Load(ctx, mid, true)
			if err != nil {
				return nil, err
			}
			if err := h.flush(ctx, mid, ml); err != nil {
				return nil, err
			}
			if ml.State == nil || ml.State.MergedInto != "" || ml.State.Erased {
				continue
			}
			absorb(st, ml.State)
			ap.merged = append(ap.merged, Write{State: ml.State, Was: ml})
			ap.all = true
		}
		if r.Version >= st.ChangeVersion && r.Traits != nil {
			ap.changed = append(ap.changed, diffTraits(st.Traits, r.Traits)...)
			st.setTraits(r.Traits)
			st.ChangeVersion = r.Version
		}
		ap.consented = st.setConsent(r.Consent, r.Version) || ap.consented
		setIdentifiers(st, r.Identifiers)
		for _, v := range r.Void {
			ap.voided = st.markVoid(v) || ap.voided
		}
		stamped := len(r.Stamps) == len(r.Events)
		for j := range r.Events {
			msg := &r.Events[j]
			var stamp *change.Stamp
			if stamped {
				stamp = &r.Stamps[j]
			}
			e := eventOf(msg, stamp)
			ap.incoming = append(ap.incoming, e)
			if e.forwarded() {
				ap.msgs[msg.MessageID] = msg
			}
		}
	}
	return ap, nil
}

// setIdentifiers replaces the profile's identifiers used in payloads (none given: unchanged).
func setIdentifiers(st *State, ids []change.Identifier) {
	if len(ids) == 0 {
		return
	}
	st.UserID, st.AnonymousID, st.Email = "", "", ""
	for _, id := range ids {
		switch id.Type {
		case "user_id":
			st.UserID = id.Value
		case "anonymous_id":
			if st.AnonymousID == "" {
				st.AnonymousID = id.Value
			}
		case "email":
			st.Email = id.Value
		}
	}
}

// absorb moves a merged profile's accumulators (absorbAggs), dedupe map and memberships into the
// survivor and empties it.
func absorb(surv, gone *State) {
	surv.absorbAggs(gone)
	surv.absorbSeen(gone)
	surv.Legacy = append(surv.Legacy, gone.Legacy...)
	for id, gm := range gone.Members {
		sm := surv.Members[id]
		if sm == nil {
			sm = &Membership{}
			surv.Members[id] = sm
		}
		if gm.Seq > sm.Seq {
			sm.Seq = gm.Seq
		}
		if gm.In && !sm.In {
			sm.In, sm.EnteredAt = true, gm.EnteredAt
		}
	}
	gone.MergedInto, gone.Consent = surv.ProfileID, nil
	// gone keeps its dedupe map: a late redelivery of one of its records must not count again.
	gone.Aggs, gone.Legacy = nil, nil
	gone.Computed, gone.Members, gone.NextAt = map[string]json.RawMessage{}, map[string]*Membership{}, time.Time{}
}

func diffTraits(old, cur map[string]json.RawMessage) []string {
	var changed []string
	for k, v := range cur {
		if o, ok := old[k]; !ok || !bytes.Equal(o, v) {
			changed = append(changed, k)
		}
	}
	for k := range old {
		if _, ok := cur[k]; !ok {
			changed = append(changed, k)
		}
	}
	return changed
}

// flush publishes the outbox a loaded state still has (its commit's publish failed, or its
// writer crashed, or another process published it: activation dedupes by record id), oldest
// first, unless this process published it, and caches the state as published.
func (h *Handler) flush(ctx context.Context, pid string, l *Snapshot) error {
	vers := make([]int64, 0, len(l.Outbox))
	for v := range l.Outbox {
		if !h.cache.publishedAt(pid, v) {
			vers = append(vers, v)
		}
	}
	slices.Sort(vers)
	for _, v := range vers {
		if err := h.publish(ctx, pid, l.Outbox[v]); err != nil {
			return err
		}
	}
	if l.State != nil && len(l.legacy) == 0 {
		h.cache.put(pid, l.State.Ver, l.data, false)
	}
	return nil
}

func (h *Handler) publish(ctx context.Context, pid string, recs []activations.Record) error {
	out := make([]stream.Record, 0, len(recs))
	for _, r := range recs {
		b, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("encode activation record: %w", err)
		}
		if err := checkRecordSize(b, pid); err != nil {
			return err
		}
		out = append(out, stream.Record{PartitionKey: pid, Data: b})
	}
	if err := h.pub.Put(ctx, out); err != nil {
		return fmt.Errorf("publish activations: %w", err)
	}
	return nil
}

// TickResult reports what one Tick did.
type TickResult struct {
	Due       int `json:"due"`       // profiles whose scheduled time had come
	Failed    int `json:"failed"`    // of those, failed (retried next Tick)
	Backfills int `json:"backfills"` // profiles evaluated for backfill jobs
}

// Tick re-evaluates the profiles whose windowed definitions may have changed by now (from the
// schedule index; no scan of all profiles) and advances running backfill jobs. The local
// runner and an EventBridge schedule call it every minute. It starts no profile after its
// budget (the context's deadline less Options.Reserve, or Options.TickBudget) is spent: due
// profiles left stay in the schedule index and backfills keep their saved cursor, so the next
// Tick continues.
func (h *Handler) Tick(ctx context.Context) (TickResult, error) {
	var res TickResult
	plan := h.plan(ctx, h.opt.TickBudget)
	cat, err := h.catalog(ctx)
	if err != nil {
		return res, err
	}
	now := h.opt.Clock().UTC()
	for shard := 0; shard < schedShards && !plan.Over(); shard++ {
		ids, err := h.state.Due(ctx, shard, now, h.opt.TickLimit)
		if err != nil {
			return res, err
		}
		h.tickDue(ctx, cat, ids, plan, &res)
	}
	if plan.Over() {
		return res, nil
	}
	// One read of the definitions serves backfills and training (their jobs' progress is
	// updated in place).
	defs, err := h.defs.LoadDefinitions(ctx)
	if err != nil {
		return res, err
	}
	n, err := h.runBackfills(ctx, plan, defs)
	res.Backfills = n
	if err != nil || plan.Over() {
		return res, err
	}
	return res, h.runTraining(ctx, plan, defs)
}

// tickDue re-evaluates due profiles, Options.Concurrency at a time (a day boundary makes many
// profiles due in the same minute), starting none after the plan is over.
func (h *Handler) tickDue(ctx context.Context, cat *Catalog, ids []string, plan budget.Plan, res *TickResult) {
	var mu sync.Mutex
	var g errgroup.Group
	g.SetLimit(h.opt.Concurrency)
	for _, pid := range ids {
		if plan.Over() {
			break
		}
		g.Go(func() error {
			err := h.process(ctx, cat, pid, mode{tick: true})
			mu.Lock()
			defer mu.Unlock()
			res.Due++
			if err != nil {
				res.Failed++
				h.log.Error("segments: scheduled evaluation failed", "profile", pid, "err", err)
			}
			return nil
		})
	}
	_ = g.Wait()
}

// plan bounds an invocation on the wall clock: it stops starting work at its context's deadline
// less the reserve, and at most limit from now (0: no limit).
func (h *Handler) plan(ctx context.Context, limit time.Duration) budget.Plan {
	return budget.NewAt(ctx, h.opt.WallClock, h.opt.Reserve, 0).Within(limit)
}

// bookkeeping is a context for writes that must survive the invocation's context.
func (h *Handler) bookkeeping(ctx context.Context) (context.Context, context.CancelFunc) {
	return budget.Bookkeeping(ctx, h.opt.BookkeepingTimeout)
}
