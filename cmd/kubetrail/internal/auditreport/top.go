package auditreport

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/kubetrail/kubetrail/enrich"
)

// TopKeys are the values of `--by`, in the order help texts list them.
var TopKeys = []string{"user", "group", "verb", "resource", "namespace", "code", "useragent", "source-ip"}

// Top counts records per key (`kubetrail audit -o top --by KEY`) with their share, rate
// per second over the covered time range, and duration percentiles. The keys:
//
//	user       user.username; "(unauthenticated)" when authentication failed
//	group      each group of the user: a request counts once per group, so the shares
//	           add up to more than 100%; "(no groups)" for a user without any
//	verb       the verb
//	resource   resource[.group][/subresource]; a non-resource request's path ("/healthz")
//	namespace  objectRef.namespace; "(none)" for cluster-scoped and non-resource requests
//	code       responseStatus.code; "(none)" when absent
//	useragent  the user agent's product ("kubelet", "kubectl"), without version/platform
//	source-ip  the client's address, sourceIPs[0]
//
// Memory grows with the number of distinct keys (one counter and one bounded sketch
// each), not with the number of records.
type Top struct {
	by    string
	limit int
	key   func(dst []byte, s *enrich.Summary) []byte
	span  Span
	rows  map[string]*topRow
	buf   []byte
	grps  [][]byte
}

type topRow struct {
	count int
	d     durations
}

// NewTop returns a Top by one of TopKeys; limit is the number of rows shown before the
// "(other N keys)" row, 0 for all.
func NewTop(by string, limit int) (*Top, error) {
	if limit < 0 {
		return nil, fmt.Errorf("top: limit %d: must be 0 (all) or more", limit)
	}
	t := &Top{by: by, limit: limit, rows: map[string]*topRow{}}
	switch by {
	case "user":
		t.key = userKey
	case "group":
		// handled in Add: one row per group
	case "verb":
		t.key = func(dst []byte, s *enrich.Summary) []byte { return orNone(dst, s.Verb) }
	case "resource":
		t.key = resourceKey
	case "namespace":
		t.key = func(dst []byte, s *enrich.Summary) []byte { return orNone(dst, s.Namespace) }
	case "code":
		t.key = codeKey
	case "useragent":
		t.key = userAgentKey
	case "source-ip":
		t.key = func(dst []byte, s *enrich.Summary) []byte { return orNone(dst, s.ClientIP) }
	default:
		return nil, fmt.Errorf("top: unknown key %q: use one of %s", by, strings.Join(TopKeys, ", "))
	}
	return t, nil
}

// Add counts one record.
func (t *Top) Add(s *enrich.Summary) {
	t.span.Add(s)
	if t.key != nil {
		t.buf = t.key(t.buf[:0], s)
		t.row().add(s)
		return
	}
	t.grps = s.Groups(t.grps[:0])
	if len(t.grps) == 0 {
		t.buf = append(t.buf[:0], keyNoGroup...)
		t.row().add(s)
		return
	}
	for i, g := range t.grps {
		if slices.ContainsFunc(t.grps[:i], func(h []byte) bool { return bytes.Equal(g, h) }) {
			continue // a group listed twice is still one membership
		}
		t.buf = append(t.buf[:0], g...)
		t.row().add(s)
	}
}

func (r *topRow) add(s *enrich.Summary) {
	r.count++
	r.d.add(s)
}

// row finds or makes the row of the key in t.buf (the map lookup does not allocate).
func (t *Top) row() *topRow {
	r, ok := t.rows[string(t.buf)]
	if !ok {
		r = &topRow{}
		t.rows[string(t.buf)] = r
	}
	return r
}

// TopRow is one line of a Top, for callers that want the numbers (tests, JSON).
type TopRow struct {
	Key   string
	Count int
	// Long counts long-running requests, excluded from the percentiles.
	Long int
	// P50, P90, P99 are durations in ms, valid when HasDurations.
	P50, P90, P99 float64
	HasDurations  bool
}

// Rows returns every key's row, by count (largest first), then key.
func (t *Top) Rows() []TopRow {
	out := make([]TopRow, 0, len(t.rows))
	for k, r := range t.rows {
		out = append(out, topRowOf(k, r.count, &r.d))
	}
	slices.SortFunc(out, func(a, b TopRow) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Key, b.Key))
	})
	return out
}

func topRowOf(k string, n int, d *durations) TopRow {
	row := TopRow{Key: k, Count: n, Long: d.long}
	row.P50, row.HasDurations = d.quantile(0.50)
	row.P90, _ = d.quantile(0.90)
	row.P99, _ = d.quantile(0.99)
	return row
}

// Write prints the header line, then the table.
func (t *Top) Write(w io.Writer) error {
	bw := newWriter(w)
	if err := t.span.WriteText(bw); err != nil {
		return err
	}
	if t.span.Records == 0 {
		return flush(bw, "top")
	}
	rows := t.Rows()
	shown := rows
	if t.limit > 0 && len(rows) > t.limit {
		shown = rows[:t.limit]
	}
	seconds := t.span.Last.Sub(t.span.First).Seconds()
	note := ""
	if t.by == "group" {
		note = "; a request counts once per group of its user, so shares add up to more than 100%"
	}
	fmt.Fprintf(bw, "# top %d of %d keys by %s; SHARE of %d records%s; RATE per second over the time range; "+
		"durations in ms (DDSketch, within %g%%), LONG long-running requests not in them\n",
		len(shown), len(rows), t.by, t.span.Records, note, RelativeAccuracy*100)
	tb := table{leftAligned: 1}
	tb.add(strings.ToUpper(t.by), "COUNT", "SHARE", "RATE/S", "P50_MS", "P90_MS", "P99_MS", "LONG")
	line := func(r TopRow) {
		tb.add(r.Key, strconv.Itoa(r.Count), percent(r.Count, t.span.Records), rate(r.Count, seconds),
			ms(r.P50, r.HasDurations), ms(r.P90, r.HasDurations), ms(r.P99, r.HasDurations), strconv.Itoa(r.Long))
	}
	for _, r := range shown {
		line(r)
	}
	if rest := rows[len(shown):]; len(rest) > 0 {
		var d durations
		n := 0
		for _, r := range rest {
			row := t.rows[r.Key]
			n += row.count
			d.merge(&row.d)
		}
		other := topRowOf(fmt.Sprintf("(other %d keys)", len(rest)), n, &d)
		line(other)
	}
	tb.write(bw)
	return flush(bw, "top")
}
