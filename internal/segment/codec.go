package segment

import (
	"compress/gzip"
	"io"
	"sync"
)

// A gzip writer allocates about a megabyte of compressor state; encoding a profile's state
// with a new one each time cost more CPU (allocation and GC) than everything else a change
// does in this process. Writers are reused through a pool (Reset keeps the level).
var gzipWriters = sync.Pool{New: func() any {
	zw, _ := gzip.NewWriterLevel(io.Discard, gzip.BestSpeed) // a valid level: no error
	return zw
}}

// gzipWriter returns a pooled gzip writer (BestSpeed) writing to w; give it back with
// releaseGzip once closed.
func gzipWriter(w io.Writer) *gzip.Writer {
	zw := gzipWriters.Get().(*gzip.Writer)
	zw.Reset(w)
	return zw
}

func releaseGzip(zw *gzip.Writer) { gzipWriters.Put(zw) }

// Readers are pooled too (each holds about 40 KB of decompressor state).
var gzipReaders sync.Pool

// gzipReader returns a pooled gzip reader of r; give it back with releaseGunzip.
func gzipReader(r io.Reader) (*gzip.Reader, error) {
	if zr, ok := gzipReaders.Get().(*gzip.Reader); ok {
		if err := zr.Reset(r); err != nil {
			return nil, err
		}
		return zr, nil
	}
	return gzip.NewReader(r)
}

func releaseGunzip(zr *gzip.Reader) { gzipReaders.Put(zr) }
