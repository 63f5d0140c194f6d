package segment

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	"github.com/serverless-cdp/cdp/internal/activations"
)

// The outbox is kept in the state item (attribute `out`): the activation records a commit
// produced, until the next commit of the profile replaces them. It costs no write of its own:
// no outbox item is put, and none is deleted after publishing. Whoever loads a state that still
// has an outbox publishes it again (activation dedupes by record id), unless Handler's cache
// says this process published it already.

// maxItemData bounds the state and outbox of one item together (DynamoDB items hold 400 KB,
// keys and attribute names included).
const maxItemData = 390 << 10

// gzipOutboxOver is the JSON size from which an outbox is stored gzipped.
const gzipOutboxOver = 256

// encodeOutbox encodes activation records as JSON, gzipped when that is large.
func encodeOutbox(recs []activations.Record) ([]byte, error) {
	b, err := json.Marshal(recs)
	if err != nil {
		return nil, fmt.Errorf("encode outbox: %w", err)
	}
	if len(b) <= gzipOutboxOver {
		return b, nil
	}
	var buf bytes.Buffer
	zw := gzipWriter(&buf)
	defer releaseGzip(zw)
	if _, err := zw.Write(b); err != nil {
		return nil, fmt.Errorf("encode outbox: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("encode outbox: %w", err)
	}
	return buf.Bytes(), nil
}

// decodeOutbox adds an encoded outbox (empty: none) under version ver.
func decodeOutbox(into map[int64][]activations.Record, ver int64, b []byte) error {
	if len(b) == 0 {
		return nil
	}
	if len(b) > 2 && b[0] == 0x1f && b[1] == 0x8b { // gzip; JSON starts with '['
		zr, err := gzipReader(bytes.NewReader(b))
		if err != nil {
			return fmt.Errorf("outbox: %w", err)
		}
		defer releaseGunzip(zr)
		if b, err = io.ReadAll(zr); err != nil {
			return fmt.Errorf("outbox: %w", err)
		}
	}
	var recs []activations.Record
	if err := json.Unmarshal(b, &recs); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	into[ver] = recs
	return nil
}
