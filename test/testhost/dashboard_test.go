package testhost_test

// The Grafana dashboard, deploy/grafana/kubetrail.json, checked against what the
// pipeline produces: every metric a query names is one that conf/examples'
// audit-metrics and events-metrics configurations make Fluent Bit produce
// (log_to_metrics), that k8s_events serves (k8sevents.MetricNames) or that Fluent
// Bit itself reports (fluentBitMetrics, from its source), and every label a query
// filters or groups by is one that metric has. A dashboard whose panel names a
// metric nobody produces shows "No data" for ever, and nothing else would tell.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kubetrail/kubetrail/conf"
	"github.com/kubetrail/kubetrail/plugin/k8sevents"
	"github.com/kubetrail/kubetrail/test/fluentbit"
)

const dashboardFile = "../../deploy/grafana/kubetrail.json"

// metricsExamples are the configurations whose log_to_metrics filters make the
// kubetrail_* metrics the dashboard shows (each classic and YAML: the twins must
// make the same metrics).
var metricsExamples = []string{"audit-metrics.conf", "audit-metrics.yaml", "events-metrics.conf", "events-metrics.yaml"}

// fluentBitMetrics are the Fluent Bit metrics the dashboard may use, with their
// labels: the ones that exist, with the same labels, in both Fluent Bit 3.2.9 and
// 5.1.1 (each is created by cmt_counter_create or cmt_gauge_create at the place
// named; the fluentbit_metrics input serves them all, flb_me_get_cmetrics in
// src/flb_metrics_exporter.c gathering the instances' and flb_metrics_fluentbit_add's).
var fluentBitMetrics = map[string][]string{
	// src/flb_input.c, flb_input_instance_init
	"fluentbit_input_records_total": {"name"},
	"fluentbit_input_bytes_total":   {"name"},
	// src/flb_filter.c, flb_filter_init
	"fluentbit_filter_records_total":      {"name"},
	"fluentbit_filter_bytes_total":        {"name"},
	"fluentbit_filter_add_records_total":  {"name"},
	"fluentbit_filter_drop_records_total": {"name"},
	"fluentbit_filter_drop_bytes_total":   {"name"},
	// src/flb_output.c, flb_output_init_all
	"fluentbit_output_proc_records_total":    {"name"},
	"fluentbit_output_proc_bytes_total":      {"name"},
	"fluentbit_output_errors_total":          {"name"},
	"fluentbit_output_retries_total":         {"name"},
	"fluentbit_output_retries_failed_total":  {"name"},
	"fluentbit_output_dropped_records_total": {"name"},
	"fluentbit_output_retried_records_total": {"name"},
	// src/flb_metrics.c, attach_uptime and attach_build_info (flb_metrics_fluentbit_add).
	// Not fluentbit_hot_reloaded_times: a gauge in 3.2.9, a counter in 5.1.1.
	"fluentbit_uptime":     {"hostname"},
	"fluentbit_build_info": {"hostname", "version", "os"},
}

// fluentBitGauges are those of fluentBitMetrics that are gauges (the rest are counters).
var fluentBitGauges = []string{"fluentbit_build_info"}

// k8sEventsLabels are the labels of k8s_events' health metrics beyond "name" (the
// Fluent Bit instance name, on every one).
var k8sEventsLabels = map[string][]string{"kubetrail_events_api_errors_total": {"code"}}

// targetLabels are the labels Prometheus adds to every series it scrapes.
var targetLabels = []string{"job", "instance"}

// grafanaBuiltins are the variables Grafana defines itself.
var grafanaBuiltins = []string{"__rate_interval", "__interval", "__interval_ms", "__range", "__range_s", "__range_ms"}

// producedMetric is one metric the pipeline makes, as Prometheus sees it.
type producedMetric struct {
	labels []string
	gauge  bool
	from   string // where it comes from, for the messages
}

// metricStanza is one plugin section of an example (parseExample), with every value
// of a property given several times (log_to_metrics' add_label, label_field, bucket).
type metricStanza struct {
	kind  string
	props map[string][]string // lower-case keys
}

func (s metricStanza) get(key string) string {
	if v := s.props[key]; len(v) > 0 {
		return v[len(v)-1]
	}
	return ""
}

// readMetricStanzas reads the plugin sections of a classic or YAML example.
func readMetricStanzas(path string) ([]metricStanza, error) {
	c, err := parseExample(path)
	if err != nil {
		return nil, err
	}
	var out []metricStanza
	for _, st := range c.Stanzas {
		m := metricStanza{kind: st.Kind, props: map[string][]string{}}
		for k, v := range st.Props {
			m.props[k] = []string{v}
		}
		for k, vs := range st.Multi {
			m.props[k] = vs
		}
		out = append(out, m)
	}
	return out, nil
}

// logToMetrics returns the metrics a log_to_metrics stanza makes, as Fluent Bit
// names them (plugins/filter_log_to_metrics/log_to_metrics.c: namespace, subsystem,
// name; the subsystem defaults to the mode; a histogram is _bucket, _sum and _count,
// _bucket with label le) and labels them (the first word of each add_label, each
// label_field whole; kubernetes_mode adds the pod's).
func logToMetrics(s metricStanza, from string) (map[string]producedMetric, error) {
	mode := strings.ToLower(s.get("metric_mode"))
	name := s.get("metric_name")
	if name == "" || (mode != "counter" && mode != "gauge" && mode != "histogram") {
		return nil, fmt.Errorf("%s: log_to_metrics with metric_mode %q, metric_name %q", from, mode, name)
	}
	ns, sub := s.get("metric_namespace"), s.get("metric_subsystem")
	if ns == "" {
		ns = "log_metric" // DEFAULT_LOG_TO_METRICS_NAMESPACE
	}
	if sub == "" {
		sub = mode
	}
	var labels []string
	if on, _ := conf.ParseBool(s.get("kubernetes_mode")); on {
		labels = append(labels, "namespace_name", "pod_name", "container_name", "docker_id", "pod_id")
	}
	for _, l := range s.props["add_label"] {
		f := strings.Fields(l)
		if len(f) != 2 {
			return nil, fmt.Errorf("%s: add_label %q: want a label name and a record accessor", from, l)
		}
		labels = append(labels, f[0])
	}
	labels = append(labels, s.props["label_field"]...)
	full := ns + "_" + sub + "_" + name
	m := producedMetric{labels: labels, gauge: mode == "gauge", from: from}
	if mode != "histogram" {
		return map[string]producedMetric{full: m}, nil
	}
	if len(s.props["bucket"]) == 0 {
		return nil, fmt.Errorf("%s: histogram %s without bucket", from, full)
	}
	bucket := m
	bucket.labels = append(slices.Clone(labels), "le")
	return map[string]producedMetric{full + "_bucket": bucket, full + "_sum": m, full + "_count": m}, nil
}

// producedMetrics is every metric the dashboard may use, by name.
func producedMetrics(t *testing.T) map[string]producedMetric {
	t.Helper()
	out := map[string]producedMetric{}
	add := func(name string, m producedMetric) {
		if prev, ok := out[name]; ok && (prev.from != m.from || !slices.Equal(prev.labels, m.labels)) {
			if !strings.HasPrefix(prev.from, "conf/examples/") || !strings.HasPrefix(m.from, "conf/examples/") {
				t.Errorf("%s made twice: by %s and by %s", name, prev.from, m.from)
			}
		}
		out[name] = m
	}
	byFile := map[string][]string{}
	for _, f := range metricsExamples {
		path := filepath.Join("../../conf/examples", f)
		stanzas, err := readMetricStanzas(path)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, s := range stanzas {
			if s.get("name") != "log_to_metrics" {
				continue
			}
			n++
			ms, err := logToMetrics(s, "conf/examples/"+f)
			if err != nil {
				t.Fatal(err)
			}
			for name, m := range ms {
				labels := slices.Clone(m.labels)
				sort.Strings(labels)
				byFile[f] = append(byFile[f], name+"{"+strings.Join(labels, ",")+"}")
				add(name, m)
			}
		}
		if n == 0 {
			t.Errorf("%s has no log_to_metrics filter", path)
		}
		sort.Strings(byFile[f])
	}
	for _, f := range metricsExamples {
		if twin := strings.TrimSuffix(f, ".conf") + ".yaml"; strings.HasSuffix(f, ".conf") && !slices.Equal(byFile[f], byFile[twin]) {
			t.Errorf("%s and %s make different metrics:\n\t%q\n\t%q", f, twin, byFile[f], byFile[twin])
		}
	}
	names := k8sevents.MetricNames()
	if len(names) == 0 {
		t.Errorf("k8sevents.MetricNames() is empty")
	}
	for _, name := range names {
		add(name, producedMetric{
			labels: append([]string{"name"}, k8sEventsLabels[name]...),
			gauge:  !strings.HasSuffix(name, "_total"),
			from:   "k8s_events (k8sevents.MetricNames)",
		})
	}
	for name, labels := range fluentBitMetrics {
		add(name, producedMetric{labels: labels, gauge: slices.Contains(fluentBitGauges, name), from: "Fluent Bit"})
	}
	return out
}

// dashQuery is one PromQL expression of the dashboard, and where it is.
type dashQuery struct {
	where string // panel "title" (id n) target A, or variable x
	expr  string
	panel map[string]any // nil for a variable
}

// dashboardQueries returns every panel (those nested in collapsed rows too) and every
// query: the panels' targets[].expr and the query variables' queries.
func dashboardQueries(d map[string]any) (panels []map[string]any, queries []dashQuery, problems []string) {
	var walk func(list any)
	walk = func(list any) {
		l, _ := list.([]any)
		for _, p := range l {
			pm, ok := p.(map[string]any)
			if !ok {
				problems = append(problems, fmt.Sprintf("a panel that is not an object: %v", p))
				continue
			}
			panels = append(panels, pm)
			walk(pm["panels"])
			targets, _ := pm["targets"].([]any)
			for i, tg := range targets {
				tm, _ := tg.(map[string]any)
				expr, _ := tm["expr"].(string)
				ref, _ := tm["refId"].(string)
				queries = append(queries, dashQuery{
					where: fmt.Sprintf("panel %q (id %v) target %d (%s)", pm["title"], pm["id"], i, ref),
					expr:  expr, panel: pm,
				})
			}
		}
	}
	walk(d["panels"])
	tmpl, _ := d["templating"].(map[string]any)
	vars, _ := tmpl["list"].([]any)
	for _, v := range vars {
		vm, _ := v.(map[string]any)
		if vm["type"] != "query" {
			continue
		}
		q, _ := vm["query"].(string)
		if qm, ok := vm["query"].(map[string]any); ok {
			q, _ = qm["query"].(string)
		}
		if def, _ := vm["definition"].(string); def != "" && def != q {
			problems = append(problems, fmt.Sprintf("variable %v: definition %q and query %q differ", vm["name"], def, q))
		}
		if strings.TrimSpace(q) == "" {
			problems = append(problems, fmt.Sprintf("variable %v: no query", vm["name"]))
		}
		queries = append(queries, dashQuery{where: fmt.Sprintf("variable %v", vm["name"]), expr: q})
	}
	return panels, queries, problems
}

// promTok is a token of a PromQL expression.
type promTok struct {
	kind byte // i identifier, s string, n number or duration, v Grafana variable, p punctuation
	text string
}

func tokenizePromQL(expr string) ([]promTok, error) {
	var out []promTok
	isIdent := func(c byte, first bool) bool {
		return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || !first && c >= '0' && c <= '9'
	}
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '#':
			for i < len(expr) && expr[i] != '\n' {
				i++
			}
		case c == '"' || c == '\'' || c == '`':
			j := i + 1
			for j < len(expr) && expr[j] != c {
				if expr[j] == '\\' && c != '`' {
					j++
				}
				j++
			}
			if j >= len(expr) {
				return nil, fmt.Errorf("unterminated string at %d", i)
			}
			s := expr[i : j+1]
			if c == '`' {
				s = strconv.Quote(expr[i+1 : j])
			}
			v, err := strconv.Unquote(strings.ReplaceAll(s, `\'`, `'`))
			if c == '\'' {
				v, err = strconv.Unquote(`"` + strings.ReplaceAll(strings.ReplaceAll(expr[i+1:j], `\'`, `'`), `"`, `\"`) + `"`)
			}
			if err != nil {
				return nil, fmt.Errorf("string %s: %v", expr[i:j+1], err)
			}
			out = append(out, promTok{'s', v})
			i = j + 1
		case c == '$':
			j := i + 1
			if j < len(expr) && expr[j] == '{' {
				k := strings.IndexByte(expr[j:], '}')
				if k < 0 {
					return nil, fmt.Errorf("unterminated ${ at %d", i)
				}
				name, _, _ := strings.Cut(expr[j+1:j+k], ":")
				out = append(out, promTok{'v', name})
				i = j + k + 1
				continue
			}
			for j < len(expr) && isIdent(expr[j], false) {
				j++
			}
			out = append(out, promTok{'v', expr[i+1 : j]})
			i = j
		case isIdent(c, true):
			j := i
			for j < len(expr) && isIdent(expr[j], false) {
				j++
			}
			out = append(out, promTok{'i', expr[i:j]})
			i = j
		case c >= '0' && c <= '9' || c == '.':
			j := i
			for j < len(expr) && (isIdent(expr[j], false) || expr[j] == '.') {
				j++
			}
			out = append(out, promTok{'n', expr[i:j]})
			i = j
		default:
			if i+1 < len(expr) && slices.Contains([]string{"=~", "!~", "!=", "==", ">=", "<="}, expr[i:i+2]) {
				out = append(out, promTok{'p', expr[i : i+2]})
				i += 2
			} else if strings.IndexByte("(){}[],+-*/%^=<>@", c) >= 0 {
				out = append(out, promTok{'p', string(c)})
				i++
			} else {
				return nil, fmt.Errorf("unexpected %q at %d", c, i)
			}
		}
	}
	return out, nil
}

var (
	promAggregations = []string{"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk", "quantile", "limitk", "limit_ratio"}
	promKeywords     = []string{"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "and", "or", "unless", "atan2", "inf", "nan"}
	// promUnsupported would make the label check below wrong: they make or match
	// labels the metrics do not have. Extend the checker before using them.
	promUnsupported = []string{"on", "ignoring", "group_left", "group_right", "label_replace", "label_join", "count_values", "absent", "absent_over_time", "vector", "scalar"}
	promRates       = []string{"rate", "irate", "increase", "delta", "idelta", "deriv", "resets"}
)

// promUse is what one expression uses.
type promUse struct {
	metrics    []string            // every metric name selected
	labels     map[string][]string // metric: the labels a matcher or a grouping names
	rated      map[string]bool     // metric: selected inside rate, increase...
	vars       []string            // the Grafana variables
	quantileOf []string            // metrics inside histogram_quantile
}

// analyzePromQL finds the metrics an expression selects, the labels it matches them
// on ({label=...}) and groups them by (by (...), without (...): each label against
// every metric inside the aggregation), and the Grafana variables it uses.
func analyzePromQL(expr string) (*promUse, error) {
	u := &promUse{labels: map[string][]string{}, rated: map[string]bool{}}
	// Grafana's label_values(query, label) and query_result(query).
	if m := regexp.MustCompile(`(?s)^\s*label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$`).FindStringSubmatch(expr); m != nil {
		inner, err := analyzePromQL(m[1])
		if err != nil {
			return nil, err
		}
		for _, name := range inner.metrics {
			inner.labels[name] = append(inner.labels[name], m[2])
		}
		return inner, nil
	}
	if m := regexp.MustCompile(`(?s)^\s*query_result\((.*)\)\s*$`).FindStringSubmatch(expr); m != nil {
		return analyzePromQL(m[1])
	}
	toks, err := tokenizePromQL(expr)
	if err != nil {
		return nil, err
	}
	if len(toks) == 0 {
		return nil, fmt.Errorf("empty expression")
	}
	// The matching bracket of each opening one.
	match := map[int]int{}
	var stack []int
	for i, tk := range toks {
		if tk.kind != 'p' {
			continue
		}
		switch tk.text {
		case "(", "{", "[":
			stack = append(stack, i)
		case ")", "}", "]":
			if len(stack) == 0 {
				return nil, fmt.Errorf("unbalanced %s", tk.text)
			}
			o := stack[len(stack)-1]
			if want := map[string]string{"(": ")", "{": "}", "[": "]"}[toks[o].text]; want != tk.text {
				return nil, fmt.Errorf("%s closed by %s", toks[o].text, tk.text)
			}
			match[o] = i
			stack = stack[:len(stack)-1]
		}
	}
	if len(stack) > 0 {
		return nil, fmt.Errorf("unbalanced %s", toks[stack[0]].text)
	}
	is := func(i int, kind byte, text string) bool {
		return i >= 0 && i < len(toks) && toks[i].kind == kind && toks[i].text == text
	}
	// metricAt[i]: token i is a metric name.
	metricAt := map[int]bool{}
	type grouping struct {
		labels     []string
		start, end int // the aggregation's argument, tokens start..end
	}
	var groupings []grouping
	labelList := func(open int) ([]string, error) {
		var ls []string
		for j := open + 1; j < match[open]; j++ {
			switch {
			case toks[j].kind == 'i':
				ls = append(ls, toks[j].text)
			case is(j, 'p', ","):
			default:
				return nil, fmt.Errorf("unexpected %q in a label list", toks[j].text)
			}
		}
		return ls, nil
	}
	type call struct {
		name       string
		start, end int
	}
	var calls []call
	for i := 0; i < len(toks); i++ {
		tk := toks[i]
		switch tk.kind {
		case 'v':
			u.vars = append(u.vars, tk.text)
			continue
		case 'p':
			if tk.text == "[" { // a range or subquery: a duration, maybe a variable
				for j := i + 1; j < match[i]; j++ {
					if toks[j].kind == 'v' {
						u.vars = append(u.vars, toks[j].text)
					}
				}
				i = match[i]
			}
			continue
		case 'i':
		default:
			continue
		}
		name := tk.text
		if slices.Contains(promUnsupported, name) {
			return nil, fmt.Errorf("%s is not supported by this checker", name)
		}
		switch {
		case slices.Contains(promAggregations, name):
			var g grouping
			j := i + 1
			if is(j, 'i', "by") || is(j, 'i', "without") {
				if !is(j+1, 'p', "(") {
					return nil, fmt.Errorf("%s %s without a label list", name, toks[j].text)
				}
				ls, err := labelList(j + 1)
				if err != nil {
					return nil, err
				}
				g.labels = ls
				j = match[j+1] + 1
			}
			if !is(j, 'p', "(") {
				return nil, fmt.Errorf("%s without its argument", name)
			}
			g.start, g.end = j, match[j]
			if is(g.end+1, 'i', "by") || is(g.end+1, 'i', "without") {
				if g.labels != nil || !is(g.end+2, 'p', "(") {
					return nil, fmt.Errorf("%s: a second or empty grouping", name)
				}
				ls, err := labelList(g.end + 2)
				if err != nil {
					return nil, err
				}
				g.labels = ls
			}
			groupings = append(groupings, g)
			calls = append(calls, call{name, g.start, g.end})
			i = g.start - 1 // on into the argument (its grouping read)
		case is(i+1, 'p', "("):
			calls = append(calls, call{name, i + 1, match[i+1]})
		case name == "by" || name == "without":
			i = match[i+1] // handled with its aggregation
		case slices.Contains(promKeywords, name):
		default:
			metricAt[i] = true
			u.metrics = append(u.metrics, name)
			if is(i+1, 'p', "{") {
				end := match[i+1]
				for j := i + 2; j < end; j++ {
					if toks[j].kind != 'i' || j+2 > end || toks[j+1].kind != 'p' || toks[j+2].kind != 's' {
						return nil, fmt.Errorf("%s: a matcher not of the form label op \"value\"", name)
					}
					if toks[j].text == "__name__" {
						return nil, fmt.Errorf("%s: __name__ matchers are not supported by this checker", name)
					}
					u.labels[name] = append(u.labels[name], toks[j].text)
					for _, v := range regexp.MustCompile(`\$\{?([a-zA-Z_][a-zA-Z0-9_]*)`).FindAllStringSubmatch(toks[j+2].text, -1) {
						u.vars = append(u.vars, v[1])
					}
					j += 3
					if j < end && !is(j, 'p', ",") {
						return nil, fmt.Errorf("%s: matchers not separated by commas", name)
					}
				}
				i = end
			}
		}
	}
	for _, g := range groupings {
		for j := g.start; j <= g.end; j++ {
			if metricAt[j] {
				u.labels[toks[j].text] = append(u.labels[toks[j].text], g.labels...)
			}
		}
	}
	for _, c := range calls {
		for j := c.start; j <= c.end; j++ {
			if !metricAt[j] {
				continue
			}
			if slices.Contains(promRates, c.name) {
				u.rated[toks[j].text] = true
			}
			if c.name == "histogram_quantile" {
				u.quantileOf = append(u.quantileOf, toks[j].text)
			}
		}
	}
	return u, nil
}

// loadDashboard reads and decodes the dashboard, failing on invalid JSON.
func loadDashboard(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d map[string]any
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s: not valid JSON: %v", path, err)
	}
	if dec.More() {
		t.Fatalf("%s: more than one JSON value", path)
	}
	return d
}

// checkDashboard returns what is wrong with the dashboard d against the metrics
// produced; used reports the metrics its queries select.
func checkDashboard(d map[string]any, produced map[string]producedMetric) (problems []string, used map[string]bool) {
	bad := func(f string, a ...any) { problems = append(problems, fmt.Sprintf(f, a...)) }
	used = map[string]bool{}
	if v, _ := d["schemaVersion"].(float64); v < 36 {
		bad("schemaVersion %v: want a Grafana 10+ dashboard (36 or more)", d["schemaVersion"])
	}
	for _, k := range []string{"title", "uid"} {
		if s, _ := d[k].(string); s == "" {
			bad("no %s", k)
		}
	}
	// The variables: a Prometheus datasource variable named datasource.
	defined := slices.Clone(grafanaBuiltins)
	tmpl, _ := d["templating"].(map[string]any)
	vars, _ := tmpl["list"].([]any)
	for _, v := range vars {
		vm, _ := v.(map[string]any)
		name, _ := vm["name"].(string)
		defined = append(defined, name)
		if name == "datasource" && (vm["type"] != "datasource" || vm["query"] != "prometheus") {
			bad("variable datasource: type %v, query %v; want a prometheus datasource variable", vm["type"], vm["query"])
		}
	}
	if !slices.Contains(defined, "datasource") {
		bad("no datasource variable")
	}
	checkDS := func(where string, ds any) {
		m, _ := ds.(map[string]any)
		if m["uid"] != "${datasource}" || m["type"] != "prometheus" {
			bad("%s: datasource %v, want {type: prometheus, uid: ${datasource}}", where, ds)
		}
	}
	panels, queries, qp := dashboardQueries(d)
	problems = append(problems, qp...)
	ids := map[float64]string{}
	for _, p := range panels {
		title, _ := p["title"].(string)
		id, ok := p["id"].(float64)
		if !ok {
			bad("panel %q has no numeric id", title)
		} else if prev, dup := ids[id]; dup {
			bad("panel id %v used twice: %q and %q", id, prev, title)
		}
		ids[id] = title
		if title == "" {
			bad("panel id %v has no title", p["id"])
		}
		if p["type"] == "row" {
			continue
		}
		if desc, _ := p["description"].(string); len(desc) < 30 {
			bad("panel %q: no description (say what question it answers)", title)
		}
		checkDS(fmt.Sprintf("panel %q", title), p["datasource"])
		targets, _ := p["targets"].([]any)
		n := 0
		for _, tg := range targets {
			tm, _ := tg.(map[string]any)
			checkDS(fmt.Sprintf("panel %q target %v", title, tm["refId"]), tm["datasource"])
			if e, _ := tm["expr"].(string); strings.TrimSpace(e) != "" {
				n++
			}
		}
		if n == 0 {
			bad("panel %q has no query", title)
		}
	}
	unitOf := func(p map[string]any) string {
		fc, _ := p["fieldConfig"].(map[string]any)
		def, _ := fc["defaults"].(map[string]any)
		u, _ := def["unit"].(string)
		return u
	}
	for _, q := range queries {
		if strings.TrimSpace(q.expr) == "" {
			continue
		}
		u, err := analyzePromQL(q.expr)
		if err != nil {
			bad("%s: %s: %v", q.where, q.expr, err)
			continue
		}
		for _, v := range u.vars {
			if !slices.Contains(defined, v) {
				bad("%s: variable $%s is not defined", q.where, v)
			}
		}
		for _, name := range u.metrics {
			used[name] = true
			m, ok := produced[name]
			if !ok {
				hint := ""
				for _, sfx := range []string{"_bucket", "_sum", "_count"} {
					if _, h := produced[name+sfx]; h {
						hint = " (a histogram: select " + name + "_bucket, _sum or _count)"
					}
				}
				bad("%s: metric %s is not produced by the examples' log_to_metrics, k8s_events or Fluent Bit%s", q.where, name, hint)
				continue
			}
			for _, l := range u.labels[name] {
				if !slices.Contains(m.labels, l) && !slices.Contains(targetLabels, l) {
					bad("%s: %s has no label %q (its labels: %v, from %s; and Prometheus' %v)", q.where, name, l, m.labels, m.from, targetLabels)
				}
			}
			if m.gauge && u.rated[name] {
				bad("%s: %s is a gauge: rate or increase of it means nothing", q.where, name)
			}
			if !m.gauge && !u.rated[name] && strings.HasSuffix(name, "_total") && q.panel != nil {
				bad("%s: %s is a counter: show its rate or increase", q.where, name)
			}
			if q.panel == nil {
				continue
			}
			// Units: the duration histogram in ms (not its _count, a request count),
			// the _seconds and _bytes gauges in s and bytes.
			want := ""
			switch {
			case strings.Contains(name, "_milliseconds_") && !strings.HasSuffix(name, "_count"):
				want = "ms"
			case strings.HasSuffix(name, "_seconds") && m.gauge:
				want = "s"
			case strings.HasSuffix(name, "_bytes") && m.gauge:
				want = "bytes"
			}
			if want != "" && unitOf(q.panel) != want {
				bad("%s: %s shown in unit %q, want %q", q.where, name, unitOf(q.panel), want)
			}
		}
		for _, name := range u.quantileOf {
			if !strings.HasSuffix(name, "_bucket") {
				bad("%s: histogram_quantile over %s, not a histogram's _bucket", q.where, name)
			} else if !slices.Contains(u.labels[name], "le") {
				bad("%s: histogram_quantile over %s not aggregated by le", q.where, name)
			}
		}
	}
	return problems, used
}

// TestDashboardMetricsAreProduced: every query of the dashboard selects metrics the
// pipeline produces, by labels they have; every panel has a query, a description and
// a unique id; and every kubetrail metric produced has a panel.
func TestDashboardMetricsAreProduced(t *testing.T) {
	d := loadDashboard(t, dashboardFile)
	produced := producedMetrics(t)
	problems, used := checkDashboard(d, produced)
	for _, p := range problems {
		t.Error(p)
	}
	// The other way: every kubetrail metric has a panel (a histogram through any of
	// its series).
	var unused []string
	for name, m := range produced {
		if !strings.HasPrefix(name, "kubetrail_") || used[name] {
			continue
		}
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
		if used[base+"_bucket"] || used[base+"_sum"] || used[base+"_count"] {
			continue
		}
		unused = append(unused, name+" ("+m.from+")")
	}
	sort.Strings(unused)
	for _, n := range unused {
		t.Errorf("%s has no panel in %s", n, dashboardFile)
	}
	var names []string
	for n := range used {
		names = append(names, n)
	}
	sort.Strings(names)
	t.Logf("%d metrics used: %s", len(names), strings.Join(names, " "))
}

// TestDashboardCheckCatchesMistakes proves the check above fails on a panel naming a
// metric no one produces, on a label the metric does not have, on a bare histogram
// name and on a duplicate panel id.
func TestDashboardCheckCatchesMistakes(t *testing.T) {
	produced := producedMetrics(t)
	for _, c := range []struct {
		name, old, new, want string
	}{
		{"unknown metric", "kubetrail_events_relists_total", "kubetrail_events_relist_total", "kubetrail_events_relist_total is not produced"},
		{"unknown label", "sum by (verb) (rate(kubetrail_apiserver_requests_total", "sum by (resource) (rate(kubetrail_apiserver_requests_total", `has no label "resource"`},
		{"bare histogram", "kubetrail_apiserver_request_duration_milliseconds_sum", "kubetrail_apiserver_request_duration_milliseconds", "a histogram: select"},
		{"le on _sum", "sum by (le, verb) (rate(kubetrail_apiserver_request_duration_milliseconds_bucket", "sum by (le, verb) (rate(kubetrail_apiserver_request_duration_milliseconds_count", `has no label "le"`},
		{"matcher label", `fluentbit_input_records_total{job=~\"$job\"}`, `fluentbit_input_records_total{job=~\"$job\", tag=\"x\"}`, `has no label "tag"`},
		{"duplicate id", `"id": 3,`, `"id": 2,`, "panel id 2 used twice"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b, err := os.ReadFile(dashboardFile)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(b), c.old) {
				t.Fatalf("the dashboard has no %s", c.old)
			}
			var d map[string]any
			if err := json.Unmarshal([]byte(strings.ReplaceAll(string(b), c.old, c.new)), &d); err != nil {
				t.Fatal(err)
			}
			problems, _ := checkDashboard(d, produced)
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, c.want) }) {
				t.Errorf("changed %s to %s: no problem saying %q; got %q", c.old, c.new, c.want, problems)
			}
		})
	}
}

// TestDashboardMetricsInRealFluentBit runs conf/examples/audit-metrics.conf in a real
// Fluent Bit over the sample audit log and checks, in a scrape of its
// prometheus_exporter, that every kubetrail_apiserver_* and fluentbit_* metric the
// dashboard uses is there.
func TestDashboardMetricsInRealFluentBit(t *testing.T) {
	bin := fluentBit(t)
	if !slices.ContainsFunc(conf.AuditProperties, func(p conf.Property) bool { return p.Name == "metrics" }) {
		t.Skip("k8s_audit has no property metrics yet: audit-metrics.conf cannot run")
	}
	host, lib := paths(t)
	repo, _ := filepath.Abs("../..")
	// The library built must be one that adds the field (build/ may predate it).
	out, err := exec.Command(host, "filter", "-l", lib, "-p", "metrics=on", filepath.Join(repo, "conf/examples/sample-audit.log")).Output()
	if err != nil {
		t.Fatalf("flb-testhost filter -p metrics=on: %v", err)
	}
	if !strings.Contains(string(out), `"metrics":`) {
		t.Skip("the k8s_audit in build/ adds no metrics field (built before it): run make")
	}
	d := loadDashboard(t, dashboardFile)
	_, used := checkDashboard(d, producedMetrics(t))
	var want []string
	for n := range used {
		if strings.HasPrefix(n, "kubetrail_apiserver_") || strings.HasPrefix(n, "fluentbit_") {
			want = append(want, n)
		}
	}
	sort.Strings(want)

	b, err := os.ReadFile(filepath.Join(repo, "conf/examples/audit-metrics.conf"))
	if err != nil {
		t.Fatal(err)
	}
	port := freeTCPPort(t)
	// The file as it is, but for the exporter's port, the plugins file (relative to
	// the file, which is written elsewhere) and a faster fluentbit_metrics.
	var section string
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) == 1 && strings.HasPrefix(f[0], "["):
			section = ""
		case len(f) == 2 && strings.EqualFold(f[0], "name"):
			section = f[1]
		case len(f) == 2 && strings.EqualFold(f[0], "plugins_file"):
			l = "    Plugins_File " + filepath.Join(repo, "build/plugins.conf")
		case len(f) == 2 && strings.EqualFold(f[0], "port") && section == "prometheus_exporter":
			l = "    Port " + strconv.Itoa(port)
		case len(f) == 2 && strings.EqualFold(f[0], "scrape_interval") && section == "fluentbit_metrics":
			l = "    Scrape_Interval 1"
		}
		lines = append(lines, l)
	}
	cfg := filepath.Join(t.TempDir(), "audit-metrics.conf")
	if err := os.WriteFile(cfg, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	fb := fluentbit.Start(t, bin, repo, cfg)
	var missing []string
	var body string
	deadline := time.Now().Add(30 * time.Second)
	for {
		if fb.Exited() {
			t.Fatal("Fluent Bit exited")
		}
		if resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port)); err == nil {
			bb, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(bb)
		}
		missing = missing[:0]
		for _, n := range want {
			if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(n) + `[{ ]`).MatchString(body) {
				missing = append(missing, n)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if len(missing) > 0 {
		t.Errorf("not in the exporter's scrape: %q\n%s", missing, body)
	}
	_, log := fb.Snapshot()
	if strings.Contains(log, "[error]") {
		t.Errorf("errors logged:\n%s", log)
	}
	t.Logf("%d metrics of the dashboard scraped from Fluent Bit: %s", len(want), strings.Join(want, " "))
}
