package conf

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kubetrail/kubetrail/enrich/rules"
)

func mustEventRules(t *testing.T, s string) rules.Set {
	t.Helper()
	rs, err := rules.Parse(s, EventRuleSchema)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// podEnv sets the downward-API variables ParseEvents may read ("" reads as unset).
func podEnv(t *testing.T, namespace, name string) {
	t.Helper()
	t.Setenv("POD_NAMESPACE", namespace)
	t.Setenv("POD_NAME", name)
}

// noServiceAccount skips tests that need podNamespace to find nothing.
func noServiceAccount(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(serviceAccountNS); err == nil {
		t.Skipf("%s exists: running in a pod", serviceAccountNS)
	}
}

// eventsDefaults is what ParseEvents gives for no properties.
func eventsDefaults() Events {
	return Events{
		KubeCAFile:         ServiceAccountCA,
		KubeTokenFile:      ServiceAccountToken,
		TLSVerify:          true,
		API:                EventsAPICore,
		RequestLimit:       500,
		WatchTimeout:       30 * time.Minute,
		WatchIdleTimeout:   35 * time.Minute,
		RetentionTime:      time.Hour,
		EmitExisting:       true,
		DBSync:             "normal",
		LeaseName:          "kubetrail-k8s-events",
		LeaseDuration:      15 * time.Second,
		RenewDeadline:      10 * time.Second,
		RetryPeriod:        2 * time.Second,
		CheckpointInterval: 30 * time.Second,
		BufferMaxSize:      8 << 20,
		MetricsListen:      "127.0.0.1",
	}
}

func TestParseEventsDefaults(t *testing.T) {
	// Without leader election the pod's namespace and name are not read.
	podEnv(t, "pod-ns", "pod-0")
	got, err := ParseEvents(MapGetter{})
	if err != nil {
		t.Fatal(err)
	}
	want := eventsDefaults()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", got, want)
	}
	if !got.Include.Empty() || !got.Exclude.Empty() {
		t.Errorf("default include/exclude not empty: %q, %q", got.Include, got.Exclude)
	}
	// The documented defaults are what ParseEvents applies.
	g := MapGetter{}
	for _, p := range EventsProperties {
		if p.Default != "" {
			g[p.Name] = p.Default
		}
	}
	if again, err := ParseEvents(g); err != nil || !reflect.DeepEqual(again, want) {
		t.Errorf("explicit defaults: %+v, %v", again, err)
	}

	// With leader election: the namespace and identity come from the downward API.
	on, err := ParseEvents(MapGetter{"leader_election": "on"})
	if err != nil {
		t.Fatal(err)
	}
	want.LeaderElection, want.LeaseNamespace, want.Identity = true, "pod-ns", "pod-0"
	if !reflect.DeepEqual(on, want) {
		t.Errorf("leader_election defaults:\n got %+v\nwant %+v", on, want)
	}
	// Without $POD_NAME, the identity is the host name.
	podEnv(t, "pod-ns", "")
	host, err := os.Hostname()
	if err != nil || host == "" {
		t.Skipf("no host name: %v", err)
	}
	if e, err := ParseEvents(MapGetter{"leader_election": "on"}); err != nil || e.Identity != host {
		t.Errorf("identity without POD_NAME = %q, %v; want the host name %q", e.Identity, err, host)
	}
}

func TestParseEventsAllSet(t *testing.T) {
	podEnv(t, "pod-ns", "pod-0") // overridden by the explicit properties
	g := MapGetter{
		"kube_url":                       " https://10.0.0.1:6443 ",
		"kube_ca_file":                   "/etc/k8s/ca.pem",
		"kube_token_file":                "/etc/k8s/token",
		"kubeconfig":                     " /home/me/.kube/config",
		"kube_tls_verify":                "Off",
		"kube_tls_vhost":                 "kubernetes",
		"kube_events_api":                "events.k8s.io/v1",
		"kube_namespace":                 " kube-system ",
		"field_selector":                 "type=Warning,involvedObject.kind=Pod",
		"include":                        " type=Warning  kind=Pod,Node ; reason=OOM* ",
		"exclude":                        "namespace=kube-*;source=!kubelet name=web-* ",
		"kube_request_limit":             "0",
		"kube_watch_timeout":             "1h",
		"watch_idle_timeout":             "0",
		"kube_retention_time":            "2d",
		"emit_existing":                  "no",
		"cluster_name":                   "prod-eu",
		"db":                             "/var/lib/kubetrail/events.db",
		"db.sync":                        "FULL",
		"leader_election":                "YES",
		"leader_election_namespace":      "logging",
		"leader_election_name":           "events-lease",
		"leader_election_identity":       "node-a",
		"leader_election_lease_duration": "1m",
		"leader_election_renew_deadline": "40",
		"leader_election_retry_period":   "0.5s",
		"checkpoint_interval":            "1.5m",
		"buffer_max_size":                "64MB",
		"metrics_port":                   " 2022",
		"metrics_listen":                 "0.0.0.0",
	}
	if len(g) != len(EventsProperties) {
		t.Fatalf("the test sets %d properties, EventsProperties has %d", len(g), len(EventsProperties))
	}
	got, err := ParseEvents(g)
	if err != nil {
		t.Fatal(err)
	}
	want := Events{
		KubeURL:            "https://10.0.0.1:6443",
		KubeCAFile:         "/etc/k8s/ca.pem",
		KubeTokenFile:      "/etc/k8s/token",
		Kubeconfig:         "/home/me/.kube/config",
		TLSVerify:          false,
		TLSVhost:           "kubernetes",
		API:                EventsAPIEvents,
		Namespace:          "kube-system",
		FieldSelector:      "type=Warning,involvedObject.kind=Pod",
		Include:            mustEventRules(t, "type=Warning kind=Pod,Node; reason=OOM*"),
		Exclude:            mustEventRules(t, "namespace=kube-*; source=!kubelet name=web-*"),
		RequestLimit:       0,
		WatchTimeout:       time.Hour,
		WatchIdleTimeout:   0,
		RetentionTime:      48 * time.Hour,
		EmitExisting:       false,
		ClusterName:        "prod-eu",
		DB:                 "/var/lib/kubetrail/events.db",
		DBSync:             "full",
		LeaderElection:     true,
		LeaseNamespace:     "logging",
		LeaseName:          "events-lease",
		Identity:           "node-a",
		LeaseDuration:      time.Minute,
		RenewDeadline:      40 * time.Second,
		RetryPeriod:        500 * time.Millisecond,
		CheckpointInterval: 90 * time.Second,
		BufferMaxSize:      64 << 20,
		MetricsPort:        2022,
		MetricsListen:      "0.0.0.0",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("all set:\n got %+v\nwant %+v", got, want)
	}
}

func TestParseEventsBools(t *testing.T) {
	bools := []struct {
		name string
		get  func(Events) bool
	}{
		{"kube_tls_verify", func(e Events) bool { return e.TLSVerify }},
		{"emit_existing", func(e Events) bool { return e.EmitExisting }},
		{"leader_election", func(e Events) bool { return e.LeaderElection }},
	}
	podEnv(t, "pod-ns", "pod-0")
	for _, b := range bools {
		for _, v := range []string{"on", "ON", "true", "True", "yes", "Yes", "1", " on "} {
			e, err := ParseEvents(MapGetter{b.name: v})
			if err != nil || !b.get(e) {
				t.Errorf("%s=%q: %v, %v", b.name, v, b.get(e), err)
			}
		}
		for _, v := range []string{"off", "OFF", "false", "FALSE", "no", "No", "0"} {
			e, err := ParseEvents(MapGetter{b.name: v})
			if err != nil || b.get(e) {
				t.Errorf("%s=%q: %v, %v", b.name, v, b.get(e), err)
			}
		}
	}
}

func TestParseTime(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"0", 0, true},
		{"0s", 0, true},
		{"0m", 0, true},
		{"off", 0, true},
		{"OFF", 0, true},
		{"false", 0, true},
		{"30", 30 * time.Second, true},
		{"30s", 30 * time.Second, true},
		{"30S", 30 * time.Second, true},
		{"10m", 10 * time.Minute, true},
		{"10M", 10 * time.Minute, true},
		{"2h", 2 * time.Hour, true},
		{"2H", 2 * time.Hour, true},
		{"1d", 24 * time.Hour, true},
		{"7D", 7 * 24 * time.Hour, true},
		{"1.5m", 90 * time.Second, true},
		{"0.5", 500 * time.Millisecond, true},
		{"0.5s", 500 * time.Millisecond, true},
		{".5h", 30 * time.Minute, true},
		{"1.25d", 30 * time.Hour, true},
		{"007", 7 * time.Second, true},
		{"", 0, false},
		{"-1", 0, false},
		{"-1s", 0, false},
		{"+5", 0, false},
		{"10x", 0, false},
		{"1e3", 0, false},
		{"1E3s", 0, false},
		{"abc", 0, false},
		{"s", 0, false},
		{"m", 0, false},
		{"1ms", 0, false},
		{"1w", 0, false},
		{"1 s", 0, false},
		{" 5", 0, false},
		{"1_000", 0, false},
		{"0x10", 0, false},
		{"0x1p4", 0, false},
		{"inf", 0, false},
		{"Infinity", 0, false},
		{"NaN", 0, false},
		{"on", 0, false},
		{"true", 0, false},
		{"1.5.5", 0, false},
		{"99999999999d", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseTime(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseTime(%q) = %v, %v; want %v, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}

	formats := []struct {
		d    time.Duration
		want string
	}{
		{0, "0"},
		{time.Second, "1s"},
		{30 * time.Second, "30s"},
		{90 * time.Second, "90s"},
		{500 * time.Millisecond, "0.5s"},
		{time.Minute, "1m"},
		{10 * time.Minute, "10m"},
		{time.Hour, "1h"},
		{36 * time.Hour, "36h"},
		{24 * time.Hour, "1d"},
		{48 * time.Hour, "2d"},
	}
	for _, f := range formats {
		if got := FormatTime(f.d); got != f.want {
			t.Errorf("FormatTime(%v) = %q, want %q", f.d, got, f.want)
		}
	}
	for _, d := range []time.Duration{
		0, time.Nanosecond, 100 * time.Millisecond, 1500 * time.Millisecond, time.Second, 59 * time.Second,
		61 * time.Second, 90 * time.Minute, 25 * time.Hour, 24 * time.Hour, 365 * 24 * time.Hour,
		30*time.Minute + 250*time.Millisecond, 123456789,
	} {
		s := FormatTime(d)
		if back, err := ParseTime(s); err != nil || back != d {
			t.Errorf("FormatTime(%v) = %q, parses back as %v, %v", d, s, back, err)
		}
	}
}

// TestParseTimeExact: a decimal duration is the duration it reads as, to the
// nanosecond, and FormatTime round-trips whatever ParseTime gives.
func TestParseTimeExact(t *testing.T) {
	d, err := ParseTime("1.001s")
	if err != nil {
		t.Fatal(err)
	}
	if d != 1001*time.Millisecond {
		t.Errorf(`ParseTime("1.001s") = %v`, d)
	}
	for _, d := range []time.Duration{69534598140041, 68156239763083, 134190775666788, 1000999999} {
		s := FormatTime(d)
		if back, err := ParseTime(s); err != nil || back != d {
			t.Errorf("FormatTime(%d) = %q, parses back as %d, %v", d, s, back, err)
		}
	}
}

func TestParseEventsAPI(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"v1", EventsAPICore},
		{"core/v1", EventsAPICore},
		{" v1 ", EventsAPICore},
		{"events.k8s.io/v1", EventsAPIEvents},
	} {
		e, err := ParseEvents(MapGetter{"kube_events_api": tt.in})
		if err != nil || e.API != tt.want {
			t.Errorf("kube_events_api=%q: %q, %v; want %q", tt.in, e.API, err, tt.want)
		}
	}
}

func TestParseEventsRules(t *testing.T) {
	// Each field of the schema reaches the value at its own index.
	for i, f := range EventRuleSchema {
		for _, prop := range []string{"include", "exclude"} {
			e, err := ParseEvents(MapGetter{prop: f.Name + "=x*,!xz"})
			if err != nil {
				t.Errorf("%s with field %q: %v", prop, f.Name, err)
				continue
			}
			set := e.Include
			if prop == "exclude" {
				set = e.Exclude
			}
			for j := range EventRuleSchema {
				values := make([]string, len(EventRuleSchema))
				values[j] = "xy"
				if got := set.Match(values, nil); got != (i == j) {
					t.Errorf("%s %s=x*: value of field %q matches: %v", prop, f.Name, EventRuleSchema[j].Name, got)
				}
			}
		}
	}
	e, err := ParseEvents(MapGetter{
		"include": "reason=BackOff,Failed* type=Warning namespace=prod-* kind=Pod name=web-* source=kubelet",
		"exclude": "type=Normal ;;reason=Pulled,Pulling",
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := e.Include.String(); got != "reason=BackOff,Failed* type=Warning namespace=prod-* kind=Pod name=web-* source=kubelet" {
		t.Errorf("include = %q", got)
	}
	if got := e.Exclude.String(); got != "type=Normal; reason=Pulled,Pulling" {
		t.Errorf("exclude = %q", got)
	}
	values := []string{EventRuleReason: "FailedMount", EventRuleType: "Warning", EventRuleNamespace: "prod-a",
		EventRuleKind: "Pod", EventRuleName: "web-1", EventRuleSource: "kubelet"}
	if !e.Include.Match(values, nil) {
		t.Errorf("include does not match %q", values)
	}
	values[EventRuleKind] = "Node"
	if e.Include.Match(values, nil) {
		t.Errorf("include matches %q", values)
	}
}

func TestParseEventsLeaderElection(t *testing.T) {
	noServiceAccount(t)
	podEnv(t, "", "")
	// No namespace anywhere: leader election cannot work.
	_, err := ParseEvents(MapGetter{"leader_election": "on"})
	wantErr := `k8s_events: property "leader_election_namespace": not set, and not running in a pod`
	if err == nil || !strings.HasPrefix(err.Error(), wantErr) {
		t.Errorf("leader_election without a namespace: %v, want %q", err, wantErr)
	}
	// Off, nothing is needed, and nothing is checked.
	off := MapGetter{"leader_election": "off", "leader_election_lease_duration": "5s", "leader_election_renew_deadline": "10s"}
	if e, err := ParseEvents(off); err != nil || e.LeaseNamespace != "" || e.Identity != "" {
		t.Errorf("leader_election off: %+v, %v", e, err)
	}
	// An explicit namespace is enough.
	e, err := ParseEvents(MapGetter{"leader_election": "on", "leader_election_namespace": "logging"})
	if err != nil || e.LeaseNamespace != "logging" || e.Identity == "" {
		t.Errorf("leader_election_namespace=logging: %+v, %v", e, err)
	}

	podEnv(t, "pod-ns", "pod-0")
	for _, tt := range []struct {
		lease, renew, retry string
		ok                  bool
	}{
		{"15s", "10s", "2s", true},
		{"3s", "2s", "1s", true},
		{"1m", "59s", "49s", true},
		{"10s", "10s", "2s", false},
		{"5s", "10s", "2s", false},
		{"15s", "2s", "2s", false},
		{"15s", "2s", "3s", false},
		{"15s", "10s", "10s", false},
	} {
		_, err := ParseEvents(MapGetter{
			"leader_election":                "on",
			"leader_election_lease_duration": tt.lease,
			"leader_election_renew_deadline": tt.renew,
			"leader_election_retry_period":   tt.retry,
		})
		if (err == nil) != tt.ok {
			t.Errorf("lease %s, renew %s, retry %s: %v, want ok %v", tt.lease, tt.renew, tt.retry, err, tt.ok)
			continue
		}
		if err != nil && !strings.HasPrefix(err.Error(), `k8s_events: property "leader_election_lease_duration": need lease_duration (`) {
			t.Errorf("lease %s, renew %s, retry %s: error %q", tt.lease, tt.renew, tt.retry, err)
		}
	}
}

// TestParseEventsLeaderJitter: client-go's NewLeaderElector also wants
// renew_deadline > 1.2 * retry_period (leaderelection.JitterFactor); a configuration
// it refuses must be refused here, with the property named, not at run time.
func TestParseEventsLeaderJitter(t *testing.T) {
	podEnv(t, "pod-ns", "pod-0")
	_, err := ParseEvents(MapGetter{
		"leader_election":                "on",
		"leader_election_renew_deadline": "10s",
		"leader_election_retry_period":   "9s",
	})
	if err == nil {
		t.Fatal("renew_deadline 10s <= 1.2 x retry_period 9s accepted: client-go refuses it at run time")
	}
	if !strings.HasPrefix(err.Error(), `k8s_events: property "leader_election_`) {
		t.Errorf("error %q does not name a leader_election property", err)
	}
}

func TestParseEventsErrors(t *testing.T) {
	noServiceAccount(t)
	podEnv(t, "", "")
	tests := []struct {
		g    MapGetter
		prop string // the property the error must name
		err  string // expected error substring
	}{
		{MapGetter{"kube_url": "kubernetes.default.svc"}, "kube_url", `"kubernetes.default.svc": want https://host[:port]`},
		{MapGetter{"kube_url": "ftp://host"}, "kube_url", `want https://host[:port]`},
		{MapGetter{"kube_url": "https://"}, "kube_url", `want https://host[:port]`},
		{MapGetter{"kube_url": "https://[::1"}, "kube_url", `missing ']'`},
		{MapGetter{"kube_tls_verify": "maybe"}, "kube_tls_verify", `invalid boolean "maybe": want on/off, true/false, yes/no or 1/0`},
		{MapGetter{"kube_events_api": "events.k8s.io/v1beta1"}, "kube_events_api", `unknown API "events.k8s.io/v1beta1": want v1 or events.k8s.io/v1`},
		{MapGetter{"kube_events_api": "v2"}, "kube_events_api", `unknown API "v2"`},
		{MapGetter{"kube_events_api": "V1"}, "kube_events_api", `unknown API "V1"`},
		{MapGetter{"kube_events_api": " "}, "kube_events_api", `unknown API ""`},
		{MapGetter{"kube_namespace": "a,b"}, "kube_namespace", `"a,b": one namespace only; for several, read all and use include namespace=a,b`},
		{MapGetter{"kube_namespace": "a b"}, "kube_namespace", `one namespace only`},
		{MapGetter{"include": "foo=bar"}, "include", `rule "foo=bar": unknown field "foo" (valid fields: reason, type, namespace, kind, name, source)`},
		{MapGetter{"include": "reason"}, "include", `missing '='`},
		{MapGetter{"include": "verb=get"}, "include", `unknown field "verb"`},
		{MapGetter{"exclude": "Reason=x"}, "exclude", `unknown field "Reason"`},
		{MapGetter{"exclude": "kind="}, "exclude", `field "kind": empty pattern list`},
		{MapGetter{"exclude": "type=a type=b"}, "exclude", `given more than once`},
		{MapGetter{"kube_request_limit": "-1"}, "kube_request_limit", `invalid "-1": want a number of Events per page, 0 for no pagination`},
		{MapGetter{"kube_request_limit": "abc"}, "kube_request_limit", `invalid "abc"`},
		{MapGetter{"kube_request_limit": "1.5"}, "kube_request_limit", `invalid "1.5"`},
		{MapGetter{"kube_request_limit": "1k"}, "kube_request_limit", `invalid "1k"`},
		{MapGetter{"kube_request_limit": "99999999999999999999"}, "kube_request_limit", `invalid "99999999999999999999"`},
		{MapGetter{"kube_watch_timeout": "abc"}, "kube_watch_timeout", `invalid duration "abc": want seconds, or a number with s, m, h or d`},
		{MapGetter{"kube_watch_timeout": "0"}, "kube_watch_timeout", `"0" is too short: at least 1s`},
		{MapGetter{"kube_watch_timeout": "0.5s"}, "kube_watch_timeout", `"0.5s" is too short`},
		{MapGetter{"kube_watch_timeout": "24856d"}, "kube_watch_timeout", `too long`},
		{MapGetter{"kube_watch_timeout": "99999999999d"}, "kube_watch_timeout", `duration "99999999999d" is too long`},
		{MapGetter{"watch_idle_timeout": "-1"}, "watch_idle_timeout", `invalid duration "-1"`},
		{MapGetter{"watch_idle_timeout": "0.5"}, "watch_idle_timeout", `"0.5" is too short: at least 1s`},
		{MapGetter{"kube_retention_time": "30s"}, "kube_retention_time", `"30s" is too short: at least 1m0s`},
		{MapGetter{"kube_retention_time": "off"}, "kube_retention_time", `"off" is too short`},
		{MapGetter{"kube_retention_time": "1e3"}, "kube_retention_time", `invalid duration "1e3"`},
		{MapGetter{"leader_election_lease_duration": "10x"}, "leader_election_lease_duration", `invalid duration "10x"`},
		{MapGetter{"leader_election_renew_deadline": "0"}, "leader_election_renew_deadline", `too short`},
		{MapGetter{"leader_election_retry_period": "0.05s"}, "leader_election_retry_period", `"0.05s" is too short: at least 100ms`},
		{MapGetter{"checkpoint_interval": "0"}, "checkpoint_interval", `too short`},
		{MapGetter{"checkpoint_interval": " "}, "checkpoint_interval", `empty duration`},
		{MapGetter{"emit_existing": "2"}, "emit_existing", `invalid boolean "2"`},
		{MapGetter{"db.sync": "fast"}, "db.sync", `invalid "fast": want normal, full, off or extra`},
		{MapGetter{"db.sync": " "}, "db.sync", `invalid ""`},
		{MapGetter{"leader_election": "sometimes"}, "leader_election", `invalid boolean "sometimes"`},
		{MapGetter{"leader_election": "on"}, "leader_election_namespace", `not set, and not running in a pod (no $POD_NAMESPACE, no ` + serviceAccountNS + `): set it`},
		{MapGetter{"leader_election": "on", "leader_election_namespace": "ns", "leader_election_renew_deadline": "15s"},
			"leader_election_lease_duration", `need lease_duration (15s) > renew_deadline (15s) > `},
		{MapGetter{"buffer_max_size": "63k"}, "buffer_max_size", `"63k" is too small: at least 64k`},
		{MapGetter{"buffer_max_size": "off"}, "buffer_max_size", `"off" is too small`},
		{MapGetter{"buffer_max_size": "65535"}, "buffer_max_size", `too small`},
		{MapGetter{"metrics_port": "65536"}, "metrics_port", `"65536": want a TCP port, 1-65535, or 0 for off`},
		{MapGetter{"metrics_port": "http"}, "metrics_port", `want a TCP port`},
		{MapGetter{"metrics_port": "-1"}, "metrics_port", `want a TCP port`},
		{MapGetter{"metrics_listen": "localhost"}, "metrics_listen", `"localhost": want an IP address`},
		{MapGetter{"buffer_max_size": "12x"}, "buffer_max_size", `invalid size "12x": unknown unit "x"`},
		{MapGetter{"buffer_max_size": "-1"}, "buffer_max_size", `invalid size "-1": must not be negative`},
	}
	for _, tt := range tests {
		e, err := ParseEvents(tt.g)
		if err == nil {
			t.Errorf("%v: no error, got %+v", tt.g, e)
			continue
		}
		prefix := "k8s_events: property " + strconv.Quote(tt.prop) + ": "
		if !strings.HasPrefix(err.Error(), prefix) {
			t.Errorf("%v: error %q does not start with %q", tt.g, err, prefix)
		}
		if !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%v: error %q, want it to contain %q", tt.g, err, tt.err)
		}
		if !reflect.DeepEqual(e, Events{}) {
			t.Errorf("%v: error, but a non-zero Events %+v", tt.g, e)
		}
	}
	// The limits themselves are accepted.
	for _, g := range []MapGetter{
		{"buffer_max_size": "64k"}, {"buffer_max_size": "65536"}, {"kube_watch_timeout": "1s"},
		{"kube_watch_timeout": "24855d"}, {"watch_idle_timeout": "1"}, {"kube_retention_time": "1m"},
		{"leader_election_retry_period": "0.1s"}, {"kube_request_limit": "0"}, {"kube_request_limit": "+5"},
		{"kube_url": "http://127.0.0.1:8001"}, {"kube_url": "https://host/prefix"},
		{"db.sync": "off"}, {"db.sync": "Extra"}, {"db.sync": "normal"}, {"db.sync": "full"},
	} {
		if _, err := ParseEvents(g); err != nil {
			t.Errorf("%v: %v", g, err)
		}
	}
}

func TestEventsEffective(t *testing.T) {
	podEnv(t, "pod-ns", "pod-0")
	for _, in := range []MapGetter{
		{},
		{"leader_election": "on"},
		{
			"kube_url": "https://10.0.0.1:6443", "kube_ca_file": "/etc/k8s/ca file.pem", "kube_token_file": "/etc/k8s/token",
			"kubeconfig": "/home/me/.kube/config", "kube_tls_verify": "no", "kube_tls_vhost": "kubernetes",
			"kube_events_api": "core/v1", "kube_namespace": "kube-system", "field_selector": "type=Warning",
			"include": "type=Warning  kind=Pod,Node;reason=OOM*", "exclude": "namespace=kube-*;source=!kubelet",
			"kube_request_limit": "0", "kube_watch_timeout": "1.5m", "watch_idle_timeout": "off",
			"kube_retention_time": "36h", "emit_existing": "off", "cluster_name": `prod "eu"`,
			"db": "/var/lib/kubetrail/events.db", "db.sync": "EXTRA", "leader_election": "true",
			"leader_election_namespace": "logging", "leader_election_name": "lease",
			"leader_election_identity": "node a", "leader_election_lease_duration": "1d",
			"leader_election_renew_deadline": "1.5h", "leader_election_retry_period": "0.25",
			"checkpoint_interval": "2.5s", "buffer_max_size": "65537",
		},
		{"kube_events_api": "events.k8s.io/v1", "buffer_max_size": "1g", "kube_request_limit": "50"},
	} {
		e, err := ParseEvents(in)
		if err != nil {
			t.Fatal(err)
		}
		eff := e.Effective()
		if !reflect.DeepEqual(eff, e.Effective()) {
			t.Errorf("Effective is not stable: %q", eff)
		}
		if len(eff) != len(EventsProperties) {
			t.Fatalf("Effective has %d pairs, want %d: %q", len(eff), len(EventsProperties), eff)
		}
		for i, p := range EventsProperties {
			if !strings.HasPrefix(eff[i], p.Name+"=") {
				t.Errorf("Effective[%d] = %q, want property %q", i, eff[i], p.Name)
			}
		}
		g := parseEffective(t, eff)
		again, err := ParseEvents(g)
		if err != nil {
			t.Fatalf("parsing Effective %q: %v", eff, err)
		}
		if !reflect.DeepEqual(again, e) {
			t.Errorf("Effective does not round-trip:\n  in %+v\n out %+v\n via %q", e, again, eff)
		}
	}

	e, err := ParseEvents(MapGetter{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`kube_url=""`, "kube_ca_file=" + ServiceAccountCA, "kube_token_file=" + ServiceAccountToken, `kubeconfig=""`,
		"kube_tls_verify=on", `kube_tls_vhost=""`, "kube_events_api=v1", `kube_namespace=""`, `field_selector=""`,
		`include=""`, `exclude=""`, "kube_request_limit=500", "kube_watch_timeout=30m", "watch_idle_timeout=35m",
		"kube_retention_time=1h", "emit_existing=on", `cluster_name=""`, `db=""`, "db.sync=normal",
		"leader_election=off", `leader_election_namespace=""`, "leader_election_name=kubetrail-k8s-events",
		`leader_election_identity=""`, "leader_election_lease_duration=15s", "leader_election_renew_deadline=10s",
		"leader_election_retry_period=2s", "checkpoint_interval=30s", "buffer_max_size=8m",
		"metrics_port=0", "metrics_listen=127.0.0.1",
	}
	if got := e.Effective(); !reflect.DeepEqual(got, want) {
		t.Errorf("Effective of defaults = %q, want %q", got, want)
	}
	// Pairs that depend on the environment show what is used.
	on, err := ParseEvents(MapGetter{"leader_election": "on", "include": "type=Warning  reason=BackOff;kind=Node"})
	if err != nil {
		t.Fatal(err)
	}
	eff := on.Effective()
	for i, pair := range map[int]string{
		9:  `include="type=Warning reason=BackOff; kind=Node"`,
		19: "leader_election=on",
		20: "leader_election_namespace=pod-ns",
		22: "leader_election_identity=pod-0",
	} {
		if eff[i] != pair {
			t.Errorf("Effective[%d] = %q, want %q", i, eff[i], pair)
		}
	}
}

// TestEventsEffectiveNoSecrets: the token file is named, never read, even when it
// exists and is readable.
func TestEventsEffectiveNoSecrets(t *testing.T) {
	const secret = "eyJhbGciOiJSUzI1NiIsImtpZCI6InNlY3JldC10b2tlbiJ9.c2VjcmV0"
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte("users:\n- user:\n    token: "+secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e, err := ParseEvents(MapGetter{"kube_token_file": token, "kubeconfig": kubeconfig})
	if err != nil {
		t.Fatal(err)
	}
	if e.KubeTokenFile != token {
		t.Errorf("KubeTokenFile = %q, want %q", e.KubeTokenFile, token)
	}
	all := strings.Join(e.Effective(), " ")
	if strings.Contains(all, secret) || strings.Contains(all, secret[:16]) {
		t.Errorf("Effective shows the token: %s", all)
	}
	if !strings.Contains(all, "kube_token_file="+token) || !strings.Contains(all, "kubeconfig="+kubeconfig) {
		t.Errorf("Effective does not name the token file or kubeconfig: %s", all)
	}
	if s := fmt.Sprintf("%+v", e); strings.Contains(s, secret) {
		t.Errorf("Events holds the token: %s", s)
	}
}

func TestEventsProperties(t *testing.T) {
	seen := map[string]bool{}
	for _, p := range EventsProperties {
		if seen[p.Name] {
			t.Errorf("property %q listed twice", p.Name)
		}
		seen[p.Name] = true
		if p.Name != strings.ToLower(p.Name) || strings.ContainsAny(p.Name, " \t") || p.Help == "" {
			t.Errorf("property %+v: want a lower-case name and help", p)
		}
	}
	// Every listed property is read: a bad value for it fails, or, for free text, the
	// value set shows in Effective.
	podEnv(t, "pod-ns", "pod-0")
	bad := map[string]string{
		"kube_url": "host", "kube_namespace": "a,b", "include": "x", "exclude": "x",
		"kube_request_limit": "-1", "buffer_max_size": "1k",
	}
	freeText := map[string]bool{
		"kube_ca_file": true, "kube_token_file": true, "kubeconfig": true, "kube_tls_vhost": true,
		"field_selector": true, "cluster_name": true, "db": true,
		"leader_election_namespace": true, "leader_election_name": true, "leader_election_identity": true,
	}
	for _, p := range EventsProperties {
		if freeText[p.Name] {
			g := MapGetter{p.Name: "probe-value", "leader_election": "on"}
			e, err := ParseEvents(g)
			if err != nil {
				t.Errorf("%s=probe-value: %v", p.Name, err)
				continue
			}
			if !strings.Contains(strings.Join(e.Effective(), " "), p.Name+"=probe-value") {
				t.Errorf("property %q does not seem to be read: %q", p.Name, e.Effective())
			}
			continue
		}
		v, ok := bad[p.Name]
		if !ok {
			v = "not-valid"
		}
		if _, err := ParseEvents(MapGetter{p.Name: v}); err == nil {
			t.Errorf("property %q does not seem to be read", p.Name)
		} else if !strings.Contains(err.Error(), strconv.Quote(p.Name)) {
			t.Errorf("%s=%q: error %q does not name the property", p.Name, v, err)
		}
	}
}
