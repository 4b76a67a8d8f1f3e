package conf

import (
	"time"

	"github.com/kubetrail/kubetrail/enrich/rules"
)

// Event APIs the k8s_events input can read. Both serve the same objects (same uid and
// resourceVersion), with different field names.
const (
	EventsAPICore   = "v1"               // core/v1 Events, as kubectl get events
	EventsAPIEvents = "events.k8s.io/v1" // events.k8s.io/v1 Events
)

// Events is the configuration of one k8s_events input instance.
type Events struct {
	// Connection. Kubeconfig, when set, is used as kubectl would use it (KubeURL then
	// overrides its server). Otherwise the input connects as a pod does: KubeURL
	// (default: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT, else
	// https://kubernetes.default.svc), KubeCAFile and KubeTokenFile (the service
	// account's by default; the token file is re-read as it rotates).
	KubeURL       string
	KubeCAFile    string
	KubeTokenFile string
	Kubeconfig    string
	TLSVerify     bool
	TLSVhost      string

	// What to collect.
	API           string // EventsAPICore or EventsAPIEvents
	Namespace     string // "" = all namespaces
	FieldSelector string // applied by the API server, e.g. type=Warning
	Include       rules.Set
	Exclude       rules.Set
	// RequestLimit is the page size of LIST requests (0: one unpaginated LIST).
	RequestLimit int64
	// WatchTimeout is how long the API server keeps one WATCH open (timeoutSeconds).
	WatchTimeout time.Duration
	// WatchIdleTimeout restarts a WATCH that delivered nothing, not even a bookmark,
	// for that long (0: never).
	WatchIdleTimeout time.Duration
	// RetentionTime bounds what is kept: Events last changed before now-RetentionTime
	// are not emitted, and their dedup rows are pruned.
	RetentionTime time.Duration
	// EmitExisting: emit the Events that already exist at the very first start (no
	// checkpoint yet).
	EmitExisting bool
	// ClusterName, when set, is added to every record as cluster_name.
	ClusterName string

	// Dedup and checkpoint database ("" = in memory).
	DB     string
	DBSync string

	// Leader election among the instances of a DaemonSet.
	LeaderElection     bool
	LeaseNamespace     string
	LeaseName          string
	Identity           string
	LeaseDuration      time.Duration
	RenewDeadline      time.Duration
	RetryPeriod        time.Duration
	CheckpointInterval time.Duration

	// BufferMaxSize bounds the Events waiting for Fluent Bit (encoded bytes); the watch
	// stops reading while it is full.
	BufferMaxSize int

	// MetricsPort serves the instance's health metrics at /metrics (0: off), on
	// MetricsListen.
	MetricsPort   int
	MetricsListen string
}

// Event rule fields: what include/exclude rules of k8s_events can look at.
const (
	EventRuleReason = iota
	EventRuleType
	EventRuleNamespace
	EventRuleKind
	EventRuleName
	EventRuleSource
)

// EventRuleSchema is the rule schema of k8s_events' include and exclude properties.
var EventRuleSchema = rules.Schema{
	EventRuleReason:    {Name: "reason"},
	EventRuleType:      {Name: "type"},
	EventRuleNamespace: {Name: "namespace"},
	EventRuleKind:      {Name: "kind"},
	EventRuleName:      {Name: "name"},
	EventRuleSource:    {Name: "source"},
}
