package k8sevents

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// The health metrics an instance serves at metrics_port (docs/metrics.md). A Go input
// of Fluent Bit can add no series to Fluent Bit's own metrics (the Go proxy passes
// records only: src/flb_plugin_proxy.c), so the library serves them itself and a
// prometheus_scrape input brings them into prometheus_exporter's endpoint.
//
// They are read from the instance's counters when scraped (a prometheus.Collector),
// so that nothing is counted twice and the hot path keeps its atomic adds.
var (
	counterStats = []struct {
		name, help string
		get        func(Stats) uint64
	}{
		{"emitted_total", "Event records Fluent Bit took", func(s Stats) uint64 { return s.Emitted }},
		{"duplicates_total", "Event versions dropped because they were already emitted (re-lists, restarts, leader changes)", func(s Stats) uint64 { return s.Duplicates }},
		{"filtered_total", "Events dropped by include/exclude", func(s Stats) uint64 { return s.Filtered }},
		{"expired_total", "Events dropped as older than kube_retention_time", func(s Stats) uint64 { return s.Expired }},
		{"pruned_total", "database rows forgotten by retention", func(s Stats) uint64 { return s.Pruned }},
		{"lists_total", "LIST passes (each may be several paginated requests)", func(s Stats) uint64 { return s.Lists }},
		{"relists_total", "LIST passes forced by 410 Gone (the watch fell too far behind)", func(s Stats) uint64 { return s.Relists }},
		{"watches_total", "WATCH requests: one per start and one per restart", func(s Stats) uint64 { return s.Watches }},
		{"bookmarks_total", "WATCH bookmarks received", func(s Stats) uint64 { return s.Bookmarks }},
		{"db_errors_total", "failed database reads or writes", func(s Stats) uint64 { return s.DBErrors }},
		{"encode_errors_total", "Events that could not be made into records", func(s Stats) uint64 { return s.EncodeErrors }},
		{"redelivered_total", "batches handed to Fluent Bit again (its ring buffer was full)", func(s Stats) uint64 { return s.Redelivered }},
	}
)

const metricPrefix = "kubetrail_events_"

// MetricNames are the names of the health metrics, for the dashboard's test.
func MetricNames() []string {
	var out []string
	for _, c := range counterStats {
		out = append(out, metricPrefix+c.name)
	}
	return append(out, metricPrefix+"api_errors_total", metricPrefix+"queue_bytes", metricPrefix+"lag_seconds", metricPrefix+"leader")
}

// apiErrorCode is the code label of a failed API request.
func apiErrorCode(err error) string {
	var st apierrors.APIStatus
	if errors.As(err, &st) && st.Status().Code != 0 {
		return strconv.Itoa(int(st.Status().Code))
	}
	return "network"
}

// collector is one instance's metrics, labelled name=<its Fluent Bit name> (as
// Fluent Bit labels its own per-plugin metrics).
type collector struct {
	in                              *Input
	counters                        []*prometheus.Desc // as counterStats
	apiErrors, queueBytes, lag, led *prometheus.Desc
}

func newCollector(in *Input, name string) *collector {
	l := prometheus.Labels{"name": name}
	c := &collector{in: in}
	for _, cs := range counterStats {
		c.counters = append(c.counters, prometheus.NewDesc(metricPrefix+cs.name, cs.help, nil, l))
	}
	c.apiErrors = prometheus.NewDesc(metricPrefix+"api_errors_total",
		"failed API requests, by HTTP status code (network: no response)", []string{"code"}, l)
	c.queueBytes = prometheus.NewDesc(metricPrefix+"queue_bytes",
		"encoded Event bytes waiting for Fluent Bit (at most buffer_max_size)", nil, l)
	c.lag = prometheus.NewDesc(metricPrefix+"lag_seconds",
		"now minus the time of the newest Event queued for Fluent Bit (grows in a quiet cluster too); absent before the first and while standing by", nil, l)
	c.led = prometheus.NewDesc(metricPrefix+"leader",
		"1 while this instance collects (the leader, or leader_election off), 0 while it stands by", nil, l)
	return c
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.counters {
		ch <- d
	}
	ch <- c.apiErrors
	ch <- c.queueBytes
	ch <- c.lag
	ch <- c.led
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	in := c.in
	s := in.Stats()
	for i, cs := range counterStats {
		ch <- prometheus.MustNewConstMetric(c.counters[i], prometheus.CounterValue, float64(cs.get(s)))
	}
	for code, n := range in.stats.apiErrorsByCode() {
		ch <- prometheus.MustNewConstMetric(c.apiErrors, prometheus.CounterValue, float64(n), code)
	}
	_, bytes := in.q.len()
	ch <- prometheus.MustNewConstMetric(c.queueBytes, prometheus.GaugeValue, float64(bytes))
	collecting := !in.cfg.LeaderElection || in.leading.Load()
	// Lag only while collecting: a standby's newest Event is its last term's, and its
	// growing age would say nothing about the collector that leads now.
	if t := in.stats.newest.Load(); t != 0 && collecting {
		lag := time.Since(time.Unix(0, t)).Seconds()
		ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, lag)
	}
	leader := 0.0
	if collecting {
		leader = 1
	}
	ch <- prometheus.MustNewConstMetric(c.led, prometheus.GaugeValue, leader)
}

// metricsServer serves the instances that share one listen address: two k8s_events
// instances in one Fluent Bit may name the same metrics_port.
type metricsServer struct {
	reg  *prometheus.Registry
	srv  *http.Server
	refs int
}

var (
	serversMu sync.Mutex
	servers   = map[string]*metricsServer{}
)

// serveMetrics registers the instance's collector with the server of addr, starting
// it if it is the first; the returned function unregisters it (and stops the server
// with the last).
func serveMetrics(addr, name string, in *Input) (func(), error) {
	serversMu.Lock()
	defer serversMu.Unlock()
	ms := servers[addr]
	if ms == nil {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("metrics_port: %w", err)
		}
		reg := prometheus.NewRegistry()
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
		ms = &metricsServer{reg: reg, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}}
		go func() { _ = ms.srv.Serve(ln) }()
		servers[addr] = ms
	}
	c := newCollector(in, name)
	if err := ms.reg.Register(c); err != nil {
		if ms.refs == 0 {
			ms.srv.Close()
			delete(servers, addr)
		}
		return nil, fmt.Errorf("metrics_port: instance %s: %w", name, err)
	}
	ms.refs++
	return func() {
		serversMu.Lock()
		defer serversMu.Unlock()
		ms.reg.Unregister(c)
		if ms.refs--; ms.refs == 0 {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			if ms.srv.Shutdown(ctx) != nil {
				ms.srv.Close() // a scrape still open after a second: cut it
			}
			delete(servers, addr)
		}
	}, nil
}
