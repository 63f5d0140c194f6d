package segment

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math"
	"time"

	"github.com/serverless-cdp/cdp/internal/predict"
)

// Accumulator classes: what an accumulator keeps, from what the kinds that use it need. Two
// definitions with the same filter, property, window and class share one accumulator.
const (
	classCount    = "n" // matching events (event_count, rfm_frequency, event conditions)
	classSum      = "s" // and count and sum of a numeric property
	classNumeric  = "x" // and count, sum, min, max of a numeric property
	classEdge     = "e" // and the first and last matching event (time, property value)
	classFrequent = "f" // and the counts of the most frequent property values
	classList     = "l" // and the MaxUniqueValues smallest distinct property values
	classDistinct = "d" // and the MaxDistinctHashes smallest hashes of distinct values
)

// Bounds of the accumulators (see README, "Computed traits").
const (
	// MaxFrequentCounters bounds the value counts of most_frequent (space-saving): exact while
	// a profile has at most this many distinct values (per bucket, in a window), an
	// approximation above.
	MaxFrequentCounters = 32
	// MaxDistinctHashes bounds unique_count: exact up to this many distinct values (per bucket,
	// in a window); above, an estimate from the smallest hashes (k minimum values, standard
	// error about 9%), never below this number.
	MaxDistinctHashes = 128
)

// classOf is the accumulator class a computed trait's kind needs.
func classOf(kind string) string {
	switch kind {
	case KindSum, KindAvg, KindLifetimeValue, KindRFMMonetary:
		return classSum // no smallest and largest value: a smaller state
	case KindMin, KindMax:
		return classNumeric
	case KindFirst, KindLast, KindRFMRecency:
		return classEdge
	case KindMostFrequent:
		return classFrequent
	case KindUniqueList:
		return classList
	case KindUniqueCount:
		return classDistinct
	}
	if IsPredictive(kind) {
		return classDays // the goal's active days (the other features: addFeatures)
	}
	return classCount
}

// aggSpec is what determines an accumulator's content; sig identifies it in State.Aggs.
type aggSpec struct {
	sig     string
	filter  *EventFilter
	prop    string
	class   string
	window  time.Duration // 0: all time
	bucket  time.Duration // of a windowed accumulator: a day, or an hour when the window has hours
	between *Period       // an event condition over an absolute period: a plain count
	except  *EventFilter  // events not counted (churn's activity: not the returns)
}

// traitSpec is the accumulator of a computed trait.
func traitSpec(c *ComputedTrait) *aggSpec {
	prop := c.Property
	if classOf(c.Kind) == classCount {
		prop = ""
	}
	s := &aggSpec{filter: &c.Event, prop: prop, class: classOf(c.Kind), window: c.Window.Duration()}
	s.bucket = bucketOf(c.Window)
	if c.Kind == KindChurnLikelihood && c.Prediction != nil {
		s.except = c.Prediction.ReturnEvent // a refund follows an order, active customer or not
	}
	s.sig = s.signature()
	return s
}

// condSpec is the accumulator of an audience's event condition.
func condSpec(e *EventCondition) *aggSpec {
	s := &aggSpec{filter: &e.EventFilter, class: classCount, between: e.Between}
	if e.Between == nil {
		s.window, s.bucket = e.Within.Duration(), bucketOf(e.Within)
	}
	s.sig = s.signature()
	return s
}

// bucketOf is a window's bucket size: a UTC day when the window is whole days, else an hour.
func bucketOf(w Window) time.Duration {
	switch {
	case w.Duration() == 0:
		return 0
	case w.Hours == 0:
		return 24 * time.Hour
	}
	return time.Hour
}

// signature is a short hash of everything that determines the accumulator's content, so an
// edited definition gets a new accumulator (built by a backfill).
func (s *aggSpec) signature() string {
	b, _ := json.Marshal(struct {
		T, N, P, C string
		W          []Predicate
		D, B       time.Duration
		Btw        *Period
	}{s.filter.EventType(), s.filter.Name, s.prop, s.class, s.filter.Where, s.window, s.bucket, s.between})
	if s.except != nil { // (only then: the signatures of the other accumulators stay)
		x, _ := json.Marshal(s.except)
		b = append(append(b, '!'), x...)
	}
	h := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(h[:9])
}

// matches reports whether an event counts in the accumulator (the filter and, for a period,
// its time).
func (s *aggSpec) matches(e *Event) bool {
	if s.between != nil && (e.T.Before(s.between.From) || !e.T.Before(s.between.To)) {
		return false
	}
	return matches(s.filter, e) && (s.except == nil || !matches(s.except, e))
}

// Acc is one accumulator of a profile: an all-time (or period) tally, or the sparse time
// buckets of a window, oldest first.
type Acc struct {
	T *Tally   `json:"t,omitempty"`
	B []Bucket `json:"b,omitempty"`
}

// Bucket is the tally of the events of one bucket of time.
type Bucket struct {
	S int64 `json:"at"` // start, in bucket sizes since the Unix epoch
	Tally
}

// end is when the bucket's time ends.
func (b *Bucket) end(size time.Duration) time.Time {
	return time.Unix(0, 0).UTC().Add(time.Duration(b.S+1) * size)
}

// live reports whether a bucket still counts at now: until its end plus the window.
func (b *Bucket) live(s *aggSpec, now time.Time) bool {
	return b.end(s.bucket).Add(s.window).After(now)
}

// add counts a matching event; events whose bucket has left the window are ignored.
func (a *Acc) add(s *aggSpec, e *Event, now time.Time) {
	if s.window == 0 {
		if a.T == nil {
			a.T = &Tally{}
		}
		a.T.add(s, e)
		return
	}
	b := Bucket{S: floorDiv(e.T.UnixNano(), int64(s.bucket))}
	if !b.live(s, now) {
		return
	}
	i := 0
	for i < len(a.B) && a.B[i].S < b.S {
		i++
	}
	if i == len(a.B) || a.B[i].S != b.S {
		a.B = append(a.B, Bucket{})
		copy(a.B[i+1:], a.B[i:])
		a.B[i] = b
	}
	a.B[i].add(s, e)
	a.prune(s, now)
}

// prune drops the buckets that have left the window.
func (a *Acc) prune(s *aggSpec, now time.Time) {
	k := 0
	for k < len(a.B) && !a.B[k].live(s, now) {
		k++
	}
	if k > 0 {
		a.B = append(a.B[:0], a.B[k:]...)
	}
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// at is the accumulator's tally at now: the all-time one, or the buckets still in the window.
func (a *Acc) at(s *aggSpec, now time.Time) *Tally {
	if a == nil {
		return &Tally{}
	}
	if s.window == 0 {
		if a.T == nil {
			return &Tally{}
		}
		return a.T
	}
	t := &Tally{}
	for i := range a.B {
		if a.B[i].live(s, now) {
			t.merge(&a.B[i].Tally)
		}
	}
	return t
}

// nextChange is the earliest time after now at which the accumulator's value at a later time
// differs with no new event: the first live bucket's end plus the window (zero: never).
func (a *Acc) nextChange(s *aggSpec, now time.Time) time.Time {
	if a == nil || s.window == 0 {
		return time.Time{}
	}
	for i := range a.B {
		if a.B[i].live(s, now) {
			return a.B[i].end(s.bucket).Add(s.window)
		}
	}
	return time.Time{}
}

// merge adds another profile's accumulator (a merge of profiles).
func (a *Acc) merge(o *Acc) {
	if o.T != nil {
		if a.T == nil {
			a.T = &Tally{}
		}
		a.T.merge(o.T)
	}
	for _, ob := range o.B {
		i := 0
		for i < len(a.B) && a.B[i].S < ob.S {
			i++
		}
		if i < len(a.B) && a.B[i].S == ob.S {
			a.B[i].merge(&ob.Tally)
			continue
		}
		a.B = append(a.B, Bucket{})
		copy(a.B[i+1:], a.B[i:])
		a.B[i] = Bucket{S: ob.S}
		a.B[i].merge(&ob.Tally)
	}
}

// Tally is what an accumulator keeps of the events it counted; only the fields its class needs
// are set.
type Tally struct {
	N   int64   `json:"n,omitempty"`  // matching events
	K   int64   `json:"k,omitempty"`  // of those, with a numeric property value
	Sum float64 `json:"s,omitempty"`  // of the numeric values (Neumaier-compensated by C)
	C   float64 `json:"c,omitempty"`  // compensation of Sum
	Lo  float64 `json:"lo,omitempty"` // smallest numeric value (valid when K > 0)
	Hi  float64 `json:"hi,omitempty"` // largest numeric value (valid when K > 0)
	// First and Last are the earliest and latest matching events.
	First *Edge `json:"f,omitempty"`
	Last  *Edge `json:"l,omitempty"`
	// Freq counts property values (space-saving, at most MaxFrequentCounters).
	Freq map[string]int64 `json:"q,omitempty"`
	// List is the smallest distinct property values, sorted, at most MaxUniqueValues.
	List []string `json:"u,omitempty"`
	// Hash is the smallest hashes of distinct property values, sorted (8 bytes each, at most
	// MaxDistinctHashes); Over says some were dropped.
	Hash []byte `json:"h,omitempty"`
	Over bool   `json:"o,omitempty"`
	// D is the distinct active UTC days (classDays).
	D *predict.Activity `json:"d,omitempty"`
}

// Edge is an event at one end of an accumulator: its time, message id (ties: the smaller id
// is earlier) and property value.
type Edge struct {
	T  int64           `json:"t"` // Unix nanoseconds
	ID string          `json:"i,omitempty"`
	V  json.RawMessage `json:"v,omitempty"`
}

func (e *Edge) before(o *Edge) bool { return e.T < o.T || e.T == o.T && e.ID < o.ID }

// add counts one matching event.
func (t *Tally) add(s *aggSpec, e *Event) {
	t.N++
	switch s.class {
	case classCount:
		return
	case classDays:
		if t.D == nil {
			t.D = &predict.Activity{}
		}
		addDay(t.D, predict.Day(e.T))
		return
	case classProducts:
		t.addProducts(s, e)
		return
	case classEdge:
		ed := &Edge{T: e.T.UnixNano(), ID: e.ID}
		if s.prop != "" {
			if v, ok := lookup(e.props(), s.prop); ok {
				ed.V, _ = json.Marshal(v)
			}
		}
		t.addEdge(ed, ed)
		return
	}
	v, ok := lookup(e.props(), s.prop)
	if !ok {
		return
	}
	switch s.class {
	case classNumeric:
		if f, isNum := toNumber(v); isNum {
			t.addNumbers(1, f, 0, f, f)
		}
	case classSum:
		if f, isNum := toNumber(v); isNum {
			t.K++
			t.neumaier(f)
		}
	case classFrequent:
		if str := scalarString(v); str != "" {
			t.addFreq(str, 1)
		}
	case classList:
		if str := scalarString(v); str != "" {
			t.List = insertSorted(t.List, str, MaxUniqueValues)
		}
	case classDistinct:
		if str := scalarString(v); str != "" {
			t.addHash(hashValue(str))
		}
	}
}

// merge adds another tally.
func (t *Tally) merge(o *Tally) {
	t.N += o.N
	if o.K > 0 {
		t.addNumbers(o.K, o.Sum, o.C, o.Lo, o.Hi)
	}
	t.addEdge(o.First, o.Last)
	for v, n := range o.Freq {
		t.addFreq(v, n)
	}
	for _, v := range o.List {
		t.List = insertSorted(t.List, v, MaxUniqueValues)
	}
	for i := 0; i+8 <= len(o.Hash); i += 8 {
		t.addHash(o.Hash[i : i+8])
	}
	t.Over = t.Over || o.Over
	if o.D != nil {
		if t.D == nil {
			t.D = &predict.Activity{}
		}
		mergeDays(t.D, o.D)
	}
}

// addNumbers adds k numbers of sum s (compensation c), smallest lo and largest hi.
func (t *Tally) addNumbers(k int64, s, c, lo, hi float64) {
	if t.K == 0 {
		t.Lo, t.Hi = lo, hi
	} else {
		t.Lo, t.Hi = math.Min(t.Lo, lo), math.Max(t.Hi, hi)
	}
	t.K += k
	t.neumaier(s)
	t.C += c
}

// neumaier adds x to Sum, keeping the rounding error in C (so long sums stay exact to the
// last digit of float64).
func (t *Tally) neumaier(x float64) {
	sum := t.Sum + x
	if math.Abs(t.Sum) >= math.Abs(x) {
		t.C += (t.Sum - sum) + x
	} else {
		t.C += (x - sum) + t.Sum
	}
	t.Sum = sum
}

// total is the compensated sum.
func (t *Tally) total() float64 { return t.Sum + t.C }

func (t *Tally) addEdge(first, last *Edge) {
	if first != nil && (t.First == nil || first.before(t.First)) {
		t.First = first
	}
	if last != nil && (t.Last == nil || t.Last.before(last)) {
		t.Last = last
	}
}

// addFreq counts n more occurrences of v; past MaxFrequentCounters values the least counted
// one is replaced and v inherits its count (space-saving: counts may then be overestimated).
func (t *Tally) addFreq(v string, n int64) {
	if t.Freq == nil {
		t.Freq = map[string]int64{}
	}
	if _, ok := t.Freq[v]; ok || len(t.Freq) < MaxFrequentCounters {
		t.Freq[v] += n
		return
	}
	minV, minN := "", int64(math.MaxInt64)
	for k, c := range t.Freq {
		if c < minN || c == minN && k > minV {
			minV, minN = k, c
		}
	}
	delete(t.Freq, minV)
	t.Freq[v] = minN + n
}

// insertSorted inserts v into the sorted distinct list, keeping at most max values (the
// smallest).
func insertSorted(list []string, v string, max int) []string {
	lo, hi := 0, len(list)
	for lo < hi {
		m := (lo + hi) / 2
		if list[m] < v {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(list) && list[lo] == v || lo >= max {
		return list
	}
	list = append(list, "")
	copy(list[lo+1:], list[lo:])
	list[lo] = v
	if len(list) > max {
		list = list[:max]
	}
	return list
}

// hashValue is a 64-bit hash of a value, big-endian.
func hashValue(v string) []byte {
	h := sha256.Sum256([]byte(v))
	return h[:8]
}

// addHash inserts an 8-byte hash into the sorted set, keeping the MaxDistinctHashes smallest.
func (t *Tally) addHash(h []byte) {
	n := len(t.Hash) / 8
	lo, hi := 0, n
	for lo < hi {
		m := (lo + hi) / 2
		if string(t.Hash[m*8:m*8+8]) < string(h) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < n && string(t.Hash[lo*8:lo*8+8]) == string(h) {
		return
	}
	if lo >= MaxDistinctHashes {
		t.Over = true
		return
	}
	t.Hash = append(t.Hash, make([]byte, 8)...)
	copy(t.Hash[lo*8+8:], t.Hash[lo*8:])
	copy(t.Hash[lo*8:], h)
	if len(t.Hash) > MaxDistinctHashes*8 {
		t.Hash, t.Over = t.Hash[:MaxDistinctHashes*8], true
	}
}

// distinct is the number of distinct values: exact up to MaxDistinctHashes, else estimated
// from the largest kept hash (k minimum values), at least MaxDistinctHashes.
func (t *Tally) distinct() float64 {
	n := len(t.Hash) / 8
	if !t.Over || n < MaxDistinctHashes {
		return float64(n)
	}
	var kth uint64
	for _, b := range t.Hash[(n-1)*8:] {
		kth = kth<<8 | uint64(b)
	}
	est := math.Round(float64(n-1) / (float64(kth) / math.Exp2(64)))
	return math.Max(est, float64(n))
}
