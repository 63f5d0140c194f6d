package stream

import "sync"

// Doorbell wakes the pollers of a stream that wait for new records. The local runner rings it
// when a stage has published to the stream, so an idle shard reads at once instead of at its
// next poll interval (the interval stays the bound when nobody rings). On AWS the event source
// mapping polls by itself; nothing rings there. The zero value is ready to use; a nil Doorbell
// never rings.
type Doorbell struct {
	mu sync.Mutex
	ch chan struct{}
}

// Ring wakes every poller waiting on the doorbell, and every poller that took the doorbell's
// channel before its last read (so a ring during a read is not missed).
func (d *Doorbell) Ring() {
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ch != nil {
		close(d.ch)
		d.ch = nil
	}
}

// c returns a channel closed by the next Ring (nil, never closed, for a nil Doorbell).
func (d *Doorbell) c() <-chan struct{} {
	if d == nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ch == nil {
		d.ch = make(chan struct{})
	}
	return d.ch
}
