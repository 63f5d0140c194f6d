package console

import (
	"fmt"
	"html/template"
	"strings"
	"time"
)

// Charts are server-rendered inline SVG with presentation attributes only (the CSP forbids
// style attributes), each with a <title> and <desc> for screen readers and the numbers also
// in a table next to it.

// Colours of the charts (the CSS's --accent, --bad, --warn, --line).
const (
	colAccent = "#0b57d0"
	colBad    = "#b3261e"
	colWarn   = "#7a4d00"
	colLine   = "#d0d4da"
	colOK     = "#0a6b2d"
)

// bar is one column of a chart: stacked values (bottom first), and its tooltip.
type bar struct {
	Values []float64
	Label  string
}

// barChart draws stacked columns, one per bar, scaled to the tallest; colours per stack level.
func barChart(id, title, desc string, bars []bar, colours []string) template.HTML {
	const w, h, pad = 360.0, 64.0, 2.0
	var peak float64
	for _, b := range bars {
		var sum float64
		for _, v := range b.Values {
			sum += v
		}
		peak = max(peak, sum)
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg class="chart" id="%s" role="img" aria-labelledby="%s-t %s-d" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f" xmlns="http://www.w3.org/2000/svg">`,
		id, id, id, w, h+pad, w, h+pad)
	fmt.Fprintf(&sb, `<title id="%s-t">%s</title><desc id="%s-d">%s</desc>`, id, template.HTMLEscapeString(title), id, template.HTMLEscapeString(desc))
	fmt.Fprintf(&sb, `<line x1="0" y1="%.1f" x2="%.0f" y2="%.1f" stroke="%s" stroke-width="1"/>`, h+.5, w, h+.5, colLine)
	if len(bars) > 0 && peak > 0 {
		bw := w / float64(len(bars))
		for i, b := range bars {
			y := h
			sb.WriteString("<g>")
			fmt.Fprintf(&sb, `<title>%s</title>`, template.HTMLEscapeString(b.Label))
			for j, v := range b.Values {
				if v <= 0 {
					continue
				}
				bh := max(1, v/peak*(h-pad))
				y -= bh
				fmt.Fprintf(&sb, `<rect x="%.2f" y="%.2f" width="%.2f" height="%.2f" fill="%s"/>`, float64(i)*bw+.5, y, max(bw-1, .5), bh, colours[j%len(colours)])
			}
			sb.WriteString("</g>")
		}
	}
	sb.WriteString("</svg>")
	return template.HTML(sb.String()) // every text above is escaped
}

// meter draws a horizontal bar split into parts (e.g. delivered, retrying, dead).
func meter(id, title string, parts []float64, colours []string) template.HTML {
	const w, h = 200.0, 14.0
	var total float64
	for _, p := range parts {
		total += p
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg class="chart" id="%s" role="img" aria-label="%s" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f" xmlns="http://www.w3.org/2000/svg">`,
		id, template.HTMLEscapeString(title), w, h, w, h)
	fmt.Fprintf(&sb, `<rect x="0" y="0" width="%.0f" height="%.0f" fill="%s"/>`, w, h, colLine)
	x := 0.0
	for i, p := range parts {
		if total <= 0 || p <= 0 {
			continue
		}
		pw := p / total * w
		fmt.Fprintf(&sb, `<rect x="%.2f" y="0" width="%.2f" height="%.0f" fill="%s"/>`, x, pw, h, colours[i%len(colours)])
		x += pw
	}
	sb.WriteString("</svg>")
	return template.HTML(sb.String())
}

// minutes lists the minutes from since to now (UTC, truncated), oldest first.
func minutes(since, now time.Time) []time.Time {
	var out []time.Time
	for m := since.UTC().Truncate(time.Minute); !m.After(now); m = m.Add(time.Minute) {
		out = append(out, m)
	}
	return out
}
