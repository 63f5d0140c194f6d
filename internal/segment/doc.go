// Package segment is the segments stage: computed traits and real-time audiences.
//
// It consumes the `changes` stream (one change.Record per profile touched), keeps a compact
// per-profile state (an accumulator per computed trait and event condition — aggregate.go, whose
// size depends on the definitions, not on the profile's history — a dedupe map of the events
// applied by their stamps — dedupe.go — current traits, computed trait values, audience
// memberships), builds the accumulators of new definitions from identity's timeline (History,
// history.go), recomputes only the computed traits and audiences an input can affect (the
// definitions are indexed by the event names, trait keys, computed traits and audiences they
// reference), and publishes transitions to the `activations` stream. Windowed conditions that can
// change with no new event are re-evaluated from a per-minute schedule driven by Tick.
//
// Faults: a change record that cannot be decoded, and the records of a profile the stores refuse
// for good (state over Options.MaxStateBytes, a value DynamoDB rejects, an activation record
// over Kinesis's 1 MiB), go to the dead letters each on its own (limits.go); the rest of the
// batch goes on. Handle, Tick and backfills plan (internal/budget) from
// ctx.Deadline() less Options.Reserve and start no profile after it; dead letters and backfill
// progress are written on context.WithoutCancel with Options.BookkeepingTimeout.
//
// Layers: package segmentdef (definitions and their validation; definitions.go aliases them),
// compute.go/condition.go (pure evaluation over a profile's state), index.go (which definitions an input touches),
// engine.go (one profile's evaluation: transitions and activation records), ports.go (the
// stores the stage depends on: StateStore with its outbox and derived indexes, DefinitionStore,
// Publisher, DeadLetters), store.go (their DynamoDB adapter; outbox.go: the outbox in the state
// item), cache.go (the in-process state cache), publish.go (grouped stream puts), mem.go (their in-memory
// implementation; conformance_test.go is the one suite both pass), handler.go (Kinesis handler
// and Tick), privacy.go/privacy_store.go (the privacy holder, tombstones),
// service.go/backfill.go (admin operations, reading, preview, backfill jobs),
// features.go/predictive.go (the predictive traits' features and scores), train_run.go,
// service_train.go and model_store.go/mem_model.go (training runs, models, TrainingStore).
//
// Tests: `go test ./internal/segment` runs everything on the in-memory stores, with no
// emulator; with `-tags integration` the same handler tests and the conformance suite run on
// DynamoDB Local and kinesis-mock.
//
// Keys owned in the shared table:
//
//	SEGDEF / CT#<id>                 a computed trait definition
//	SEGDEF / AUD#<id>                an audience definition
//	SEGDEF / JOB#<id>                the backfill job of a definition (status, progress, cursor)
//	SEGDEF / MODEL#<traitId>         a predictive trait's published model (`blob`: gzipped JSON, ≤ 350 KB)
//	SEGDEF / TRAIN#<traitId>         its latest training run (Training, `ver` for optimistic locking)
//	PSEGTRAIN#<traitId>#<runId> / C#<n>  chunk n of the features a run collected (`blob`: gzipped JSON
//	                                 of predict.Profile, no profile id, ≤ 300 KB; `ttl` 3 days)
//	PSEG#<profileId> / STATE         the profile's segment state (gzipped JSON, `ver` for optimistic locking)
//	                                 and `out`: the activation records its last commit produced (JSON,
//	                                 gzipped when large), replaced by the next commit, re-published by a
//	                                 process that loads them without having published them (outbox.go)
//	PSEG#<profileId> / OUT#<ver>     an outbox item of the layout before v12: loaded, published, and
//	                                 deleted by the profile's next commit
//	PSEGIDX#<n> / <profileId>        registry of profiles with state, n = hash(profileId) % 16 (backfill, preview)
//	AUD#<audienceId> / M#<profileId> a current member (enteredAt)
//	SEGSCHED#<profileId> / NEXT      when to re-evaluate the profile: gsi1pk SEGSCHED#<n> (n = hash % 4),
//	                                 gsi1sk <minute, UTC>#<profileId>; Tick queries gsi1sk < the next minute
//	SEGSTATS / DROPPED               `erased`: change records dropped because their profile was erased
//
// Privacy (privacy.go): Holder exports and erases what the stage keeps about a person's
// profiles; an erased profile's STATE item becomes a tombstone (`erased`, version+1, `ttl` 8
// days) so that nothing still in flight brings it back.
package segment
