package auditreport

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// chartJS is Chart.js 4.6.1 (MIT), dist/chart.umd.js of the npm package chart.js@4.6.1,
// unchanged (see assets/README.md): inlined into every report so that the page needs
// no network when it is opened.
//
//go:embed assets/chart.umd.js
var chartJS string

//go:embed assets/report.html
var pageTemplate string

var pageTmpl = template.Must(template.New("report").Parse(pageTemplate))

// page is what the template and the page's script read.
type page struct {
	Title   string      `json:"title"`
	Sources []string    `json:"sources"`
	Header  []string    `json:"header"`
	Charts  []chart     `json:"charts"`
	Tables  []tableData `json:"tables"`
}

// chart is one Chart.js chart; Config nil means no data, and Empty says so instead.
type chart struct {
	ID     string `json:"id"`
	Title  string `json:"title"`
	Note   string `json:"note,omitempty"`
	Empty  string `json:"empty,omitempty"`
	Wide   bool   `json:"wide,omitempty"`
	Config any    `json:"config,omitempty"`
}

// tableData is one sortable drill-down table; a nil cell is "-" (no value).
type tableData struct {
	ID      string   `json:"id"`
	Title   string   `json:"title"`
	Note    string   `json:"note,omitempty"`
	Columns []string `json:"columns"`
	Rows    [][]any  `json:"rows"`
}

var palette = []string{"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1",
	"#ff9da7", "#9c755f", "#17becf", "#bcbd22", "#8c564b"}

const otherColor = "#c7c7c7"

// Write writes the report as one HTML page.
func (r *Report) Write(w io.Writer) error {
	p := r.page()
	data, err := json.Marshal(p) // escapes <, > and &: safe inside a script element
	if err != nil {
		return fmt.Errorf("report: encoding the page data: %w", err)
	}
	err = pageTmpl.Execute(w, struct {
		Title   string
		Data    template.JS
		ChartJS template.JS
	}{p.Title, template.JS(data), template.JS(chartJS)})
	if err != nil {
		return fmt.Errorf("writing report: %w", err)
	}
	return nil
}

func (r *Report) page() page {
	o := r.opts
	p := page{Title: o.Title, Sources: o.Sources}
	p.Header = append(p.Header, r.spanText())
	if r.span.Records == 0 {
		p.Header = append(p.Header, "No records: nothing to chart.")
		return p
	}
	if r.noTime > 0 {
		p.Header = append(p.Header, fmt.Sprintf("%d records without requestReceivedTimestamp: in the totals, not in the charts over time.", r.noTime))
	}
	if r.time.any {
		p.Header = append(p.Header, fmt.Sprintf("Charts over time in %s buckets, rates in requests per second.", widthText(r.time.width)))
	}
	p.Header = append(p.Header, fmt.Sprintf("Durations: percentiles by DDSketch (within %g%% of the exact value); %d long-running requests (watch, exec, followed logs...) are left out of them.",
		RelativeAccuracy*100, r.long))
	if r.overflowed() {
		p.Header = append(p.Header, fmt.Sprintf("More than %d distinct keys in a dimension: the rest are counted as (other).", o.MaxKeys))
	}

	p.Charts = append(p.Charts, r.groupChart(), r.codeClassChart(), r.code4xxChart(),
		r.outcomeBars("users", "Top users", "requests by user.username, split by how they ended", &r.users),
		r.outcomeBars("agents", "Top user agents", "requests by user agent product (kubelet, kubectl...), split by how they ended", &r.agents),
		r.countBars("ips401", "401 Unauthorized by source IP", "failed authentication: no user, only the address (sourceIPs[0])", &r.ips401, "#e15759", "no 401 responses"),
		r.countBars("users403", "403 Forbidden by user", "denied by authorization", &r.users403, "#f28e2b", "no 403 responses"),
		r.countBars("res403", "403 Forbidden by resource", "resource[.group][/subresource] or non-resource path", &r.res403, "#f28e2b", "no 403 responses"),
		r.verbLatencyChart(), r.pairLatencyChart())

	p.Tables = append(p.Tables, r.tallyTable("t-users", "Users", "user", &r.users),
		r.latencyTable(),
		r.tallyTable("t-agents", "User agents", "user agent product", &r.agents),
		r.tripleTable("t-403", "403 Forbidden: who tried what", []string{"user", "verb", "resource", "requests"}, &r.pairs403),
		r.tripleTable("t-401", "401 Unauthorized: where from", []string{"source IP", "user agent", "requests"}, &r.ua401),
		r.codeTable())
	return p
}

func (r *Report) overflowed() bool {
	return r.users.overflowed || r.agents.overflowed || r.ips401.overflowed || r.ua401.overflowed ||
		r.users403.overflowed || r.res403.overflowed || r.pairs403.overflowed || r.latency.overflowed ||
		r.verbs.overflowed || len(r.groups.names) >= r.opts.MaxKeys
}

func (r *Report) spanText() string {
	s := r.span
	if s.First.IsZero() {
		return fmt.Sprintf("%d records", s.Records)
	}
	return fmt.Sprintf("%d records from %s to %s (%s)", s.Records, s.First.Format(time.RFC3339), s.Last.Format(time.RFC3339),
		s.Last.Sub(s.First).Round(time.Second))
}

// timeAxis returns the labels of every bucket from the first to the last (empty ones
// included, so that gaps show as gaps).
func (r *Report) timeAxis() (idx []int64, labels []string) {
	t := &r.time
	withDate := unixUTC(t.lo*t.width).YearDay() != unixUTC(t.hi*t.width).YearDay() ||
		unixUTC(t.lo*t.width).Year() != unixUTC(t.hi*t.width).Year()
	for i := t.lo; i <= t.hi; i++ {
		idx = append(idx, i)
		labels = append(labels, t.label(i, withDate))
	}
	return idx, labels
}

func unixUTC(sec int64) time.Time { return time.Unix(sec, 0).UTC() }

// perSecond turns a bucket count into a rate, to three significant digits (which keeps
// the page small; sparse logs over weeks give rates far below one per second).
func (r *Report) perSecond(n int) float64 {
	return round3(float64(n) / float64(r.time.width))
}

type series struct {
	label string
	total int
	color string
	get   func(b *bucket) int
}

// topSeries keeps the n largest series by total and sums the others into "(other)".
func topSeries(all []series, n int) []series {
	slices.SortFunc(all, func(a, b series) int {
		if a.total != b.total {
			return b.total - a.total
		}
		return strings.Compare(a.label, b.label)
	})
	if len(all) <= n {
		return all
	}
	rest := slices.Clone(all[n:])
	other := series{label: keyOther, color: otherColor}
	for _, s := range rest {
		other.total += s.total
	}
	other.get = func(b *bucket) int {
		sum := 0
		for _, s := range rest {
			sum += s.get(b)
		}
		return sum
	}
	return append(all[:n:n], other)
}

func (r *Report) timeChart(id, title, note, yTitle string, ss []series) chart {
	c := chart{ID: id, Title: title, Note: note, Wide: true}
	if !r.time.any || len(ss) == 0 {
		c.Empty = "no records with a time"
		return c
	}
	idx, labels := r.timeAxis()
	var datasets []map[string]any
	for i, s := range ss {
		color := s.color
		if color == "" {
			color = palette[i%len(palette)]
		}
		data := make([]float64, len(idx))
		for j, k := range idx {
			if b := r.time.buckets[k]; b != nil {
				data[j] = r.perSecond(s.get(b))
			}
		}
		datasets = append(datasets, map[string]any{"label": s.label, "data": data, "backgroundColor": color,
			"borderColor": color, "borderWidth": 0, "barPercentage": 1.0, "categoryPercentage": 1.0})
	}
	c.Config = map[string]any{
		"type": "bar",
		"data": map[string]any{"labels": labels, "datasets": datasets},
		"options": map[string]any{
			"animation": false, "responsive": true, "maintainAspectRatio": false,
			"interaction": map[string]any{"mode": "index", "intersect": false},
			"scales": map[string]any{
				"x": map[string]any{"stacked": true, "ticks": map[string]any{"maxTicksLimit": 16, "maxRotation": 0}},
				"y": map[string]any{"stacked": true, "beginAtZero": true, "title": map[string]any{"display": true, "text": yTitle}},
			},
			"plugins": map[string]any{"legend": map[string]any{"position": "bottom"}},
		},
	}
	return c
}

func (r *Report) groupChart() chart {
	totals := map[int32]int{}
	for _, b := range r.time.buckets {
		for g, n := range b.groups {
			totals[g] += n
		}
	}
	var ss []series
	for g, n := range totals {
		ss = append(ss, series{label: r.groups.names[g], total: n, get: func(b *bucket) int { return b.groups[g] }})
	}
	return r.timeChart("rps-groups", "Requests per second by user group",
		"each request once, under its user's most specific group (service accounts by namespace, kubelets as system:nodes; the user name when there is no group)",
		"requests/s", topSeries(ss, r.opts.Series))
}

var classColors = map[string]string{"1xx": "#76b7b2", "2xx": "#59a14f", "3xx": "#4e79a7", "4xx": "#f28e2b", "5xx": "#e15759", "no status": "#bab0ac"}

func codeClass(c int) string {
	if c < 100 || c > 599 {
		return "no status"
	}
	return strconv.Itoa(c/100) + "xx"
}

func (r *Report) codeClassChart() chart {
	totals := map[string]int{}
	for c, n := range r.codes {
		totals[codeClass(c)] += n
	}
	var ss []series
	for _, cl := range []string{"2xx", "1xx", "3xx", "4xx", "5xx", "no status"} {
		if totals[cl] == 0 {
			continue
		}
		ss = append(ss, series{label: cl, total: totals[cl], color: classColors[cl], get: func(b *bucket) int {
			sum := 0
			for c, n := range b.codes {
				if codeClass(c) == cl {
					sum += n
				}
			}
			return sum
		}})
	}
	// The classes stay in their natural order, not by size: 2xx at the bottom.
	return r.timeChart("codes", "Status codes over time", "responseStatus.code by class", "requests/s", ss)
}

func (r *Report) code4xxChart() chart {
	var ss []series
	for code, n := range r.codes {
		if code >= 400 && code < 500 {
			ss = append(ss, series{label: strconv.Itoa(code), total: n, get: func(b *bucket) int { return b.codes[code] }})
		}
	}
	c := r.timeChart("codes-4xx", "4xx responses over time by code", "401 failed authentication, 403 denied, 404 not found, 409 conflict, 422 invalid, 429 throttled (API Priority and Fairness)",
		"responses/s", topSeries(ss, r.opts.Series))
	if len(ss) == 0 {
		c.Config, c.Empty = nil, "no 4xx responses"
	}
	return c
}

type kv[V any] struct {
	k string
	v *V
}

func sortedTallies(k *keyed[tally]) []kv[tally] {
	out := make([]kv[tally], 0, len(k.m))
	for key, v := range k.m {
		out = append(out, kv[tally]{key, v})
	}
	slices.SortFunc(out, func(a, b kv[tally]) int {
		if a.v.n != b.v.n {
			return b.v.n - a.v.n
		}
		return strings.Compare(a.k, b.k)
	})
	return out
}

func barOptions(xTitle string, stacked, logScale bool) map[string]any {
	value := map[string]any{"stacked": stacked, "beginAtZero": true, "title": map[string]any{"display": true, "text": xTitle}}
	if logScale {
		value = map[string]any{"type": "logarithmic", "title": map[string]any{"display": true, "text": xTitle}}
	}
	return map[string]any{
		"indexAxis": "y", "animation": false, "responsive": true, "maintainAspectRatio": false,
		"interaction": map[string]any{"mode": "index", "intersect": false},
		"scales": map[string]any{
			"x": value,
			"y": map[string]any{"stacked": stacked, "ticks": map[string]any{"autoSkip": false}},
		},
		"plugins": map[string]any{"legend": map[string]any{"position": "bottom", "display": stacked || logScale}},
	}
}

func (r *Report) outcomeBars(id, title, note string, k *keyed[tally]) chart {
	rows := sortedTallies(k)
	if len(rows) > r.opts.Bars {
		rows = rows[:r.opts.Bars]
	}
	var labels []string
	ok, c4, c5 := []int{}, []int{}, []int{}
	for _, row := range rows {
		labels = append(labels, row.k)
		ok = append(ok, row.v.n-row.v.c4xx-row.v.c5xx)
		c4 = append(c4, row.v.c4xx)
		c5 = append(c5, row.v.c5xx)
	}
	return chart{ID: id, Title: title, Note: note, Config: map[string]any{
		"type": "bar",
		"data": map[string]any{"labels": labels, "datasets": []map[string]any{
			{"label": "1xx-3xx or none", "data": ok, "backgroundColor": "#59a14f"},
			{"label": "4xx", "data": c4, "backgroundColor": "#f28e2b"},
			{"label": "5xx", "data": c5, "backgroundColor": "#e15759"},
		}},
		"options": barOptions("requests", true, false),
	}}
}

func (r *Report) countBars(id, title, note string, k *keyed[tally], color, empty string) chart {
	c := chart{ID: id, Title: title, Note: note}
	rows := sortedTallies(k)
	if len(rows) == 0 {
		c.Empty = empty
		return c
	}
	if len(rows) > r.opts.Bars {
		rows = rows[:r.opts.Bars]
	}
	var labels []string
	var data []int
	for _, row := range rows {
		labels = append(labels, row.k)
		data = append(data, row.v.n)
	}
	c.Config = map[string]any{
		"type":    "bar",
		"data":    map[string]any{"labels": labels, "datasets": []map[string]any{{"label": "requests", "data": data, "backgroundColor": color}}},
		"options": barOptions("requests", false, false),
	}
	return c
}

type latRow struct {
	verb, res string
	row       *statRow
}

func (r *Report) latencyRows(k *keyed[statRow]) []latRow {
	var out []latRow
	for key, v := range k.m {
		verb, res, _ := strings.Cut(key, "\x00")
		out = append(out, latRow{verb, res, v})
	}
	slices.SortFunc(out, func(a, b latRow) int {
		if a.row.count != b.row.count {
			return b.row.count - a.row.count
		}
		return strings.Compare(a.verb+" "+a.res, b.verb+" "+b.res)
	})
	return out
}

// round3 keeps three significant digits of a duration for the page.
func round3(v float64) float64 {
	if v <= 0 {
		return v
	}
	p := math.Pow(10, 2-math.Floor(math.Log10(v)))
	return math.Round(v*p) / p
}

func percentileDatasets(rows []latRow) ([]string, []map[string]any) {
	var labels []string
	p := [3][]any{}
	for _, lr := range rows {
		labels = append(labels, strings.TrimSpace(lr.verb+" "+lr.res))
		for i, q := range []float64{0.5, 0.9, 0.99} {
			v, ok := lr.row.d.quantile(q)
			if ok {
				p[i] = append(p[i], round3(max(v, 0.001)))
			} else {
				p[i] = append(p[i], nil)
			}
		}
	}
	return labels, []map[string]any{
		{"label": "p50", "data": p[0], "backgroundColor": "#4e79a7"},
		{"label": "p90", "data": p[1], "backgroundColor": "#f28e2b"},
		{"label": "p99", "data": p[2], "backgroundColor": "#e15759"},
	}
}

func (r *Report) verbLatencyChart() chart {
	c := chart{ID: "lat-verbs", Title: "Latency percentiles by verb", Note: "ms, log scale; long-running requests excluded"}
	var rows []latRow
	for _, lr := range r.latencyRows(&r.verbs) {
		if lr.row.d.count() > 0 {
			rows = append(rows, lr)
		}
	}
	if len(rows) == 0 {
		c.Empty = "no request durations (no stage timestamps, or only long-running requests)"
		return c
	}
	labels, ds := percentileDatasets(rows)
	c.Config = map[string]any{"type": "bar", "data": map[string]any{"labels": labels, "datasets": ds},
		"options": barOptions("ms", false, true)}
	return c
}

func (r *Report) pairLatencyChart() chart {
	c := chart{ID: "lat-resources", Title: "Latency percentiles by verb and resource", Wide: true,
		Note: fmt.Sprintf("the %d busiest verb and resource pairs; ms, log scale; long-running requests excluded; all pairs in the table below", r.opts.Bars)}
	var rows []latRow
	for _, lr := range r.latencyRows(&r.latency) {
		if lr.row.d.count() > 0 {
			rows = append(rows, lr)
		}
	}
	if len(rows) == 0 {
		c.Empty = "no request durations (no stage timestamps, or only long-running requests)"
		return c
	}
	if len(rows) > r.opts.Bars {
		rows = rows[:r.opts.Bars]
	}
	labels, ds := percentileDatasets(rows)
	c.Config = map[string]any{"type": "bar", "data": map[string]any{"labels": labels, "datasets": ds},
		"options": barOptions("ms", false, true)}
	return c
}

func (r *Report) tallyTable(id, title, keyName string, k *keyed[tally]) tableData {
	t := tableData{ID: id, Title: title, Columns: []string{keyName, "requests", "share %", "4xx", "5xx", "long-running"}}
	rows := sortedTallies(k)
	t.Note = r.truncNote(len(rows))
	for _, row := range rows[:min(len(rows), r.opts.TableRows)] {
		t.Rows = append(t.Rows, []any{row.k, row.v.n, share(row.v.n, r.span.Records), row.v.c4xx, row.v.c5xx, row.v.long})
	}
	return t
}

func (r *Report) truncNote(n int) string {
	if n > r.opts.TableRows {
		return fmt.Sprintf("the %d largest of %d rows", r.opts.TableRows, n)
	}
	return ""
}

func share(n, total int) float64 {
	if total == 0 {
		return 0
	}
	return math.Round(1000*float64(n)/float64(total)) / 10
}

func (r *Report) latencyTable() tableData {
	t := tableData{ID: "t-latency", Title: "Durations by verb and resource (ms)",
		Columns: []string{"verb", "resource", "requests", "long-running", "no duration", "p50", "p90", "p99", "max"}}
	rows := r.latencyRows(&r.latency)
	t.Note = r.truncNote(len(rows))
	for _, lr := range rows[:min(len(rows), r.opts.TableRows)] {
		d := &lr.row.d
		cells := []any{lr.verb, lr.res, lr.row.count, d.long, d.none}
		for _, q := range []float64{0.5, 0.9, 0.99} {
			if v, ok := d.quantile(q); ok {
				cells = append(cells, round3(v))
			} else {
				cells = append(cells, nil)
			}
		}
		if d.count() > 0 {
			cells = append(cells, round3(d.max))
		} else {
			cells = append(cells, nil)
		}
		t.Rows = append(t.Rows, cells)
	}
	return t
}

func (r *Report) tripleTable(id, title string, cols []string, k *keyed[tally]) tableData {
	t := tableData{ID: id, Title: title, Columns: cols}
	rows := sortedTallies(k)
	t.Note = r.truncNote(len(rows))
	for _, row := range rows[:min(len(rows), r.opts.TableRows)] {
		var cells []any
		for _, part := range strings.SplitN(row.k, "\x00", len(cols)-1) {
			cells = append(cells, part)
		}
		for len(cells) < len(cols)-1 {
			cells = append(cells, "")
		}
		t.Rows = append(t.Rows, append(cells, row.v.n))
	}
	return t
}

func (r *Report) codeTable() tableData {
	t := tableData{ID: "t-codes", Title: "Status codes", Columns: []string{"code", "requests", "share %"}}
	codes := make([]int, 0, len(r.codes))
	for c := range r.codes {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	for _, c := range codes {
		label := strconv.Itoa(c)
		if c == 0 {
			label = keyNone
		}
		t.Rows = append(t.Rows, []any{label, r.codes[c], share(r.codes[c], r.span.Records)})
	}
	return t
}
