package apitypes

import (
	"encoding/json"
	"time"
)

// PrivacyRequestInput is the body of POST /admin/v1/privacy/requests.
type PrivacyRequestInput struct {
	Type        string   `json:"type"` // delete, suppress, suppress_with_delete, unsuppress, export
	Identifiers []string `json:"identifiers"`
	Reason      string   `json:"reason,omitempty"`
}

// PrivacyRequest is a privacy request as the admin API shows it. Identifiers are shown while
// it runs; once it is completed or failed only the masked Labels remain.
type PrivacyRequest struct {
	ID          string                    `json:"id"`
	Type        string                    `json:"type"`
	Status      string                    `json:"status"` // pending, running, completed, failed
	Identifiers []string                  `json:"identifiers,omitempty"`
	Labels      []string                  `json:"labels"`
	Reason      string                    `json:"reason,omitempty"`
	RequestedBy string                    `json:"requestedBy,omitempty"`
	CreatedAt   time.Time                 `json:"createdAt"`
	StartedAt   *time.Time                `json:"startedAt,omitempty"`
	CompletedAt *time.Time                `json:"completedAt,omitempty"`
	Step        string                    `json:"step"`
	Results     map[string]map[string]int `json:"results"` // holder -> kind -> items erased or exported
	Notices     []PrivacyNotice           `json:"notices,omitempty"`
	// FollowUps are the second erases of stores that data reaches late (the archive, behind
	// Firehose's buffer), run by the schedule after the request completed.
	FollowUps []PrivacyFollowUp `json:"followUps,omitempty"`
	Error     string            `json:"error,omitempty"`
	// Export is the export result of a completed export request (absent once it expired or
	// was erased: ExportExpired says so).
	Export        json.RawMessage `json:"export,omitempty"`
	ExportExpired bool            `json:"exportExpired,omitempty"`
}

// PrivacyFollowUp is the second erase of one store (holder) that data reaches late: due once
// its lag has passed since its first erase began, it erases what arrived since Since and adds
// what it removed (Erased) to the request's results under the holder.
type PrivacyFollowUp struct {
	Holder   string     `json:"holder"`
	Status   string     `json:"status"` // pending, done, failed (given up after retries)
	Since    time.Time  `json:"since"`
	Due      time.Time  `json:"due"`
	DoneAt   *time.Time `json:"doneAt,omitempty"`
	Erased   int        `json:"erased"`
	Attempts int        `json:"attempts,omitempty"` // failed attempts
	Error    string     `json:"error,omitempty"`
}

// PrivacyNotice is the outcome of one destination's Privacy Request webhook.
type PrivacyNotice struct {
	DestinationID string `json:"destinationId"`
	Status        string `json:"status"` // delivered, failed, dead
	Error         string `json:"error,omitempty"`
}

// PrivacyRequestList answers GET /admin/v1/privacy/requests.
type PrivacyRequestList struct {
	Requests []PrivacyRequest `json:"requests"`
	Next     string           `json:"next"`
}

// PrivacyExportLine is one line of an export as NDJSON (?format=ndjson).
type PrivacyExportLine struct {
	Holder string          `json:"holder"`
	Kind   string          `json:"kind"`
	Item   json.RawMessage `json:"item"`
}

// PrivacySuppressions answers GET /admin/v1/privacy/suppressions.
type PrivacySuppressions struct {
	Suppressions    []PrivacySuppression `json:"suppressions"`
	DroppedBySource map[string]int64     `json:"droppedBySource"` // source id -> events dropped
}

// PrivacySuppression is one suppression: the request that made it and masked identifiers.
type PrivacySuppression struct {
	Group     string    `json:"group"`
	Labels    []string  `json:"labels"`
	CreatedAt time.Time `json:"createdAt"`
}
