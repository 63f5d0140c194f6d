package privacy

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/serverless-cdp/cdp/internal/blocklist"
	"github.com/serverless-cdp/cdp/internal/secret"
)

// Limits of a request, checked at the door.
const (
	MaxIdentifiers     = 100
	MaxIdentifierType  = 64
	MaxIdentifierValue = 512
	MaxReason          = 1024
)

// Steps of a resumable run, persisted in Request.Step.
const (
	StepResolve    = "resolve"
	StepSuppress   = "suppress"
	StepBlock      = "block"
	StepWait       = "wait"
	StepErase      = "erase"
	StepNotify     = "notify"
	StepUnsuppress = "unsuppress"
	StepExport     = "export"
	StepDone       = "done"
)

// Request is one privacy request and its audit record. While it is not completed it holds the
// identifiers in cleartext (and the person they resolved to); on completion, or when it fails
// for good, both are removed and only the masked Labels and the keyed Hashes remain.
type Request struct {
	ID          string   `json:"id"`
	Type        string   `json:"type"`
	Status      string   `json:"status"`
	Identifiers []string `json:"identifiers,omitempty"`
	// Labels are blocklist.Mask of each identifier as named.
	Labels []string `json:"labels"`
	// Hashes are the keyed hashes (Hasher.Identifier) of the normalized identifiers named and,
	// once resolved, of every identifier of the person: what ListAbout matches.
	Hashes      []string  `json:"hashes"`
	Reason      string    `json:"reason,omitempty"`
	RequestedBy string    `json:"requestedBy,omitempty"`
	CreatedAt   time.Time `json:"createdAt"`
	StartedAt   time.Time `json:"startedAt,omitzero"`
	CompletedAt time.Time `json:"completedAt,omitzero"`
	// Step is where a resumable run is (StepResolve first, StepDone at the end).
	Step string `json:"step"`
	// Results counts, per holder name and per kind, the items erased or exported.
	Results map[string]map[string]int `json:"results,omitempty"`
	Notices []NoticeOutcome           `json:"notices,omitempty"`
	// FollowUps are the second erases of lagging holders (Lagging: data still on its way when
	// the first erase ran), run by the schedule once due, after the request completed.
	FollowUps []FollowUp `json:"followUps,omitempty"`
	Error     string     `json:"error,omitempty"`
	Version   int        `json:"version"`

	// Run state: the person (cleartext, removed on completion), when the propagation wait
	// ends, how many block rounds ran, failed attempts of the current step, notice attempts.
	Person         *Person   `json:"person,omitempty"`
	WaitUntil      time.Time `json:"waitUntil,omitzero"`
	Rounds         int       `json:"rounds,omitempty"`
	Attempts       int       `json:"attempts,omitempty"`
	NoticeAttempts int       `json:"noticeAttempts,omitempty"`
	// Lease: the runner working on the request until LeaseUntil (the API's inline run and the
	// schedule never run the same request's steps at once).
	LeaseOwner string    `json:"leaseOwner,omitempty"`
	LeaseUntil time.Time `json:"leaseUntil,omitzero"`
}

// Follow-up statuses.
const (
	FollowUpPending = "pending"
	FollowUpDone    = "done"
	FollowUpFailed  = "failed" // MaxAttempts failed attempts: given up (logged)
)

// FollowUp is the second erase of one lagging holder: it erases, by the keyed Hashes, what
// arrived in the holder since Since and adds what it removed to Results under the holder's
// name. It runs once, at or after Due (Lag after the first erase of the holder began).
type FollowUp struct {
	Holder   string    `json:"holder"`
	Since    time.Time `json:"since"`
	Due      time.Time `json:"due"`
	Status   string    `json:"status"`
	DoneAt   time.Time `json:"doneAt,omitzero"`
	Erased   int       `json:"erased"` // items removed by the follow-up (also added to Results)
	Attempts int       `json:"attempts,omitempty"`
	Error    string    `json:"error,omitempty"`
}

// Terminal reports whether the request is completed or failed.
func (r Request) Terminal() bool { return r.Status == StatusCompleted || r.Status == StatusFailed }

// Settled reports whether nothing is left to do: the request is terminal and no follow-up is
// pending. An unsettled request stays in the store's pending index.
func (r Request) Settled() bool { return r.Terminal() && r.nextFollowUp() < 0 }

// nextFollowUp is the index of the pending follow-up due first, -1 if none.
func (r Request) nextFollowUp() int {
	next := -1
	for i, f := range r.FollowUps {
		if f.Status == FollowUpPending && (next < 0 || f.Due.Before(r.FollowUps[next].Due)) {
			next = i
		}
	}
	return next
}

// followUpDue reports whether a pending follow-up is due at now (it runs once the request is
// terminal).
func (r Request) followUpDue(now time.Time) bool {
	i := r.nextFollowUp()
	return i >= 0 && !r.FollowUps[i].Due.After(now)
}

// needsWork reports whether a run has something to do on the request at now.
func (r Request) needsWork(now time.Time) bool { return !r.Terminal() || r.followUpDue(now) }

// clone is a deep copy (stores hand out copies).
func (r Request) clone() Request {
	c := r
	c.Identifiers = append([]string(nil), r.Identifiers...)
	c.Labels = append([]string(nil), r.Labels...)
	c.Hashes = append([]string(nil), r.Hashes...)
	c.Notices = append([]NoticeOutcome(nil), r.Notices...)
	c.FollowUps = append([]FollowUp(nil), r.FollowUps...)
	if r.Results != nil {
		c.Results = make(map[string]map[string]int, len(r.Results))
		for h, kinds := range r.Results {
			m := make(map[string]int, len(kinds))
			for k, n := range kinds {
				m[k] = n
			}
			c.Results[h] = m
		}
	}
	if r.Person != nil {
		p := Person{Profiles: append([]string(nil), r.Person.Profiles...), Identifiers: append([]string(nil), r.Person.Identifiers...),
			Hashes: append([]string(nil), r.Person.Hashes...), Since: r.Person.Since}
		c.Person = &p
	}
	return c
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
	Type        string
	Identifiers []string
	Reason      string
	RequestedBy string // who asked: the admin token's id and name, never the token
}

var requestTypes = map[string]bool{TypeDelete: true, TypeSuppress: true, TypeSuppressWithDelete: true, TypeUnsuppress: true, TypeExport: true}

// Validate checks an input and returns its identifiers trimmed.
func Validate(in Input) ([]string, error) {
	if !requestTypes[in.Type] {
		return nil, invalid("type", "must be one of delete, suppress, suppress_with_delete, unsuppress, export")
	}
	if len(in.Identifiers) == 0 || len(in.Identifiers) > MaxIdentifiers {
		return nil, invalid("identifiers", "must hold 1 to %d identifiers", MaxIdentifiers)
	}
	if len(in.Reason) > MaxReason || !utf8.ValidString(in.Reason) {
		return nil, invalid("reason", "must be valid UTF-8 of at most %d bytes", MaxReason)
	}
	out := make([]string, 0, len(in.Identifiers))
	seen := map[string]bool{}
	for i, raw := range in.Identifiers {
		field := "identifiers[" + strconv.Itoa(i) + "]"
		id, err := checkIdentifier(field, strings.TrimSpace(raw))
		if err != nil {
			return nil, err
		}
		if seen[id] {
			return nil, invalid(field, "is named twice")
		}
		seen[id] = true
		out = append(out, id)
	}
	return out, nil
}

// checkIdentifier checks "type:value" and returns it with the value trimmed, as the identity
// stage trims identifier values.
func checkIdentifier(field, id string) (string, error) {
	t, v, ok := strings.Cut(id, ":")
	if !ok {
		return "", invalid(field, `must be "type:value", e.g. "user_id:42"`)
	}
	if len(t) == 0 || len(t) > MaxIdentifierType {
		return "", invalid(field, "type must be 1 to %d bytes", MaxIdentifierType)
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return "", invalid(field, "type may hold only a-z, 0-9 and _")
		}
	}
	v = strings.TrimSpace(v)
	if len(v) == 0 || len(v) > MaxIdentifierValue || !utf8.ValidString(v) {
		return "", invalid(field, "value must be valid UTF-8 of 1 to %d bytes", MaxIdentifierValue)
	}
	return t + ":" + v, nil
}

// normalize is the identity stage's normalization, for hashing at the door: the value trimmed,
// emails lower-cased. The resolver's normalization (after resolve) is authoritative.
func normalize(id string) string {
	t, v, _ := strings.Cut(id, ":")
	v = strings.TrimSpace(v)
	if t == "email" {
		v = strings.ToLower(v)
	}
	return t + ":" + v
}

// IdentifierHash is the keyed hash a request keeps of an identifier (normalized as at the
// door): what ListAbout matches, and what a lagging holder's follow-up erase matches its data
// by (Person.Hashes).
func IdentifierHash(h blocklist.Hasher, id string) string { return h.Identifier(normalize(id)) }

// NewID returns a request id: "pr_", the creation time in milliseconds (base 36, fixed width,
// so ids sort by creation) and 12 random characters.
func NewID(at time.Time) string {
	ms := strconv.FormatInt(at.UnixMilli(), 36)
	if len(ms) < 9 {
		ms = strings.Repeat("0", 9-len(ms)) + ms
	}
	return "pr_" + ms + secret.String(secret.LowerDigits, 12)
}

// NewRequest validates in and returns a pending request.
func NewRequest(in Input, h blocklist.Hasher, now time.Time) (Request, error) {
	ids, err := Validate(in)
	if err != nil {
		return Request{}, err
	}
	r := Request{
		ID: NewID(now), Type: in.Type, Status: StatusPending, Identifiers: ids,
		Reason: in.Reason, RequestedBy: in.RequestedBy, CreatedAt: now.UTC(), Step: StepResolve,
	}
	for _, id := range ids {
		r.Labels = append(r.Labels, blocklist.Mask(id))
	}
	r.addHashes(h, ids)
	return r, nil
}

// addHashes adds the keyed hashes of identifiers (normalized) not yet in Hashes.
func (r *Request) addHashes(h blocklist.Hasher, ids []string) {
	have := make(map[string]bool, len(r.Hashes))
	for _, x := range r.Hashes {
		have[x] = true
	}
	for _, id := range ids {
		if x := IdentifierHash(h, id); !have[x] {
			have[x] = true
			r.Hashes = append(r.Hashes, x)
		}
	}
}

// scrub removes every cleartext identifier (and the person) from the request, and masks any
// identifier value an error text quotes.
func (r *Request) scrub() {
	r.Error = redact(r.Error, r)
	r.Identifiers = nil
	r.Person = nil
}

// redact replaces, in s, every identifier value r knows with its masked label.
func redact(s string, r *Request) string {
	if s == "" {
		return s
	}
	ids := append([]string(nil), r.Identifiers...)
	if r.Person != nil {
		ids = append(ids, r.Person.Identifiers...)
		ids = append(ids, r.Person.Profiles...)
	}
	for _, id := range ids {
		_, v, _ := strings.Cut(id, ":")
		if v = strings.TrimSpace(v); v != "" {
			s = strings.ReplaceAll(s, v, blocklist.Mask(id))
			s = strings.ReplaceAll(s, strings.ToLower(v), blocklist.Mask(id))
		}
	}
	return s
}
