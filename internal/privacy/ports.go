// Package privacy runs privacy requests — delete, suppress, suppress_with_delete, unsuppress,
// export — over every store that keeps data about a person. Each store is a Holder; the
// composition root passes the one list of holders, and export and delete walk the same list, so
// what export returns and what delete erases cannot drift apart.
//
// The package owns the ports below; the stages implement them (identity: Resolver and a Holder;
// segments, activation, the pipeline dead letters: Holders; activation: Notifier; blocklist:
// Blocklist). It imports none of them.
//
// Requests are run by a Runner, step by step (resolve, suppress, block, wait, erase — one
// holder per step —, notify; or unsuppress; or export), each step idempotent and its outcome
// persisted in the request before the next, so a crash or a timeout resumes where it stopped.
// A holder whose data can arrive late (Lagging: the archive behind Firehose's buffer) is
// erased once more by the schedule after its lag, as a follow-up of the completed request.
// Submit (Service) runs a new request inline for a while; Runner.Run, on a schedule, finishes
// the rest.
//
// Keys in the shared table (RequestStore's DynamoDB adapter):
//
//	PRIVREQ / REQ#<id>        one item per request (the audit log): its JSON document ("doc",
//	                          or "docz" gzip-compressed above 64 KB), version "v", "status";
//	                          while not completed or failed, or while a follow-up erase is
//	                          pending (Request.Settled), also gsi1pk PRIVPEND / gsi1sk <id>
//	                          (a sparse index entry: Pending reads only unsettled requests).
//	                          Ids ("pr_" + base-36 milliseconds + 12 random characters) sort
//	                          by creation, so List (newest first) is one query.
//	PRIVEXP#<id> / HEAD       an export result's head: the number of parts, "ttl".
//	PRIVEXP#<id> / PART#nnnn  the export document, gzip-compressed, in parts of 350 KB, with
//	                          the same "ttl" (7 days by default), written before the head.
//
// A request holds its identifiers in cleartext (and the person they resolved to) only while it
// runs; on completion or failure only masked labels (blocklist.Mask) and keyed hashes
// (blocklist.Hasher) remain, which is what ListAbout and follow-up erases match.
package privacy

import (
	"context"
	"time"
)

// Request types.
const (
	TypeDelete             = "delete"
	TypeSuppress           = "suppress"
	TypeSuppressWithDelete = "suppress_with_delete"
	TypeUnsuppress         = "unsuppress"
	TypeExport             = "export"
)

// Request statuses.
const (
	StatusPending   = "pending"
	StatusRunning   = "running"
	StatusCompleted = "completed"
	StatusFailed    = "failed"
)

// Person is everything that identifies one person in the stores.
type Person struct {
	// Profiles are the profiles the identifiers resolve to (the survivors) and every profile
	// merged into them, transitively.
	Profiles []string
	// Identifiers are "type:value", normalized as the identity stage normalizes them (trimmed,
	// emails lower-cased): the ones the request named and every one the profiles hold.
	Identifiers []string
	// Hashes are the keyed hashes (IdentifierHash) of the person's identifiers. A follow-up
	// erase (Lagging) runs after the request completed and was scrubbed: Profiles and
	// Identifiers are then empty, and the holder matches its data by Hashes.
	Hashes []string `json:",omitempty"`
	// Since, when not zero, bounds the erase to data that arrived at or after it: a follow-up
	// erase only needs what can have landed since the first. Holders that do not know when
	// their data arrived ignore it.
	Since time.Time `json:",omitzero"`
}

// Resolver finds the person a request names. The identity stage implements it.
type Resolver interface {
	// Resolve normalizes identifiers and returns the person they name: the union over all of
	// them (one request may name several). An unknown identifier is kept in Identifiers, with
	// no profile, so that suppression still covers it. An identifier that is not "type:value"
	// within the key limits is an error the caller reports as bad input.
	Resolve(ctx context.Context, identifiers []string) (Person, error)
}

// Holder is one store of data about people (identity's profiles and timelines, the segments
// stage's state and memberships, deliveries, dead letters, the privacy requests themselves…).
type Holder interface {
	// Name names the holder in request results, e.g. "identity".
	Name() string
	// Export calls emit with every item the holder keeps about the person, each under its kind
	// (e.g. "events", "traits"), JSON-encodable.
	Export(ctx context.Context, p Person, emit func(kind string, item any) error) error
	// Erase deletes every item the holder keeps about the person and returns how many items of
	// each kind it erased — the same kinds, and for data at rest the same counts, that Export
	// emits. It is idempotent (erasing again erases 0) and may be called again after a partial
	// run (a cancelled context): it then erases the rest.
	Erase(ctx context.Context, p Person) (map[string]int, error)
}

// Lagging is a Holder whose data about a person can still arrive after it was erased: the
// archive, which Firehose writes from the events stream after buffering for up to 15 minutes,
// receives events that were in the buffer when the erase ran. A delete erases such a holder
// once more (a follow-up) Lag after its first erase began, with a Person that holds only
// Hashes and Since (the request is scrubbed by then).
type Lagging interface {
	Holder
	// Lag is how long after an erase began data about the person can still land in the
	// holder (0: none, no follow-up).
	Lag() time.Duration
}

// Notifier sends the signed `Privacy Request` webhook to every destination subscribed to
// privacy notices. The activation stage implements it.
type Notifier interface {
	// Notify delivers n to each subscribed destination and returns one outcome per destination.
	// It is idempotent per (n.RequestID, destination): the webhook-id is derived from them.
	Notify(ctx context.Context, n Notice) ([]NoticeOutcome, error)
}

// Notice is what a Privacy Request webhook says.
type Notice struct {
	RequestID   string
	Type        string   // delete, suppress_with_delete, …
	Identifiers []string // "type:value", as the request named them and as the profiles held them
	At          time.Time
}

// NoticeOutcome is the result of one destination's notice.
type NoticeOutcome struct {
	DestinationID string `json:"destinationId"`
	Status        string `json:"status"` // delivered, failed (will be retried by the next run), dead (refused for good)
	Error         string `json:"error,omitempty"`
}

// Blocklist is the write side of the list every stage checks (package blocklist implements it):
// keyed hashes (HMAC) of suppressed identifiers, and of erased profiles so that records still in
// flight about them are dropped.
type Blocklist interface {
	// Suppress adds the identifiers under group (the request id), with masked labels for
	// display (labels[i] belongs to identifiers[i]). Idempotent.
	Suppress(ctx context.Context, group string, identifiers, labels []string) error
	// Unsuppress removes every group that holds any of the identifiers and returns how many
	// identifiers it removed.
	Unsuppress(ctx context.Context, identifiers []string) (int, error)
	// BlockProfiles adds erased profiles under group; their entries expire after ttl (longer
	// than a record can stay in the streams). Idempotent.
	BlockProfiles(ctx context.Context, group string, profiles []string, ttl time.Duration) error
	// PropagationDelay is how long after a change every stage is certain to see it.
	PropagationDelay() time.Duration
}

// SuppressionGroup is one suppression as the blocklist lists it: the request that made it
// (its id is the group) and the masked labels of the identifiers it holds.
type SuppressionGroup struct {
	Group     string    `json:"group"`
	Labels    []string  `json:"labels"`
	CreatedAt time.Time `json:"createdAt"`
}

// Suppressions is the read side of the suppression list the admin API shows (package blocklist
// implements it).
type Suppressions interface {
	// Suppressions lists the suppressed groups.
	Suppressions(ctx context.Context) ([]SuppressionGroup, error)
	// DroppedBySource counts, per source id, the events dropped because they carried a
	// suppressed identifier.
	DroppedBySource(ctx context.Context) (map[string]int64, error)
}
