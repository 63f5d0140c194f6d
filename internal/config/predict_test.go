//go:build integration

package config_test

import (
	"strings"
	"testing"

	"github.com/serverless-cdp/cdp/internal/config"
)

// TestApplyPredictiveTrait: a churn_likelihood trait declared with its prediction applies; a
// second apply changes nothing (the defaults the API fills in are the file's too); a new
// horizon updates the prediction; an audience on its percentile applies; a prediction on a
// kind that is not predictive is refused at parse time, naming the field.
func TestApplyPredictiveTrait(t *testing.T) {
	s := newServer(t)
	c := s.client(t)
	file := `computedTraits:
  - key: churn_risk
    name: Churn risk
    kind: churn_likelihood
    prediction: {horizonDays: 14}
audiences:
  - key: churn_top20
    name: Top 20 % likely to churn
    condition: {computedTrait: {key: churn_risk.percentile, op: gte, value: 80}}
`
	if out := apply(t, c, mustParse(t, file), config.Options{}); out != "+ computed trait churn_risk\n+ audience churn_top20\n" {
		t.Fatalf("apply printed\n%s", out)
	}
	if out := apply(t, c, mustParse(t, file), config.Options{}); out != "" {
		t.Fatalf("second apply printed\n%s", out)
	}
	edited := strings.Replace(file, "horizonDays: 14", "horizonDays: 30", 1)
	if out := apply(t, c, mustParse(t, edited), config.Options{}); out != "~ computed trait churn_risk: prediction\n" {
		t.Fatalf("new horizon printed\n%s", out)
	}
	if out := apply(t, c, mustParse(t, edited), config.Options{}); out != "" {
		t.Fatalf("apply after the edit printed\n%s", out)
	}
	bad := "computedTraits:\n  - key: o\n    name: O\n    kind: event_count\n    event: {name: x}\n    prediction: {horizonDays: 14}\n"
	if _, err := config.Parse([]byte(bad)); err == nil || !strings.Contains(err.Error(), "computedTraits[0].prediction") {
		t.Fatalf("prediction on event_count: %v", err)
	}
}
