package stream

import "sync"

// Doorbell wakes the pollers of a stream that wait for new records. The local runner rings it
// when a stage has published to the stream, naming the shards the records went to, so an idle
// shard reads at once instead of at its next poll interval, and the other shards sleep on. On
// AWS the event source mapping polls by itself; nothing rings there. The zero value is ready to
// use; a nil Doorbell never rings.
type Doorbell struct {
	mu sync.Mutex
	ch map[string]chan struct{} // shard → closed by the next ring for it
}

// Ring wakes the pollers of the given shards (of every shard when none is given) that wait on
// the doorbell or took its channel before their last read (so a ring during a read is not
// missed).
func (d *Doorbell) Ring(shardIDs ...string) {
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(shardIDs) == 0 {
		for id, ch := range d.ch {
			close(ch)
			delete(d.ch, id)
		}
		return
	}
	for _, id := range shardIDs {
		if ch, ok := d.ch[id]; ok {
			close(ch)
			delete(d.ch, id)
		}
	}
}

// c returns a channel closed by the next Ring for the shard (nil, never closed, for a nil
// Doorbell).
func (d *Doorbell) c(shardID string) <-chan struct{} {
	if d == nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ch == nil {
		d.ch = map[string]chan struct{}{}
	}
	ch, ok := d.ch[shardID]
	if !ok {
		ch = make(chan struct{})
		d.ch[shardID] = ch
	}
	return ch
}
