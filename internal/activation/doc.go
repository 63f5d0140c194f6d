// Delivery to destinations (everything in this package but record.go).
//
// Flow: HandleKinesis reads a batch of the activations stream, builds each destination's
// Segment-shaped payload (Payload), and delivers every destination concurrently, each with its
// own request timeout; a destination that fails does not delay the others, and its failed first
// attempts go to the retry queue instead of holding the shard. Tick (every minute) drains what is
// due from the queue; after the last step of the schedule a message moves to its destination's
// dead letters, which Redrive puts back on the queue.
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
//	                                                 delivered, dead), attempts, retries, last
//	                                                 status/error, latency, version, lease; the
//	                                                 payload while it may be resent; ttl 7 days
//	                                                 once delivered (the dedupe window)
//	  gsi1pk DELIVLOG#<dest> gsi1sk <updatedAt>#<record>   the delivery log, newest first
//	pk RETRY#<yyyymmddhhmm> sk <dueMs>#<dest>#<record> the retry queue, one partition per due
//	                                                 minute, so a drain reads only due buckets
//	pk RETRYBUCKETS        sk <yyyymmddhhmm>         index of buckets that may hold entries
//	pk DEADLTR#<dest>      sk <record>               dead letters with payload and last error;
//	                                                 DEADLTR#_undecodable keeps stream records
//	                                                 that could not be decoded
//	pk DELIVSTATS#<dest>   sk STATS                  counters: delivered, retried,
//	                                                 deadLettered, redriven
//
// Responses: 2xx delivered; 410 dead-letters the message and disables the destination; 408, 429,
// 5xx, timeouts and connection errors are retried (DefaultSchedule, Retry-After honoured); 3xx
// (redirects are never followed, see internal/webhook), other 4xx and refused addresses are
// permanent failures (dead letter at once).
package activation
