package auditreport

import (
	"fmt"

	"github.com/DataDog/sketches-go/ddsketch"

	"github.com/kubetrail/kubetrail/enrich"
)

// RelativeAccuracy is the percentiles' accuracy: a reported p50/p90/p99 is within 1% of
// the exact value of that rank (DDSketch's guarantee), whatever the number of records.
// Counts and maxima are exact.
const RelativeAccuracy = 0.01

// maxBins bounds one sketch's memory (8 bytes a bin). At 1% accuracy 2048 bins span a
// ratio of 10^17 between the smallest and largest duration, so no request duration
// (microseconds to the 60 s timeout, or hours for a stream) ever collapses a bin.
const maxBins = 2048

// durations collects the request durations of one group of records. Long-running
// requests (watches, exec, followed logs) are counted apart: their duration says how
// long a stream lived, not how slow the server was. Records with no duration (no stage
// timestamp, v1beta1 logs) are counted apart too.
type durations struct {
	sketch *ddsketch.DDSketch // nil until the first duration
	max    float64
	// long counts long-running requests, none counts records without a duration.
	long, none int
}

// add takes one record's duration.
func (d *durations) add(s *enrich.Summary) {
	switch {
	case s.LongRunning:
		d.long++
	case !s.HasDuration || s.DurationMs < 0:
		d.none++
	default:
		d.addMs(s.DurationMs)
	}
}

func (d *durations) addMs(ms float64) {
	if d.sketch == nil {
		d.sketch = newSketch()
	}
	// Add fails only for values outside the mapping's range (negative or > 1e300).
	if err := d.sketch.Add(ms); err != nil {
		d.none++
		return
	}
	if ms > d.max {
		d.max = ms
	}
}

func newSketch() *ddsketch.DDSketch {
	s, err := ddsketch.LogCollapsingLowestDenseDDSketch(RelativeAccuracy, maxBins)
	if err != nil {
		// Only for an invalid constant accuracy: a programming error, caught by any test.
		panic(fmt.Sprintf("auditreport: DDSketch settings: %v", err))
	}
	return s
}

// merge adds o's durations into d.
func (d *durations) merge(o *durations) {
	d.long += o.long
	d.none += o.none
	if o.sketch == nil {
		return
	}
	if d.sketch == nil {
		d.sketch = newSketch()
	}
	if err := d.sketch.MergeWith(o.sketch); err == nil && o.max > d.max {
		d.max = o.max
	}
}

// count is the number of durations in the percentiles.
func (d *durations) count() int {
	if d.sketch == nil {
		return 0
	}
	return int(d.sketch.GetCount())
}

// quantile returns the duration (ms) at quantile q (0..1); ok is false without durations.
func (d *durations) quantile(q float64) (float64, bool) {
	if d.sketch == nil || d.sketch.IsEmpty() {
		return 0, false
	}
	v, err := d.sketch.GetValueAtQuantile(q)
	if err != nil {
		return 0, false
	}
	// The sketch answers with its bin's midpoint, which may lie above the exact maximum.
	return min(v, d.max), true
}
