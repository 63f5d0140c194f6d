package activation

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"golang.org/x/sync/errgroup"

	"github.com/serverless-cdp/cdp/internal/activations"
	"github.com/serverless-cdp/cdp/internal/budget"
	"github.com/serverless-cdp/cdp/internal/consent"
	"github.com/serverless-cdp/cdp/internal/destination"
	"github.com/serverless-cdp/cdp/internal/webhook"
)

func (c *Config) defaultBudgets() {
	if c.InBatchTimeout <= 0 {
		c.InBatchTimeout = time.Second
	}
	if c.InBatchWindow <= 0 {
		c.InBatchWindow = 2 * time.Second
	}
	if c.Cooldown <= 0 {
		c.Cooldown = 30 * time.Second
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 4
	}
	if c.TickBudget <= 0 {
		c.TickBudget = 50 * time.Second
	}
	if c.Reserve <= 0 {
		c.Reserve = 3 * time.Second
	}
	if c.BookkeepingTimeout <= 0 {
		c.BookkeepingTimeout = 5 * time.Second
	}
}

// plan bounds one invocation's work, from its context's deadline less Config.Reserve (wall-clock
// time).
type plan struct {
	stream bool        // a Kinesis batch: short attempts, the rest handed to the retry queue
	budget budget.Plan // no attempt starts after StopAt (TickBudget or InBatchWindow from now at most); no claim after the hard stop
}

func (d *Deliverer) planFor(ctx context.Context, stream bool) plan {
	limit := d.cfg.TickBudget
	if stream {
		limit = d.cfg.InBatchWindow
	}
	return plan{stream: stream, budget: budget.New(ctx, d.cfg.Reserve, 0).Within(limit)}
}

// mayAttempt: an attempt taking up to timeout still ends within the budget.
func (p plan) mayAttempt(timeout time.Duration) bool {
	return !p.budget.Over() && p.budget.Fits(timeout)
}

// mayClaim: the deadline less the reserve has not come (stream jobs left are batch item failures).
func (p plan) mayClaim() bool { return !p.budget.Closed() }

// bookkeeping returns a context for state writes that must happen even when the invocation's
// context is cancelled or past its deadline.
func (d *Deliverer) bookkeeping(ctx context.Context) (context.Context, context.CancelFunc) {
	return budget.Bookkeeping(ctx, d.cfg.BookkeepingTimeout)
}

// breaker remembers destinations whose in-batch attempts timed out, so that for a while their
// stream messages go straight to the retry queue instead of costing every batch an attempt.
type breaker struct {
	mu    sync.Mutex
	until map[string]time.Time
}

func (b *breaker) open(id string, until time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.until == nil {
		b.until = map[string]time.Time{}
	}
	b.until[id] = until
}

func (b *breaker) isOpen(id string, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return now.Before(b.until[id])
}

func (b *breaker) close(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.until, id)
}

// HandleKinesis handles a batch of the activations stream. Destinations are delivered to
// concurrently, each with at most Config.Concurrency requests in flight and each attempt bounded
// by Config.InBatchTimeout; what a destination does not take in time goes to the retry queue.
// A record is reported as a batch item failure only when its state could not be stored, another
// invocation holds a live lease on one of its deliveries, or the invocation's deadline came
// before it could be claimed.
func (d *Deliverer) HandleKinesis(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
	res, failed, err := d.handle(ctx, ev)
	if err != nil {
		return events.KinesisEventResponse{}, err
	}
	var resp events.KinesisEventResponse
	for i, f := range failed {
		if f {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.KinesisBatchItemFailure{
				ItemIdentifier: ev.Records[i].Kinesis.SequenceNumber})
		}
	}
	d.log.InfoContext(ctx, "activation batch", "records", len(ev.Records), "delivered", res.Delivered,
		"retried", res.Retried, "deadLettered", res.DeadLettered, "skipped", res.Skipped, "filtered", res.Filtered,
		"dropped", res.Dropped, "failed", len(resp.BatchItemFailures))
	return resp, nil
}

func (d *Deliverer) handle(ctx context.Context, ev events.KinesisEvent) (Result, []bool, error) {
	p := d.planFor(ctx, true)
	failed := make([]bool, len(ev.Records))
	var mu sync.Mutex
	mark := func(j *job) {
		if j.idx >= 0 {
			mu.Lock()
			failed[j.idx] = true
			mu.Unlock()
		}
	}
	dests, err := d.dests.List(ctx)
	if err != nil {
		return Result{}, nil, fmt.Errorf("load destinations: %w", err)
	}
	var c counters
	jobs := map[string][]*job{}
	for i, r := range ev.Records {
		js, ok := d.prepare(ctx, r, dests, &c)
		if !ok {
			failed[i] = true
			continue
		}
		for _, j := range js {
			j.idx = i
			jobs[j.destID] = append(jobs[j.destID], j)
		}
	}
	d.runAll(ctx, dests, jobs, &c, mark, p)
	return c.result(), failed, nil
}

// prepare turns one stream record into its jobs. A record that can never be delivered is kept
// as a dead letter on its own, and one about an erased profile is dropped (no jobs either way);
// ok=false when that could not be done (the record is a batch item failure).
func (d *Deliverer) prepare(ctx context.Context, r events.KinesisEventRecord, dests []destination.Destination, c *counters) ([]*job, bool) {
	rec, err := decodeRecord(r.Kinesis.Data)
	var js []*job
	if err == nil {
		js, err = d.jobsFor(rec, dests)
	}
	if err != nil {
		// Never deliverable: kept as a dead letter on its own; the batch goes on.
		d.log.ErrorContext(ctx, "undeliverable activation record kept as dead letter", "seq", r.Kinesis.SequenceNumber, "err", err)
		if perr := d.keepBad(ctx, KindRecord, "seq:"+r.Kinesis.SequenceNumber, r.Kinesis.Data, err.Error()); perr != nil {
			d.log.ErrorContext(ctx, "keep undeliverable record", "err", perr)
			return nil, false
		}
		c.dead.Add(1)
		return nil, true
	}
	erased, err := d.erased(ctx, rec)
	if err != nil {
		d.log.ErrorContext(ctx, "check erased profiles", "err", err)
		return nil, false
	}
	if !erased {
		return js, true
	}
	d.log.InfoContext(ctx, "activation record about an erased profile dropped", "profile", hashID(rec.ProfileID), "messages", len(js))
	c.dropped.Add(1)
	for _, j := range js {
		if err := d.counters.Count(ctx, j.destID, "droppedErased"); err != nil {
			d.log.ErrorContext(ctx, "count dropped message", "destination", j.destID, "err", err)
		}
	}
	return nil, true
}

// erased reports whether a record is about an erased profile: its profile, or the profile its
// id names (for a forwarded event, the profile the event was committed to).
func (d *Deliverer) erased(ctx context.Context, rec activations.Record) (bool, error) {
	if d.cfg.Erased == nil {
		return false, nil
	}
	for _, pid := range recordProfiles(rec) {
		if pid == "" {
			continue
		}
		gone, err := d.cfg.Erased.Erased(ctx, pid)
		if err != nil || gone {
			return gone, err
		}
	}
	return false, nil
}

// recordProfiles: the record's profile and, when different, the one its id's prefix names.
func recordProfiles(rec activations.Record) []string {
	out := []string{rec.ProfileID}
	for _, kind := range []string{"aud-", "ct-", "evt-"} {
		if rest, ok := strings.CutPrefix(rec.ID, kind); ok {
			if pid, _, ok := strings.Cut(rest, "-"); ok && pid != "" && pid != rec.ProfileID {
				out = append(out, pid)
			}
			break
		}
	}
	return out
}

// runAll runs every destination's jobs concurrently; each destination bounds its own requests.
func (d *Deliverer) runAll(ctx context.Context, dests []destination.Destination, jobs map[string][]*job, c *counters, mark func(*job), p plan) {
	var g errgroup.Group
	for _, dest := range dests {
		if js := jobs[dest.ID]; len(js) > 0 {
			g.Go(func() error {
				d.runDestination(ctx, dest, js, c, mark, p)
				return nil
			})
		}
	}
	_ = g.Wait()
}

// Tick drains the retry queue: every entry due now is attempted again with the destination's
// full timeout (destinations concurrently). It stops starting attempts when its budget (the
// context's deadline less Config.Reserve, or Config.TickBudget) is spent; what is left stays
// queued for the next Tick. Run it every minute (EventBridge schedule on AWS; the local
// runner's ticker).
func (d *Deliverer) Tick(ctx context.Context) (Result, error) {
	p := d.planFor(ctx, false)
	now := d.cfg.Now()
	entries, err := d.queue.Due(ctx, now, d.cfg.TickLimit)
	if err != nil {
		return Result{}, err
	}
	if len(entries) == 0 {
		return Result{}, nil
	}
	dests, err := d.dests.List(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("load destinations: %w", err)
	}
	byID := map[string]destination.Destination{}
	for _, dd := range dests {
		byID[dd.ID] = dd
	}
	var c counters
	c.due.Store(int64(len(entries)))
	jobs := map[string][]*job{}
	for i := range entries {
		e := &entries[i]
		if _, ok := byID[e.DestID]; !ok {
			d.log.WarnContext(ctx, "dropping queued retry of a deleted destination", "destination", e.DestID, "record", e.RecordID)
			if err := d.queue.Dequeue(ctx, *e); err != nil {
				return c.result(), err
			}
			continue
		}
		if gone, err := d.erased(ctx, activations.Record{ID: e.RecordID}); err != nil || gone {
			// About an erased profile (or the list cannot be read): not attempted; the privacy
			// request's erase removes the entry.
			c.dropped.Add(1)
			continue
		}
		jobs[e.DestID] = append(jobs[e.DestID], &job{destID: e.DestID, recordID: e.RecordID, entry: e, idx: -1})
	}
	d.runAll(ctx, dests, jobs, &c, func(*job) {}, p)
	r := c.result()
	d.log.InfoContext(ctx, "activation tick", "due", r.Due, "delivered", r.Delivered, "retried", r.Retried,
		"deadLettered", r.DeadLettered, "skipped", r.Skipped, "failed", r.Failed)
	if r.Failed > 0 {
		return r, fmt.Errorf("tick: %d deliveries could not be recorded (they stay queued)", r.Failed)
	}
	return r, nil
}

// destRun is one destination's share of an invocation.
type destRun struct {
	d       *Deliverer
	dest    destination.Destination
	c       *counters
	mark    func(*job)
	p       plan
	log     *slog.Logger
	tripped atomic.Bool // a retryable failure happened: no further attempts in this invocation
	mu      sync.Mutex  // guards off and reason (dest is shared read-only by the lanes)
	off     bool
	reason  string
}

// runDestination delivers one destination's jobs in lanes, at most Config.Concurrency at a time.
// With BatchSize 1 a lane is one profile's messages, in order; with batching a lane is one
// request's worth. After a retryable failure no further attempts start: stream jobs go to the
// retry queue, queued jobs stay where they are. After a 410 the destination is disabled and the
// rest go to its dead letters.
func (d *Deliverer) runDestination(ctx context.Context, dest destination.Destination, jobs []*job, c *counters, mark func(*job), p plan) {
	r := &destRun{d: d, dest: dest, c: c, mark: mark, p: p, log: d.log.With("destination", dest.ID),
		off: !dest.Enabled, reason: dest.DisabledReason}
	if p.stream && d.slow.isOpen(dest.ID, d.cfg.Now()) {
		r.tripped.Store(true)
	}
	var g errgroup.Group
	g.SetLimit(d.cfg.Concurrency)
	for _, l := range lanes(jobs, max(dest.BatchSize, 1)) {
		g.Go(func() error {
			r.lane(ctx, l)
			return nil
		})
	}
	_ = g.Wait()
}

// lanes splits a destination's jobs: one lane per profile (in order) without batching, one lane
// per request with batching. Queued jobs (no profile) each get their own lane.
func lanes(jobs []*job, bs int) [][]*job {
	var out [][]*job
	if bs > 1 {
		for i := 0; i < len(jobs); i += bs {
			out = append(out, jobs[i:min(i+bs, len(jobs))])
		}
		return out
	}
	at := map[string]int{}
	for _, j := range jobs {
		k := j.profileID
		if k == "" {
			k = "\x00" + j.recordID
		}
		i, ok := at[k]
		if !ok {
			i = len(out)
			at[k] = i
			out = append(out, nil)
		}
		out[i] = append(out[i], j)
	}
	return out
}

func (r *destRun) lane(ctx context.Context, jobs []*job) {
	bs := max(r.dest.BatchSize, 1)
	for i := 0; i < len(jobs); i += bs {
		if chunk := r.claimChunk(ctx, jobs[i:min(i+bs, len(jobs))]); len(chunk) > 0 {
			r.deliver(ctx, chunk)
		}
	}
}

// timeout is the time one attempt may take in this invocation.
func (r *destRun) timeout() time.Duration {
	t := r.dest.Timeout(r.d.cfg.Timeout)
	if r.p.stream {
		t = min(t, r.d.cfg.InBatchTimeout)
	}
	return t
}

func (r *destRun) claimChunk(ctx context.Context, jobs []*job) []*job {
	var chunk []*job
	for _, j := range jobs {
		if j.entry != nil && (r.tripped.Load() || !r.p.mayAttempt(r.timeout())) {
			continue // stays queued for the next Tick
		}
		if j.entry == nil && !r.p.mayClaim() {
			r.c.skipped.Add(1)
			r.mark(j) // the deadline is near: Kinesis hands the record over again
			continue
		}
		if j.filtered {
			r.filter(ctx, j)
			continue
		}
		ok, busy, err := r.d.claim(ctx, r.dest, j)
		switch {
		case err != nil && isPermanent(err):
			r.keepJob(ctx, j, err)
		case err != nil:
			r.log.ErrorContext(ctx, "claim delivery", "record", j.recordID, "err", err)
			r.c.failed.Add(1)
			r.mark(j)
		case busy:
			r.c.skipped.Add(1)
			r.mark(j)
		case !ok:
			r.c.skipped.Add(1) // delivered or handled already: the dedupe
		default:
			chunk = append(chunk, j)
		}
	}
	return chunk
}

// filter records a message consent does not allow: a final filtered_consent delivery (created
// once: a redelivered record finds it and counts nothing), counted in the destination's stats.
func (r *destRun) filter(ctx context.Context, j *job) {
	now := r.d.cfg.Now()
	created, err := r.d.deliveries.Create(ctx, Delivery{DestinationID: j.destID, RecordID: j.recordID, WebhookID: j.webhookID,
		Kind: j.kind, Status: StatusFilteredConsent, Version: 1, CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(r.d.cfg.DeliveredTTL)})
	if err == nil && created {
		err = r.d.counters.Count(ctx, j.destID, "filteredConsent")
	}
	switch {
	case err != nil:
		r.log.ErrorContext(ctx, "record filtered message", "record", hashID(j.recordID), "err", err)
		r.c.failed.Add(1)
		r.mark(j)
	case created:
		r.c.filtered.Add(1)
	default:
		r.c.skipped.Add(1) // recorded before: the dedupe
	}
}

// keepJob dead-letters a job whose delivery state the table refuses (e.g. a key too long).
func (r *destRun) keepJob(ctx context.Context, j *job, cause error) {
	reason := fmt.Sprintf("destination %s: delivery state refused: %v", r.dest.ID, cause)
	r.log.ErrorContext(ctx, "undeliverable message kept as dead letter", "record", hashID(j.recordID), "err", cause)
	if err := r.d.keepBad(ctx, KindMessage, "job:"+hashID(r.dest.ID+"\x00"+j.recordID), j.body, reason); err != nil {
		r.log.ErrorContext(ctx, "keep undeliverable message", "err", err)
		r.c.failed.Add(1)
		r.mark(j)
		return
	}
	r.c.dead.Add(1)
}

func (r *destRun) disabled() (bool, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.off, r.reason
}

func (r *destRun) deliver(ctx context.Context, chunk []*job) {
	now := r.d.cfg.Now()
	var outs []outcome
	off, reason := r.disabled()
	switch {
	case off:
		outs = same(len(chunk), outcome{status: StatusDead, errMsg: "destination disabled: " + reason})
	case r.tripped.Load() || !r.p.mayAttempt(r.timeout()):
		msg := "not attempted: destination failing or slow"
		if !r.tripped.Load() {
			msg = "not attempted: the invocation's time was spent"
		}
		outs = same(len(chunk), outcome{status: StatusRetrying, errMsg: msg, nextAt: now})
	default:
		outs = r.attempt(ctx, chunk, now)
	}
	r.record(ctx, chunk, outs)
}

// attempt sends one request and classifies its outcome for every job of the chunk.
func (r *destRun) attempt(ctx context.Context, chunk []*job, now time.Time) []outcome {
	d := r.d
	timeout := r.timeout()
	resp, err := d.send(ctx, r.dest, chunk, now, timeout)
	after := d.cfg.Now()
	gone := false
	outs := make([]outcome, len(chunk))
	for k, j := range chunk {
		outs[k], gone = d.classify(resp, err, after, j.retries)
	}
	if handoff := r.p.stream && err != nil && isTimeout(err) && timeout < r.dest.Timeout(d.cfg.Timeout); handoff {
		// Our in-batch budget ran out, not the destination's timeout: the retrier takes over
		// at once with the full timeout, without using up a step of the schedule.
		for k := range outs {
			if outs[k].status == StatusRetrying {
				outs[k].nextAt, outs[k].handoff = after, true
				outs[k].errMsg = fmt.Sprintf("no answer within the in-batch budget of %v; handed to the retry queue", timeout)
			}
		}
		d.slow.open(r.dest.ID, after.Add(d.cfg.Cooldown))
	}
	if gone {
		reason := fmt.Sprintf("receiver answered 410 Gone at %s", after.UTC().Format(time.RFC3339))
		if derr := d.dests.Disable(ctx, r.dest.ID, reason); derr != nil {
			r.log.ErrorContext(ctx, "disable destination after 410", "err", derr)
		}
		r.log.WarnContext(ctx, "destination disabled: receiver answered 410 Gone")
		r.mu.Lock()
		r.off, r.reason = true, reason
		r.mu.Unlock()
	}
	if outs[0].status == StatusRetrying || (err != nil && !errors.Is(err, webhook.ErrForbiddenAddress)) {
		r.tripped.Store(true)
	}
	if !r.p.stream && outs[0].status == StatusDelivered {
		d.slow.close(r.dest.ID)
	}
	return outs
}

// record stores outcomes on a context that survives the invocation's end: an attempt made must
// be recorded (attempt counts, queue entries, dead letters).
func (r *destRun) record(ctx context.Context, chunk []*job, outs []outcome) {
	bctx, cancel := r.d.bookkeeping(ctx)
	defer cancel()
	for k, j := range chunk {
		err := r.d.finish(bctx, j, outs[k], r.d.cfg.Now())
		if errors.Is(err, ErrGone) {
			// Erased while the attempt was in flight: the erase stands; nothing is recorded.
			r.log.InfoContext(ctx, "delivery erased while in flight; outcome not recorded", "record", hashID(j.recordID))
			r.c.dropped.Add(1)
			continue
		}
		if err != nil {
			r.log.ErrorContext(ctx, "record delivery outcome", "record", j.recordID, "err", err)
			r.c.failed.Add(1)
			r.mark(j)
			continue
		}
		switch outs[k].status {
		case StatusDelivered:
			r.c.delivered.Add(1)
		case StatusRetrying:
			r.c.retried.Add(1)
		case StatusDead:
			r.c.dead.Add(1)
			r.log.WarnContext(ctx, "message dead-lettered", "record", j.recordID, "err", outs[k].errMsg)
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// Limits on what a stream record may carry; a record over them is dead-lettered on its own.
const (
	// MaxRecordIDBytes bounds a record id (it is part of the delivery's key).
	MaxRecordIDBytes = 512
	// MaxPayloadBytes bounds one destination's payload for one record (the delivery item keeps
	// it while it may be resent, within DynamoDB's 400 KB item limit).
	MaxPayloadBytes = 300 << 10
)

// decodeRecord decodes one stream record. An error means it can never be delivered.
func decodeRecord(data []byte) (activations.Record, error) {
	var rec activations.Record
	if err := json.Unmarshal(data, &rec); err != nil {
		return rec, fmt.Errorf("decode activation record: %w", err)
	}
	if rec.ID == "" || rec.Kind == "" {
		return rec, errors.New("record has no id or kind")
	}
	if len(rec.ID) > MaxRecordIDBytes {
		return rec, fmt.Errorf("record id is %d bytes, over the limit of %d", len(rec.ID), MaxRecordIDBytes)
	}
	return rec, nil
}

// jobsFor turns a record into one job per subscribed, enabled destination; a destination whose
// consent settings the record's preferences do not satisfy gets a filtered job (no body). An
// error means the record can never be delivered.
func (d *Deliverer) jobsFor(rec activations.Record, dests []destination.Destination) ([]*job, error) {
	var out []*job
	prefs := lazyPrefs{rec: rec}
	for _, dest := range dests {
		if !dest.Enabled || (rec.DestinationID != "" && rec.DestinationID != dest.ID) {
			continue // a disabled destination receives nothing new; a targeted record goes to its one destination
		}
		body, ok, err := Payload(rec, dest, d.cfg.SpaceID)
		if err != nil {
			return nil, fmt.Errorf("build payload for destination %s: %w", dest.ID, err)
		}
		if !ok {
			continue
		}
		if len(body) > MaxPayloadBytes {
			return nil, fmt.Errorf("payload for destination %s is %d bytes, over the limit of %d", dest.ID, len(body), MaxPayloadBytes)
		}
		j := &job{destID: dest.ID, recordID: rec.ID, webhookID: WebhookID(rec.ID, dest.ID), kind: rec.Kind,
			body: body, profileID: rec.ProfileID}
		if !prefs.allows(dest) {
			j.body, j.filtered = nil, true
		}
		out = append(out, j)
	}
	return out, nil
}

// lazyPrefs reads the preferences that apply to a record once, when a destination gates by
// consent: a forwarded event's own context.consent, the profile's stored consent otherwise.
type lazyPrefs struct {
	rec         activations.Record
	read, known bool
	prefs       consent.Preferences
}

func (l *lazyPrefs) allows(dest destination.Destination) bool {
	if len(dest.ConsentCategories) == 0 && !dest.RequireConsent {
		return true
	}
	if !l.read {
		l.read = true
		if l.rec.Kind == activations.KindEvent {
			if l.rec.Event != nil {
				l.prefs, l.known = consent.FromContext(l.rec.Event.Context)
			}
		} else {
			l.prefs, l.known = l.rec.Consent, l.rec.Consent != nil
		}
	}
	return consent.Allows(dest.ConsentCategories, dest.RequireConsent, l.prefs, l.known)
}

// keepBad stores something that can never be delivered in the shared dead-letter store (shown as
// the dead letters of UndecodableDestination), on a context that outlives the invocation.
func (d *Deliverer) keepBad(ctx context.Context, kind, key string, data []byte, reason string) error {
	bctx, cancel := d.bookkeeping(ctx)
	defer cancel()
	return d.bad.Keep(bctx, kind, key, data, reason, d.cfg.Now())
}

// isPermanent reports errors the store will give again for the same input (an item or key over
// the table's limits, an invalid value).
func isPermanent(err error) bool { return errors.Is(err, ErrRefused) }

// hashID is a short, stable, non-reversible form of an id for keys and logs.
func hashID(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:12])
}
