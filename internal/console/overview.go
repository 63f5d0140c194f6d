package console

import (
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/serverless-cdp/cdp/internal/apitypes"
	"github.com/serverless-cdp/cdp/internal/monitor"
)

// What the Overview reads per view (its read cost): the counts and lag of the last hour (two
// hour partitions), the latest rejections, the sources, the first dead letters of each stage
// and the latest deliveries of the first destinations.
const (
	overviewWindow       = time.Hour
	overviewDeadLetters  = 20 // per stage: "20+" beyond
	overviewDestinations = 10
	overviewDeliveries   = 50 // the latest, per destination
)

// overviewStages are the pipeline stages, in order.
var overviewStages = []string{"identity", "segments", "activation"}

type sourceRow struct {
	ID, Name                       string
	ThisMinute, Accepted, Rejected int64
	Chart                          template.HTML
}

type codeRow struct {
	Code  string
	Count int64
	Bar   template.HTML
}

type stageRow struct {
	Stage               string
	Records             int64
	LastMaxAge, MaxAge  time.Duration
	LatestLag           string // LastMaxAge, rounded
	Chart               template.HTML
	DeadLetters         int
	MoreDeadLetters     bool
	DeadLettersUnknown  bool
	DeadLettersNotFound bool
}

type destRow struct {
	ID, Name                            string
	Enabled                             bool
	Delivered, Retrying, Dead, Filtered int64
	Sampled                             int64
	AvgLatencyMs                        int64
	Meter                               template.HTML
	Err                                 string
}

type overviewData struct {
	Configured   bool
	Since, Now   time.Time
	Sources      []sourceRow
	Codes        []codeRow
	Stages       []stageRow
	Destinations []destRow
	MoreDests    bool
	Rejections   []monitor.Rejection
}

// deliveryPage and deadLetterPage are the parts of the admin API's answers the Overview reads.
type deliveryPage struct {
	Deliveries []struct {
		Status    string `json:"status"`
		LatencyMs int64  `json:"latencyMs"`
	} `json:"deliveries"`
}

type deadLetterPage struct {
	DeadLetters []struct {
		ID string `json:"id"`
	} `json:"deadLetters"`
	Next string `json:"next"`
}

func (s *Server) registerOverview() {
	s.page("GET "+Prefix+"/{$}", s.overview)
}

func (s *Server) overview(w http.ResponseWriter, r *http.Request) {
	now := s.o.Now().UTC()
	d := overviewData{Now: now, Since: now.Add(-overviewWindow + time.Minute).Truncate(time.Minute)}
	v := view{Title: "Overview", Active: "overview", Data: &d}
	var list apitypes.SourceList
	if err := s.call(r, http.MethodGet, "/admin/v1/sources", nil, &list); err != nil {
		s.render(w, r, "overview", errorView("Overview", "overview", err))
		return
	}
	var st monitor.Stats
	if s.o.Monitor != nil {
		d.Configured = true
		var err error
		if st, err = s.o.Monitor.Stats(r.Context(), d.Since); err != nil {
			s.o.Logger.ErrorContext(r.Context(), "console: overview stats", "err", err)
			v.Error = fmt.Sprintf("could not read the counts: %v", err)
		}
	}
	d.Sources, d.Codes = sourceRows(list.Sources, st.Counts, d.Since, now)
	d.Stages = stageRows(st.Lags, d.Since, now)
	for i := range d.Stages {
		s.deadLetters(r, &d.Stages[i])
	}
	d.Destinations, d.MoreDests = s.destRows(r)
	d.Rejections = st.Rejections[:min(5, len(st.Rejections))]
	s.render(w, r, "overview", v)
}

// sourceRows sums the counts per source (every listed source, and any other that sent) and
// per rejection code, and draws each source's minutes.
func sourceRows(sources []apitypes.Source, counts []monitor.Count, since, now time.Time) ([]sourceRow, []codeRow) {
	mins := minutes(since, now)
	index := map[string]int{}
	rows := []sourceRow{}
	perMinute := map[string]map[time.Time][2]float64{}
	add := func(id, name string) {
		index[id] = len(rows)
		rows = append(rows, sourceRow{ID: id, Name: name})
		perMinute[id] = map[time.Time][2]float64{}
	}
	for _, src := range sources {
		add(src.ID, src.Name)
	}
	codes := map[string]int64{}
	for _, c := range counts {
		if _, ok := index[c.Source]; !ok {
			name := c.Source // a deleted source
			if c.Source == monitor.UnknownSource {
				name = "Unknown or missing write key"
			}
			add(c.Source, name)
		}
		row := &rows[index[c.Source]]
		var rej int64
		for code, n := range c.Rejected {
			rej += n
			codes[code] += n
		}
		row.Accepted += c.Accepted
		row.Rejected += rej
		if c.Minute.Equal(now.Truncate(time.Minute)) {
			row.ThisMinute += c.Accepted
		}
		pm := perMinute[c.Source][c.Minute]
		perMinute[c.Source][c.Minute] = [2]float64{pm[0] + float64(c.Accepted), pm[1] + float64(rej)}
	}
	for i := range rows {
		bars := make([]bar, len(mins))
		for j, m := range mins {
			v := perMinute[rows[i].ID][m]
			bars[j] = bar{Values: v[:], Label: fmt.Sprintf("%s: %.0f accepted, %.0f rejected", m.Format("15:04"), v[0], v[1])}
		}
		rows[i].Chart = barChart(fmt.Sprintf("chart-src-%d", i), "Events per minute from "+rows[i].Name,
			fmt.Sprintf("Last hour: %d events accepted, %d requests rejected.", rows[i].Accepted, rows[i].Rejected),
			bars, []string{colAccent, colBad})
	}
	return rows, codeRows(codes)
}

func codeRows(codes map[string]int64) []codeRow {
	var out []codeRow
	var peak int64
	for code, n := range codes {
		out = append(out, codeRow{Code: code, Count: n})
		peak = max(peak, n)
	}
	slices.SortFunc(out, func(a, b codeRow) int { return int(b.Count - a.Count) })
	for i := range out {
		out[i].Bar = meter(fmt.Sprintf("chart-code-%d", i), fmt.Sprintf("%s: %d", out[i].Code, out[i].Count),
			[]float64{float64(out[i].Count), float64(peak - out[i].Count)}, []string{colBad, colLine})
	}
	return out
}

// stageRows draws each stage's largest wait per minute.
func stageRows(lags []monitor.Lag, since, now time.Time) []stageRow {
	mins := minutes(since, now)
	var rows []stageRow
	for i, stage := range overviewStages {
		row := stageRow{Stage: stage}
		byMinute := map[time.Time]monitor.Lag{}
		for _, l := range lags {
			if l.Stage == stage {
				byMinute[l.Minute] = l
				row.Records += l.Records
				row.MaxAge = max(row.MaxAge, l.MaxAge)
				row.LastMaxAge = l.MaxAge // lags come oldest first
			}
		}
		bars := make([]bar, len(mins))
		for j, m := range mins {
			l := byMinute[m]
			bars[j] = bar{Values: []float64{l.MaxAge.Seconds()},
				Label: fmt.Sprintf("%s: %d records, oldest waited %s", m.Format("15:04"), l.Records, l.MaxAge.Round(time.Millisecond))}
		}
		row.LatestLag = row.LastMaxAge.Round(time.Millisecond).String()
		row.Chart = barChart(fmt.Sprintf("chart-lag-%d", i), "Stream lag of "+stage+" per minute",
			fmt.Sprintf("Last hour: %d records; the oldest waited %s.", row.Records, row.MaxAge.Round(time.Millisecond)),
			bars, []string{colWarn})
		rows = append(rows, row)
	}
	return rows
}

// deadLetters reads the first dead letters of a stage (the admin API's list).
func (s *Server) deadLetters(r *http.Request, row *stageRow) {
	var page deadLetterPage
	err := s.call(r, http.MethodGet, fmt.Sprintf("/admin/v1/dead-letters/%s?limit=%d", url.PathEscape(row.Stage), overviewDeadLetters), nil, &page)
	switch {
	case IsNotFound(err):
		row.DeadLettersNotFound = true
	case err != nil:
		row.DeadLettersUnknown = true
	default:
		row.DeadLetters, row.MoreDeadLetters = len(page.DeadLetters), page.Next != ""
	}
}

// destRows tallies the latest deliveries of the first destinations.
func (s *Server) destRows(r *http.Request) ([]destRow, bool) {
	var list apitypes.DestinationList
	if err := s.call(r, http.MethodGet, "/admin/v1/destinations", nil, &list); err != nil {
		return []destRow{{Name: "—", Err: err.Error()}}, false
	}
	more := len(list.Destinations) > overviewDestinations
	var rows []destRow
	for i, d := range list.Destinations[:min(overviewDestinations, len(list.Destinations))] {
		row := destRow{ID: d.ID, Name: d.Name, Enabled: d.Enabled}
		var page deliveryPage
		if err := s.call(r, http.MethodGet, fmt.Sprintf("/admin/v1/destinations/%s/deliveries?limit=%d", url.PathEscape(d.ID), overviewDeliveries), nil, &page); err != nil {
			row.Err = err.Error()
		}
		var latency int64
		for _, x := range page.Deliveries {
			switch x.Status {
			case "delivered":
				row.Delivered++
				latency += x.LatencyMs
			case "dead":
				row.Dead++
			case "filtered_consent":
				row.Filtered++
			default:
				row.Retrying++
			}
		}
		row.Sampled = int64(len(page.Deliveries))
		if row.Delivered > 0 {
			row.AvgLatencyMs = latency / row.Delivered
		}
		row.Meter = meter(fmt.Sprintf("chart-dest-%d", i), fmt.Sprintf("%s: %d delivered, %d retrying or in flight, %d dead", d.Name, row.Delivered, row.Retrying, row.Dead),
			[]float64{float64(row.Delivered), float64(row.Retrying), float64(row.Dead)}, []string{colOK, colWarn, colBad})
		rows = append(rows, row)
	}
	return rows, more
}
