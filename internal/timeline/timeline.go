// Package timeline owns the layout of the timeline items the identity stage writes to the
// shared table, and reads a profile's timeline for other stages (the segments stage backfills
// new definitions from it) without linking the identity stage.
//
// # Items
//
//	pk                  sk     attributes
//	MSGSRC#<h>          MSG    the event: msg (JSON) or msgz (gzip JSON, above 512 bytes), source, seq,
//	                           gsi1pk PROFILE#<id>, gsi1sk EVT#<timestamp>#<h>, ttl; profile (only in
//	                           items written before it was derived from gsi1pk)
//	MSG#<messageId>     MSG    the same, written before dedupe was per source (read on timelines)
//
// h is MessageHash(sourceId, messageId), so the item is also the message's dedupe marker. The
// profile is the one the event was committed to (the survivor at that commit); seq is the
// event's number in that profile's dense sequence (0: stored before stamps existed), so its
// change.Stamp is {profile, seq}. ttl is the end of the retention: expired items are left out
// of reads even before DynamoDB deletes them.
//
// The profile item (PROFILE#<id> / PROFILE) is the identity stage's; this package only reads
// the list of profiles merged into it (ProfileDocument decodes its document).
package timeline

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/serverless-cdp/cdp/internal/store"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

// Key layout.
const (
	PrefixMsg     = "MSGSRC#"  // pk of an event item: MSGSRC#<MessageHash>
	PrefixMsgV1   = "MSG#"     // pk of an event item written before dedupe was per source
	SKMsg         = "MSG"      // sk of event items
	PrefixProfile = "PROFILE#" // pk of a profile item and gsi1pk of its events
	SKProfile     = "PROFILE"  // sk of a profile item
	PrefixEvt     = "EVT#"     // gsi1sk of event items: EVT#<timestamp>#<MessageHash>
)

// Attribute names of event items.
const (
	AttrMsg     = "msg"
	AttrMsgZ    = "msgz"
	AttrSource  = "source"
	AttrSeq     = "seq"
	AttrProfile = "profile"
)

// compressAbove is the message size (JSON bytes) above which it is stored gzip-compressed: a
// write costs a unit per KB, and the GSI copy as much again.
const compressAbove = 512

// Event is one timeline item.
type Event struct {
	Profile string // the profile the event was committed to
	Source  string
	Message tracking.Message
	Expires time.Time
	Seq     int64 // its number in Profile's sequence (0: stored before stamps existed)
}

// MessageHash is the fixed-length form of (source, messageId) used in keys.
func MessageHash(source, messageID string) string {
	sum := sha256.Sum256([]byte(source + "\x00" + messageID))
	return hex.EncodeToString(sum[:16])
}

// Key is the key of the event item of a message.
func Key(source, messageID string) map[string]types.AttributeValue {
	return store.Key(PrefixMsg+MessageHash(source, messageID), SKMsg)
}

// SortTime formats a time with fixed width so that it sorts lexically.
func SortTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000000Z") }

// SortKey orders a profile's timeline (gsi1sk of its event items).
func SortKey(e *Event) string {
	return PrefixEvt + SortTime(e.Message.Timestamp) + "#" + MessageHash(e.Source, e.Message.MessageID)
}

// Encode is the item of an event.
func Encode(e *Event) (map[string]types.AttributeValue, error) {
	msg, err := json.Marshal(e.Message)
	if err != nil {
		return nil, fmt.Errorf("encode event: %w", err)
	}
	it := store.Key(PrefixMsg+MessageHash(e.Source, e.Message.MessageID), SKMsg)
	if len(msg) > compressAbove {
		it[AttrMsgZ] = &types.AttributeValueMemberB{Value: Gzip(msg)}
	} else {
		it[AttrMsg] = store.S(string(msg))
	}
	it[AttrSource] = store.S(e.Source)
	it[store.GSI1PK] = store.S(PrefixProfile + e.Profile)
	it[store.GSI1SK] = store.S(SortKey(e))
	it[store.TTL] = store.N(e.Expires.Unix())
	if e.Seq > 0 {
		it[AttrSeq] = store.N(e.Seq)
	}
	return it, nil
}

// Decode reads an event item (of any layout this package ever wrote).
func Decode(it map[string]types.AttributeValue) (Event, error) {
	e := Event{Profile: ProfileOf(it), Source: store.GetS(it, AttrSource), Seq: store.GetN(it, AttrSeq),
		Expires: time.Unix(store.GetN(it, store.TTL), 0).UTC()}
	raw, err := MessageJSON(it)
	if err != nil {
		return Event{}, err
	}
	if err := json.Unmarshal(raw, &e.Message); err != nil {
		return Event{}, fmt.Errorf("decode event: %w", err)
	}
	return e, nil
}

// ProfileOf is the profile an event item was committed to.
func ProfileOf(it map[string]types.AttributeValue) string {
	if p := store.GetS(it, AttrProfile); p != "" {
		return p
	}
	return strings.TrimPrefix(store.GetS(it, store.GSI1PK), PrefixProfile)
}

// MessageJSON is the stored message of an event item, decompressed.
func MessageJSON(it map[string]types.AttributeValue) ([]byte, error) {
	if z, ok := it[AttrMsgZ].(*types.AttributeValueMemberB); ok {
		b, err := Gunzip(z.Value)
		if err != nil {
			return nil, fmt.Errorf("decompress event: %w", err)
		}
		return b, nil
	}
	return []byte(store.GetS(it, AttrMsg)), nil
}

// gzipWriters reuses compressors: a new one allocates hundreds of KB.
var gzipWriters = sync.Pool{New: func() any { w, _ := gzip.NewWriterLevel(io.Discard, gzip.BestCompression); return w }}

// Gzip compresses b.
func Gzip(b []byte) []byte {
	var buf bytes.Buffer
	w := gzipWriters.Get().(*gzip.Writer)
	w.Reset(&buf)
	_, _ = w.Write(b)
	_ = w.Close()
	gzipWriters.Put(w)
	return buf.Bytes()
}

// Gunzip decompresses b.
func Gunzip(b []byte) ([]byte, error) {
	r, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

// ProfileDocument is the JSON document of a profile item: data, or dataz (gzip) for a large one.
func ProfileDocument(it map[string]types.AttributeValue) ([]byte, error) {
	if z, ok := it["dataz"].(*types.AttributeValueMemberB); ok {
		b, err := Gunzip(z.Value)
		if err != nil {
			return nil, fmt.Errorf("decompress profile: %w", err)
		}
		return b, nil
	}
	return []byte(store.GetS(it, "data")), nil
}
