// Package replay sends archived events (internal/archive) again, as a resumable job: back onto
// the `events` stream (the whole pipeline; identity dedupes by source and messageId) or to one
// destination (forwarded-event activation records naming it; the delivery log dedupes by record
// id). A job reads the archive object by object in key order and persists its cursor and counts
// after each object, so a timeout or a crash resumes where it stopped. People deleted or
// suppressed never come back: records with a suppressed identifier, or about an erased or
// unknown profile (destination target), are skipped and counted.
package replay

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/serverless-cdp/cdp/internal/blocklist"
	"github.com/serverless-cdp/cdp/internal/secret"
)

// Statuses of a job.
const (
	StatusPending   = "pending"
	StatusRunning   = "running"
	StatusCompleted = "completed"
	StatusFailed    = "failed"
)

// Targets of a job.
const (
	TargetPipeline    = "pipeline"
	TargetDestination = "destination"
)

// Reasons a record read is not sent (Counts.Skipped).
const (
	SkipFiltered      = "filtered"       // outside the time range, identifiers or event names asked for, or not a type the target takes
	SkipSuppressed    = "suppressed"     // an identifier of the record is on the suppression list
	SkipErasedProfile = "erased_profile" // the record's profile was erased by a privacy request
	SkipUnresolved    = "unresolved"     // destination target: no profile holds the record's identifiers (e.g. a deleted person)
	SkipBadLine       = "bad_line"       // a line of the archive that is not a record
)

// Limits of a job, checked at the door.
const (
	MaxRange       = 31 * 24 * time.Hour
	MaxSources     = 100
	MaxIdentifiers = 100
	MaxEvents      = 100
	MaxSourceID    = 128 // bytes
	MaxEventName   = 256
	MaxIDType      = 64
	MaxIDValue     = 512
	MaxBadLines    = 10 // where the first bad lines are, kept in the job
)

// Target is where a job sends records.
type Target struct {
	Type          string `json:"type"`
	DestinationID string `json:"destinationId,omitempty"`
}

// Progress is where a job is: the archive objects done, the source-hours read of those in
// range (each source's hours from the hour of From to the hour after To), and the cursor.
type Progress struct {
	ObjectsDone     int `json:"objectsDone"`
	SourceHoursDone int `json:"sourceHoursDone"`
	SourceHours     int `json:"sourceHours"`
	// Cursor is the key of the last object done; the job goes on after it, in key order.
	Cursor string `json:"cursor,omitempty"`
	// Partial is an object begun but not done (the budget ended within it) and Line the lines
	// of it done.
	Partial string `json:"partial,omitempty"`
	Line    int    `json:"line,omitempty"`
}

// position is where the job is, for errors: the object begun, else the last done.
func (p Progress) position() string {
	if p.Partial != "" {
		return fmt.Sprintf("%s line %d", p.Partial, p.Line+1)
	}
	if p.Cursor == "" {
		return "the start"
	}
	return "after " + p.Cursor
}

// Counts are a job's records: read from the archive, matched by the filters, sent, and skipped
// by reason.
type Counts struct {
	Read    int64            `json:"read"`
	Matched int64            `json:"matched"`
	Sent    int64            `json:"sent"`
	Skipped map[string]int64 `json:"skipped"`
}

// Job is one replay.
type Job struct {
	ID      string    `json:"id"`
	Status  string    `json:"status"`
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
	Sources []string  `json:"sources,omitempty"`
	// Identifiers filter the records ("type:value", normalized); masked once the job is
	// finished.
	Identifiers []string  `json:"identifiers,omitempty"`
	Events      []string  `json:"events,omitempty"`
	Target      Target    `json:"target"`
	RequestedBy string    `json:"requestedBy,omitempty"`
	CreatedAt   time.Time `json:"createdAt"`
	StartedAt   time.Time `json:"startedAt,omitzero"`
	CompletedAt time.Time `json:"completedAt,omitzero"`
	Progress    Progress  `json:"progress"`
	Counts      Counts    `json:"counts"`
	// BadLines locate the first bad lines ("key#line"), never their content.
	BadLines []string `json:"badLines,omitempty"`
	Error    string   `json:"error,omitempty"`
	Attempts int      `json:"attempts,omitempty"` // failed attempts of the current object
	Version  int      `json:"version"`
	// Lease: the runner working on the job until LeaseUntil (the API's inline run and the
	// schedule never work one job at once).
	LeaseOwner string    `json:"leaseOwner,omitempty"`
	LeaseUntil time.Time `json:"leaseUntil,omitzero"`
}

// Terminal reports whether the job is completed or failed.
func (j Job) Terminal() bool { return j.Status == StatusCompleted || j.Status == StatusFailed }

func (j Job) clone() Job {
	c := j
	c.Sources = slices.Clone(j.Sources)
	c.Identifiers = slices.Clone(j.Identifiers)
	c.Events = slices.Clone(j.Events)
	c.BadLines = slices.Clone(j.BadLines)
	c.Counts.Skipped = make(map[string]int64, len(j.Counts.Skipped))
	for k, v := range j.Counts.Skipped {
		c.Counts.Skipped[k] = v
	}
	return c
}

// mask replaces the identifiers filter of a finished job with masked labels
// (blocklist.Mask): a job keeps no one's identifiers once it no longer needs them.
func (j *Job) mask() {
	for i, id := range j.Identifiers {
		j.Identifiers[i] = blocklist.Mask(id)
	}
}

// ValidationError is bad input: the adapter answers 400 naming Field.
type ValidationError struct {
	Field   string
	Message string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Message }

func invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// IsValidation reports whether err is bad input.
func IsValidation(err error) bool {
	var v *ValidationError
	return errors.As(err, &v)
}

// Input is what a caller submits.
type Input struct {
	From, To    time.Time
	Sources     []string
	Identifiers []string
	Events      []string
	Target      Target
	RequestedBy string
}

// NewJob validates in and returns a pending job created at now.
func NewJob(in Input, now time.Time) (Job, error) {
	if err := checkRange(in.From, in.To, now); err != nil {
		return Job{}, err
	}
	if err := checkTarget(in.Target); err != nil {
		return Job{}, err
	}
	srcs, err := checkNames("sources", in.Sources, MaxSources, MaxSourceID, validSource)
	if err != nil {
		return Job{}, err
	}
	evs, err := checkNames("events", in.Events, MaxEvents, MaxEventName, func(string) bool { return true })
	if err != nil {
		return Job{}, err
	}
	ids, err := checkIdentifiers(in.Identifiers)
	if err != nil {
		return Job{}, err
	}
	return Job{
		ID: NewID(now), Status: StatusPending, From: in.From.UTC(), To: in.To.UTC(), Sources: srcs,
		Identifiers: ids, Events: evs, Target: in.Target, RequestedBy: in.RequestedBy, CreatedAt: now.UTC(),
		Counts: Counts{Skipped: map[string]int64{}},
	}, nil
}

func checkRange(from, to, now time.Time) error {
	switch {
	case from.IsZero():
		return invalid("from", "is required (RFC 3339)")
	case to.IsZero():
		return invalid("to", "is required (RFC 3339)")
	case !from.Before(to):
		return invalid("to", "must be after from")
	case to.Sub(from) > MaxRange:
		return invalid("to", "the range is at most %d days", int(MaxRange/(24*time.Hour)))
	case from.After(now):
		return invalid("from", "is in the future")
	}
	return nil
}

func checkTarget(t Target) error {
	switch t.Type {
	case TargetPipeline:
		if t.DestinationID != "" {
			return invalid("target.destinationId", "only with target type destination")
		}
	case TargetDestination:
		if t.DestinationID == "" || len(t.DestinationID) > 128 || !validSource(t.DestinationID) {
			return invalid("target.destinationId", "is required with target type destination")
		}
	default:
		return invalid("target.type", "must be pipeline or destination")
	}
	return nil
}

// validSource: ids are printable ASCII without "/" (they are path segments of archive keys).
func validSource(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' || s[i] == '/' {
			return false
		}
	}
	return s != ""
}

func checkNames(field string, names []string, limit, size int, ok func(string) bool) ([]string, error) {
	if len(names) > limit {
		return nil, invalid(field, "at most %d", limit)
	}
	var out []string
	for i, n := range names {
		f := field + "[" + strconv.Itoa(i) + "]"
		if n == "" || len(n) > size || !utf8.ValidString(n) || !ok(n) {
			return nil, invalid(f, "must be 1 to %d bytes of valid UTF-8", size)
		}
		if slices.Contains(out, n) {
			return nil, invalid(f, "is named twice")
		}
		out = append(out, n)
	}
	return out, nil
}

func checkIdentifiers(ids []string) ([]string, error) {
	if len(ids) > MaxIdentifiers {
		return nil, invalid("identifiers", "at most %d", MaxIdentifiers)
	}
	var out []string
	for i, raw := range ids {
		f := "identifiers[" + strconv.Itoa(i) + "]"
		t, v, ok := strings.Cut(strings.TrimSpace(raw), ":")
		t, v = strings.ToLower(t), strings.TrimSpace(v)
		if !ok || t == "" || v == "" || !lowerWord(t) || len(t) > MaxIDType || len(v) > MaxIDValue || !utf8.ValidString(v) {
			return nil, invalid(f, `must be "type:value" (type 1-%d bytes of a-z0-9_, value 1-%d bytes of UTF-8), e.g. "user_id:42"`, MaxIDType, MaxIDValue)
		}
		id := normalize(t, v)
		if slices.Contains(out, id) {
			return nil, invalid(f, "is named twice")
		}
		out = append(out, id)
	}
	return out, nil
}

func lowerWord(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

// normalize is the identity stage's normalization of an identifier: the value trimmed, emails
// lower-cased.
func normalize(t, v string) string {
	if t == "email" {
		v = strings.ToLower(v)
	}
	return t + ":" + v
}

// NewID returns a job id: "rp_", the creation time in milliseconds (base 36, fixed width, so ids
// sort by creation) and 12 random characters.
func NewID(at time.Time) string {
	ms := strconv.FormatInt(at.UnixMilli(), 36)
	if len(ms) < 9 {
		ms = strings.Repeat("0", 9-len(ms)) + ms
	}
	return "rp_" + ms + secret.String(secret.LowerDigits, 12)
}
