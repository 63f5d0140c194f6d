package identity

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/serverless-cdp/cdp/internal/budget"
	"github.com/serverless-cdp/cdp/internal/change"
	"github.com/serverless-cdp/cdp/internal/deadletter"
	"github.com/serverless-cdp/cdp/internal/stream"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

// Dead-letter stage and kinds of this stage.
const (
	Stage      = "identity"
	KindEvent  = "event"  // payload: a tracking.Record from the events stream
	KindChange = "change" // payload: a change.Record that could not be published
)

// maxChangeBytes is the largest change record part: a Kinesis record holds 1 MiB, partition
// key (a profile id) included.
const maxChangeBytes = 1<<20 - 1024

// Publisher writes records to the changes stream (stream.Publisher).
type Publisher interface {
	Put(ctx context.Context, recs []stream.Record) error
}

// DeadLetters stores records that cannot be processed (deadletter.Store).
type DeadLetters interface {
	Put(ctx context.Context, e deadletter.Entry) (deadletter.Entry, error)
}

// HandlerConfig wires a Handler.
type HandlerConfig struct {
	Processor   *Processor
	Store       AttemptCounter // failed attempts per message
	Changes     Publisher
	DeadLetters DeadLetters
	// MaxAttempts is how many invocations may fail on one record before it is dead-lettered
	// and acknowledged (default 5).
	MaxAttempts int
	// Reserve is the time kept back from the invocation's deadline (ctx.Deadline()) for the
	// bookkeeping that must survive a timeout: processing stops starting new work when less
	// than this remains (default 3 s).
	Reserve time.Duration
	// BookkeepingTimeout bounds each bookkeeping step (attempt counts, dead letters, change
	// publication), which runs on a context that is not cancelled with the invocation
	// (default 2 s).
	BookkeepingTimeout time.Duration
	// Suppressions, when set, drops every record carrying a suppressed identifier before any
	// store call (no dedupe marker, profile, timeline item or dead letter: a dead letter would
	// keep the personal data) and counts the dropped records per source.
	Suppressions Suppressions
	Logger       *slog.Logger
}

// Handler is the Kinesis handler of the events stream.
type Handler struct {
	cfg HandlerConfig
	log *slog.Logger
}

// NewHandler returns a handler.
func NewHandler(cfg HandlerConfig) *Handler {
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 5
	}
	if cfg.Reserve <= 0 {
		cfg.Reserve = 3 * time.Second
	}
	if cfg.BookkeepingTimeout <= 0 {
		cfg.BookkeepingTimeout = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Handler{cfg: cfg, log: cfg.Logger}
}

// batchRun is the state of one invocation: the records admitted for processing and the answer.
type batchRun struct {
	h    *Handler
	ctx  context.Context // the invocation's context (only its values are used for bookkeeping)
	resp events.KinesisEventResponse
	recs []tracking.Record
	src  []events.KinesisEventRecord
}

func (b *batchRun) fail(r events.KinesisEventRecord) {
	b.resp.BatchItemFailures = append(b.resp.BatchItemFailures, events.KinesisBatchItemFailure{ItemIdentifier: r.Kinesis.SequenceNumber})
}

// bookkeeping returns a context for work that must survive the invocation's deadline.
func (b *batchRun) bookkeeping() (context.Context, context.CancelFunc) {
	return budget.Bookkeeping(b.ctx, b.h.cfg.BookkeepingTimeout)
}

// deadLetter stores a record on its own; if even that fails, the record is retried.
func (b *batchRun) deadLetter(r events.KinesisEventRecord, reason string, cause error) {
	ctx, cancel := b.bookkeeping()
	defer cancel()
	if err := b.h.deadLetter(ctx, r, reason, cause); err != nil {
		b.fail(r)
	}
}

// admit decodes and re-checks a record (it may come from a replay or an import, or have been
// written before ingest checked the limits); one that fails goes to the dead letters alone.
func (b *batchRun) admit(r events.KinesisEventRecord) {
	var tr tracking.Record
	if err := json.Unmarshal(r.Kinesis.Data, &tr); err != nil {
		b.deadLetter(r, "decode", fmt.Errorf("decode record: %w", err))
		return
	}
	if err := CheckRecord(&tr); err != nil {
		if !b.dropInvalid(r, &tr) {
			b.deadLetter(r, "invalid_record", err)
		}
		return
	}
	b.recs = append(b.recs, tr)
	b.src = append(b.src, r)
}

// Handle processes a batch. Records that failed and may succeed later are returned in
// BatchItemFailures; a record that cannot be decoded, breaks a limit, cannot be resolved, is
// refused by the store, or failed MaxAttempts times goes to the dead letters on its own and is
// acknowledged so the shard moves on. Work is planned from ctx.Deadline(): records not started
// before the reserve are retried without counting an attempt. The error is set only if change
// records could neither be published nor dead-lettered.
func (h *Handler) Handle(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
	b := &batchRun{h: h, ctx: ctx}
	work, cancel := budget.Context(ctx, h.cfg.Reserve) // a short invocation keeps at most a third in reserve
	defer cancel()
	for _, r := range ev.Records {
		b.admit(r)
	}
	suppressed := b.dropSuppressed(work)
	results, changes := h.process(work, b)
	counts := map[Outcome]int{}
	for i, res := range results {
		counts[res.Outcome]++
		b.settle(i, res)
	}
	err := h.publish(ctx, changes) // on contexts of its own: it must survive the deadline
	h.log.Info("identity batch", "records", len(ev.Records), "suppressed", suppressed, "processed", counts[Processed], "duplicates", counts[Duplicate],
		"unresolvable", counts[Unresolvable], "rejected", counts[Rejected], "failed", counts[Failed], "deferred", counts[Deferred],
		"changes", len(changes), "retry", len(b.resp.BatchItemFailures))
	return b.resp, err
}

// dropSuppressed takes the admitted records that carry a suppressed identifier out of the
// batch, before any store call: they are acknowledged and counted per source (once per batch
// and source, on a context not cancelled with the invocation). If the list cannot be read, or
// a count cannot be written, the records concerned are retried (no attempt is counted). It
// returns how many records it dropped.
func (b *batchRun) dropSuppressed(ctx context.Context) int {
	sup := b.h.cfg.Suppressions
	if sup == nil || len(b.recs) == 0 {
		return 0
	}
	drop := map[string][]int{} // source → admitted records
	var sources []string
	for i := range b.recs {
		s, err := sup.Suppressed(ctx, MessageIdentifiers(&b.recs[i].Message))
		if err != nil {
			b.h.log.Warn("suppression list unavailable; batch will be retried", "err", err)
			for _, r := range b.src {
				b.fail(r)
			}
			b.recs, b.src = nil, nil
			return 0
		}
		if !s {
			continue
		}
		src := b.recs[i].SourceID
		if drop[src] == nil {
			sources = append(sources, src)
		}
		drop[src] = append(drop[src], i)
	}
	if len(sources) == 0 {
		return 0
	}
	gone := map[int]bool{}
	for _, src := range sources {
		for _, i := range drop[src] {
			gone[i] = true
		}
		if err := b.countDropped(src, drop[src]); err != nil {
			b.h.log.Warn("count of suppressed records not written; they will be retried", "source", src, "records", len(drop[src]), "err", err)
			for _, i := range drop[src] {
				b.fail(b.src[i])
			}
		}
	}
	b.keep(gone)
	return len(gone)
}

// dropInvalid keeps an invalid record of a suppressed person out of the dead letters (they would
// keep its personal data): it reports whether the record was dropped and counted, or left to
// be retried because the list or the count could not be reached.
func (b *batchRun) dropInvalid(r events.KinesisEventRecord, tr *tracking.Record) bool {
	sup := b.h.cfg.Suppressions
	if sup == nil {
		return false
	}
	s, err := sup.Suppressed(b.ctx, MessageIdentifiers(&tr.Message))
	if err == nil && !s {
		return false
	}
	if err == nil {
		ctx, cancel := b.bookkeeping()
		err = sup.CountDropped(ctx, tr.SourceID, 1)
		cancel()
	}
	if err != nil {
		b.h.log.Warn("invalid record not checked against the suppression list; will be retried", "err", err)
		b.fail(r)
	}
	return true
}

// countDropped counts and logs the suppressed records idx of source (message ids hashed; no
// identifier).
func (b *batchRun) countDropped(source string, idx []int) error {
	ctx, cancel := b.bookkeeping()
	defer cancel()
	if err := b.h.cfg.Suppressions.CountDropped(ctx, source, int64(len(idx))); err != nil {
		return fmt.Errorf("count dropped records: %w", err)
	}
	msgs := make([]string, 0, len(idx))
	for _, i := range idx {
		msgs = append(msgs, hashID(b.recs[i].Message.MessageID))
	}
	b.h.log.Info("suppressed records dropped", "source", source, "records", len(idx), "messages", msgs)
	return nil
}

// keep removes the admitted records in gone from the batch.
func (b *batchRun) keep(gone map[int]bool) {
	recs, src := b.recs[:0:0], b.src[:0:0]
	for i := range b.recs {
		if !gone[i] {
			recs, src = append(recs, b.recs[i]), append(src, b.src[i])
		}
	}
	b.recs, b.src = recs, src
}

// process runs the admitted records through the processor. A batch that is being retried (its
// first record has failed before) is processed one record at a time, so that a record whose
// processing always times out uses up only its own attempts, never those of the records
// around it.
func (h *Handler) process(ctx context.Context, b *batchRun) ([]Result, []change.Record) {
	if len(b.recs) == 0 {
		return nil, nil
	}
	if len(b.recs) == 1 { // one record: as a whole or alone is the same; skip the read
		results, changes, _ := h.cfg.Processor.Process(ctx, b.recs)
		return results, changes
	}
	bctx, cancel := b.bookkeeping()
	n, err := h.cfg.Store.Attempts(bctx, b.recs[0].SourceID, b.recs[0].Message.MessageID)
	cancel()
	if err != nil {
		h.log.Warn("read attempt count; processing the batch as a whole", "err", err)
	}
	if n == 0 {
		results, changes, _ := h.cfg.Processor.Process(ctx, b.recs)
		return results, changes
	}
	results := make([]Result, len(b.recs))
	set := newChangeSet()
	for i := range b.recs {
		res, chs, _ := h.cfg.Processor.Process(ctx, b.recs[i:i+1])
		results[i] = res[0]
		for _, c := range chs {
			if c.Traits != nil {
				set.addFull(c) // decided by records() already
			} else {
				set.add(c)
			}
			set.consentChanged(c.ProfileID, c.Traits == nil && c.Consent != nil) // records() kept it: it changed
		}
	}
	return results, set.records()
}

// settle acts on the result of admitted record i.
func (b *batchRun) settle(i int, res Result) {
	r := b.src[i]
	switch res.Outcome {
	case Unresolvable:
		b.deadLetter(r, "no_identifiers", res.Err)
	case Rejected:
		b.deadLetter(r, "store_rejected", res.Err)
	case Deferred:
		b.fail(r) // never started: no attempt is counted
	case Failed:
		b.retryOrGiveUp(i, res.Err)
	}
}

// retryOrGiveUp counts a failed attempt of record i: it is retried until MaxAttempts, then
// dead-lettered.
func (b *batchRun) retryOrGiveUp(i int, cause error) {
	r, tr := b.src[i], &b.recs[i]
	ctx, cancel := b.bookkeeping()
	n, err := b.h.cfg.Store.CountAttempt(ctx, tr.SourceID, tr.Message.MessageID)
	cancel()
	switch {
	case err != nil:
		b.h.log.Warn("count attempt", "err", err)
		b.fail(r)
	case n >= b.h.cfg.MaxAttempts:
		b.deadLetter(r, "retries_exhausted", fmt.Errorf("attempt %d: %w", n, cause))
	default:
		b.h.log.Warn("record failed; will be retried", "message", hashID(tr.Message.MessageID), "attempt", n, "err", cause)
		b.fail(r)
	}
}

// publish writes change records, each split to fit Kinesis. A record that cannot be encoded
// within the limit, or whose parts cannot be published, is dead-lettered for replay; one
// profile's record never holds back another's. Every step runs on a context that is not
// cancelled with the invocation, with its own timeout. The error is set only if some change
// could neither be published nor dead-lettered.
func (h *Handler) publish(ctx context.Context, changes []change.Record) error {
	var groups [][]stream.Record
	var errs []error
	for _, c := range changes {
		parts, err := SplitChange(c, maxChangeBytes)
		if err != nil {
			errs = append(errs, h.deadLetterChange(ctx, c, "change_too_large", err))
			continue
		}
		g := make([]stream.Record, 0, len(parts))
		for _, p := range parts {
			g = append(g, stream.Record{PartitionKey: c.ProfileID, Data: p})
		}
		groups = append(groups, g)
	}
	if len(groups) == 0 {
		return errors.Join(errs...)
	}
	var all []stream.Record
	for _, g := range groups {
		all = append(all, g...)
	}
	perr := h.put(ctx, all, h.publishBudget(ctx))
	if perr == nil {
		return errors.Join(errs...)
	}
	h.log.Error("publish changes failed; publishing profile by profile", "err", perr, "records", len(all))
	for _, g := range groups {
		if len(groups) > 1 {
			if perr = h.put(ctx, g, h.cfg.BookkeepingTimeout); perr == nil {
				continue
			}
		}
		for _, r := range g {
			errs = append(errs, h.deadLetterPart(ctx, r, "publish_failed", perr))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("changes neither published nor dead-lettered: %w", err)
	}
	return nil
}

// publishBudget is how long the first publication of a batch's changes may take: what remains
// of the invocation, less the time to dead-letter what could not be published, and at least
// BookkeepingTimeout (30 s without a deadline).
func (h *Handler) publishBudget(ctx context.Context) time.Duration {
	left, ok := budget.New(ctx, h.cfg.BookkeepingTimeout, 0).Left()
	if !ok {
		return 30 * time.Second
	}
	return max(h.cfg.BookkeepingTimeout, left)
}

func (h *Handler) put(ctx context.Context, recs []stream.Record, timeout time.Duration) error {
	ctx, cancel := budget.Bookkeeping(ctx, timeout)
	defer cancel()
	return h.cfg.Changes.Put(ctx, recs)
}

func (h *Handler) deadLetterPart(ctx context.Context, r stream.Record, reason string, cause error) error {
	ctx, cancel := budget.Bookkeeping(ctx, h.cfg.BookkeepingTimeout)
	defer cancel()
	_, err := h.cfg.DeadLetters.Put(ctx, deadletter.Entry{
		Stage: Stage, Kind: KindChange, Reason: reason, Error: cause.Error(), Payload: r.Data,
		Meta: map[string]string{"partitionKey": r.PartitionKey},
	})
	if err != nil {
		return fmt.Errorf("dead-letter change of %s: %w", r.PartitionKey, err)
	}
	return nil
}

func (h *Handler) deadLetterChange(ctx context.Context, c change.Record, reason string, cause error) error {
	data, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode change of %s: %w", c.ProfileID, err)
	}
	h.log.Error("change record dead-lettered", "profile", c.ProfileID, "reason", reason, "err", cause)
	return h.deadLetterPart(ctx, stream.Record{PartitionKey: c.ProfileID, Data: data}, reason, cause)
}

// splitGroup is the events of one part of a split change record, with their stamps.
type splitGroup struct {
	events []tracking.Message
	stamps []change.Stamp
}

// ErrChangeTooLarge means a change record cannot be split into parts that fit a Kinesis
// record (its profile state alone, or one event, is too large).
var ErrChangeTooLarge = errors.New("change record cannot be split to fit a Kinesis record")

// SplitChange encodes a change record, split into parts of at most maxBytes if needed. The
// first part carries the profile state (traits, identifiers, merges, void stamps) and the events that fit;
// further parts carry only ProfileID, Version and events, each event in exactly one part with
// its stamp (Stamps stays parallel to Events in every part). No part exceeds maxBytes: if the
// state or one event alone cannot fit, it returns ErrChangeTooLarge.
func SplitChange(c change.Record, maxBytes int) ([][]byte, error) {
	c.Part, c.Parts = 1, 1
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode change: %w", err)
	}
	if len(b) <= maxBytes {
		return [][]byte{b}, nil
	}
	const slack = 64 // part numbers and separators
	head := c
	head.Events, head.Stamps = nil, nil
	tail := change.Record{ProfileID: c.ProfileID, Version: c.Version, EmittedAt: c.EmittedAt}
	hb, _ := json.Marshal(head)
	tb, _ := json.Marshal(tail)
	budget := maxBytes - len(hb) - slack
	if budget < 0 {
		return nil, fmt.Errorf("%w: profile state of %d bytes", ErrChangeTooLarge, len(hb))
	}
	stamped := len(c.Stamps) == len(c.Events)
	groups := []splitGroup{{}}
	size := 0
	for i, e := range c.Events {
		eb, err := json.Marshal(e)
		if err != nil {
			return nil, fmt.Errorf("encode change event: %w", err)
		}
		n := len(eb) + 1
		if stamped {
			sb, _ := json.Marshal(c.Stamps[i])
			n += len(sb) + 1
		}
		if n > maxBytes-len(tb)-slack {
			return nil, fmt.Errorf("%w: one event of %d bytes", ErrChangeTooLarge, len(eb))
		}
		if size+n > budget {
			groups = append(groups, splitGroup{})
			size, budget = 0, maxBytes-len(tb)-slack
		}
		g := &groups[len(groups)-1]
		g.events = append(g.events, e)
		if stamped {
			g.stamps = append(g.stamps, c.Stamps[i])
		}
		size += n
	}
	out := make([][]byte, 0, len(groups))
	for i, g := range groups {
		p := tail
		if i == 0 {
			p = head
		}
		p.Events, p.Stamps, p.Part, p.Parts = g.events, g.stamps, i+1, len(groups)
		pb, err := json.Marshal(p)
		if err != nil {
			return nil, fmt.Errorf("encode change: %w", err)
		}
		out = append(out, pb)
	}
	return out, nil
}

func (h *Handler) deadLetter(ctx context.Context, r events.KinesisEventRecord, reason string, cause error) error {
	msg := ""
	if cause != nil {
		msg = cause.Error()
	}
	e, err := h.cfg.DeadLetters.Put(ctx, deadletter.Entry{
		Stage: Stage, Kind: KindEvent, Reason: reason, Error: msg, Payload: r.Kinesis.Data,
		Meta: map[string]string{"eventId": r.EventID, "partitionKey": r.Kinesis.PartitionKey, "sequenceNumber": r.Kinesis.SequenceNumber},
	})
	if err != nil {
		h.log.Error("dead letter failed; record will be retried", "err", err, "reason", reason)
		return err
	}
	h.log.Warn("record dead-lettered", "id", e.ID, "reason", reason, "err", msg)
	return nil
}

// Replay processes a dead letter of this stage again: an event goes through resolution (a
// duplicate is fine), a change is published. It implements deadletter.Replayer.
func (h *Handler) Replay(ctx context.Context, e deadletter.Entry) error {
	switch e.Kind {
	case KindChange:
		var c change.Record
		if err := json.Unmarshal(e.Payload, &c); err != nil {
			return fmt.Errorf("decode change: %w", err)
		}
		if len(e.Payload) <= maxChangeBytes {
			return h.cfg.Changes.Put(ctx, []stream.Record{{PartitionKey: c.ProfileID, Data: e.Payload}})
		}
		parts, err := SplitChange(c, maxChangeBytes)
		if err != nil {
			return err
		}
		recs := make([]stream.Record, 0, len(parts))
		for _, p := range parts {
			recs = append(recs, stream.Record{PartitionKey: c.ProfileID, Data: p})
		}
		return h.cfg.Changes.Put(ctx, recs)
	case KindEvent:
		var tr tracking.Record
		if err := json.Unmarshal(e.Payload, &tr); err != nil {
			return fmt.Errorf("decode event: %w", err)
		}
		if err := CheckRecord(&tr); err != nil {
			return fmt.Errorf("invalid record: %w", err)
		}
		if drop, err := h.replaySuppressed(ctx, &tr); drop || err != nil {
			return err
		}
		res, changes, err := h.cfg.Processor.Process(ctx, []tracking.Record{tr})
		if err != nil {
			return err
		}
		if o := res[0].Outcome; o != Processed && o != Duplicate {
			return fmt.Errorf("%s: %w", res[0].Outcome, res[0].Err)
		}
		return h.publish(ctx, changes)
	}
	return fmt.Errorf("unknown dead-letter kind %q", e.Kind)
}

// replaySuppressed reports whether a replayed event carries a suppressed identifier; if so it
// is counted as dropped (and not stored).
func (h *Handler) replaySuppressed(ctx context.Context, tr *tracking.Record) (bool, error) {
	if h.cfg.Suppressions == nil {
		return false, nil
	}
	drop, err := h.cfg.Suppressions.Suppressed(ctx, MessageIdentifiers(&tr.Message))
	if err != nil {
		return false, fmt.Errorf("suppression list: %w", err)
	}
	if drop {
		if err := h.cfg.Suppressions.CountDropped(ctx, tr.SourceID, 1); err != nil {
			return true, fmt.Errorf("count dropped record: %w", err)
		}
		h.log.Info("suppressed record dropped on replay", "source", tr.SourceID, "message", hashID(tr.Message.MessageID))
	}
	return drop, nil
}

// hashID is a short, stable digest of an identifier, for keys and logs (no personal data).
func hashID(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:16])
}
