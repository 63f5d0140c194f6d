// Package identity is the identity-resolution stage of the CDP: it turns the events stream into
// unified profiles. For each Kinesis batch it re-checks every record against the key limits
// (CheckRecord; a bad record is dead-lettered alone), dedupes messages by source and messageId, extracts and
// normalises identifiers, resolves them against the identity graph with Segment's flat matching
// under per-type rules (priority, limit, blocked values), merges profiles, keeps traits (per
// trait, the newest event wins), metadata, a timeline and a merge log, and emits one `changes`
// record (internal/change) per surviving profile touched.
//
// Every committed event gets a stamp (change.Stamp): the profile it is committed to (the
// survivor) and the next number of that profile's sequence, whose counter (Profile.Seq) is
// written before or with the event (see Consistency); the stamp is stored with the event and
// sent with it (change.Record.Stamps). No number is given twice; a number allocated to an event
// found stored already is sent as void (change.Record.Void), and one allocated by a write
// interrupted before its event was stored is never sent (a gap consumers tolerate).
//
// A message already processed (a redelivery) changes nothing, but it is emitted again in the
// change record of the profile it went to (following merges), with the event as stored, its
// original stamp and the profile's current state. So when a batch's change records were lost (publishing and
// dead-lettering both failed, the handler returned an error and Lambda retries the batch), the
// retry re-emits them. Consumers dedupe events by messageId, so re-emitting is harmless.
//
// # Storage (single table, see internal/store)
//
//	pk                          sk                          what
//	ID#<type>:<value>           ID                          identity index: profile = the profile the identifier was
//	                                                        attached to (write-once; follow mergedInto to the survivor)
//	PROFILE#<id>                PROFILE                     profile: version (optimistic lock), data (JSON, or dataz:
//	                                                        gzip JSON above 900 bytes), mergedInto for merged-away ones
//	PROFILE#<id>                LOG#<processedAt>#<msgId>   merge-log line: what one message did (create, attach,
//	                                                        merge, drop, blocked, refused), with identifiers,
//	                                                        profiles, refused trait keys and rule
//	MSGSRC#<h>                  MSG                         the event: dedupe marker and timeline item in one;
//	                                                        h = hash of sourceId and messageId; gsi1pk PROFILE#<id>,
//	                                                        gsi1sk EVT#<timestamp>#<h>, ttl = processing time +
//	                                                        retention (≥ 24 h), seq (its stamp's number); the
//	                                                        layout is internal/timeline's (which also reads it)
//	MSG#<messageId>             MSG                         the same, written before dedupe was per source (still
//	                                                        read as a dedupe marker for its source, and on timelines)
//	RULES                       IDENTITY                    identity rules (RulesService)
//	ATTEMPT#identity#<h>        ATTEMPT                     failure count of a message, ttl 7 days
//
// Dead letters live under the deadletter package's keys (DLQ#identity).
//
// # Consistency
//
// The effects of the records that touch one set of profiles (a component) commit together.
// When they change the identity graph — a new profile, new index entries, a merge, or a
// decision for the merge log — they commit in one TransactWriteItems: the profiles (condition:
// version unchanged, or not existing), new index items (condition: not existing), the event
// items (condition: messageId not processed) and the merge-log lines. A failed condition means
// another writer got there first: the component's records are re-read (strongly consistent) and
// re-planned. So two writers merging overlapping profiles serialise on the profile versions,
// keeping limits and losing no identifier.
//
// The usual component is one stored profile and its new events, nothing else; it is written by
// GraphStore.Append without a transaction (a single write costs half): first the profile
// (condition: version unchanged; a failure re-plans, nothing written), which takes the stamps
// s+1..s+k for its k events, then each event item (condition: not existing), in parallel. An
// event whose put fails its condition was stored before (a redelivery this Lambda did not
// commit): it is a duplicate, re-emitted with its original stamp (returned by the failed put),
// its allocated stamp is sent as void, and the profile's event count, which counted it again,
// is corrected by a second, version-conditioned write (re-applying its traits changed nothing:
// a trait only changes to a value from a newer event). An event stored once is never stored
// again, so a consumer deduping by stamp counts each event once. If the process dies between the
// profile's write and an event's (or an event's put fails), that event is not stored, its record
// is retried, and the redelivery stores it with a new stamp; the allocated one is never used, a
// permanent gap in the segments stage's dedupe map for that profile (bounded, oldest dropped;
// harmless for counts), and the profile's event count stays one too high for it unless the put
// certainly wrote nothing (throttled, refused), which is corrected at once.
//
// Merged profiles leave a pointer (mergedInto); the survivor lists them (MergedFrom) and reads of
// its timeline and merge log cover their partitions too.
//
// # Request units
//
// Reads are batched (BatchGetItem for markers, identifiers and profiles) and, on a first
// attempt, eventually consistent, since the write conditions catch stale reads; a first attempt
// reads no dedupe markers at all (a redelivered message fails its event's put condition: in a
// transaction, the re-planning round reads the markers consistently; in an Append, the failed
// put returns the stored event). A warm processor keeps index entries (write-once) and profiles
// (by version) in a bounded cache (cache.go), so the next events of known people read nothing.
// All changes to a profile within a batch are coalesced into one profile write; the dedupe
// marker is the timeline item, so each event is one item (its message compressed above 512
// bytes); large profile documents are compressed. A transaction costs 2 write units per KB per
// item, a single put 1: a batch's event of a known profile costs 2 (profile and event, each
// under 1 KB), plus the event's GSI copy. A component grows to at most 100 items (the
// transaction limit); beyond that the batch is committed in rounds. A duplicate costs one
// failed transaction and the consistent re-read of its component, or in an Append one failed
// put and the event-count correction; the stored event comes with its marker (charged by item
// size whatever the projection).
package identity
