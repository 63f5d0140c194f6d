package tracking

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Limits are Segment's: a client that works against Segment works here.
type Limits struct {
	MaxEventBytes  int // one message, as sent
	MaxBatchBytes  int // one request body, after decompression
	MaxBatchEvents int
}

// DefaultLimits are Segment's HTTP API limits.
var DefaultLimits = Limits{MaxEventBytes: 32 << 10, MaxBatchBytes: 500 << 10, MaxBatchEvents: 2500}

// Error codes returned to clients in `{"code","message"}` bodies (HTTP 400 unless noted).
const (
	CodeInvalidJSON      = "invalid_json"
	CodeInvalidEncoding  = "invalid_encoding"
	CodeEventTooLarge    = "event_too_large"
	CodeBatchTooLarge    = "batch_too_large"
	CodeTooManyEvents    = "too_many_events"
	CodeEmptyBatch       = "empty_batch"
	CodeInvalidType      = "invalid_type"
	CodeMissingIdentity  = "missing_identity"
	CodeMissingEvent     = "missing_event"
	CodeMissingPrevious  = "missing_previous_id"
	CodeMissingUserID    = "missing_user_id"
	CodeMissingGroupID   = "missing_group_id"
	CodeInvalidTimestamp = "invalid_timestamp"
	CodeInvalidField     = "invalid_field"
	CodeInvalidMessage   = "invalid_message" // a message that passed parsing but cannot be encoded
	CodeUnauthorized     = "unauthorized"    // 401
	CodeUnknownCallType  = "not_found"       // 404
	CodeMethodNotAllowed = "method_not_allowed"
	CodeUnavailable      = "service_unavailable" // 503
)

// Error is a client error: the request is rejected whole and nothing is stored.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// KindBatch is the pseudo-type of the /v1/batch endpoint.
const KindBatch = "batch"

// Request is a parsed request body: the raw items and the batch envelope, not yet validated.
type Request struct {
	Kind     string // KindBatch or one of the message types
	Items    []json.RawMessage
	WriteKey string // from the body, if the client put it there

	context      json.RawMessage
	integrations json.RawMessage
	sentAt       string
}

type envelope struct {
	Batch        []json.RawMessage `json:"batch"`
	Context      json.RawMessage   `json:"context"`
	Integrations json.RawMessage   `json:"integrations"`
	SentAt       flexString        `json:"sentAt"`
	WriteKey     flexString        `json:"writeKey"`
}

// ParseRequest decodes a (decompressed) body sent to the endpoint of the given kind. It checks
// the size limits and the JSON syntax; Normalize does the rest.
func ParseRequest(body []byte, kind string, lim Limits) (*Request, error) {
	if len(body) > lim.MaxBatchBytes {
		return nil, errorf(CodeBatchTooLarge, "request body is %d bytes; the limit is %d", len(body), lim.MaxBatchBytes)
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return nil, errorf(CodeInvalidJSON, "body must be a JSON object")
	}
	if kind != KindBatch {
		if len(body) > lim.MaxEventBytes {
			return nil, errorf(CodeEventTooLarge, "event is %d bytes; the limit is %d", len(body), lim.MaxEventBytes)
		}
		var wk struct {
			WriteKey flexString `json:"writeKey"`
		}
		if err := json.Unmarshal(body, &wk); err != nil {
			return nil, jsonError("", err)
		}
		return &Request{Kind: kind, Items: []json.RawMessage{body}, WriteKey: string(wk.WriteKey)}, nil
	}
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, jsonError("", err)
	}
	if len(env.Batch) == 0 {
		return nil, errorf(CodeEmptyBatch, "batch must hold at least one message")
	}
	if len(env.Batch) > lim.MaxBatchEvents {
		return nil, errorf(CodeTooManyEvents, "batch holds %d messages; the limit is %d", len(env.Batch), lim.MaxBatchEvents)
	}
	for i, it := range env.Batch {
		if len(it) > lim.MaxEventBytes {
			return nil, errorf(CodeEventTooLarge, "batch[%d] is %d bytes; the limit is %d", i, len(it), lim.MaxEventBytes)
		}
	}
	for _, f := range []struct {
		name string
		raw  json.RawMessage
	}{{"context", env.Context}, {"integrations", env.Integrations}} {
		if !isObjectOrNull(f.raw) {
			return nil, errorf(CodeInvalidField, "%s must be an object", f.name)
		}
	}
	return &Request{
		Kind: kind, Items: env.Batch, WriteKey: string(env.WriteKey),
		context: env.Context, integrations: env.Integrations, sentAt: string(env.SentAt),
	}, nil
}

// inMessage is a message as clients send it.
type inMessage struct {
	Type              flexString      `json:"type"`
	MessageID         flexString      `json:"messageId"`
	UserID            flexString      `json:"userId"`
	AnonymousID       flexString      `json:"anonymousId"`
	PreviousID        flexString      `json:"previousId"`
	GroupID           flexString      `json:"groupId"`
	Event             flexString      `json:"event"`
	Name              flexString      `json:"name"`
	Category          flexString      `json:"category"`
	Properties        json.RawMessage `json:"properties"`
	Traits            json.RawMessage `json:"traits"`
	Context           json.RawMessage `json:"context"`
	Integrations      json.RawMessage `json:"integrations"`
	Channel           flexString      `json:"channel"`
	Timestamp         flexString      `json:"timestamp"`
	OriginalTimestamp flexString      `json:"originalTimestamp"`
	SentAt            flexString      `json:"sentAt"`
}

// Normalize validates every item and returns the messages to store, stamped with receivedAt.
// Any invalid item rejects the whole request, so a client never gets a partial write it cannot
// see. sourceID seeds the message ids filled in for messages that carry none.
func (r *Request) Normalize(receivedAt time.Time, sourceID string) ([]Message, error) {
	receivedAt = receivedAt.UTC()
	out := make([]Message, 0, len(r.Items))
	for i, raw := range r.Items {
		m, err := r.normalizeOne(raw, receivedAt, sourceID)
		if err != nil {
			var e *Error
			if r.Kind == KindBatch && errors.As(err, &e) {
				e.Message = fmt.Sprintf("batch[%d]: %s", i, e.Message)
			}
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

func (r *Request) normalizeOne(raw json.RawMessage, receivedAt time.Time, sourceID string) (Message, error) {
	var in inMessage
	if err := json.Unmarshal(raw, &in); err != nil {
		return Message{}, jsonError("", err)
	}
	typ := r.Kind
	if typ == KindBatch {
		typ = strings.ToLower(string(in.Type))
		if !validType(typ) {
			return Message{}, errorf(CodeInvalidType, "type %q is not one of identify, track, page, screen, group, alias", string(in.Type))
		}
	}
	m := Message{
		Type:        typ,
		MessageID:   string(in.MessageID),
		UserID:      string(in.UserID),
		AnonymousID: string(in.AnonymousID),
		PreviousID:  string(in.PreviousID),
		GroupID:     string(in.GroupID),
		Event:       string(in.Event),
		Name:        string(in.Name),
		Category:    string(in.Category),
		Channel:     string(in.Channel),
		ReceivedAt:  receivedAt,
	}
	for _, f := range []struct {
		name string
		raw  json.RawMessage
		dst  *json.RawMessage
	}{{"properties", in.Properties, &m.Properties}, {"traits", in.Traits, &m.Traits}, {"context", in.Context, &m.Context}, {"integrations", in.Integrations, &m.Integrations}} {
		if !isObjectOrNull(f.raw) {
			return Message{}, errorf(CodeInvalidField, "%s must be an object", f.name)
		}
		if !isNull(f.raw) {
			*f.dst = f.raw
		}
	}
	if err := validate(&m); err != nil {
		return Message{}, err
	}
	var err error
	if m.Context, err = mergeObjects(r.context, m.Context); err != nil {
		return Message{}, err
	}
	if m.Integrations, err = mergeObjects(r.integrations, m.Integrations); err != nil {
		return Message{}, err
	}
	if err := stampTimes(&m, in, r.sentAt); err != nil {
		return Message{}, err
	}
	if m.MessageID == "" {
		m.MessageID = derivedMessageID(sourceID, raw, r.sentAt)
	}
	if err := CheckKeys(&m); err != nil {
		return Message{}, err
	}
	return m, nil
}

func validType(t string) bool {
	switch t {
	case TypeIdentify, TypeTrack, TypePage, TypeScreen, TypeGroup, TypeAlias:
		return true
	}
	return false
}

func validate(m *Message) error {
	blank := func(s string) bool { return strings.TrimSpace(s) == "" }
	switch m.Type {
	case TypeAlias:
		if blank(m.UserID) {
			return errorf(CodeMissingUserID, "alias requires userId")
		}
		if blank(m.PreviousID) {
			return errorf(CodeMissingPrevious, "alias requires previousId")
		}
		return nil
	case TypeTrack:
		if blank(m.Event) {
			return errorf(CodeMissingEvent, "track requires a non-empty event")
		}
	case TypeGroup:
		if blank(m.GroupID) {
			return errorf(CodeMissingGroupID, "group requires groupId")
		}
	}
	if blank(m.UserID) && blank(m.AnonymousID) {
		return errorf(CodeMissingIdentity, "%s requires userId or anonymousId", m.Type)
	}
	return nil
}

// stampTimes applies Segment's clock-skew correction:
// timestamp = receivedAt − (sentAt − originalTimestamp).
func stampTimes(m *Message, in inMessage, batchSentAt string) error {
	orig, err := parseTime("timestamp", string(in.Timestamp))
	if err != nil {
		return err
	}
	if orig == nil {
		if orig, err = parseTime("originalTimestamp", string(in.OriginalTimestamp)); err != nil {
			return err
		}
	}
	sentRaw := string(in.SentAt)
	if sentRaw == "" {
		sentRaw = batchSentAt
	}
	sent, err := parseTime("sentAt", sentRaw)
	if err != nil {
		return err
	}
	m.OriginalTimestamp, m.SentAt = orig, sent
	switch {
	case orig != nil && sent != nil:
		// Computed in Unix seconds and nanoseconds: time.Sub saturates at ±292 years, which
		// would silently move a timestamp instead of refusing it.
		skew := sent.Unix() - orig.Unix()
		nanos := int64(sent.Nanosecond()) - int64(orig.Nanosecond())
		m.Timestamp = time.Unix(m.ReceivedAt.Unix()-skew, int64(m.ReceivedAt.Nanosecond())-nanos).UTC()
		if !inYearRange(m.Timestamp) {
			return errorf(CodeInvalidTimestamp, "the corrected timestamp (receivedAt − (sentAt − timestamp)) falls outside the years %04d–%04d; check sentAt", MinYear, MaxYear)
		}
	case orig != nil:
		m.Timestamp = *orig
	default:
		m.Timestamp = m.ReceivedAt
	}
	return nil
}

// MinYear and MaxYear bound every timestamp ingest accepts (RFC 3339 has four-digit years).
const (
	MinYear = 1
	MaxYear = 9999
)

// inYearRange reports whether t is within MinYear–MaxYear. The very first instant of year 1 is
// Go's zero time, which the stages read as "no timestamp", so it is out of range too.
func inYearRange(t time.Time) bool {
	y := t.UTC().Year()
	return y >= MinYear && y <= MaxYear && !t.IsZero()
}

var timeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02"}

func parseTime(field, s string) (*time.Time, error) {
	if s == "" {
		return nil, nil
	}
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			t = t.UTC()
			if !inYearRange(t) {
				return nil, errorf(CodeInvalidTimestamp, "%s %q is outside the years %04d–%04d (in UTC)", field, s, MinYear, MaxYear)
			}
			return &t, nil
		}
	}
	return nil, errorf(CodeInvalidTimestamp, "%s %q is not an ISO 8601 date", field, s)
}

// derivedMessageID fills a missing messageId from the message's own bytes, so a client that
// retries the same request gets the same id and the identity stage drops the copy.
func derivedMessageID(sourceID string, raw json.RawMessage, sentAt string) string {
	h := sha256.New()
	h.Write([]byte(sourceID))
	h.Write([]byte{0})
	h.Write([]byte(sentAt))
	h.Write([]byte{0})
	h.Write(raw)
	return "cdp-" + hex.EncodeToString(h.Sum(nil)[:16])
}

// mergeObjects overlays item on envelope, key by key; the item's own keys win.
func mergeObjects(envelope, item json.RawMessage) (json.RawMessage, error) {
	if isNull(envelope) || bytes.Equal(bytes.TrimSpace(envelope), []byte("{}")) {
		return item, nil
	}
	if isNull(item) {
		return envelope, nil
	}
	var base, over map[string]json.RawMessage
	if err := json.Unmarshal(envelope, &base); err != nil {
		return nil, jsonError("envelope", err)
	}
	if err := json.Unmarshal(item, &over); err != nil {
		return nil, jsonError("", err)
	}
	for k, v := range over {
		base[k] = v
	}
	out, err := json.Marshal(base)
	if err != nil {
		return nil, fmt.Errorf("merge objects: %w", err)
	}
	return out, nil
}

func isNull(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || bytes.Equal(t, []byte("null"))
}

func isObjectOrNull(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return isNull(t) || t[0] == '{'
}

func jsonError(where string, err error) *Error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return errorf(CodeInvalidField, "%s has the wrong type (%s)", te.Field, te.Value)
	}
	var fe *fieldError
	if errors.As(err, &fe) {
		return errorf(CodeInvalidField, "%s", fe.msg)
	}
	if where != "" {
		return errorf(CodeInvalidJSON, "%s: %v", where, err)
	}
	return errorf(CodeInvalidJSON, "body is not valid JSON: %v", err)
}

// flexString accepts a JSON string or number (clients send numeric user ids) or null.
type flexString string

type fieldError struct{ msg string }

func (e *fieldError) Error() string { return e.msg }

func (s *flexString) UnmarshalJSON(b []byte) error {
	switch {
	case len(b) == 0 || string(b) == "null":
		*s = ""
	case b[0] == '"':
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = flexString(v)
	case b[0] == '-' || (b[0] >= '0' && b[0] <= '9'):
		if _, err := strconv.ParseFloat(string(b), 64); err != nil {
			return &fieldError{msg: fmt.Sprintf("invalid number %s", b)}
		}
		*s = flexString(b)
	default:
		return &fieldError{msg: fmt.Sprintf("expected a string, got %.20s", b)}
	}
	return nil
}
