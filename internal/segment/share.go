package segment

import (
	"maps"
	"slices"
	"time"
)

// DefaultTimelineRetention is how long the identity stage keeps timeline events unless
// configured (identity.DefaultRetention, CDP_TIMELINE_RETENTION_DAYS).
const DefaultTimelineRetention = 90 * 24 * time.Hour

// shareCounts lets a windowed count (a count trait or an audience's event condition) use the
// accumulator of a sum, avg, min or max over the same events and window: that one counts them
// too, so a profile keeps one set of buckets instead of two. Only windows within the timeline's
// retention share: when the numeric definition is created later, its accumulator is built from
// the timeline, which then still holds every event the count had counted.
func (c *Catalog) shareCounts(retention time.Duration) {
	numeric := map[string]*aggSpec{}
	for _, sig := range slices.Sorted(maps.Keys(c.specs)) {
		s := c.specs[sig]
		if (s.class == classSum || s.class == classNumeric) && s.shareable(retention) && numeric[s.eventsKey()] == nil {
			numeric[s.eventsKey()] = s
		}
	}
	remap := map[*aggSpec]*aggSpec{}
	for _, s := range c.specs {
		if s.class == classCount && s.shareable(retention) {
			if to := numeric[s.eventsKey()]; to != nil {
				remap[s] = to
			}
		}
	}
	if len(remap) == 0 {
		return
	}
	for k, s := range c.traitSpecs {
		if to := remap[s]; to != nil {
			c.traitSpecs[k] = to
		}
	}
	for e, s := range c.condSpecs {
		if to := remap[s]; to != nil {
			c.condSpecs[e] = to
		}
	}
	for _, f := range c.features {
		f.remap(remap)
	}
	for s := range remap {
		delete(c.specs, s.sig)
	}
	c.specsByEvent = map[string][]*aggSpec{}
	for _, sig := range slices.Sorted(maps.Keys(c.specs)) {
		s := c.specs[sig]
		k := evKey(s.filter.EventType(), s.filter.Name)
		c.specsByEvent[k] = append(c.specsByEvent[k], s)
	}
}

// shareable: a window (not all time, not a period) the timeline covers whole.
func (s *aggSpec) shareable(retention time.Duration) bool {
	return s.between == nil && s.window > 0 && s.window+s.bucket <= retention
}

// eventsKey identifies the events and buckets an accumulator covers, whatever it keeps of them.
func (s *aggSpec) eventsKey() string {
	k := *s
	k.class, k.prop = "", ""
	return k.signature()
}
