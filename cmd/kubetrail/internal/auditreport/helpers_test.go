package auditreport

import (
	"bufio"
	"bytes"
	"encoding/json"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kubetrail/kubetrail/enrich"
	"github.com/kubetrail/kubetrail/test/auditgen"
	"github.com/kubetrail/kubetrail/test/repo"
)

// feed enriches every line of data and hands each record's Summary to the aggregates;
// it returns the lines enrich took (one event each), for the independent computations.
func feed(t testing.TB, data []byte, aggs ...Aggregate) [][]byte {
	t.Helper()
	e, err := enrich.New(enrich.Options{Summary: true})
	if err != nil {
		t.Fatal(err)
	}
	w := e.NewWorker()
	var taken [][]byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		res := w.Text(line)
		if res.Err != nil || len(res.Records) != 1 || res.Records[0].Err != nil {
			continue
		}
		for _, a := range aggs {
			a.Add(&res.Records[0].Summary)
		}
		taken = append(taken, slices.Clone(line))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return taken
}

func generated(t testing.TB, opts auditgen.Options) ([]byte, auditgen.Stats) {
	t.Helper()
	var buf bytes.Buffer
	st, err := auditgen.Write(&buf, opts)
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), st
}

func corpus(t testing.TB) []byte {
	t.Helper()
	dir := repo.SharedAudit(t)
	files, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus in %s: %v", dir, err)
	}
	var all []byte
	for _, f := range files {
		if strings.HasSuffix(f, ".md") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all = append(append(all, b...), '\n')
	}
	return all
}

// ev is an audit event decoded with encoding/json: the independent reading of a line.
type ev struct {
	Stage, RequestURI, Verb string
	User                    struct {
		Username string
		Groups   []string
	}
	SourceIPs                                           []string
	UserAgent                                           string
	ObjectRef                                           *struct{ Resource, Namespace, APIGroup, Subresource string }
	ResponseStatus                                      *struct{ Code int }
	RequestReceivedTimestamp, StageTimestamp, Timestamp *time.Time
}

func decode(t testing.TB, line []byte) ev {
	t.Helper()
	var e ev
	if err := json.Unmarshal(line, &e); err != nil {
		t.Fatalf("%v: %s", err, line)
	}
	return e
}

func (e ev) code() int {
	if e.ResponseStatus == nil {
		return 0
	}
	return e.ResponseStatus.Code
}

func (e ev) resource() string {
	if e.ObjectRef != nil && e.ObjectRef.Resource != "" {
		k := e.ObjectRef.Resource
		if e.ObjectRef.APIGroup != "" {
			k += "." + e.ObjectRef.APIGroup
		}
		if e.ObjectRef.Subresource != "" {
			k += "/" + e.ObjectRef.Subresource
		}
		return k
	}
	if p, _, _ := strings.Cut(e.RequestURI, "?"); p != "" {
		return p
	}
	return "(none)"
}

// longRunning restates the apiserver's long-running check from the event's fields.
func (e ev) longRunning() bool {
	u, _ := url.Parse(e.RequestURI)
	q := url.Values{}
	if u != nil {
		q = u.Query()
	}
	sub := ""
	if e.ObjectRef != nil {
		sub = e.ObjectRef.Subresource
	}
	switch sub {
	case "exec", "attach", "portforward", "proxy":
		return true
	case "log":
		if q.Get("follow") == "true" || q.Get("follow") == "1" {
			return true
		}
	}
	return e.Verb == "watch" || q.Get("watch") == "true" || q.Get("watch") == "1" ||
		(e.Stage == "ResponseStarted" && e.code() < 400) || e.code() == 101
}

// durationMs is stageTimestamp - requestReceivedTimestamp; ok false without both.
func (e ev) durationMs() (float64, bool) {
	if e.RequestReceivedTimestamp == nil || e.StageTimestamp == nil {
		return 0, false
	}
	d := e.StageTimestamp.Sub(*e.RequestReceivedTimestamp)
	return float64(d) / 1e6, d >= 0
}

func (e ev) user() string {
	if e.User.Username == "" {
		return "(unauthenticated)"
	}
	return e.User.Username
}

// exactQuantile is the value of rank floor(q*(n-1)) of the sorted values, the rank
// DDSketch's guarantee is stated for.
func exactQuantile(sorted []float64, q float64) float64 {
	return sorted[int(math.Floor(q*float64(len(sorted)-1)))]
}

// within checks got against the exact value at the sketch's relative accuracy (and a
// nanosecond of float noise).
func within(t *testing.T, what string, got, exact float64) {
	t.Helper()
	if math.Abs(got-exact) > RelativeAccuracy*exact+1e-6 {
		t.Errorf("%s: %.6f, exact %.6f (more than %g%% off)", what, got, exact, RelativeAccuracy*100)
	}
}

// groupedDurations collects, per key, the durations that belong in percentiles and
// the count of long-running requests.
type groupedDurations struct {
	count map[string]int
	long  map[string]int
	durs  map[string][]float64
	max   map[string]float64
}

func newGrouped() *groupedDurations {
	return &groupedDurations{map[string]int{}, map[string]int{}, map[string][]float64{}, map[string]float64{}}
}

func (g *groupedDurations) add(key string, e ev) {
	g.count[key]++
	if e.longRunning() {
		g.long[key]++
		return
	}
	if d, ok := e.durationMs(); ok {
		g.durs[key] = append(g.durs[key], d)
		g.max[key] = max(g.max[key], d)
	}
}
