// Package tracking is the Segment tracking spec: the message types, parsing of request bodies,
// validation and normalization (timestamps, message ids, batch envelopes). It is pure logic with
// no I/O, shared by ingest (which produces Records) and later stages (which consume them).
package tracking

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"
)

// Message types of the Segment spec.
const (
	TypeIdentify = "identify"
	TypeTrack    = "track"
	TypePage     = "page"
	TypeScreen   = "screen"
	TypeGroup    = "group"
	TypeAlias    = "alias"
)

// Message is one spec message as ingest accepted it: ids are strings, timestamps are corrected,
// messageId is always set. Free-form objects stay raw JSON, exactly as the client sent them
// (after the batch envelope's context was merged in).
type Message struct {
	Type              string          `json:"type"`
	MessageID         string          `json:"messageId"`
	UserID            string          `json:"userId,omitempty"`
	AnonymousID       string          `json:"anonymousId,omitempty"`
	PreviousID        string          `json:"previousId,omitempty"` // alias
	GroupID           string          `json:"groupId,omitempty"`    // group
	Event             string          `json:"event,omitempty"`      // track
	Name              string          `json:"name,omitempty"`       // page, screen
	Category          string          `json:"category,omitempty"`   // page
	Properties        json.RawMessage `json:"properties,omitempty"`
	Traits            json.RawMessage `json:"traits,omitempty"`
	Context           json.RawMessage `json:"context,omitempty"`
	Integrations      json.RawMessage `json:"integrations,omitempty"`
	Channel           string          `json:"channel,omitempty"`
	Timestamp         time.Time       `json:"timestamp"`                   // corrected for client clock skew
	OriginalTimestamp *time.Time      `json:"originalTimestamp,omitempty"` // as the client sent it
	SentAt            *time.Time      `json:"sentAt,omitempty"`
	ReceivedAt        time.Time       `json:"receivedAt"`
}

// Record is what ingest writes to the `events` stream: one accepted message, tagged with the
// source whose write key sent it. The partition key is the userId, else the anonymousId.
type Record struct {
	SourceID string  `json:"sourceId"`
	Message  Message `json:"message"`
	// Replay is the id of the replay job that put an archived record back on the stream (empty
	// for a live event). The archive files such records under source=_replay, apart from the
	// sources' own history, so a replay never reads its own output back.
	Replay string `json:"replay,omitempty"`
}

// MaxPartitionKeyBytes is the longest id used as a Kinesis partition key as it is; Kinesis
// accepts at most 256 characters.
const MaxPartitionKeyBytes = 256

// PartitionKey is the Kinesis partition key for a message: the userId, else the anonymousId, so
// events of one user stay in order. An id longer than MaxPartitionKeyBytes is replaced by
// "h:" and its hex SHA-256, which is stable, so every event of that user still shares one key.
func (m *Message) PartitionKey() string {
	k := m.UserID
	if k == "" {
		k = m.AnonymousID
	}
	if len(k) > MaxPartitionKeyBytes {
		sum := sha256.Sum256([]byte(k))
		return "h:" + hex.EncodeToString(sum[:])
	}
	return k
}
