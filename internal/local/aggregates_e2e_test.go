//go:build integration

package local_test

import (
	"fmt"
	"math"
	"testing"
	"time"
)

// TestAllTimeSumOverTwoYearsEndToEnd: 5,000 orders sent through the tracking API with timestamps spread over two years give an exact all-time sum and count on the Profile
// API. The former event log kept 2,000 events / 400 days, so it summed only part of them.
func TestAllTimeSumOverTwoYearsEndToEnd(t *testing.T) {
	stack, _, writeKey := startStack(t)
	adm := newSegAdmin(t, stack.URL)
	api := newScnAPI(t, stack.URL)
	const user, n = "agg-ada", 5000
	orders := map[string]any{"name": "Order Completed"}
	ids := []string{
		adm.createTrait(map[string]any{"key": "spend", "name": "Spend", "kind": "sum", "event": orders, "property": "revenue"}),
		adm.createTrait(map[string]any{"key": "orders", "name": "Orders", "kind": "event_count", "event": orders}),
	}
	eventually(t, "traits live", segWait, func() bool {
		for _, id := range ids {
			if adm.traitStatus(id) != "live" {
				return false
			}
		}
		return true
	})

	// Sent with net/http, one batch of 250 at a time (the tracking API's batch endpoint, as
	// analytics-go calls it), so a slow emulator only slows the test down.
	now := time.Now().UTC()
	span := 2 * 365 * 24 * time.Hour
	var cents int64
	var batch []map[string]any
	for i := range n {
		c := int64(1 + (i*7919)%99999) // 0.01 … 999.99
		cents += c
		batch = append(batch, map[string]any{
			"type": "track", "messageId": fmt.Sprintf("agg-o%d", i), "userId": user, "event": "Order Completed",
			"timestamp":  now.Add(-span + time.Duration(i)*(span/n)).Format(time.RFC3339Nano),
			"properties": map[string]any{"revenue": float64(c) / 100},
		})
		if len(batch) == 250 {
			if st := call(t, "POST", stack.URL+"/v1/batch", "Basic "+basicToken(writeKey), map[string]any{"batch": batch}, nil); st != 200 {
				t.Fatalf("batch ending at %d: %d", i, st)
			}
			batch = nil
		}
	}

	want := float64(cents) / 100
	deadline := 5 * time.Minute // 5,000 events through every stage on a shared machine
	var last map[string]any
	for end := time.Now().Add(deadline); ; time.Sleep(500 * time.Millisecond) {
		if last = segComputedOnceKnown(t, api, user); last != nil && last["orders"] == float64(n) {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for the computed traits of %d orders; last: %v", n, last)
		}
	}
	got := segClassTraits(t, api, user, "computed_trait")
	spend, ok := got["spend"].(float64)
	if !ok || math.Abs(spend-want) > 0.001 || fmt.Sprintf("%.2f", spend) != fmt.Sprintf("%d.%02d", cents/100, cents%100) {
		t.Fatalf("spend %v, want %d.%02d (orders %v)", got["spend"], cents/100, cents%100, got["orders"])
	}
}
