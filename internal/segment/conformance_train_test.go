package segment

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/serverless-cdp/cdp/internal/predict"
)

// confTraining: runs are versioned, models and runs load with the definitions and go with
// their trait, states load in batches (in order, nil when none), chunks read back in order,
// and over-limit models and chunks are refused.
func confTraining(t *testing.T, s Stores) {
	tr := &ComputedTrait{ID: "ct_p", Key: "p", Name: "p", Kind: KindChurnLikelihood, Version: 1}
	must(t, tr.Validate())
	must(t, s.PutTrait(bg, tr, nil))
	run := &Training{TraitID: "ct_p", RunID: "r1", TraitVersion: 1, Status: TrainQueued, Version: 1}
	_, err := s.PutTraining(bg, run)
	must(t, err)
	_, err = s.PutTraining(bg, run)
	wantErr(t, "second run version 1", err, ErrConflict)
	run.Version, run.Status = 2, TrainCollecting
	u, err := s.PutTraining(bg, run)
	must(t, err)
	if u.Write <= 0 {
		t.Fatalf("put training reported %+v", u)
	}
	m := &predict.Model{Kind: KindChurnLikelihood, HorizonDays: 30, TrainedAt: t0, Cuts: []float64{0.1, 0.5},
		BGNBD: &predict.Params{Names: []string{"r"}, Values: []float64{0.5}}, Quality: predict.Quality{AUC: 0.8, Label: "Good"}}
	_, err = s.PutModel(bg, "ct_p", m)
	must(t, err)
	defs, err := s.LoadDefinitions(bg)
	must(t, err)
	got := defs.Models["ct_p"]
	if got == nil || got.Quality.AUC != 0.8 || !got.TrainedAt.Equal(t0) || got.BGNBD.Values[0] != 0.5 ||
		defs.Trainings["ct_p"] == nil || defs.Trainings["ct_p"].Status != TrainCollecting || len(defs.Traits) != 1 {
		t.Fatalf("loaded: model %+v run %+v traits %d", got, defs.Trainings["ct_p"], len(defs.Traits))
	}
	huge := &predict.Model{Kind: KindNextBestProduct, Neighbors: map[string][]string{}}
	for i := range 60000 {
		huge.Neighbors[fmt.Sprintf("%x", i*7919)] = []string{fmt.Sprintf("%d-%d", i, i*31), fmt.Sprint(i * 17)}
	}
	_, err = s.PutModel(bg, "ct_p", huge)
	wantErr(t, "huge model", err, ErrTooLarge)

	must(t, update(s, "s1", func(st *State) { st.Email = "a@x" }))
	must(t, update(s, "s2", func(st *State) { st.Email = "b@x" }))
	states, _, err := s.LoadStates(bg, []string{"s2", "none", "s1"})
	must(t, err)
	if len(states) != 3 || states[0] == nil || states[0].Email != "b@x" || states[1] != nil || states[2] == nil || states[2].Email != "a@x" {
		t.Fatalf("load states: %+v", states)
	}

	exp := time.Now().Add(time.Hour)
	for n := range 3 {
		_, err := s.PutChunk(bg, "ct_p", "r1", n, []predict.Profile{{Orders: int64(n)}, {Orders: int64(n + 10)}}, exp)
		must(t, err)
	}
	var seen []string
	u, err = s.Chunks(bg, "ct_p", "r1", 3, func(ps []predict.Profile) error {
		for _, p := range ps {
			seen = append(seen, fmt.Sprint(p.Orders))
		}
		return nil
	})
	must(t, err)
	if strings.Join(seen, ",") != "0,10,1,11,2,12" || u.Read <= 0 {
		t.Fatalf("chunks: %v %+v", seen, u)
	}
	if _, err := s.Chunks(bg, "ct_p", "r1", 4, func([]predict.Profile) error { return nil }); err == nil {
		t.Fatal("a missing chunk was not reported")
	}
	big := make([]predict.Profile, 4000)
	for i := range big {
		for j := range 30 {
			big[i].Viewed = append(big[i].Viewed, fmt.Sprintf("product-%d-%d", i*j*7919%1000003, j))
		}
	}
	_, err = s.PutChunk(bg, "ct_p", "r1", 9, big, exp)
	wantErr(t, "huge chunk", err, ErrTooLarge)

	must(t, s.DeleteTrait(bg, "ct_p"))
	defs, err = s.LoadDefinitions(bg)
	must(t, err)
	if defs.Models["ct_p"] != nil || defs.Trainings["ct_p"] != nil {
		t.Fatal("model or run left after the trait was deleted")
	}
	if errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
}
