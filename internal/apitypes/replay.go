package apitypes

import "time"

// ReplayTarget is where a replay sends archived events: {"type":"pipeline"} (back onto the
// events stream) or {"type":"destination","destinationId":"…"} (to that one destination).
type ReplayTarget struct {
	Type          string `json:"type"`
	DestinationID string `json:"destinationId,omitempty"`
}

// ReplayInput is the body of POST /admin/v1/replays.
type ReplayInput struct {
	From        string       `json:"from"` // RFC 3339; records received in [from, to)
	To          string       `json:"to"`
	Sources     []string     `json:"sources,omitempty"`     // source ids; none: every source
	Identifiers []string     `json:"identifiers,omitempty"` // "type:value"; none: everyone
	Events      []string     `json:"events,omitempty"`      // track event or page/screen names; none: every event
	Target      ReplayTarget `json:"target"`
}

// ReplayProgress is where a replay job is.
type ReplayProgress struct {
	ObjectsDone     int    `json:"objectsDone"`     // archive objects read whole
	SourceHoursDone int    `json:"sourceHoursDone"` // source-hours read, of
	SourceHours     int    `json:"sourceHours"`     // the source-hours in range
	Cursor          string `json:"cursor,omitempty"`
	Partial         string `json:"partial,omitempty"` // an object begun, and the lines of it done
	Line            int    `json:"line,omitempty"`
}

// ReplayCounts are a replay job's records: read, matched by its filters, sent, and skipped by
// reason (filtered, suppressed, erased_profile, unresolved, bad_line).
type ReplayCounts struct {
	Read    int64            `json:"read"`
	Matched int64            `json:"matched"`
	Sent    int64            `json:"sent"`
	Skipped map[string]int64 `json:"skipped"`
}

// Replay is a replay job as the admin API shows it.
type Replay struct {
	ID          string         `json:"id"`
	Status      string         `json:"status"` // pending, running, completed, failed
	From        time.Time      `json:"from"`
	To          time.Time      `json:"to"`
	Sources     []string       `json:"sources,omitempty"`
	Identifiers []string       `json:"identifiers,omitempty"`
	Events      []string       `json:"events,omitempty"`
	Target      ReplayTarget   `json:"target"`
	RequestedBy string         `json:"requestedBy,omitempty"`
	CreatedAt   time.Time      `json:"createdAt"`
	StartedAt   *time.Time     `json:"startedAt,omitempty"`
	CompletedAt *time.Time     `json:"completedAt,omitempty"`
	Progress    ReplayProgress `json:"progress"`
	Counts      ReplayCounts   `json:"counts"`
	BadLines    []string       `json:"badLines,omitempty"` // "key#line" of the first bad archive lines
	Error       string         `json:"error,omitempty"`
	Attempts    int            `json:"attempts,omitempty"`
}

// ReplayList answers GET /admin/v1/replays.
type ReplayList struct {
	Replays []Replay `json:"replays"`
	Next    string   `json:"next"`
}
