package replay

import (
	"github.com/serverless-cdp/cdp/internal/store"
	"github.com/serverless-cdp/cdp/internal/store/docs"
)

// Keys in the shared table.
const (
	jobsPK     = "REPLAY"     // every job: sk JOB#<id>
	jobSK      = "JOB#"       //
	pendingGSI = "REPLAYPEND" // gsi1pk of a job not yet completed or failed (sparse)
)

// DynamoStore is the JobStore on the shared table: one versioned document per job
// (internal/store/docs; its JSON is under 4 KB: one read unit and at most four write units per
// save). List is newest first, Pending reads only unfinished jobs.
type DynamoStore struct{ *docs.Dynamo[Job] }

var _ JobStore = (*DynamoStore)(nil)

var jobKind = docs.Kind[Job]{
	Name: "replay job", PK: jobsPK, SKPrefix: jobSK, PendingGSI: pendingGSI,
	ID: func(j *Job) string { return j.ID }, Terminal: func(j *Job) bool { return j.Terminal() },
	Version: func(j *Job) *int { return &j.Version }, Clone: Job.clone, NotFound: ErrNotFound, Conflict: ErrConflict,
}

// NewDynamoStore returns the store on the named table.
func NewDynamoStore(db store.Client, table string) *DynamoStore {
	return &DynamoStore{docs.NewDynamo(db, table, jobKind)}
}
