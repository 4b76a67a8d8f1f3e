package auditreport

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"

	"github.com/kubetrail/kubetrail/enrich"
)

// Stats gives the duration percentiles (p50/p90/p99) and maximum per verb and resource
// (`kubetrail audit -o stats`). Long-running requests (watch, exec, attach, port-forward,
// proxy, followed logs) are left out of the durations and counted in LONG; records
// without a duration in NODUR. Rows are sorted by count, largest first: the calls that
// make up the load come first, and their p99 column shows which are slow.
type Stats struct {
	span Span
	rows map[statKey]*statRow
	all  statRow
	buf  []byte
}

type statKey struct{ verb, resource string }

type statRow struct {
	count int
	d     durations
}

// NewStats returns an empty Stats.
func NewStats() *Stats { return &Stats{rows: map[statKey]*statRow{}} }

// Add counts one record.
func (st *Stats) Add(s *enrich.Summary) {
	st.span.Add(s)
	st.buf = resourceKey(st.buf[:0], s)
	verb := s.Verb
	if len(verb) == 0 {
		verb = []byte(keyNone)
	}
	// The composite key is built of string(bytes) conversions the compiler keeps off
	// the heap for a lookup; only a new key allocates.
	r, ok := st.rows[statKey{string(verb), string(st.buf)}]
	if !ok {
		r = &statRow{}
		st.rows[statKey{string(verb), string(st.buf)}] = r
	}
	r.count++
	r.d.add(s)
	st.all.count++
	st.all.d.add(s)
}

// StatsRow is one line of Stats, for callers that want the numbers.
type StatsRow struct {
	Verb, Resource string
	Count, Long    int
	// NoDuration counts records that carry no duration.
	NoDuration int
	// P50, P90, P99 and Max are in ms, valid when HasDurations.
	P50, P90, P99, Max float64
	HasDurations       bool
}

func statsRowOf(verb, res string, r *statRow) StatsRow {
	row := StatsRow{Verb: verb, Resource: res, Count: r.count, Long: r.d.long, NoDuration: r.d.none, Max: r.d.max}
	row.P50, row.HasDurations = r.d.quantile(0.50)
	row.P90, _ = r.d.quantile(0.90)
	row.P99, _ = r.d.quantile(0.99)
	return row
}

// Rows returns the rows by count (largest first), then verb and resource.
func (st *Stats) Rows() []StatsRow {
	out := make([]StatsRow, 0, len(st.rows))
	for k, r := range st.rows {
		out = append(out, statsRowOf(k.verb, k.resource, r))
	}
	slices.SortFunc(out, func(a, b StatsRow) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Verb, b.Verb), cmp.Compare(a.Resource, b.Resource))
	})
	return out
}

// Total is the row of all records together.
func (st *Stats) Total() StatsRow { return statsRowOf("(all)", "", &st.all) }

// Write prints the header line, then the table and a total row.
func (st *Stats) Write(w io.Writer) error {
	bw := newWriter(w)
	if err := st.span.WriteText(bw); err != nil {
		return err
	}
	if st.span.Records == 0 {
		return flush(bw, "stats")
	}
	fmt.Fprintf(bw, "# durations in ms per verb and resource (percentiles by DDSketch, within %g%%; MAX exact); "+
		"LONG long-running requests and NODUR records without a duration are not in them; sorted by count\n",
		RelativeAccuracy*100)
	tb := table{leftAligned: 2}
	tb.add("VERB", "RESOURCE", "COUNT", "LONG", "NODUR", "P50_MS", "P90_MS", "P99_MS", "MAX_MS")
	line := func(r StatsRow) {
		tb.add(r.Verb, r.Resource, strconv.Itoa(r.Count), strconv.Itoa(r.Long), strconv.Itoa(r.NoDuration),
			ms(r.P50, r.HasDurations), ms(r.P90, r.HasDurations), ms(r.P99, r.HasDurations), ms(r.Max, r.HasDurations))
	}
	for _, r := range st.Rows() {
		line(r)
	}
	line(st.Total())
	tb.write(bw)
	return flush(bw, "stats")
}
