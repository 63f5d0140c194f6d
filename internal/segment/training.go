package segment

import (
	"time"

	"github.com/serverless-cdp/cdp/internal/predict"
)

// Training run statuses.
const (
	TrainQueued     = "queued"     // asked for (admin API or the weekly schedule), not started
	TrainCollecting = "collecting" // reading the profiles' features, page by page (resumable)
	TrainFitting    = "fitting"    // fitting, backtesting and computing the percentiles
	TrainPublished  = "published"  // the model is stored; a backfill rescores every profile
	TrainRefused    = "refused"    // not enough data (Reason says which counts fell short)
	TrainFailed     = "failed"     // an error (Reason); the previous model, if any, stays
)

// DefaultRetrainEvery is how often the schedule retrains a predictive trait.
const DefaultRetrainEvery = 7 * 24 * time.Hour

// RetryFailedAfter is how long after a failed run the schedule retries it (doubling with each
// consecutive failure).
const RetryFailedAfter = time.Hour

// DefaultRescoreEvery is how often the schedule re-scores every profile of a predictive trait
// with its published model (through the trait's backfill job), between retrains.
const DefaultRescoreEvery = 24 * time.Hour

// Training is the latest training run of one predictive computed trait.
type Training struct {
	TraitID string `json:"traitId"`
	RunID   string `json:"runId"`
	// TraitVersion is the definition version the run trains (an edit restarts the run).
	TraitVersion int64  `json:"traitVersion"`
	Status       string `json:"status"`
	Reason       string `json:"reason,omitempty"`
	// Trigger is "schedule", "api" or "retry" (of a failed run).
	Trigger string `json:"trigger"`
	// Failures counts the consecutive failed runs before this one (and this one once it
	// failed): a failed run is retried after RetryFailedAfter, doubling with each failure, at
	// most the retrain period.
	Failures int `json:"failures,omitempty"`
	// Shard and Cursor are where collecting resumes in the profile registry; Profiles counts
	// the profiles collected so far, Chunks the stored chunks of their features.
	Shard    int    `json:"shard"`
	Cursor   string `json:"cursor,omitempty"`
	Profiles int    `json:"profiles"`
	Chunks   int    `json:"chunks"`
	// Cost of the run so far: DynamoDB read and write request units, and time spent.
	ReadUnits  float64       `json:"readUnits"`
	WriteUnits float64       `json:"writeUnits"`
	Elapsed    time.Duration `json:"elapsedNs"`
	QueuedAt   time.Time     `json:"queuedAt"`
	StartedAt  time.Time     `json:"startedAt,omitzero"`
	FinishedAt time.Time     `json:"finishedAt,omitzero"`
	// Version is the run item's optimistic-locking version.
	Version int64 `json:"version"`
}

// QualityView is what GET /admin/v1/computed-traits/{id}/quality answers: the published
// model's quality (nil before the first published run) and the latest run.
type QualityView struct {
	TraitID   string           `json:"traitId"`
	Key       string           `json:"key"`
	Kind      string           `json:"kind"`
	TrainedAt time.Time        `json:"trainedAt,omitzero"`
	Params    []predict.Params `json:"params,omitempty"`
	Quality   *predict.Quality `json:"quality,omitempty"`
	Training  *Training        `json:"training,omitempty"`
	NextRunAt time.Time        `json:"nextRunAt,omitzero"`
}
