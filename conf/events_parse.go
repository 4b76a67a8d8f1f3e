package conf

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/kubetrail/kubetrail/enrich/rules"
)

// Service-account files of a pod (also in_kubernetes_events' defaults).
const (
	ServiceAccountCA    = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
	ServiceAccountToken = "/var/run/secrets/kubernetes.io/serviceaccount/token"
	serviceAccountNS    = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
)

// EventsProperties lists every property ParseEvents reads, in the order Effective
// reports them. Names shared with Fluent Bit's in_kubernetes_events mean the same.
var EventsProperties = []Property{
	{"kube_url", "", "API server URL (empty: in-cluster, https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT)"},
	{"kube_ca_file", ServiceAccountCA, "CA certificate of the API server"},
	{"kube_token_file", ServiceAccountToken, "bearer token file, re-read as it rotates"},
	{"kubeconfig", "", "kubeconfig file, for running outside the cluster (replaces the three above)"},
	{"kube_tls_verify", "on", "verify the API server's certificate (Fluent Bit keeps tls.* for itself)"},
	{"kube_tls_vhost", "", "server name expected in the API server's certificate"},
	{"kube_events_api", EventsAPICore, "Event API to read: v1 or events.k8s.io/v1"},
	{"kube_namespace", "", "namespace to read Events from (empty: all namespaces)"},
	{"field_selector", "", "field selector applied by the API server, e.g. type=Warning"},
	{"include", "", "emit only the Events matching these rules (fields reason, type, namespace, kind, name, source)"},
	{"exclude", "", "do not emit the Events matching these rules (applied after include)"},
	{"kube_request_limit", "500", "page size of LIST requests (0: no pagination)"},
	{"kube_watch_timeout", "30m", "how long the API server keeps one WATCH open"},
	{"watch_idle_timeout", "35m", "restart a WATCH that delivered nothing for this long (0: never)"},
	{"kube_retention_time", "1h", "Events last changed longer ago are not emitted, and forgotten by the database"},
	{"emit_existing", "on", "at the very first start, emit the Events that already exist"},
	{"cluster_name", "", "add a cluster_name field with this value to every record"},
	{"db", "", "SQLite database for dedup and the checkpoint (empty: in memory, restarts repeat Events)"},
	{"db.sync", "normal", "SQLite synchronous mode: normal, full, off or extra"},
	{"leader_election", "off", "only the leader among the instances sharing the Lease collects"},
	{"leader_election_namespace", "", "namespace of the Lease (empty: the pod's namespace)"},
	{"leader_election_name", "kubetrail-k8s-events", "name of the Lease; the checkpoint ConfigMap is <name>-checkpoint"},
	{"leader_election_identity", "", "this instance's identity in the Lease (empty: $POD_NAME, else the host name)"},
	{"leader_election_lease_duration", "15s", "how long a leader keeps the Lease without renewing it"},
	{"leader_election_renew_deadline", "10s", "how long the leader retries renewing before it steps down"},
	{"leader_election_retry_period", "2s", "interval between Lease renewals and acquisition attempts"},
	{"checkpoint_interval", "30s", "with leader_election: how often the leader stores its checkpoint in the ConfigMap"},
	{"buffer_max_size", "8m", "most Event bytes waiting for Fluent Bit, and most handed over per second; the watch pauses while full"},
	{"metrics_port", "0", "serve this instance's health metrics (Prometheus text) on this port at /metrics (0: off); see metrics.md"},
	{"metrics_listen", "127.0.0.1", "address metrics_port listens on (0.0.0.0: every interface)"},
}

const eventsPlugin = "k8s_events"

func eventsValue(g Getter, name string) string { return propValue(g, EventsProperties, name) }

// ParseEvents reads the k8s_events properties through g, applies defaults and
// validates. Defaults that depend on the environment (the pod's namespace and name)
// are read here, so that Effective shows what is used.
func ParseEvents(g Getter) (Events, error) {
	var e Events
	var err error
	fail := func(name string, err error) (Events, error) { return Events{}, propError(eventsPlugin, name, err) }

	if e.KubeURL = eventsValue(g, "kube_url"); e.KubeURL != "" {
		if err := checkURL(e.KubeURL); err != nil {
			return fail("kube_url", err)
		}
	}
	e.KubeCAFile = eventsValue(g, "kube_ca_file")
	e.KubeTokenFile = eventsValue(g, "kube_token_file")
	e.Kubeconfig = eventsValue(g, "kubeconfig")
	if e.TLSVerify, err = ParseBool(eventsValue(g, "kube_tls_verify")); err != nil {
		return fail("kube_tls_verify", err)
	}
	e.TLSVhost = eventsValue(g, "kube_tls_vhost")

	switch e.API = eventsValue(g, "kube_events_api"); e.API {
	case EventsAPICore, EventsAPIEvents:
	case "core/v1":
		e.API = EventsAPICore
	default:
		return fail("kube_events_api", fmt.Errorf("unknown API %q: want %s or %s", e.API, EventsAPICore, EventsAPIEvents))
	}
	e.Namespace = eventsValue(g, "kube_namespace")
	if strings.ContainsAny(e.Namespace, ", \t") {
		return fail("kube_namespace", fmt.Errorf("%q: one namespace only; for several, read all and use include namespace=a,b", e.Namespace))
	}
	e.FieldSelector = eventsValue(g, "field_selector")
	if e.Include, err = rules.Parse(eventsValue(g, "include"), EventRuleSchema); err != nil {
		return fail("include", err)
	}
	if e.Exclude, err = rules.Parse(eventsValue(g, "exclude"), EventRuleSchema); err != nil {
		return fail("exclude", err)
	}
	v := eventsValue(g, "kube_request_limit")
	if e.RequestLimit, err = strconv.ParseInt(v, 10, 64); err != nil || e.RequestLimit < 0 {
		return fail("kube_request_limit", fmt.Errorf("invalid %q: want a number of Events per page, 0 for no pagination", v))
	}

	durations := []struct {
		name    string
		dst     *time.Duration
		zeroOK  bool // 0 means "never"
		atLeast time.Duration
	}{
		{"kube_watch_timeout", &e.WatchTimeout, false, time.Second},
		{"watch_idle_timeout", &e.WatchIdleTimeout, true, time.Second},
		{"kube_retention_time", &e.RetentionTime, false, time.Minute},
		{"leader_election_lease_duration", &e.LeaseDuration, false, time.Second},
		{"leader_election_renew_deadline", &e.RenewDeadline, false, time.Second},
		{"leader_election_retry_period", &e.RetryPeriod, false, 100 * time.Millisecond},
		{"checkpoint_interval", &e.CheckpointInterval, false, time.Second},
	}
	for _, d := range durations {
		v := eventsValue(g, d.name)
		if *d.dst, err = ParseTime(v); err != nil {
			return fail(d.name, err)
		}
		if *d.dst == 0 && d.zeroOK {
			continue
		}
		if *d.dst < d.atLeast {
			return fail(d.name, fmt.Errorf("%q is too short: at least %s", v, d.atLeast))
		}
	}
	if e.WatchTimeout > math.MaxInt32*time.Second {
		return fail("kube_watch_timeout", errors.New("too long"))
	}
	if e.EmitExisting, err = ParseBool(eventsValue(g, "emit_existing")); err != nil {
		return fail("emit_existing", err)
	}
	e.ClusterName = eventsValue(g, "cluster_name")

	e.DB = eventsValue(g, "db")
	switch e.DBSync = strings.ToLower(eventsValue(g, "db.sync")); e.DBSync {
	case "normal", "full", "off", "extra":
	default:
		return fail("db.sync", fmt.Errorf("invalid %q: want normal, full, off or extra", e.DBSync))
	}

	if e.LeaderElection, err = ParseBool(eventsValue(g, "leader_election")); err != nil {
		return fail("leader_election", err)
	}
	if e.LeaseName = eventsValue(g, "leader_election_name"); e.LeaseName == "" {
		return fail("leader_election_name", errors.New("must not be empty"))
	}
	e.LeaseNamespace = eventsValue(g, "leader_election_namespace")
	e.Identity = eventsValue(g, "leader_election_identity")
	if e.LeaderElection {
		if e.LeaseNamespace == "" {
			if e.LeaseNamespace = podNamespace(); e.LeaseNamespace == "" {
				return fail("leader_election_namespace", errors.New("not set, and not running in a pod (no $POD_NAMESPACE, no "+serviceAccountNS+"): set it"))
			}
		}
		if e.Identity == "" {
			e.Identity = defaultIdentity()
		}
		// client-go's leaderelection.NewLeaderElector rules, checked here to fail at start.
		if e.LeaseDuration <= e.RenewDeadline || e.RenewDeadline <= time.Duration(1.2*float64(e.RetryPeriod)) {
			return fail("leader_election_lease_duration", fmt.Errorf("need lease_duration (%s) > renew_deadline (%s) > 1.2 x retry_period (%s)", e.LeaseDuration, e.RenewDeadline, e.RetryPeriod))
		}
	}
	v = eventsValue(g, "buffer_max_size")
	if e.BufferMaxSize, err = ParseSize(v); err != nil {
		return fail("buffer_max_size", fmt.Errorf("invalid size %q: %w", v, err))
	}
	if e.BufferMaxSize < 64<<10 {
		return fail("buffer_max_size", fmt.Errorf("%q is too small: at least 64k (one Event can be that large)", v))
	}
	v = eventsValue(g, "metrics_port")
	if e.MetricsPort, err = strconv.Atoi(v); err != nil || e.MetricsPort < 0 || e.MetricsPort > 65535 {
		return fail("metrics_port", fmt.Errorf("%q: want a TCP port, 1-65535, or 0 for off", v))
	}
	e.MetricsListen = eventsValue(g, "metrics_listen")
	if net.ParseIP(e.MetricsListen) == nil {
		return fail("metrics_listen", fmt.Errorf("%q: want an IP address (127.0.0.1, 0.0.0.0, ::)", e.MetricsListen))
	}
	return e, nil
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%q: want https://host[:port]", s)
	}
	return nil
}

// podNamespace is the namespace of the pod this runs in: $POD_NAMESPACE (the downward
// API), else the service account's namespace file; "" outside a pod.
func podNamespace() string {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	b, err := os.ReadFile(serviceAccountNS)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// defaultIdentity names this instance in the Lease: $POD_NAME (unique per DaemonSet
// pod), else the host name.
func defaultIdentity() string {
	if n := os.Getenv("POD_NAME"); n != "" {
		return n
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "kubetrail-" + strconv.Itoa(os.Getpid())
}

// ParseTime reads a duration as Fluent Bit's FLB_CONFIG_MAP_TIME does: a number of
// seconds, or a number with the unit s, m, h or d. "0", "off" and "false" give 0.
func ParseTime(s string) (time.Duration, error) {
	switch strings.ToLower(s) {
	case "off", "false":
		return 0, nil
	case "":
		return 0, errors.New("empty duration")
	}
	unit := time.Second
	num := s
	switch s[len(s)-1] {
	case 's', 'S':
		num = s[:len(s)-1]
	case 'm', 'M':
		unit, num = time.Minute, s[:len(s)-1]
	case 'h', 'H':
		unit, num = time.Hour, s[:len(s)-1]
	case 'd', 'D':
		unit, num = 24*time.Hour, s[:len(s)-1]
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) || strings.ContainsAny(num, "eE+-xXpP_") {
		return 0, fmt.Errorf("invalid duration %q: want seconds, or a number with s, m, h or d (e.g. 30s, 10m, 1h)", s)
	}
	d := f * float64(unit)
	if d > math.MaxInt64/2 {
		return 0, fmt.Errorf("duration %q is too long", s)
	}
	return time.Duration(math.Round(d)), nil
}

// FormatTime writes a duration as ParseTime reads it, with the largest exact unit.
func FormatTime(d time.Duration) string {
	switch {
	case d == 0:
		return "0"
	case d%(24*time.Hour) == 0:
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	}
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"
}

// Effective returns the settings as "name=value" pairs in the order of
// EventsProperties, for the start-up log line. Nothing secret is in them: the token is
// named by its file, never read here.
func (e Events) Effective() []string {
	out := make([]string, 0, len(EventsProperties))
	for _, p := range EventsProperties {
		var v string
		switch p.Name {
		case "kube_url":
			v = e.KubeURL
		case "kube_ca_file":
			v = e.KubeCAFile
		case "kube_token_file":
			v = e.KubeTokenFile
		case "kubeconfig":
			v = e.Kubeconfig
		case "kube_tls_verify":
			v = FormatBool(e.TLSVerify)
		case "kube_tls_vhost":
			v = e.TLSVhost
		case "kube_events_api":
			v = e.API
		case "kube_namespace":
			v = e.Namespace
		case "field_selector":
			v = e.FieldSelector
		case "include":
			v = e.Include.String()
		case "exclude":
			v = e.Exclude.String()
		case "kube_request_limit":
			v = strconv.FormatInt(e.RequestLimit, 10)
		case "kube_watch_timeout":
			v = FormatTime(e.WatchTimeout)
		case "watch_idle_timeout":
			v = FormatTime(e.WatchIdleTimeout)
		case "kube_retention_time":
			v = FormatTime(e.RetentionTime)
		case "emit_existing":
			v = FormatBool(e.EmitExisting)
		case "cluster_name":
			v = e.ClusterName
		case "db":
			v = e.DB
		case "db.sync":
			v = e.DBSync
		case "leader_election":
			v = FormatBool(e.LeaderElection)
		case "leader_election_namespace":
			v = e.LeaseNamespace
		case "leader_election_name":
			v = e.LeaseName
		case "leader_election_identity":
			v = e.Identity
		case "leader_election_lease_duration":
			v = FormatTime(e.LeaseDuration)
		case "leader_election_renew_deadline":
			v = FormatTime(e.RenewDeadline)
		case "leader_election_retry_period":
			v = FormatTime(e.RetryPeriod)
		case "checkpoint_interval":
			v = FormatTime(e.CheckpointInterval)
		case "buffer_max_size":
			v = FormatSize(e.BufferMaxSize)
		case "metrics_port":
			v = strconv.Itoa(e.MetricsPort)
		case "metrics_listen":
			v = e.MetricsListen
		default:
			panic("conf: Effective misses property " + p.Name)
		}
		out = append(out, p.Name+"="+quote(v))
	}
	return out
}
