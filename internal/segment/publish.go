package segment

import (
	"context"
	"sync"

	"github.com/serverless-cdp/cdp/internal/stream"
)

// groupPublisher merges the puts of concurrent callers (the profiles of a batch processed in
// parallel) into fewer stream calls, with no timer: a caller that finds no put in flight puts
// what is queued at once; callers that arrive meanwhile queue, and when the put in flight
// returns, the first of them puts everything queued by then in one call. Each caller gets the
// error of the call that carried its records (records written by a call that failed in part
// may be put again on retry: consumers dedupe by record id). A profile's records stay in order:
// its goroutine waits for each put before the next.
type groupPublisher struct {
	pub Publisher

	mu    sync.Mutex
	queue []*groupPut
	busy  bool // a caller is putting
}

type groupPut struct {
	recs []stream.Record
	done chan groupResult // buffered: the answer never blocks the answering caller
}

type groupResult struct {
	err  error
	lead bool // the receiver is to put the queue
}

// Put writes recs together with those of concurrent callers.
func (g *groupPublisher) Put(ctx context.Context, recs []stream.Record) error {
	req := &groupPut{recs: recs, done: make(chan groupResult, 1)}
	g.mu.Lock()
	g.queue = append(g.queue, req)
	lead := !g.busy
	g.busy = true
	g.mu.Unlock()
	if !lead {
		// A leader always answers: its put is bounded by its context.
		if res := <-req.done; !res.lead {
			return res.err
		}
	}
	g.mu.Lock()
	batch := g.queue
	g.queue = nil
	g.mu.Unlock()
	var all []stream.Record
	for _, r := range batch {
		all = append(all, r.recs...)
	}
	err := g.pub.Put(ctx, all)
	for _, r := range batch {
		if r != req {
			r.done <- groupResult{err: err}
		}
	}
	g.mu.Lock()
	if len(g.queue) > 0 {
		g.queue[0].done <- groupResult{lead: true}
	} else {
		g.busy = false
	}
	g.mu.Unlock()
	return err
}
