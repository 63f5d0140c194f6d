package predict

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// DefaultK is how many products next_best_product lists when Config.K is 0.
const DefaultK = 5

// Day is t's UTC day number (days since the Unix epoch).
func Day(t time.Time) int64 {
	s := t.Unix()
	d := s / 86400
	if s%86400 < 0 {
		d--
	}
	return d
}

// CutoffDay is the last day of the backtest's calibration period: now's day − horizonDays. The
// holdout is the days after it up to now's day; "within the horizon" (Profile's Recent* fields)
// means on one of those days.
func CutoffDay(now time.Time, horizonDays int) int64 {
	return Day(now) - int64(horizonDays)
}

// Train fits a model of cfg.Kind on profiles at now: first a backtest (fitted on each
// profile's history up to CutoffDay, scored there and compared with what the profile did in the
// holdout), refusing with ErrInsufficient when the backtest has fewer than MinPositives
// positives or MinNegatives negatives or the history (oldest first goal day to now) is shorter
// than HistoryFactor × the horizon; then a refit on all of the data for the published model,
// whose Cuts are the percentiles of every profile's score at now.
//
// Profile.Goal must hold, for churn_likelihood, the profile's activity days; for the other kinds
// its goal (order) days, which also date the history.
func Train(cfg Config, profiles []Profile, now time.Time) (*Model, error) {
	if cfg.HorizonDays <= 0 {
		return nil, fmt.Errorf("train %s: horizon must be positive, got %d days", cfg.Kind, cfg.HorizonDays)
	}
	switch cfg.Kind {
	case KindPurchase, KindChurn, KindLTV, KindReturn, KindProduct:
	default:
		return nil, fmt.Errorf("train: unknown kind %q", cfg.Kind)
	}
	nowDay := Day(now)
	if err := checkHistory(profiles, nowDay, cfg.HorizonDays); err != nil {
		return nil, fmt.Errorf("train %s: %w", cfg.Kind, err)
	}
	var m *Model
	var err error
	switch cfg.Kind {
	case KindPurchase, KindChurn, KindLTV:
		m, err = trainBG(cfg, profiles, nowDay)
	case KindReturn:
		m, err = trainReturn(cfg, profiles)
	default:
		m, err = trainProducts(cfg, profiles)
	}
	if err != nil {
		return nil, fmt.Errorf("train %s: %w", cfg.Kind, err)
	}
	m.Kind, m.HorizonDays, m.TrainedAt = cfg.Kind, cfg.HorizonDays, now.UTC()
	if cfg.Kind != KindProduct {
		vals := make([]float64, len(profiles))
		for i, p := range profiles {
			vals[i] = m.value(p, nowDay)
		}
		m.Cuts = percentileCuts(vals)
	}
	return m, nil
}

// checkHistory refuses a history shorter than HistoryFactor horizons.
func checkHistory(profiles []Profile, nowDay int64, horizon int) error {
	oldest, any := int64(math.MaxInt64), false
	for _, p := range profiles {
		if p.Goal.Count > 0 && p.Goal.First < oldest {
			oldest, any = p.Goal.First, true
		}
	}
	if !any {
		return fmt.Errorf("%w: none of the %d profiles has the goal event", ErrInsufficient, len(profiles))
	}
	if span := nowDay - oldest; span < int64(HistoryFactor*horizon) {
		return fmt.Errorf("%w: the history spans %d days, fewer than %d (%d × the %d-day horizon)",
			ErrInsufficient, span, HistoryFactor*horizon, HistoryFactor, horizon)
	}
	return nil
}

// checkCounts refuses a backtest with too few positives or negatives.
func checkCounts(pos, neg int, what string) error {
	if pos < MinPositives || neg < MinNegatives {
		return fmt.Errorf("%w: the backtest has %d profiles %s and %d without (at least %d and %d needed)",
			ErrInsufficient, pos, what, neg, MinPositives, MinNegatives)
	}
	return nil
}

// calStatus is what a profile's history at the cutoff is.
type calStatus int

const (
	calOK      calStatus = iota
	calNone              // no goal day on or before the cutoff
	calUnknown           // its last day before the cutoff fell out of Recent
)

// calibrate is a profile's BG/NBD summary at the cutoff day from its activity, and how many of
// its active days fall after the cutoff.
func calibrate(a Activity, cutoff int64) (summary, int, calStatus) {
	after := 0
	last := int64(math.MinInt64)
	for _, d := range a.Recent {
		if d > cutoff {
			after++
		} else if d > last {
			last = d
		}
	}
	n := a.Count - int64(after)
	switch {
	case a.Count == 0 || a.First > cutoff || n <= 0:
		return summary{}, after, calNone
	case n == 1:
		last = a.First
	case last == math.MinInt64:
		return summary{}, after, calUnknown
	}
	return summary{x: float64(n - 1), tx: float64(last - a.First), T: float64(cutoff - a.First)}, after, calOK
}

// allTime is a profile's BG/NBD summary at now's day from all of its activity.
func allTime(a Activity, nowDay int64) summary {
	last := a.First
	if len(a.Recent) > 0 {
		last = max(a.Recent[len(a.Recent)-1], a.First)
	}
	T := max(float64(nowDay-a.First), 0)
	return summary{x: float64(max(a.Count-1, 0)), tx: math.Min(float64(last-a.First), T), T: T}
}

// backtestRow is one profile in a BG/NBD backtest.
type backtestRow struct {
	i     int // index in profiles
	s     summary
	after int // active days in the holdout
}

// bgBacktest is a BG/NBD backtest's profiles, and those it left out.
type bgBacktest struct {
	rows      []backtestRow
	unknown   int // calibration history not knowable from Recent
	newcomers int // first goal day in the holdout
	never     int // no goal day at all
}

func collectBacktest(profiles []Profile, cutoff int64) bgBacktest {
	var bt bgBacktest
	for i, p := range profiles {
		s, after, st := calibrate(p.Goal, cutoff)
		switch {
		case st == calUnknown:
			bt.unknown++
		case st == calNone && p.Goal.Count == 0:
			bt.never++
		case st == calNone:
			bt.newcomers++
		default:
			bt.rows = append(bt.rows, backtestRow{i: i, s: s, after: after})
		}
	}
	return bt
}

// noHistoryRate is the share of profiles without a goal day at the cutoff that had one in the
// holdout: the purchase likelihood of a profile with no history.
func (bt bgBacktest) noHistoryRate() float64 {
	if bt.newcomers+bt.never == 0 {
		return 0
	}
	return float64(bt.newcomers) / float64(bt.newcomers+bt.never)
}

var errNoFit = errors.New("no profile to fit")
