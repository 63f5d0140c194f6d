package activation

import (
	"encoding/json"
	"time"
)

// Delivery statuses.
const (
	StatusInflight  = "inflight"  // an attempt is under way (leased)
	StatusRetrying  = "retrying"  // waiting in the retry queue
	StatusDelivered = "delivered" // a 2xx arrived
	StatusDead      = "dead"      // in the destination's dead letters
	// StatusFilteredConsent: not sent, because the preferences that apply do not grant the
	// destination's consentCategories (or it requires consent and there are none). Final.
	StatusFilteredConsent = "filtered_consent"
)

// Delivery is one record's delivery to one destination, as the log shows it.
type Delivery struct {
	DestinationID string     `json:"destinationId"`
	RecordID      string     `json:"recordId"`
	WebhookID     string     `json:"webhookId"`
	Kind          string     `json:"kind"`
	Status        string     `json:"status"`
	Attempts      int        `json:"attempts"` // HTTP attempts made, over all redrives
	Retries       int        `json:"retries"`  // failed attempts in the current retry cycle
	LastStatus    int        `json:"lastStatus,omitempty"`
	LastError     string     `json:"lastError,omitempty"`
	LatencyMs     int64      `json:"latencyMs"`
	NextAttemptAt *time.Time `json:"nextAttemptAt,omitempty"`
	CreatedAt     time.Time  `json:"createdAt"`
	UpdatedAt     time.Time  `json:"updatedAt"`

	// State kept by the stores, not shown: the version every change is conditional on, the
	// lease of an inflight attempt, the payload while it may be resent, the queue entry.
	Version    int64           `json:"-"`
	LeaseUntil time.Time       `json:"-"`
	Body       json.RawMessage `json:"-"`
	QueueRef   string          `json:"-"` // the QueueEntry.Ref of the delivery's queue entry; "" when not queued
	// ExpiresAt is when a delivery created final (StatusFilteredConsent) expires, like a
	// delivered one.
	ExpiresAt time.Time `json:"-"`
}

// DeadLetter is a message that could not be delivered.
type DeadLetter struct {
	DestinationID string          `json:"destinationId"`
	RecordID      string          `json:"recordId"`
	WebhookID     string          `json:"webhookId"`
	Kind          string          `json:"kind"`
	Attempts      int             `json:"attempts"`
	LastStatus    int             `json:"lastStatus,omitempty"`
	LastError     string          `json:"lastError"`
	DeadAt        time.Time       `json:"deadAt"`
	Payload       json.RawMessage `json:"payload"`
}

// Stats are a destination's counters.
type Stats struct {
	Delivered    int64 `json:"delivered" dynamodbav:"delivered"`
	Retried      int64 `json:"retried" dynamodbav:"retried"`           // failed attempts that were scheduled for a retry
	DeadLettered int64 `json:"deadLettered" dynamodbav:"deadLettered"` // messages moved to dead letters
	Redriven     int64 `json:"redriven" dynamodbav:"redriven"`
	// FilteredConsent: messages not sent because consent did not allow them.
	FilteredConsent int64 `json:"filteredConsent" dynamodbav:"filteredConsent"`
	// DroppedErased: messages not sent because the person they are about was erased.
	DroppedErased int64 `json:"droppedErased" dynamodbav:"droppedErased"`
}

// UndecodableDestination is the pseudo destination whose dead letters hold stream records that
// could not be decoded (payload: a JSON string, base64 of the raw record data).
const UndecodableDestination = "_undecodable"
