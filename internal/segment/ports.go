package segment

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"time"

	"github.com/serverless-cdp/cdp/internal/activations"
	"github.com/serverless-cdp/cdp/internal/predict"
	"github.com/serverless-cdp/cdp/internal/stream"
)

// Ports: what the segments stage needs from its stores. The DynamoDB adapter (Store, store.go)
// and the in-memory one (MemStore, mem.go) implement them; conformance_test.go holds the one
// suite both pass.

// ErrConflict means a conditional write lost a race; the caller re-reads and retries.
var ErrConflict = errors.New("segment: concurrent update")

// ErrNotFound is returned for an unknown definition.
var ErrNotFound = errors.New("segment: not found")

// StateStore keeps each profile's state with its outbox (the activation records its last commit
// left to publish, kept in the state item itself), and the items derived from the state: the
// profile registry (backfill, preview), audience member lists and the next-change-time schedule
// Tick reads (no scan).
type StateStore interface {
	// Load reads a profile's state (Snapshot.State is nil when none is stored) and the outbox
	// its last commit left. consistent asks for a strongly consistent read; otherwise the
	// snapshot may be an older version, or none although one is stored (DynamoDB's eventually
	// consistent read, half the price): a Commit based on it fails with ErrConflict, but a
	// decision to write nothing must not be taken on it (see Handler.processOnce).
	Load(ctx context.Context, profileID string, consistent bool) (*Snapshot, error)
	// Commit stores the states, each only if its stored version is still State.Ver (0: none
	// stored), and each with its outbox (replacing the outbox stored with the previous
	// version: an empty Outbox clears it) under version Ver+1: all or nothing, ErrConflict when
	// a version moved. A state or outbox encoded over limit bytes is refused with ErrTooLarge
	// and nothing is written. The derived items follow from each Write's Was (idempotently, not
	// necessarily atomically with the states). A single write whose derived items do not
	// change is one conditional put; only writes that must change several items together use a
	// transaction. Commit records each stored encoding in its Write (for Handler's cache).
	Commit(ctx context.Context, ws []Write, limit int) error
	// Due lists, from one schedule shard (0..schedShards-1), up to limit profiles whose next
	// change falls in a minute at or before now's, earliest first.
	Due(ctx context.Context, shard int, now time.Time, limit int) ([]string, error)
	// Unschedule removes a profile's schedule entry.
	Unschedule(ctx context.Context, profileID string) error
	// Profiles lists registered profiles of one registry shard (0..regShards-1) in id order,
	// up to limit, after cursor ("" from the start; see cursorAfter); next is "" at the end.
	Profiles(ctx context.Context, shard int, limit int, cursor string) (ids []string, next string, err error)
	// Members lists an audience's current members, up to limit, after next (a token from a
	// previous call; a malformed one is a *ValidationError).
	Members(ctx context.Context, audienceID string, limit int, next string) ([]Member, string, error)
	// Size counts an audience's current members.
	Size(ctx context.Context, audienceID string) (int, error)
	// DeleteMember removes one member item.
	DeleteMember(ctx context.Context, audienceID, profileID string) error
}

// DefinitionStore keeps computed traits, audiences and their backfill jobs.
type DefinitionStore interface {
	// LoadDefinitions reads every definition and job.
	LoadDefinitions(ctx context.Context) (*Definitions, error)
	// PutTrait stores a computed trait if the stored version is t.Version-1 (none stored for
	// version 1), with its backfill job when j is not nil, atomically; ErrConflict otherwise.
	PutTrait(ctx context.Context, t *ComputedTrait, j *Job) error
	// PutAudience is PutTrait for an audience.
	PutAudience(ctx context.Context, a *Audience, j *Job) error
	// PutJob stores a job's progress if the stored job is for the same definition version
	// (ErrConflict when it was restarted for another version, or removed).
	PutJob(ctx context.Context, j *Job) error
	// DeleteTrait removes a computed trait, its job, its model and its training run;
	// ErrNotFound when there is none.
	DeleteTrait(ctx context.Context, id string) error
	// DeleteAudience removes an audience and its job; ErrNotFound when there is none.
	DeleteAudience(ctx context.Context, id string) error
}

// Stores is everything the handler and the service read and write.
type Stores interface {
	StateStore
	DefinitionStore
	PersonalStore
	TrainingStore
}

// Publisher writes to the activations stream (stream.Publisher).
type Publisher interface {
	Put(ctx context.Context, recs []stream.Record) error
}

// Snapshot is a profile as loaded: its state (nil: none) and its unpublished outbox by the
// version that wrote it (at most the stored version's; an adapter may add outboxes an older
// layout kept apart, which the next commit removes). It remembers the memberships and next
// change time the stored derived items reflect, so a commit updates only what changed even
// though the caller modifies State in place.
type Snapshot struct {
	State   *State
	Outbox  map[int64][]activations.Record
	members map[string]bool
	nextAt  time.Time
	data    []byte  // the stored encoding of State (nil: unknown), kept by Handler's cache
	legacy  []int64 // versions of outboxes stored as items of their own (before v12), deleted by the next commit
}

// NewSnapshot records a loaded state (nil: none) and its outboxes.
func NewSnapshot(st *State, outbox map[int64][]activations.Record) *Snapshot {
	s := &Snapshot{State: st, Outbox: outbox, members: map[string]bool{}}
	if s.Outbox == nil {
		s.Outbox = map[int64][]activations.Record{}
	}
	if st != nil {
		s.nextAt = st.NextAt
		for _, id := range st.InAudiences() {
			s.members[id] = true
		}
	}
	return s
}

// Write is one profile's state change within a Commit.
type Write struct {
	State  *State // State.Ver is the version read (0: new); stored as Ver+1
	Was    *Snapshot
	Outbox []activations.Record // stored with version State.Ver+1 until the next commit
	stored []byte               // set by Commit: the encoding of State it stored
}

// Job is the backfill of one definition over existing profiles.
type Job struct {
	DefinitionID string    `json:"definitionId"`
	Version      int64     `json:"version"` // the definition version being backfilled
	Status       string    `json:"status"`  // computing | live
	Shard        int       `json:"shard"`   // registry shard in progress
	Cursor       string    `json:"cursor,omitempty"`
	Processed    int       `json:"processed"`
	StartedAt    time.Time `json:"startedAt"`
	FinishedAt   time.Time `json:"finishedAt,omitzero"`
}

// Definitions are every stored definition and backfill job, and the predictive traits'
// published models and latest training runs.
type Definitions struct {
	Traits    []*ComputedTrait
	Audiences []*Audience
	Jobs      map[string]*Job           // by definition id
	Models    map[string]*predict.Model // by trait id
	Trainings map[string]*Training      // by trait id
}

// Member is one current member of an audience.
type Member struct {
	ProfileID string    `json:"profileId"`
	EnteredAt time.Time `json:"enteredAt"`
}

// Partitioning shared by the adapters.
const (
	regShards   = 16 // profile registry shards
	schedShards = 4  // schedule shards
	schedLayout = "2006-01-02T15:04Z"
)

func shardOf(pid string, shards uint32) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(pid))
	return int(h.Sum32() % shards)
}

func regShard(pid string) string { return strconv.Itoa(shardOf(pid, regShards)) }

// minute is the schedule bucket of t: t rounded up to the minute, so a bucket is processed
// only once the change it stands for can be seen.
func minute(t time.Time) time.Time {
	m := t.UTC().Truncate(time.Minute)
	if m.Before(t) {
		m = m.Add(time.Minute)
	}
	return m
}

// schedKey orders schedule entries: minute bucket, then profile id.
func schedKey(pid string, bucket time.Time) string {
	return bucket.UTC().Format(schedLayout) + "#" + pid
}

// dueBefore is the schedule key bound of Due: entries below it are due at now.
func dueBefore(now time.Time) string {
	return now.UTC().Truncate(time.Minute).Add(time.Minute).Format(schedLayout)
}

// Page tokens are the last listed sort key, base64url-encoded; a Profiles cursor's sort key is
// the profile id, so cursorAfter(id) resumes a listing after id.
func pageToken(sk string) string { return base64.RawURLEncoding.EncodeToString([]byte(sk)) }

func cursorAfter(pid string) string { return pageToken(pid) }

func parseToken(token string) (string, error) {
	sk, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return "", &ValidationError{Field: "next", Message: "is not a valid page token"}
	}
	return string(sk), nil
}

// derived is how a Write changes the items derived from a profile's state.
type derived struct {
	register, unregister bool
	enter                map[string]time.Time // audiences entered (member items to put), by id
	exit                 []string             // audiences whose member item to delete
	schedule             time.Time
	unschedule           bool
}

func deriveWrite(w Write) derived {
	var d derived
	st := w.State
	d.register = st.Ver == 0
	d.unregister = st.MergedInto != "" && st.Ver != 0
	now := map[string]bool{}
	for _, id := range st.InAudiences() {
		now[id] = true
		if !w.Was.members[id] {
			if d.enter == nil {
				d.enter = map[string]time.Time{}
			}
			d.enter[id] = st.Members[id].EnteredAt
		}
	}
	for id := range w.Was.members {
		if !now[id] {
			d.exit = append(d.exit, id)
		}
	}
	var oldB, newB time.Time
	if !w.Was.nextAt.IsZero() {
		oldB = minute(w.Was.nextAt)
	}
	if !st.NextAt.IsZero() {
		newB = minute(st.NextAt)
	}
	switch {
	case oldB.Equal(newB):
	case newB.IsZero():
		d.unschedule = true
	default:
		d.schedule = newB
	}
	return d
}

// encodeWrite encodes a write's state and outbox (nil when empty), refusing either over limit
// bytes, or both together over what one item holds, with ErrTooLarge.
func encodeWrite(w Write, limit int) (state, outbox []byte, err error) {
	state, err = encodeState(w.State)
	if err != nil {
		return nil, nil, err
	}
	if len(state) > limit {
		return nil, nil, fmt.Errorf("profile %s: state of %d bytes: %w (limit %d)", w.State.ProfileID, len(state), ErrTooLarge, limit)
	}
	if len(w.Outbox) == 0 {
		return state, nil, nil
	}
	outbox, err = encodeOutbox(w.Outbox)
	if err != nil {
		return nil, nil, err
	}
	if len(outbox) > limit || len(state)+len(outbox) > maxItemData {
		return nil, nil, fmt.Errorf("profile %s: outbox of %d bytes with a state of %d: %w (limit %d, %d together)",
			w.State.ProfileID, len(outbox), len(state), ErrTooLarge, limit, maxItemData)
	}
	return state, outbox, nil
}
