package auditreport

import (
	"strconv"

	"github.com/kubetrail/kubetrail/enrich"
)

// ReportOptions shape the HTML report. Zero values take the defaults.
type ReportOptions struct {
	// Title heads the page; default "kubetrail audit report".
	Title string
	// Sources lists the files read, shown under the title.
	Sources []string
	// Series is the number of stacks in a chart over time (the largest), the rest
	// summed into "(other)"; default 8.
	Series int
	// Bars is the number of bars in a top-N bar chart; default 20.
	Bars int
	// TableRows is the number of rows of a drill-down table; default 500.
	TableRows int
	// MaxBuckets bounds the points of a chart over time; the bucket width is the
	// smallest of 1s, 5s, 10s, 30s, 1m, 5m, 10m, 30m, 1h, 6h, 12h, 1d, 7d (then doubling)
	// that covers the span in that many buckets; default 360 (an hour in 10 s buckets).
	MaxBuckets int
	// MaxKeys bounds the distinct keys kept per dimension (users, user agents, source
	// IPs, groups, verb and resource pairs...); later keys are counted as "(other)".
	// Default 50000. With MaxBuckets it bounds the report's memory whatever the number
	// of records.
	MaxKeys int
}

func (o ReportOptions) withDefaults() ReportOptions {
	if o.Title == "" {
		o.Title = "kubetrail audit report"
	}
	if o.Series <= 0 {
		o.Series = 8
	}
	if o.Bars <= 0 {
		o.Bars = 20
	}
	if o.TableRows <= 0 {
		o.TableRows = 500
	}
	if o.MaxBuckets <= 1 {
		o.MaxBuckets = 360
	}
	if o.MaxKeys <= 0 {
		o.MaxKeys = 50000
	}
	return o
}

// Report aggregates records as they come into the numbers of the HTML report (the
// views of the KubeCon 2019 audit-log talk) and writes it as one self-contained page.
// It keeps no record: time buckets (at most MaxBuckets, widened as the span grows),
// counters per key (at most MaxKeys per dimension) and one bounded DDSketch per verb
// and per verb and resource.
type Report struct {
	opts ReportOptions
	span Span
	// noTime counts records without a requestReceivedTimestamp: in every total, in no
	// chart over time.
	noTime int

	time timeline

	groups           interner // primary group of each request, for the stacked chart
	users            keyed[tally]
	agents           keyed[tally]
	codes            map[int]int
	ips401           keyed[tally]
	ua401            keyed[tally] // "ip\x00agent"
	users403, res403 keyed[tally]
	pairs403         keyed[tally]   // "user\x00verb\x00resource"
	latency          keyed[statRow] // "verb\x00resource"
	verbs            keyed[statRow]
	long             int

	buf, buf2 []byte
	grps      [][]byte
}

// tally counts the requests of one key and how they ended.
type tally struct {
	n, c4xx, c5xx, long int
}

// NewReport returns an empty Report.
func NewReport(opts ReportOptions) *Report {
	opts = opts.withDefaults()
	r := &Report{opts: opts, codes: map[int]int{}}
	r.time.init(opts.MaxBuckets)
	for _, k := range []*keyed[tally]{&r.users, &r.agents, &r.ips401, &r.ua401, &r.users403, &r.res403, &r.pairs403} {
		k.init(opts.MaxKeys)
	}
	r.latency.init(opts.MaxKeys)
	r.verbs.init(opts.MaxKeys)
	r.groups.init(opts.MaxKeys)
	return r
}

// Add counts one record.
func (r *Report) Add(s *enrich.Summary) {
	r.span.Add(s)
	r.grps = s.Groups(r.grps[:0])
	r.buf = primaryGroupKey(r.buf[:0], s, r.grps)
	group := r.groups.id(r.buf)
	if s.Received.IsZero() {
		r.noTime++
	} else {
		r.time.add(s.Received.Sec, group, s.Code)
	}
	r.codes[s.Code]++
	if s.LongRunning {
		r.long++
	}

	r.buf = userKey(r.buf[:0], s)
	r.users.get(r.buf).count(s)
	r.buf = userAgentKey(r.buf[:0], s)
	r.agents.get(r.buf).count(s)

	switch s.Code {
	case 401:
		r.buf = orNone(r.buf[:0], s.ClientIP)
		r.ips401.get(r.buf).count(s)
		r.buf = append(r.buf, 0)
		r.buf = orNone(r.buf, s.UserAgent)
		r.ua401.get(r.buf).count(s)
	case 403:
		r.buf = userKey(r.buf[:0], s)
		r.users403.get(r.buf).count(s)
		r.buf2 = resourceKey(r.buf2[:0], s)
		r.res403.get(r.buf2).count(s)
		r.buf = append(r.buf, 0)
		r.buf = orNone(r.buf, s.Verb)
		r.buf = append(r.buf, 0)
		r.buf = append(r.buf, r.buf2...)
		r.pairs403.get(r.buf).count(s)
	}

	r.buf = orNone(r.buf[:0], s.Verb)
	v := r.verbs.get(r.buf)
	v.count++
	v.d.add(s)
	r.buf = append(r.buf, 0)
	r.buf = resourceKey(r.buf, s)
	p := r.latency.get(r.buf)
	p.count++
	p.d.add(s)
}

func (t *tally) count(s *enrich.Summary) {
	t.n++
	switch {
	case s.Code >= 500:
		t.c5xx++
	case s.Code >= 400:
		t.c4xx++
	}
	if s.LongRunning {
		t.long++
	}
}

// keyed maps keys to values, at most max keys: later keys share the "(other)" entry,
// so that a log with millions of distinct source IPs still fits in memory.
type keyed[V any] struct {
	m   map[string]*V
	max int
	// overflowed says whether keys were folded into "(other)" (how many distinct ones
	// is not known: that would take keeping them).
	overflowed bool
}

func (k *keyed[V]) init(max int) { k.m, k.max = map[string]*V{}, max }

// get returns the value of key (a lookup with string(key) does not allocate).
func (k *keyed[V]) get(key []byte) *V {
	if v, ok := k.m[string(key)]; ok {
		return v
	}
	s := string(key)
	if len(k.m) >= k.max {
		k.overflowed = true
		s = keyOther
		if v, ok := k.m[s]; ok {
			return v
		}
	}
	v := new(V)
	k.m[s] = v
	return v
}

// interner numbers strings, at most max of them (then "(other)").
type interner struct {
	ids   map[string]int32
	names []string
	max   int
}

func (in *interner) init(max int) { in.ids, in.max = map[string]int32{}, max }

func (in *interner) id(key []byte) int32 {
	if id, ok := in.ids[string(key)]; ok {
		return id
	}
	s := string(key)
	if len(in.names) >= in.max {
		s = keyOther
		if id, ok := in.ids[s]; ok {
			return id
		}
	}
	id := int32(len(in.names))
	in.ids[s] = id
	in.names = append(in.names, s)
	return id
}

// ladder is the bucket widths in seconds: each a multiple of the one before, so that
// widening merges whole buckets.
var ladder = []int64{1, 5, 10, 30, 60, 300, 600, 1800, 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400}

// timeline counts requests per time bucket, by primary group and by status code. The
// width starts at one second and widens (merging buckets) whenever the records span
// more than max buckets, so memory is bounded by max, not by the span or the records.
type timeline struct {
	max     int
	step    int // index in ladder, or beyond: width doubles
	width   int64
	lo, hi  int64 // bucket indexes seen (valid when any)
	any     bool
	buckets map[int64]*bucket
}

type bucket struct {
	n      int
	groups map[int32]int
	codes  map[int]int
}

func (t *timeline) init(max int) {
	t.max, t.width, t.buckets = max, ladder[0], map[int64]*bucket{}
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func (t *timeline) add(sec int64, group int32, code int) {
	idx := floorDiv(sec, t.width)
	if !t.any {
		t.lo, t.hi, t.any = idx, idx, true
	}
	if idx < t.lo || idx > t.hi {
		t.lo, t.hi = min(t.lo, idx), max(t.hi, idx)
		for t.hi-t.lo+1 > int64(t.max) {
			t.widen()
		}
		idx = floorDiv(sec, t.width)
	}
	b := t.buckets[idx]
	if b == nil {
		b = &bucket{groups: map[int32]int{}, codes: map[int]int{}}
		t.buckets[idx] = b
	}
	b.n++
	b.groups[group]++
	b.codes[code]++
}

// widen moves to the next width and merges the buckets that fall together.
func (t *timeline) widen() {
	next := t.width * 2
	if t.step+1 < len(ladder) {
		next = ladder[t.step+1]
	}
	t.step++
	f := next / t.width
	t.width = next
	t.lo, t.hi = floorDiv(t.lo, f), floorDiv(t.hi, f)
	merged := make(map[int64]*bucket, len(t.buckets)/int(f)+1)
	for idx, b := range t.buckets {
		ni := floorDiv(idx, f)
		m := merged[ni]
		if m == nil {
			merged[ni] = b
			continue
		}
		m.n += b.n
		for g, n := range b.groups {
			m.groups[g] += n
		}
		for c, n := range b.codes {
			m.codes[c] += n
		}
	}
	t.buckets = merged
}

// label formats a bucket's start for the charts' time axis.
func (t *timeline) label(idx int64, withDate bool) string {
	sec := idx * t.width
	tm := unixUTC(sec)
	switch {
	case withDate && t.width < 60:
		return tm.Format("01-02 15:04:05")
	case withDate:
		return tm.Format("01-02 15:04")
	case t.width < 60:
		return tm.Format("15:04:05")
	}
	return tm.Format("15:04")
}

func widthText(sec int64) string {
	switch {
	case sec%86400 == 0:
		return strconv.FormatInt(sec/86400, 10) + "d"
	case sec%3600 == 0:
		return strconv.FormatInt(sec/3600, 10) + "h"
	case sec%60 == 0:
		return strconv.FormatInt(sec/60, 10) + "m"
	}
	return strconv.FormatInt(sec, 10) + "s"
}
