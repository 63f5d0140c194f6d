//go:build integration

package local_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestConsolePredictTrainNow: a churn_likelihood trait defined in the console's form (kind,
// horizon) shows "no model yet" in the list; on its model page Train now runs a training that
// is refused (no data) and says why; with the simulated customers sent, Train now again
// publishes a model whose backtest (label, AUC, lift, counts) the page shows, as does the list.
func TestConsolePredictTrainNow(t *testing.T) {
	c := newConsoleSession(t)
	adm := newSegAdmin(t, c.stack.URL)

	c.open("/console/traits/new")
	c.do(chromedp.SendKeys(field("name"), "Churn risk"), chromedp.SetValue(field("kind"), "churn_likelihood"),
		chromedp.SendKeys(field("horizon"), "7"))
	c.waitText("#definition", `"horizonDays": 7`, false, 5*time.Second)
	c.waitText("#draft", "Valid.", false, 5*time.Second)
	c.do(chromedp.Click(chromedp.CSS(`#trait-form button.primary`)), chromedp.WaitVisible(chromedp.CSS(`tr[data-trait="churn_risk"]`)))
	c.waitText(`tr[data-trait="churn_risk"] .model`, "no model yet", false, 5*time.Second)

	// Train now without data: the run is refused, with the counts that fell short.
	c.do(chromedp.Click(chromedp.CSS(`tr[data-trait="churn_risk"] .model a`)), chromedp.WaitVisible(chromedp.ID("train-now")))
	if got := c.text("#no-model"); !strings.Contains(got, "No model is published yet") {
		t.Fatalf("model page before training: %q", got)
	}
	c.do(chromedp.Click(chromedp.ID("train-now")))
	c.waitText("#run-status", "refused", false, predWait)
	if got := c.text("#run-reason"); !strings.Contains(got, "not enough data") {
		t.Fatalf("refusal reason %q", got)
	}

	// With 600 simulated customers, Train now publishes a model; the page follows the run.
	users := predSend(t, c.stack.URL, c.writeKey, time.Now().UTC())
	predWaitIngested(t, adm, len(users))
	c.do(chromedp.Click(chromedp.ID("train-now")))
	c.waitText("#run-status", "published", false, predWait)
	c.waitText("#model-label", "", false, 5*time.Second)
	label, auc := c.text("#model-label"), c.text("#q-auc")
	if label == "" || !strings.HasPrefix(auc, "0.") || c.text("#q-profiles") == "0" {
		t.Fatalf("published model: label %q, AUC %q, profiles %q", label, auc, c.text("#q-profiles"))
	}
	if counts := c.text("#q-counts"); !strings.Contains(counts, " / ") {
		t.Fatalf("counts %q", counts)
	}
	t.Logf("console shows: %s, AUC %s, lift %s, counts %s", label, auc, c.text("#q-lift"), c.text("#q-counts"))
	c.do(chromedp.Click(chromedp.CSS(`#model-quality details summary`)), chromedp.WaitVisible(chromedp.CSS(`#model-quality details table`)))
	c.shot("predictions")

	model := run(c, chromedp.Location())
	rru, wru := c.cost(func() {
		c.open(strings.TrimPrefix(model, c.stack.URL))
		c.waitText("#model-label", label, false, 5*time.Second)
	})
	t.Logf("model page: %.2f RRU, %.2f WRU per view", rru, wru)

	c.open("/console/traits")
	c.waitText(`tr[data-trait="churn_risk"] .model`, label, false, 5*time.Second)
	c.waitText(`tr[data-trait="churn_risk"] .model`, "AUC "+auc, false, 5*time.Second)
}
