// Package activation delivers the records of the `activations` stream (internal/activations)
// to destinations as signed webhooks.
//
// Flow: HandleKinesis reads a batch of the activations stream, builds each destination's
// Segment-shaped payload (Payload), and delivers every destination concurrently. A record with
// a DestinationID (a replay into one destination) goes to that destination only, and only if
// it subscribes to it. A stream
// record that can never be delivered (undecodable, an id over MaxRecordIDBytes, a payload that
// cannot be built or is over MaxPayloadBytes, a delivery the table refuses) goes alone to the
// shared dead-letter store (shown as the dead letters of UndecodableDestination), with its
// reason; the rest of the batch goes on. Tick (every minute) drains what is due from the queue;
// after the last step of the schedule a message moves to its destination's dead letters, which
// Redrive puts back on the queue.
//
// Isolation guarantee: a slow, hung or failing destination never delays another destination or
// the next batch by more than a bounded time. Within a batch each destination has at most
// Config.Concurrency requests in flight (errgroup lanes: one per profile, in order, or one per
// request when batching); every attempt made from the stream is bounded by
// Config.InBatchTimeout (1 s) and none starts after Config.InBatchWindow (2 s). What a
// destination does not take in time is handed to the retry queue, due at once, and Tick
// delivers it with the full timeout (an in-batch timeout uses no step of the schedule). After an
// in-batch timeout, the destination's stream messages go straight to the queue for
// Config.Cooldown (30 s). Nothing is dropped: each message keeps its delivery item until it is
// delivered or dead-lettered.
//
// Deadlines: HandleKinesis and Tick plan (internal/budget) from ctx.Deadline() less
// Config.Reserve: no claim and no attempt that could end past it starts; stream records not
// claimed are batch item failures, queue entries not attempted stay queued. Outcomes (attempt counts, queue entries, dead
// letters) are written on context.WithoutCancel with Config.BookkeepingTimeout, so an attempt
// made is always recorded.
//
// Exactly once per destination, as far as HTTP allows: each (record, destination) pair has one
// delivery item, created with a conditional put (the dedupe of at-least-once input); every later
// state change is conditional on the item's version, taken under a lease. A claimant that dies
// mid-attempt leaves an inflight item whose lease expires; the Kinesis retry (or the next Tick
// for a queued one) takes it over. webhook-id is derived from record ID + destination ID and
// stays the same across retries and redrives, so a receiver can drop the rare duplicate (an
// attempt whose 2xx was lost).
//
// Keys in the shared table (see internal/store):
//
//	pk DELIV#<dest>        sk REC#<record>          the delivery: status (inflight, retrying,
//	                                                 delivered, dead, filtered_consent), attempts, retries, last
//	                                                 status/error, latency, version, lease; the
//	                                                 payload while it may be resent; ttl 7 days
//	                                                 once delivered (the dedupe window)
//	  gsi1pk DELIVLOG#<dest> gsi1sk <updatedAt>#<record>   the delivery log, newest first
//	pk RETRY#<yyyymmddhhmm> sk <dueMs>#<dest>#<record> the retry queue, one partition per due
//	                                                 minute, so a drain reads only due buckets
//	pk RETRYBUCKETS        sk <yyyymmddhhmm>         index of buckets that may hold entries
//	pk DEADLTR#<dest>      sk <record>               dead letters with payload and last error
//
// What can never be delivered (an undecodable stream record, a message whose delivery state the
// table refuses) goes to the shared dead-letter store (internal/deadletter, stage "activation",
// any size), shown by the admin API as the dead letters of UndecodableDestination.
//
// Ports (ports.go): DeliveryLog, Queue, DeadLetterStore and Counters, implemented together by
// NewDynamoStore and NewMemStore (Finish and Redrive span them atomically); BadRecords
// (NewSharedBadRecords, NewMemBadRecords); Destinations; Sender. One conformance suite per port
// runs against the in-memory implementation (untagged) and DynamoDB Local (tag integration).
//
//	pk DELIVSTATS#<dest>   sk STATS                  counters: delivered, retried,
//	                                                 deadLettered, redriven, filteredConsent,
//	                                                 droppedErased
//
// Privacy: a destination's consentCategories/requireConsent gate each message (consent.Allows:
// a forwarded event by its own context.consent, audience and trait messages by the profile's
// stored consent); a message not allowed gets a final filtered_consent delivery (no payload)
// and is counted. With Config.Erased, records about erased profiles are dropped before any
// delivery is written. Outcome writes are conditional on the delivery existing (ErrGone), so
// an erase never comes undone. DeliveriesHolder (holder.go) finds a person's deliveries by
// record id prefix (activations.ProfilePrefixes) and exports or erases them with their queue
// entries and dead letters; Notify (notify.go) sends Privacy Request notices and stores nothing.
//
// Responses: 2xx delivered; 410 dead-letters the message and disables the destination; 408, 429,
// 5xx, timeouts and connection errors are retried (DefaultSchedule, Retry-After honoured); 3xx
// (redirects are never followed, see internal/webhook), other 4xx and refused addresses are
// permanent failures (dead letter at once).
package activation
