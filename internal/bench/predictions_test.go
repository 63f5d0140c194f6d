package bench

import (
	"strings"
	"testing"
)

// TestPredictionsSection: the bench's predictions section trains every kind on the simulator
// and reports a quality per kind, with the fitted parameters next to the truth.
func TestPredictionsSection(t *testing.T) {
	if testing.Short() {
		t.Skip("trains five models on 5,000 customers")
	}
	rep := &Report{}
	predictions(7, rep, t.Logf)
	if rep.Predictions == nil || len(rep.Predictions.Kinds) != 5 {
		t.Fatalf("predictions: %+v", rep.Predictions)
	}
	for _, k := range rep.Predictions.Kinds {
		if k.Error != "" || k.Quality.Label == "" || k.Quality.Positives < 100 {
			t.Errorf("%s: %+v", k.Kind, k)
		}
	}
	var b strings.Builder
	rep.predictionsTable(&b)
	if !strings.Contains(b.String(), "next_best_product") || !strings.Contains(b.String(), "(0.243)") {
		t.Errorf("table:\n%s", b.String())
	}
	t.Log("\n" + b.String())
}
