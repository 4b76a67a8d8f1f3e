package k8sevents

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubetrail/kubetrail/test/testcluster"
)

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// scrape reads the metrics endpoint as Prometheus would.
func scrape(t testing.TB, port int) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return fams
}

// value is the sample of family name whose labels include want.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		got := map[string]string{}
		for _, l := range m.Label {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		}
	}
	return 0, false
}

// TestHealthMetrics: the endpoint serves what the instance counted, under its
// Fluent Bit name, and API errors by code; a second instance on the same port
// gets its own series; closing the last one frees the port.
func TestHealthMetrics(t *testing.T) {
	e := newEnv(t, testcluster.Options{})
	const n = 12
	for i := 0; i < n; i++ {
		e.createEvent(t, fmt.Sprintf("metrics-%02d", i), "Created", "Normal")
	}
	port := freePort(t)
	props := map[string]string{"metrics_port": strconv.Itoa(port), "kube_request_limit": "5"}
	log := &testLogger{t: t}
	in, err := New(e.config(t, props), log, WithName("k8s_events.7"))
	if err != nil {
		t.Fatal(err)
	}
	h := startHost(t, in, 20*time.Millisecond)
	h.waitFor("the Events", 30*time.Second, func(r []record) bool { return len(names(r, "metrics-")) == n })
	st := waitStats(t, in, "commits", 10*time.Second, func(s Stats) bool { return s.Emitted >= n })

	fams := scrape(t, port)
	me := map[string]string{"name": "k8s_events.7"}
	for _, c := range []struct {
		metric string
		want   float64
	}{
		{"kubetrail_events_emitted_total", float64(st.Emitted)},
		{"kubetrail_events_lists_total", 1},
		{"kubetrail_events_relists_total", 0},
		{"kubetrail_events_duplicates_total", 0},
		{"kubetrail_events_leader", 1}, // no leader election: it collects
	} {
		if got, ok := value(fams, c.metric, me); !ok || got != c.want {
			t.Errorf("%s = %v (present %v), want %v", c.metric, got, ok, c.want)
		}
	}
	if got, _ := value(fams, "kubetrail_events_watches_total", me); got < 1 {
		t.Errorf("kubetrail_events_watches_total = %v, want at least 1", got)
	}
	if lag, ok := value(fams, "kubetrail_events_lag_seconds", me); !ok || lag < 0 || lag > 120 {
		t.Errorf("kubetrail_events_lag_seconds = %v (present %v): want the age of an Event made just now", lag, ok)
	}
	if _, ok := value(fams, "kubetrail_events_queue_bytes", me); !ok {
		t.Error("no kubetrail_events_queue_bytes")
	}
	for _, name := range MetricNames() {
		if name != "kubetrail_events_api_errors_total" && fams[name] == nil {
			t.Errorf("%s is in MetricNames but not served", name)
		}
	}

	// A second instance, rejected by the API server (a token it does not know), on the
	// same port: its own series, and its 401s counted by code.
	bad := e.config(t, props)
	tok := e.dir + "/bad-token"
	if err := os.WriteFile(tok, []byte("not-a-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad.KubeTokenFile, bad.DB = tok, ""
	in2, err := New(bad, &testLogger{t: t}, WithName("k8s_events.8"))
	if err != nil {
		t.Fatal(err)
	}
	waitStats(t, in2, "an API error", 30*time.Second, func(s Stats) bool { return s.APIErrors > 0 })
	fams = scrape(t, port)
	if got, ok := value(fams, "kubetrail_events_api_errors_total", map[string]string{"name": "k8s_events.8", "code": "401"}); !ok || got < 1 {
		t.Errorf("api_errors_total{code=401} of the rejected instance = %v (present %v)", got, ok)
	}
	if got, _ := value(fams, "kubetrail_events_emitted_total", me); got != float64(st.Emitted) {
		t.Errorf("the first instance's emitted_total = %v after the second started, want %d", got, st.Emitted)
	}
	in2.Close()
	if _, ok := value(scrape(t, port), "kubetrail_events_leader", map[string]string{"name": "k8s_events.8"}); ok {
		t.Error("a closed instance's series are still served")
	}
	h.close()
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
		c.Close()
		t.Error("the metrics port is still open after the last instance closed")
	}
}

// TestMetricsPortInUse: a port that cannot be had fails the start with a message
// naming the property.
func TestMetricsPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	addr := l.Addr().String()
	_, err = serveMetrics(addr, "k8s_events.0", &Input{q: newQueue(1 << 20)})
	if err == nil {
		t.Fatal("serving on a port in use succeeded")
	}
	if want := "metrics_port: listen tcp " + addr; len(err.Error()) < len(want) || err.Error()[:len(want)] != want {
		t.Errorf("error %q, want it to start %q", err, want)
	}
}

func TestAPIErrorCode(t *testing.T) {
	gr := schema.GroupResource{Resource: "events"}
	for _, c := range []struct {
		err  error
		want string
	}{
		{apierrors.NewForbidden(gr, "", errors.New("no")), "403"},
		{apierrors.NewUnauthorized("no"), "401"},
		{apierrors.NewResourceExpired("too old"), "410"},
		{apierrors.NewTooManyRequests("slow down", 1), "429"},
		{fmt.Errorf("list: %w", apierrors.NewInternalError(errors.New("etcd"))), "500"},
		{&net.OpError{Op: "dial", Err: errors.New("connection refused")}, "network"},
	} {
		if got := apiErrorCode(c.err); got != c.want {
			t.Errorf("apiErrorCode(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}
