package activation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/serverless-cdp/cdp/internal/deadletter"
	"github.com/serverless-cdp/cdp/internal/destination"
	"github.com/serverless-cdp/cdp/internal/privacy"
	"github.com/serverless-cdp/cdp/internal/store"
	"github.com/serverless-cdp/cdp/internal/webhook"
)

// DefaultSchedule is the wait after each failed attempt: 10 attempts in all over about 45 hours,
// after which the message goes to the destination's dead letters. A Retry-After longer than the
// step is honoured (capped at 24 h). The drain runs once a minute, so short steps are rounded up
// to the next Tick.
var DefaultSchedule = []time.Duration{
	5 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute, 30 * time.Minute,
	2 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour,
}

// Destinations is what the deliverer needs from the destination service.
type Destinations interface {
	List(ctx context.Context) ([]destination.Destination, error)
	Disable(ctx context.Context, id, reason string) error
}

// Sender sends one webhook request (webhook.Client).
type Sender interface {
	Do(ctx context.Context, r webhook.Request) (webhook.Response, error)
}

// Config tunes a Deliverer. Zero values take the defaults.
type Config struct {
	Table        string
	Timeout      time.Duration   // per request unless the destination sets one; default 10 s
	SpaceID      string          // context.personas.space_id; default "default"
	Schedule     []time.Duration // default DefaultSchedule
	DeliveredTTL time.Duration   // how long delivered markers (the dedupe window) live; default 7 days
	TickLimit    int             // queue entries handled per Tick; default 1000
	// InBatchTimeout bounds an attempt made from the stream handler (much shorter than Timeout):
	// what does not answer in time is handed to the retry queue, which the scheduled retrier
	// delivers with the full Timeout. Default 1 s.
	InBatchTimeout time.Duration
	// InBatchWindow: no attempt starts from the stream handler after this much of a batch has
	// passed; the rest is handed to the retry queue. Default 2 s.
	InBatchWindow time.Duration
	// Cooldown: after an in-batch attempt to a destination timed out, that destination's new
	// stream messages go straight to the retry queue for this long. Default 30 s.
	Cooldown time.Duration
	// Concurrency is the number of requests in flight per destination; default 4.
	Concurrency int
	// TickBudget bounds one Tick when its context has no deadline; default 50 s.
	TickBudget time.Duration
	// Reserve is the part of an invocation's deadline kept for bookkeeping; default 3 s.
	Reserve time.Duration
	// BookkeepingTimeout bounds each state write made after the invocation's context may have
	// ended (outcomes, queue entries, dead letters); default 5 s.
	BookkeepingTimeout time.Duration
	// Erased, optional, says whether a profile was erased (blocklist.Checker: answered from
	// memory, no request units per record). A record about an erased profile is dropped before
	// any delivery is written.
	Erased ErasedProfiles
	Now    func() time.Time
	Logger *slog.Logger
}

// ErasedProfiles is the read side of the erased-profile list (a consumer port).
type ErasedProfiles interface {
	Erased(ctx context.Context, profileID string) (bool, error)
}

// Deliverer delivers activation records to destinations: the Kinesis handler, the retry queue
// drain (Tick), dead letters and redrive.
type Deliverer struct {
	deliveries DeliveryLog
	queue      Queue
	dead       DeadLetterStore
	bad        BadRecords
	counters   Counters
	dests      Destinations
	client     Sender
	cfg        Config
	log        *slog.Logger
	slow       breaker // destinations whose in-batch attempts timed out lately
	holder     *DeliveriesHolder
}

// New returns a deliverer over the shared table; what can never be delivered goes to the shared
// dead-letter store (internal/deadletter, stage Stage).
func New(db store.Client, dests Destinations, client Sender, cfg Config) *Deliverer {
	return NewWithStore(NewDynamoStore(db, cfg.Table), NewSharedBadRecords(deadletter.NewStore(db, cfg.Table)), dests, client, cfg)
}

// NewWithStore returns a deliverer over any Store and BadRecords (NewMemStore and
// NewMemBadRecords in tests).
func NewWithStore(st Store, bad BadRecords, dests Destinations, client Sender, cfg Config) *Deliverer {
	cfg.defaults()
	return &Deliverer{deliveries: st, queue: st, dead: st, bad: bad, counters: st,
		dests: dests, client: client, cfg: cfg, log: cfg.Logger, holder: NewDeliveriesHolder(st, dests)}
}

// Holder is the deliveries' privacy.Holder over the deliverer's store.
func (d *Deliverer) Holder() *DeliveriesHolder { return d.holder }

var _ privacy.Notifier = (*Deliverer)(nil)

func (c *Config) defaults() {
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.SpaceID == "" {
		c.SpaceID = "default"
	}
	if len(c.Schedule) == 0 {
		c.Schedule = DefaultSchedule
	}
	if c.DeliveredTTL <= 0 {
		c.DeliveredTTL = 7 * 24 * time.Hour
	}
	if c.TickLimit <= 0 {
		c.TickLimit = 1000
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	c.defaultBudgets()
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// lease is how long an attempt owns a delivery before another invocation may take it over.
func (d *Deliverer) lease(dest destination.Destination) time.Duration {
	return dest.Timeout(d.cfg.Timeout) + 30*time.Second
}

// job is one record for one destination on its way.
type job struct {
	destID, recordID, webhookID, kind string
	body                              json.RawMessage
	version                           int64
	attempts, retries                 int
	queueRef                          string      // the queue entry the delivery holds, if any
	entry                             *QueueEntry // set when the job comes from the retry queue
	idx                               int         // index in the Kinesis batch (-1 from the queue)
	profileID                         string      // orders a destination's requests (one lane per profile)
	filtered                          bool        // consent does not allow it: recorded as filtered_consent, not sent
}

// Result counts what one handler call or Tick did.
type Result struct {
	Due, Delivered, Retried, DeadLettered, Skipped, Failed int64
	Filtered                                               int64 // messages consent did not allow (recorded as filtered_consent)
	Dropped                                                int64 // records about erased profiles, dropped unsent
}

type counters struct {
	due, delivered, retried, dead, skipped, failed, filtered, dropped atomic.Int64
}

func (c *counters) result() Result {
	return Result{Due: c.due.Load(), Delivered: c.delivered.Load(), Retried: c.retried.Load(),
		DeadLettered: c.dead.Load(), Skipped: c.skipped.Load(), Failed: c.failed.Load(),
		Filtered: c.filtered.Load(), Dropped: c.dropped.Load()}
}

// claim leases a job. ok=false with busy=true means another invocation holds it (retry later).
func (d *Deliverer) claim(ctx context.Context, dest destination.Destination, j *job) (ok, busy bool, err error) {
	if j.entry == nil {
		return d.claimNew(ctx, dest, j)
	}
	now := d.cfg.Now()
	del, found, err := d.deliveries.Delivery(ctx, j.destID, j.recordID)
	if err != nil {
		return false, false, err
	}
	if !found || del.QueueRef != j.entry.Ref {
		// An orphan or a stale entry (the delivery moved on): remove it.
		return false, false, d.queue.Dequeue(ctx, *j.entry)
	}
	if del.Status == StatusInflight && now.Before(del.LeaseUntil) {
		return false, true, nil
	}
	if del.Status != StatusRetrying && del.Status != StatusInflight {
		return false, false, d.queue.Dequeue(ctx, *j.entry)
	}
	ok, err = d.takeOver(ctx, dest, j, del, now)
	return ok, !ok, err
}

// claimNew creates the delivery in state inflight (the dedupe: a conditional create). When it
// exists already, it takes over an inflight delivery whose lease expired (its claimant died);
// otherwise the record was handled (done or queued: ok=false) or is busy under a live lease.
func (d *Deliverer) claimNew(ctx context.Context, dest destination.Destination, j *job) (ok, busy bool, err error) {
	now := d.cfg.Now()
	created, err := d.deliveries.Create(ctx, Delivery{DestinationID: j.destID, RecordID: j.recordID, WebhookID: j.webhookID,
		Kind: j.kind, Status: StatusInflight, Version: 1, LeaseUntil: now.Add(d.lease(dest)), CreatedAt: now, UpdatedAt: now})
	if err != nil || created {
		j.version, j.attempts, j.retries = 1, 0, 0
		return created, false, err
	}
	del, found, err := d.deliveries.Delivery(ctx, j.destID, j.recordID)
	if err != nil || !found {
		return false, false, err
	}
	if del.Status != StatusInflight || del.QueueRef != "" {
		return false, false, nil // delivered, dead, or queued (Tick owns it)
	}
	if now.Before(del.LeaseUntil) {
		return false, true, nil // someone holds a live lease
	}
	ok, err = d.takeOver(ctx, dest, j, del, now)
	return ok, false, err
}

// takeOver leases an existing delivery (conditional on its version).
func (d *Deliverer) takeOver(ctx context.Context, dest destination.Destination, j *job, del Delivery, now time.Time) (bool, error) {
	ok, err := d.deliveries.Lease(ctx, j.destID, j.recordID, del.Version, now.Add(d.lease(dest)), now)
	if err != nil || !ok {
		return false, err
	}
	j.version, j.attempts, j.retries = del.Version+1, del.Attempts, del.Retries
	j.queueRef = del.QueueRef
	if len(j.body) == 0 {
		j.body = del.Body
	}
	if j.webhookID == "" {
		j.webhookID, j.kind = del.WebhookID, del.Kind
	}
	return true, nil
}

// outcome is the result of one attempt (or of a decision not to attempt).
type outcome struct {
	status     string // StatusDelivered, StatusRetrying or StatusDead
	attempted  bool
	statusCode int
	errMsg     string
	latency    time.Duration
	nextAt     time.Time // StatusRetrying
	handoff    bool      // StatusRetrying after an in-batch timeout: uses no step of the schedule
}

// finish records an outcome (the delivery's new state with its queue entry or dead letter, in
// one step conditional on the lease's version), then bumps the counters.
func (d *Deliverer) finish(ctx context.Context, j *job, o outcome, now time.Time) error {
	t := Transition{DestID: j.destID, RecordID: j.recordID, WebhookID: j.webhookID, Kind: j.kind, Version: j.version,
		FromQueue: j.queueRef, Status: o.status, Attempts: j.attempts, Retries: j.retries, LastStatus: o.statusCode,
		LastError: o.errMsg, Latency: o.latency, At: now, Body: j.body, NextAt: o.nextAt, ExpiresAt: now.Add(d.cfg.DeliveredTTL)}
	if o.attempted {
		t.Attempts++
	}
	if o.status == StatusRetrying && o.attempted && !o.handoff {
		t.Retries++
	}
	if err := d.deliveries.Finish(ctx, t); err != nil {
		return err
	}
	if o.status == StatusRetrying && !o.attempted {
		return nil
	}
	counter := map[string]string{StatusDelivered: "delivered", StatusRetrying: "retried", StatusDead: "deadLettered"}[o.status]
	return d.counters.Count(ctx, j.destID, counter)
}

func same(n int, o outcome) []outcome {
	out := make([]outcome, n)
	for i := range out {
		out[i] = o
	}
	return out
}

// send makes one signed request for a chunk.
func (d *Deliverer) send(ctx context.Context, dest destination.Destination, chunk []*job, now time.Time, timeout time.Duration) (webhook.Response, error) {
	payloads := make([]json.RawMessage, len(chunk))
	ids := make([]string, len(chunk))
	for i, j := range chunk {
		payloads[i], ids[i] = j.body, j.recordID
	}
	batched := dest.BatchSize > 1
	body, err := requestBody(payloads, batched)
	if err != nil {
		return webhook.Response{}, err
	}
	id := chunk[0].webhookID
	if batched {
		id = batchWebhookID(dest.ID, ids)
	}
	h := http.Header{}
	for k, v := range dest.Headers {
		h.Set(k, v)
	}
	if err := webhook.Sign(h, dest.Signing, id, now, body, dest.LiveSecrets(now)); err != nil {
		return webhook.Response{}, fmt.Errorf("%w: sign: %v", errPermanent, err)
	}
	return d.client.Do(ctx, webhook.Request{URL: dest.URL, Body: body, Header: h, Timeout: timeout})
}

var errPermanent = errors.New("permanent failure")

// classify turns a response into an outcome. 2xx: delivered. 410: dead, and gone=true (the
// destination gets disabled). 408, 429, 5xx, timeouts and connection errors: retried on the
// schedule (a longer Retry-After wins), dead after the last step. Refused addresses, 3xx
// (redirects are not followed) and other 4xx: dead at once.
func (d *Deliverer) classify(resp webhook.Response, err error, now time.Time, retries int) (o outcome, gone bool) {
	o = outcome{attempted: true, statusCode: resp.StatusCode, latency: resp.Latency}
	retry := false
	var wait time.Duration
	switch {
	case err != nil && (errors.Is(err, webhook.ErrForbiddenAddress) || errors.Is(err, errPermanent)):
		o.attempted = !errors.Is(err, errPermanent)
		o.errMsg = err.Error()
	case err != nil:
		retry, o.errMsg = true, err.Error()
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		o.status = StatusDelivered
		return o, false
	case resp.StatusCode == http.StatusGone:
		o.errMsg, gone = describe(resp), true
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode >= 500:
		retry, o.errMsg = true, describe(resp)
		wait = min(webhook.RetryAfter(resp.Header, now), 24*time.Hour)
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		o.errMsg = describe(resp) + " (redirects are not followed)"
	default:
		o.errMsg = describe(resp)
	}
	if !retry {
		o.status = StatusDead
		return o, gone
	}
	if retries >= len(d.cfg.Schedule) {
		o.status = StatusDead
		o.errMsg = fmt.Sprintf("gave up after %d retries: %s", retries, o.errMsg)
		return o, false
	}
	o.status = StatusRetrying
	o.nextAt = now.Add(max(d.cfg.Schedule[retries], wait))
	return o, false
}

func describe(resp webhook.Response) string {
	body := strings.TrimSpace(string(resp.Body))
	if len(body) > 200 {
		body = body[:200]
	}
	for !utf8.ValidString(body) {
		body = body[:len(body)-1]
	}
	if body == "" {
		return fmt.Sprintf("HTTP %d", resp.StatusCode)
	}
	return fmt.Sprintf("HTTP %d: %s", resp.StatusCode, body)
}

// Redrive moves a destination's dead letters back to the retry queue, due now, each with a
// fresh retry schedule; the next Tick delivers them. recordIDs empty: all of them (up to
// 1000 per call). It returns how many were moved.
func (d *Deliverer) Redrive(ctx context.Context, destID string, recordIDs ...string) (int, error) {
	if len(recordIDs) == 0 {
		var err error
		if recordIDs, err = d.deadLetterIDs(ctx, destID, 1000); err != nil {
			return 0, err
		}
	}
	moved := 0
	for _, id := range recordIDs {
		if err := d.redrive(ctx, destID, id); err != nil {
			return moved, err
		}
		moved++
	}
	return moved, nil
}

// deadLetterIDs lists up to max record ids of a destination's dead letters.
func (d *Deliverer) deadLetterIDs(ctx context.Context, destID string, max int) ([]string, error) {
	var ids []string
	next := ""
	for len(ids) < max {
		dls, n, err := d.dead.DeadLetters(ctx, destID, 100, next)
		if err != nil {
			return nil, err
		}
		for _, dl := range dls {
			ids = append(ids, dl.RecordID)
		}
		if next = n; next == "" {
			break
		}
	}
	return ids, nil
}

// redrive moves one dead letter back to the queue, due at now, with a fresh retry cycle.
func (d *Deliverer) redrive(ctx context.Context, destID, recordID string) error {
	del, ok, err := d.deliveries.Delivery(ctx, destID, recordID)
	if err != nil {
		return err
	}
	if !ok || del.Status != StatusDead {
		return fmt.Errorf("%w: %s/%s", ErrNotDead, destID, recordID)
	}
	if err := d.dead.Redrive(ctx, del, d.cfg.Now()); err != nil {
		return err
	}
	return d.counters.Count(ctx, destID, "redriven")
}

// Deliveries lists a destination's delivery log, most recently updated first. next pages on.
func (d *Deliverer) Deliveries(ctx context.Context, destID string, limit int, next string) ([]Delivery, string, error) {
	return d.deliveries.Deliveries(ctx, destID, clampLimit(limit), next)
}

// Delivery returns one delivery.
func (d *Deliverer) Delivery(ctx context.Context, destID, recordID string) (Delivery, error) {
	del, ok, err := d.deliveries.Delivery(ctx, destID, recordID)
	if err == nil && !ok {
		err = ErrNotFound
	}
	return del, err
}

// DeadLetters lists a destination's dead letters (UndecodableDestination: what could never be
// delivered). next pages on.
func (d *Deliverer) DeadLetters(ctx context.Context, destID string, limit int, next string) ([]DeadLetter, string, error) {
	if destID == UndecodableDestination {
		return d.bad.List(ctx, clampLimit(limit), next)
	}
	return d.dead.DeadLetters(ctx, destID, clampLimit(limit), next)
}

// DeadLetter returns one dead letter with its payload.
func (d *Deliverer) DeadLetter(ctx context.Context, destID, recordID string) (DeadLetter, error) {
	if destID == UndecodableDestination {
		return d.bad.Get(ctx, recordID)
	}
	return d.dead.DeadLetter(ctx, destID, recordID)
}

// Stats returns a destination's counters.
func (d *Deliverer) Stats(ctx context.Context, destID string) (Stats, error) {
	return d.counters.Stats(ctx, destID)
}

func clampLimit(n int) int {
	if n <= 0 || n > 100 {
		return 100
	}
	return n
}
