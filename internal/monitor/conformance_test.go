package monitor

import (
	"context"
	"reflect"
	"testing"
	"time"
)

// backend opens an empty store of one implementation.
type backend struct {
	name string
	open func(t testing.TB) Store
}

func backends() []backend {
	return append([]backend{{name: "memory", open: func(testing.TB) Store { return NewMemStore() }}}, integrationBackends()...)
}

// TestStoreConformance runs the same behaviour against every Store.
func TestStoreConformance(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Run("counts add up per source and minute", func(t *testing.T) { testCounts(t, b.open(t)) })
			t.Run("lag adds records and keeps the largest age", func(t *testing.T) { testLags(t, b.open(t)) })
			t.Run("rejections newest first", func(t *testing.T) { testRejections(t, b.open(t)) })
		})
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func testCounts(t *testing.T, s Store) {
	ctx := context.Background()
	m0 := minute(time.Now().Add(-90 * time.Minute)) // another hour's partition
	m1 := minute(time.Now().Add(-5 * time.Minute))
	must(t, s.Write(ctx, Batch{Counts: []Count{
		{Source: "src_a", Minute: m0, Accepted: 3, Rejected: map[string]int64{"unauthorized": 1}},
		{Source: "src_b", Minute: m1, Accepted: 2},
	}}))
	must(t, s.Write(ctx, Batch{Counts: []Count{
		{Source: "src_a", Minute: m0, Accepted: 4, Rejected: map[string]int64{"unauthorized": 2, "invalid_json": 1}},
	}}))
	got, err := s.Counts(ctx, m0)
	must(t, err)
	want := []Count{
		{Source: "src_a", Minute: m0, Accepted: 7, Rejected: map[string]int64{"unauthorized": 3, "invalid_json": 1}},
		{Source: "src_b", Minute: m1, Accepted: 2},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("counts since %v:\n got %+v\nwant %+v", m0, got, want)
	}
	got, err = s.Counts(ctx, m0.Add(time.Minute))
	must(t, err)
	if !reflect.DeepEqual(got, want[1:]) {
		t.Fatalf("counts since the next minute: got %+v, want %+v", got, want[1:])
	}
}

func testLags(t *testing.T, s Store) {
	ctx := context.Background()
	m := minute(time.Now().Add(-2 * time.Minute))
	must(t, s.Write(ctx, Batch{Lags: []Lag{{Stage: "identity", Minute: m, Records: 10, MaxAge: 2 * time.Second}}}))
	must(t, s.Write(ctx, Batch{Lags: []Lag{{Stage: "identity", Minute: m, Records: 5, MaxAge: time.Second}}}))
	must(t, s.Write(ctx, Batch{Lags: []Lag{{Stage: "identity", Minute: m, Records: 1, MaxAge: 3 * time.Second},
		{Stage: "segments", Minute: m, Records: 4, MaxAge: 1500 * time.Millisecond}}}))
	got, err := s.Lags(ctx, m)
	must(t, err)
	want := []Lag{{Stage: "identity", Minute: m, Records: 16, MaxAge: 3 * time.Second},
		{Stage: "segments", Minute: m, Records: 4, MaxAge: 1500 * time.Millisecond}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("lags:\n got %+v\nwant %+v", got, want)
	}
}

func testRejections(t *testing.T, s Store) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	r := func(d time.Duration, code string) Rejection {
		return Rejection{At: now.Add(-d), Source: "src_a", Code: code, Message: "m " + code, Path: "/v1/track"}
	}
	must(t, s.Write(ctx, Batch{Rejections: []Rejection{r(3*time.Second, "a"), r(time.Second, "c")}}))
	must(t, s.Write(ctx, Batch{Rejections: []Rejection{r(2*time.Second, "b"), r(2*time.Hour, "expired")}}))
	got, err := s.Rejections(ctx, 2)
	must(t, err)
	all, err := s.Rejections(ctx, 10)
	must(t, err)
	want := []Rejection{r(time.Second, "c"), r(2*time.Second, "b")}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("rejections:\n got %+v\nwant %+v", got, want)
	}
	if len(all) != 3 {
		t.Fatalf("all rejections of the last hour: got %d (%+v), want 3", len(all), all)
	}
}
