package importer

import "bytes"

// Batch limits of the tracking API (Segment's): a /v1/import body holds at most 2,500 messages
// and 500 KB.
const (
	MaxBatchEvents = 2500
	MaxBatchBytes  = 500 << 10
)

// batchPrefix and batchSuffix wrap the items of a /v1/import body; the envelope's context names
// the importer as the library (merged into every message by the tracking API).
const (
	batchPrefix = `{"context":{"library":{"name":"cdp-import"}},"batch":[`
	batchSuffix = `]}`
)

// item is one message of a batch and the row it came from.
type item struct {
	line int
	row  int // 1-based index of the data row in the file
	json []byte
}

// batch accumulates items up to the limits.
type batch struct {
	items []item
	bytes int
}

// fits reports whether it can join the batch without passing a limit: maxItems (at most
// MaxBatchEvents) and MaxBatchBytes.
func (b *batch) fits(it item, maxItems int) bool {
	if len(b.items) == 0 {
		return true
	}
	return len(b.items) < min(maxItems, MaxBatchEvents) && b.size()+1+len(it.json) <= MaxBatchBytes
}

func (b *batch) add(it item) {
	b.items = append(b.items, it)
	b.bytes += len(it.json)
}

// size is the body's size in bytes.
func (b *batch) size() int {
	n := len(batchPrefix) + len(batchSuffix) + b.bytes
	if len(b.items) > 1 {
		n += len(b.items) - 1
	}
	return n
}

// body is the /v1/import request body of items.
func body(items []item) []byte {
	var buf bytes.Buffer
	buf.WriteString(batchPrefix)
	for i, it := range items {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(it.json)
	}
	buf.WriteString(batchSuffix)
	return buf.Bytes()
}
