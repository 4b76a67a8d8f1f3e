package testhost_test

// The audit metrics: what conf/examples/audit-metrics.conf makes of k8s_audit's
// records. Fluent Bit's log_to_metrics is modelled here (l2m) and applied to the
// records flb-testhost writes; with FLUENT_BIT set the same configuration runs in a
// real Fluent Bit and its prometheus_exporter must serve exactly the model's series.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/kubetrail/kubetrail/test/auditgen"
	"github.com/kubetrail/kubetrail/test/fluentbit"
	"github.com/kubetrail/kubetrail/test/testcluster"
)

// l2m is one log_to_metrics filter as plugins/filter_log_to_metrics/log_to_metrics.c
// runs it (v3.2.9 to v5.1.1).
type l2m struct {
	name    string // namespace_subsystem_name
	mode    string // counter or histogram (gauge is not used by the examples)
	rules   []l2mRule
	labels  []l2mLabel
	value   []string // value_field's path
	buckets []float64
}

type l2mRule struct {
	exclude bool
	path    []string
	re      *regexp.Regexp
}

type l2mLabel struct {
	name string
	path []string
}

// accessorPath reads a record accessor as the examples write them: $key, $a['b'], or
// a plain key (src/flb_record_accessor.c).
func accessorPath(s string) []string {
	s = strings.TrimPrefix(s, "$")
	var out []string
	head, rest, _ := strings.Cut(s, "[")
	out = append(out, head)
	for rest != "" {
		var k string
		k, rest, _ = strings.Cut(rest, "]")
		out = append(out, strings.Trim(k, `'"`))
		rest = strings.TrimPrefix(rest, "[")
	}
	return out
}

// newL2M reads a log_to_metrics stanza. Its regex and exclude rules keep the order
// Fluent Bit reads them in (set_rules walks the instance's properties in order).
func newL2M(t *testing.T, s *stanza) l2m {
	t.Helper()
	m := l2m{mode: strings.ToLower(s.Props["metric_mode"])}
	m.name = s.Props["metric_namespace"] + "_" + s.Props["metric_subsystem"] + "_" + s.Props["metric_name"]
	idx := map[string]int{}
	for _, k := range s.Order {
		vals := s.Multi[k]
		if vals == nil {
			vals = []string{s.Props[k]}
		}
		v := vals[idx[k]]
		idx[k]++
		switch k {
		case "regex", "exclude":
			key, pattern, _ := strings.Cut(v, " ")
			m.rules = append(m.rules, l2mRule{exclude: k == "exclude", path: accessorPath(key), re: regexp.MustCompile(strings.TrimSpace(pattern))})
		case "add_label":
			f := strings.Fields(v)
			m.labels = append(m.labels, l2mLabel{name: f[0], path: accessorPath(f[1])})
		case "label_field":
			m.labels = append(m.labels, l2mLabel{name: v, path: accessorPath(v)})
		case "bucket":
			b, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			m.buckets = append(m.buckets, b)
		case "value_field":
			m.value = accessorPath(v)
		}
	}
	sort.Float64s(m.buckets)
	return m
}

func lookup(r map[string]any, path []string) (any, bool) {
	var v any = r
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[k]; !ok {
			return nil, false
		}
	}
	return v, true
}

// keep is grep_filter_data: the first regex rule that matches keeps the record, one
// that does not match drops it, a matching exclude drops it; only strings match
// (flb_ra_key_regex_match returns -1 for any other type).
func (m l2m) keep(r map[string]any) bool {
	for _, rule := range m.rules {
		v, _ := lookup(r, rule.path)
		s, isStr := v.(string)
		match := isStr && rule.re.MatchString(s)
		switch {
		case !match && !rule.exclude:
			return false
		case match && rule.exclude:
			return false
		case match:
			return true
		}
	}
	return true
}

// labelValue is how log_to_metrics turns a value into a label: a string as it is, an
// integer with %ld, a float with %f, anything else (a bool, a map, absent) "".
func labelValue(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return strconv.FormatInt(i, 10)
		}
		f, _ := x.Float64()
		return strconv.FormatFloat(f, 'f', 6, 64)
	}
	return ""
}

// series are a metric's samples by label values: a counter's count, a histogram's
// observations.
type series map[string]*sample

type sample struct {
	count   float64
	sum     float64
	buckets []float64 // cumulative, as Prometheus shows them
}

func seriesKey(names, values []string) string {
	var b strings.Builder
	for i := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%q", names[i], values[i])
	}
	return b.String()
}

func (m l2m) observe(s series, r map[string]any) {
	if !m.keep(r) {
		return
	}
	names := make([]string, len(m.labels))
	values := make([]string, len(m.labels))
	for i, l := range m.labels {
		v, _ := lookup(r, l.path)
		names[i], values[i] = l.name, labelValue(v)
	}
	k := seriesKey(names, values)
	sm := s[k]
	if sm == nil {
		sm = &sample{buckets: make([]float64, len(m.buckets))}
		s[k] = sm
	}
	if m.mode == "counter" {
		sm.count++
		return
	}
	v, ok := lookup(r, m.value)
	n, isNum := v.(json.Number)
	if !ok || !isNum {
		return // "given value field is empty or not existent": nothing observed
	}
	f, _ := n.Float64()
	sm.count++
	sm.sum += f
	for i, b := range m.buckets {
		if f <= b {
			sm.buckets[i]++
		}
	}
}

// auditMetrics are the log_to_metrics filters of conf/examples/audit-metrics.conf.
func auditMetrics(t *testing.T) []l2m {
	t.Helper()
	c, err := parseExample("../../conf/examples/audit-metrics.conf")
	if err != nil {
		t.Fatal(err)
	}
	var out []l2m
	for _, s := range c.plugins("log_to_metrics") {
		out = append(out, newL2M(t, s))
	}
	if len(out) == 0 {
		t.Fatal("audit-metrics.conf has no log_to_metrics")
	}
	return out
}

// topUsers is audit-metrics.conf's metrics_top_users.
func topUsers(t *testing.T) int {
	c, err := parseExample("../../conf/examples/audit-metrics.conf")
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(c.plugins("k8s_audit")[0].Props["metrics_top_users"])
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// filterRecords runs the audit log through flb-testhost's filter with the example's
// k8s_audit properties and decodes the records, numbers kept as written.
func filterRecords(t *testing.T, log string) []map[string]any {
	t.Helper()
	host, lib := paths(t)
	args := []string{"filter", "-l", lib, "-p", "metrics=on", "-p", "metrics_top_users=" + strconv.Itoa(topUsers(t)), "-p", "dedup=on", log}
	var stderr bytes.Buffer
	cmd := exec.Command(host, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("flb-testhost filter: %v\n%s", err, stderr.String())
	}
	var recs []map[string]any
	for _, r := range parseRecords(t, out, "flb-testhost") {
		recs = append(recs, r)
	}
	return recs
}

// modelMetrics applies the filters to the records.
func modelMetrics(ms []l2m, recs []map[string]any) map[string]series {
	out := map[string]series{}
	for _, m := range ms {
		out[m.name] = series{}
	}
	for _, r := range recs {
		for _, m := range ms {
			m.observe(out[m.name], r)
		}
	}
	return out
}

func total(s series) (n float64) {
	for _, v := range s {
		n += v.count
	}
	return n
}

// requestsInLog counts, from the raw log alone, the requests whose last stage was
// written: the auditIDs with a ResponseComplete or Panic record, or a ResponseStarted
// with a status of 400 or more (a 401 is written at that stage only; a failed watch
// has both, and its auditID counts once).
func requestsInLog(t *testing.T, path string) (requests int, users map[string]bool) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	done := map[string]bool{}
	users = map[string]bool{}
	for _, l := range bytes.Split(b, []byte("\n")) {
		if len(bytes.TrimSpace(l)) == 0 {
			continue
		}
		var ev struct {
			AuditID, Stage string
			User           struct{ Username string }
			ResponseStatus struct{ Code int }
		}
		if err := json.Unmarshal(l, &ev); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if ev.Stage == "ResponseComplete" || ev.Stage == "Panic" || (ev.Stage == "ResponseStarted" && ev.ResponseStatus.Code >= 400) {
			done[ev.AuditID] = true
			users[ev.User.Username] = true
		}
	}
	return len(done), users
}

// checkAuditMetrics checks the model's figures against the log: every request
// counted once by each counter, the histogram holding the requests that are not
// long-running, user bounded.
func checkAuditMetrics(t *testing.T, what, log string, recs []map[string]any, got map[string]series) {
	t.Helper()
	want, users := requestsInLog(t, log)
	if want == 0 {
		t.Fatalf("%s: no finished request in the log", what)
	}
	for _, name := range []string{"kubetrail_apiserver_requests_total", "kubetrail_apiserver_namespace_requests_total", "kubetrail_apiserver_user_requests_total"} {
		if n := total(got[name]); n != float64(want) {
			t.Errorf("%s: %s counts %v requests, the log has %d", what, name, n, want)
		}
	}
	var longRunning, timed float64
	for _, r := range recs {
		switch r["metrics"] {
		case "timed":
			timed++
			if r["long_running"] == true {
				t.Errorf("%s: a long-running request is timed: %v", what, r["auditID"])
			}
		case "counted":
			if r["long_running"] == true {
				longRunning++
			}
		}
	}
	hist := got["kubetrail_apiserver_request_duration_milliseconds"]
	if n := total(hist); n != timed || n == 0 {
		t.Errorf("%s: the histogram holds %v requests, %v are timed", what, n, timed)
	}
	names := map[string]bool{}
	for k := range got["kubetrail_apiserver_user_requests_total"] {
		names[strings.Split(strings.TrimPrefix(k, `user="`), `"`)[0]] = true
	}
	if max := topUsers(t) + 2; len(names) > max { // the names, other, and "" (no user: 401)
		t.Errorf("%s: user takes %d values, the bound is %d", what, len(names), max)
	}
	n := 0
	for _, s := range got {
		n += len(s)
	}
	t.Logf("%s: %d requests (%d users) in %d records; %v timed, %v long-running; %d series: %s", what, want, len(users), len(recs), timed, longRunning, n, seriesCounts(got))
}

func seriesCounts(got map[string]series) string {
	var parts []string
	for name, s := range got {
		parts = append(parts, fmt.Sprintf("%s=%d", strings.TrimPrefix(name, "kubetrail_apiserver_"), len(s)))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

// apiserverAuditLog starts a real kube-apiserver that logs every stage at Metadata
// level, makes requests that succeed, fail (401, 403, 404, 422) and stream (a watch),
// and returns a snapshot of its audit log.
func apiserverAuditLog(t *testing.T) string {
	t.Helper()
	c := testcluster.Start(t, testcluster.Options{AuditPolicy: "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n"})
	for _, r := range []struct {
		method, path, body, token string
	}{
		{"GET", "/api/v1/namespaces/default/pods", "", c.AdminToken},
		{"GET", "/api/v1/namespaces/default/configmaps/missing", "", c.AdminToken},
		{"POST", "/api/v1/namespaces/default/configmaps", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"m1"}}`, c.AdminToken},
		{"POST", "/api/v1/namespaces/default/configmaps", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"Not_Valid"}}`, c.AdminToken},
		{"DELETE", "/api/v1/namespaces/default/configmaps/m1", "", c.JaneToken},
		{"GET", "/api/v1/namespaces", "", "not-a-token"},
		{"GET", "/api/v1/namespaces/default/events?watch=true&timeoutSeconds=1", "", c.AdminToken},
		// A long-running request that fails: ResponseStarted and ResponseComplete, one request.
		{"GET", "/api/v1/namespaces/kube-system/secrets?watch=true&timeoutSeconds=1", "", c.JaneToken},
		{"GET", "/version", "", c.AdminToken},
	} {
		var body []byte
		if r.body != "" {
			body = []byte(r.body)
		}
		if _, _, err := c.Do(r.method, r.path, body, r.token); err != nil {
			t.Fatalf("%s %s: %v", r.method, r.path, err)
		}
	}
	time.Sleep(2 * time.Second) // the watch's ResponseComplete, the log backend's buffer
	b, err := os.ReadFile(c.AuditLog)
	if err != nil {
		t.Fatal(err)
	}
	// Up to the last complete line: the apiserver goes on writing.
	b = b[:bytes.LastIndexByte(b, '\n')+1]
	out := filepath.Join(t.TempDir(), "audit.log")
	if err := os.WriteFile(out, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// generatedHour writes auditgen's hour of a 2,500-node cluster.
func generatedHour(t *testing.T, records int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "hour.log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := auditgen.Write(f, auditgen.Options{Seed: 11, Nodes: 2500, Duration: time.Hour, Records: records}); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestAuditMetricsThroughTestHost: what audit-metrics.conf's log_to_metrics filters
// make of the records the library writes, over a real apiserver's audit log (every
// stage, failures, a watch) and a generated hour of a 2,500-node cluster: each counter
// counts every request once, the histogram the requests that are not long-running,
// and the user label stays within metrics_top_users + other.
func TestAuditMetricsThroughTestHost(t *testing.T) {
	ms := auditMetrics(t)
	real := apiserverAuditLog(t)
	recs := filterRecords(t, real)
	checkAuditMetrics(t, "apiserver log", real, recs, modelMetrics(ms, recs))

	hour := generatedHour(t, 200_000)
	recs = filterRecords(t, hour)
	got := modelMetrics(ms, recs)
	checkAuditMetrics(t, "2,500-node hour", hour, recs, got)
	named := 0
	for k := range got["kubetrail_apiserver_user_requests_total"] {
		if !strings.HasPrefix(k, `user="other"`) && !strings.HasPrefix(k, `user=""`) {
			named++
		}
	}
	if named == 0 {
		t.Error("2,500-node hour: no user named: the heavy controllers should be")
	}
}

// scrapeFamilies reads a Prometheus text endpoint.
func scrapeFamilies(url string) (map[string]*dto.MetricFamily, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(resp.Body)
}

// familySeries turns a scraped family into series as the model keeps them.
func familySeries(f *dto.MetricFamily, labels []string) series {
	out := series{}
	if f == nil {
		return out
	}
	for _, m := range f.Metric {
		vals := map[string]string{}
		for _, l := range m.Label {
			vals[l.GetName()] = l.GetValue()
		}
		values := make([]string, len(labels))
		for i, l := range labels {
			values[i] = vals[l]
		}
		sm := &sample{}
		switch {
		case m.Counter != nil:
			sm.count = m.Counter.GetValue()
		case m.Histogram != nil:
			sm.count, sm.sum = float64(m.Histogram.GetSampleCount()), m.Histogram.GetSampleSum()
			for _, b := range m.Histogram.Bucket {
				if !math.IsInf(b.GetUpperBound(), 1) {
					sm.buckets = append(sm.buckets, float64(b.GetCumulativeCount()))
				}
			}
		}
		out[seriesKey(labels, values)] = sm
	}
	return out
}

// familyTotal sums a scraped counter's series.
func familyTotal(f *dto.MetricFamily) (n float64) {
	if f == nil {
		return 0
	}
	for _, m := range f.Metric {
		n += m.GetCounter().GetValue()
	}
	return n
}

// TestAuditMetricsInRealFluentBit runs audit-metrics.conf in a real Fluent Bit over
// the same logs: its prometheus_exporter must serve the model's series, value for
// value, so that the model above is Fluent Bit's behaviour and not a guess.
func TestAuditMetricsInRealFluentBit(t *testing.T) {
	bin := fluentBit(t)
	ms := auditMetrics(t)
	for _, c := range []struct {
		what string
		log  func() string
	}{
		{"apiserver log", func() string { return apiserverAuditLog(t) }},
		{"2,500-node hour", func() string { return generatedHour(t, 200_000) }},
	} {
		log := c.log()
		recs := filterRecords(t, log)
		want := modelMetrics(ms, recs)
		port := freeTCPPort(t)
		cfg := metricsConfig(t, log, port)
		repo, _ := filepath.Abs("../..")
		fb := fluentbit.Start(t, bin, repo, cfg)
		url := fmt.Sprintf("http://127.0.0.1:%d/metrics", port)
		wantN := total(want["kubetrail_apiserver_requests_total"])
		var fams map[string]*dto.MetricFamily
		deadline := time.Now().Add(90 * time.Second)
		for {
			if fb.Exited() {
				t.Fatal("Fluent Bit exited")
			}
			var err error
			fams, err = scrapeFamilies(url)
			if err == nil && familyTotal(fams["kubetrail_apiserver_requests_total"]) >= wantN {
				time.Sleep(2 * time.Second) // flush_interval_sec 1: the last of each metric
				fams, err = scrapeFamilies(url)
				if err == nil {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: after 90 s the exporter counts %v of %v requests (%v)", c.what, familyTotal(fams["kubetrail_apiserver_requests_total"]), wantN, err)
			}
			time.Sleep(500 * time.Millisecond)
		}
		for _, m := range ms {
			var labels []string
			for _, l := range m.labels {
				labels = append(labels, l.name)
			}
			got := familySeries(fams[m.name], labels)
			if len(got) != len(want[m.name]) {
				t.Errorf("%s: %s: Fluent Bit has %d series, the model %d", c.what, m.name, len(got), len(want[m.name]))
			}
			for k, w := range want[m.name] {
				g := got[k]
				if g == nil || g.count != w.count || (m.mode == "histogram" && (math.Abs(g.sum-w.sum) > 1e-6*math.Max(1, w.sum) || fmt.Sprint(g.buckets) != fmt.Sprint(w.buckets))) {
					t.Errorf("%s: %s{%s}: Fluent Bit %+v, the model %+v", c.what, m.name, k, g, w)
				}
			}
		}
		_, logText := fb.Snapshot()
		if strings.Contains(logText, "[error]") {
			t.Errorf("%s: errors logged:\n%s", c.what, logText)
		}
		n := 0
		for _, s := range want {
			n += len(s)
		}
		t.Logf("%s: %s serves the model's %d series, %v requests", c.what, fluentBitVersion(bin), n, wantN)
		fb.Stop()
	}
}

// metricsFilters are audit-metrics.conf's log_to_metrics stanzas, matching tag.
func metricsFilters(t *testing.T, tag string) string {
	t.Helper()
	c, err := parseExample("../../conf/examples/audit-metrics.conf")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, s := range c.plugins("log_to_metrics") {
		b.WriteString("[FILTER]\n")
		for _, k := range s.Keys {
			lk := strings.ToLower(k)
			vals, ok := s.Multi[lk]
			if !ok {
				vals = []string{s.Props[lk]}
			}
			if lk == "match" {
				vals = []string{tag}
			}
			for _, v := range vals {
				fmt.Fprintf(&b, "    %s %s\n", k, v)
			}
		}
	}
	return b.String()
}

// metricsConfig is audit-metrics.conf reading log once, its exporter on port.
func metricsConfig(t *testing.T, log string, port int) string {
	t.Helper()
	c, err := parseExample("../../conf/examples/audit-metrics.conf")
	if err != nil {
		t.Fatal(err)
	}
	repo, _ := filepath.Abs("../..")
	dir := t.TempDir()
	c.service().set("Plugins_File", filepath.Join(repo, "build/plugins.conf"))
	c.plugins("tail")[0].set("Path", log)
	c.plugins("tail")[0].set("DB", filepath.Join(dir, "tail.db"))
	c.plugins("prometheus_exporter")[0].set("Port", strconv.Itoa(port))
	return c.write(t, dir)
}

// TestEventsMetricsInRealFluentBit runs events-metrics.conf and .yaml in a real Fluent
// Bit against a real apiserver: k8s_events' health (its metrics_port, read by
// prometheus_scrape) and the Events by type and reason (log_to_metrics) on the one
// prometheus_exporter endpoint.
func TestEventsMetricsInRealFluentBit(t *testing.T) {
	bin := fluentBit(t)
	paths(t)
	repo, _ := filepath.Abs("../..")
	e := newEvCluster(t)
	for i, f := range []string{"events-metrics.conf", "events-metrics.yaml"} {
		t.Run(f, func(t *testing.T) {
			c, err := parseExample(filepath.Join(repo, "conf", "examples", f))
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			if _, ok := c.service().Props["plugins_file"]; ok {
				c.service().set("plugins_file", filepath.Join(repo, "build/plugins.conf"))
			}
			c.service().set("grace", "1")
			health, exporter := freeTCPPort(t), freeTCPPort(t)
			for _, s := range c.plugins("k8s_events") {
				s.set("kube_url", e.c.URL)
				s.set("kube_ca_file", e.c.CAFile)
				s.set("kube_token_file", e.tokenFile)
				s.set("db", filepath.Join(dir, "events.db"))
				s.set("metrics_port", strconv.Itoa(health))
			}
			for _, s := range c.plugins("prometheus_scrape") {
				s.set("port", strconv.Itoa(health))
				s.set("scrape_interval", "1s")
			}
			c.plugins("prometheus_exporter")[0].set("port", strconv.Itoa(exporter))
			fb := fluentbit.Start(t, bin, repo, c.write(t, dir))
			for j := 0; j < 3; j++ {
				e.mustCreate(t, fmt.Sprintf("fb-metrics-%d-%d", i, j))
			}
			url := fmt.Sprintf("http://127.0.0.1:%d/metrics", exporter)
			var fams map[string]*dto.MetricFamily
			waitUntil(t, "the Events in the exporter's metrics", inputWait, func() (bool, string) {
				if fb.Exited() {
					t.Fatal("Fluent Bit exited")
				}
				var err error
				if fams, err = scrapeFamilies(url); err != nil {
					return false, err.Error()
				}
				emitted := familyTotal(fams["kubetrail_events_emitted_total"])
				byReason := familyTotal(fams["kubetrail_events_by_reason_total"])
				return emitted >= 3 && byReason >= 3, fmt.Sprintf("emitted_total %v, by_reason_total %v", emitted, byReason)
			})
			lists := fams["kubetrail_events_lists_total"]
			leader := fams["kubetrail_events_leader"]
			if lists == nil || leader == nil || leader.Metric[0].GetGauge().GetValue() != 1 {
				t.Errorf("lists_total %v, leader %v: want a LIST counted and the instance collecting", lists, leader)
			}
			for _, m := range fams["kubetrail_events_emitted_total"].Metric {
				for _, l := range m.Label {
					if l.GetName() == "name" && !strings.HasPrefix(l.GetValue(), "k8s_events.") {
						t.Errorf("emitted_total's name label is %q, want the instance name k8s_events.N", l.GetValue())
					}
				}
			}
			for _, m := range fams["kubetrail_events_by_reason_total"].Metric {
				for _, l := range m.Label {
					if l.GetName() == "type" && l.GetValue() == "" {
						t.Errorf("an Event counted without a type: %v", m)
					}
				}
			}
			_, logText := fb.Snapshot()
			if strings.Contains(logText, "[error]") {
				t.Errorf("errors logged:\n%s", logText)
			}
			t.Logf("%s: emitted_total %v, by_reason_total %v, %d families on the exporter", f,
				familyTotal(fams["kubetrail_events_emitted_total"]), familyTotal(fams["kubetrail_events_by_reason_total"]), len(fams))
			fb.Stop()
		})
	}
}
