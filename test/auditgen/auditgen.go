// Package auditgen writes realistic kube-apiserver audit logs (audit.k8s.io/v1 JSON
// lines), deterministic from a seed, for the tests and benchmarks of `kubetrail audit`.
//
// The lines are shaped like a real apiserver's log backend writes them (field order,
// annotations, objectRef, sourceIPs, "&" escaped as \u0026): kubelets, kube-proxy,
// controllers, the scheduler, workload service accounts, people with kubectl, health
// probes and unauthenticated clients. Verbs include long-running watches, exec and
// log follows; status codes include 200/201/401/403/404/409/422/429/500; latencies are
// log-normal per verb and resource with a heavy (Pareto) tail. A burst in the middle
// of the span (60-70%) triples the request rate: a misbehaving operator LISTing pods
// cluster-wide, answered with 429s and slow lists, the picture an overloaded API
// server gives.
package auditgen

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
	"time"
)

// Options say what to generate. Records or Bytes bounds the output (Records wins when
// both are set); the lines' requestReceivedTimestamps spread over [Start, Start+Duration].
type Options struct {
	// Seed makes the output reproducible: the same Options give the same bytes.
	Seed int64
	// Start is the first request's time; zero means 2026-01-15T10:00:00Z.
	Start time.Time
	// Duration is the span the requests cover; zero means one hour.
	Duration time.Duration
	// Records is the number of lines to write.
	Records int
	// Bytes, when Records is 0, writes lines until at least this many bytes are out.
	Bytes int64
	// Nodes is the number of kubelets (and kube-proxies); zero means 100.
	Nodes int
	// NoBurst turns off the overload burst in the middle of the span.
	NoBurst bool
}

// Stats is the ground truth of what Write wrote, for tests to compare aggregates with.
type Stats struct {
	Records int
	Bytes   int64
	// First and Last are the smallest and largest requestReceivedTimestamp written.
	First, Last time.Time
	// ByUser counts lines per user.username ("" for unauthenticated requests).
	ByUser map[string]int
	// ByCode counts lines per responseStatus.code.
	ByCode map[int]int
	// ByVerb counts lines per verb.
	ByVerb map[string]int
	// LongRunning counts watches, exec/attach/portforward, followed logs and the like.
	LongRunning int
	// Unauthorized counts 401 responses per source IP.
	Unauthorized map[string]int
}

// DefaultStart is the Start used when Options.Start is zero.
var DefaultStart = time.Date(2026, 1, 15, 10, 0, 0, 0, time.UTC)

// averageLine is a first guess of the bytes per line, to spread a Bytes-bounded log over
// Duration; it is corrected from the lines written as the generator goes.
const averageLine = 900

// Write writes the audit log to w and returns what it wrote.
func Write(w io.Writer, opts Options) (Stats, error) {
	if opts.Records < 0 || opts.Bytes < 0 || opts.Nodes < 0 || opts.Duration < 0 {
		return Stats{}, errors.New("auditgen: Records, Bytes, Nodes and Duration must not be negative")
	}
	if opts.Records == 0 && opts.Bytes == 0 {
		return Stats{}, errors.New("auditgen: set Records or Bytes")
	}
	if opts.Start.IsZero() {
		opts.Start = DefaultStart
	}
	if opts.Duration == 0 {
		opts.Duration = time.Hour
	}
	if opts.Nodes == 0 {
		opts.Nodes = 100
	}
	g := newGen(opts)
	bw := bufio.NewWriterSize(w, 256<<10)
	st := Stats{ByUser: map[string]int{}, ByCode: map[int]int{}, ByVerb: map[string]int{},
		Unauthorized: map[string]int{}}
	expect := opts.Records
	if expect == 0 {
		expect = max(1, int(opts.Bytes/averageLine))
	}
	var last time.Time
	for i := 0; ; i++ {
		if opts.Records > 0 && i >= opts.Records {
			break
		}
		if opts.Records == 0 && st.Bytes >= opts.Bytes {
			break
		}
		if opts.Records == 0 && i > 0 && i%4096 == 0 {
			// Re-estimate the line count from the lines so far, so that the times still
			// end near Start+Duration.
			expect = max(i+1, int(float64(opts.Bytes)/(float64(st.Bytes)/float64(i))))
		}
		f := float64(i) / float64(max(1, expect-1))
		t := opts.Start.Add(time.Duration(g.warp(min(f, 1)) * float64(opts.Duration)))
		if t.Before(last) {
			t = last
		}
		last = t
		e := g.event(t)
		line := g.render(e)
		n, err := bw.Write(line)
		st.Bytes += int64(n)
		if err != nil {
			return st, fmt.Errorf("auditgen: writing line %d: %w", i+1, err)
		}
		st.Records++
		st.ByUser[e.user.name]++
		st.ByCode[e.code]++
		st.ByVerb[e.verb]++
		if e.longRunning {
			st.LongRunning++
		}
		if e.code == 401 {
			st.Unauthorized[e.ip]++
		}
		if st.First.IsZero() || e.recv.Before(st.First) {
			st.First = e.recv
		}
		if e.recv.After(st.Last) {
			st.Last = e.recv
		}
	}
	if err := bw.Flush(); err != nil {
		return st, fmt.Errorf("auditgen: writing: %w", err)
	}
	return st, nil
}

// gen holds the random source and the tables built once from the Options.
type gen struct {
	opts   Options
	rng    *rand.Rand
	warpT  []float64 // warpT[k]: time fraction of line fraction k/(len-1)
	buf    []byte
	people []identity
	sas    map[string]identity
}

type identity struct {
	name, uid string
	groups    []string
	ua, ip    string
}

// event is one audit event before rendering.
type event struct {
	level, stage, verb string
	user               identity
	ip, ua             string
	// objectRef; resource == "" means a non-resource request at path.
	resource, group, version, ns, name, sub string
	path, query                             string
	code                                    int
	reason, message                         string
	decision, authzReason                   string
	extraAnn                                [][2]string
	recv, done                              time.Time
	longRunning                             bool
	requestObject, responseObject           string
}

func newGen(opts Options) *gen {
	g := &gen{opts: opts, rng: rand.New(rand.NewPCG(uint64(opts.Seed), 0x6b75626574726169))}
	// Request rate over the span: 1, tripled between 60% and 70% (the burst). warpT
	// inverts its cumulative share so that evenly spaced line indexes land on times
	// with that density.
	const steps = 2048
	rate := func(x float64) float64 {
		if !opts.NoBurst && x >= 0.6 && x < 0.7 {
			return 3
		}
		return 1
	}
	cum := make([]float64, steps+1)
	for k := 1; k <= steps; k++ {
		cum[k] = cum[k-1] + rate((float64(k)-0.5)/steps)
	}
	g.warpT = make([]float64, steps+1)
	j := 0
	for k := 0; k <= steps; k++ {
		target := float64(k) / steps * cum[steps]
		for j < steps && cum[j+1] < target {
			j++
		}
		// linear within step j
		frac := 0.0
		if d := cum[j+1] - cum[j]; d > 0 && j < steps {
			frac = (target - cum[j]) / d
		}
		g.warpT[k] = math.Min(1, (float64(j)+frac)/steps)
	}
	g.people = []identity{
		{name: "alice@example.com", groups: []string{"oidc:platform-admins", "system:authenticated"},
			ua: "kubectl/v1.34.1 (darwin/arm64) kubernetes/93248f9", ip: "203.0.113.10"},
		{name: "bob@example.com", groups: []string{"oidc:developers", "system:authenticated"},
			ua: "kubectl/v1.33.4 (linux/amd64) kubernetes/74cdb42", ip: "203.0.113.24"},
		{name: "carol@example.com", groups: []string{"oidc:developers", "oidc:oncall", "system:authenticated"},
			ua: "k9s/v0.50.6 (linux/amd64) kubernetes/$Format", ip: "203.0.113.57"},
		{name: "dave@example.com", groups: []string{"oidc:sre", "system:authenticated"},
			ua: "Mozilla/5.0 (X11; Linux x86_64) headlamp/0.31.0", ip: "198.18.7.3"},
	}
	for i := range g.people {
		g.people[i].uid = uid(g.people[i].name)
	}
	g.sas = map[string]identity{}
	return g
}

// warp maps a line fraction to a time fraction.
func (g *gen) warp(f float64) float64 {
	x := f * float64(len(g.warpT)-1)
	k := int(x)
	if k >= len(g.warpT)-1 {
		return g.warpT[len(g.warpT)-1]
	}
	return g.warpT[k] + (x-float64(k))*(g.warpT[k+1]-g.warpT[k])
}

func (g *gen) inBurst(t time.Time) bool {
	x := float64(t.Sub(g.opts.Start)) / float64(g.opts.Duration)
	return !g.opts.NoBurst && x >= 0.6 && x < 0.7
}

const k8sVersion = "v1.34.4"

func uid(name string) string {
	// FNV-1a 128 bits folded into a UUID-shaped string: stable per name.
	var h1, h2 uint64 = 14695981039346656037, 1099511628211
	for i := 0; i < len(name); i++ {
		h1 = (h1 ^ uint64(name[i])) * 1099511628211
		h2 = (h2 ^ uint64(name[i])) * 14695981039346656037
	}
	return uuidString(h1, h2)
}

func uuidString(a, b uint64) string {
	const hex = "0123456789abcdef"
	var out [36]byte
	j := 0
	for i := 0; i < 16; i++ {
		var by byte
		if i < 8 {
			by = byte(a >> (56 - 8*i))
		} else {
			by = byte(b >> (56 - 8*(i-8)))
		}
		if i == 6 {
			by = by&0x0f | 0x40
		}
		if i == 8 {
			by = by&0x3f | 0x80
		}
		out[j], out[j+1] = hex[by>>4], hex[by&15]
		j += 2
		if i == 3 || i == 5 || i == 7 || i == 9 {
			out[j] = '-'
			j++
		}
	}
	return string(out[:])
}

// sa returns a service account's identity (cached: its strings are reused).
func (g *gen) sa(ns, name, ua, ip string) identity {
	key := ns + "/" + name + "/" + ua + "/" + ip
	if id, ok := g.sas[key]; ok {
		return id
	}
	n := "system:serviceaccount:" + ns + ":" + name
	id := identity{name: n, uid: uid(n), ua: ua, ip: ip,
		groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}}
	g.sas[key] = id
	return id
}

func (g *gen) node(i int) identity {
	key := "node/" + strconv.Itoa(i)
	if id, ok := g.sas[key]; ok {
		return id
	}
	n := fmt.Sprintf("system:node:node-%04d", i)
	id := identity{name: n, uid: uid(n), groups: []string{"system:nodes", "system:authenticated"},
		ua: "kubelet/" + k8sVersion + " (linux/amd64) kubernetes/6ca7b0e", ip: nodeIP(i)}
	g.sas[key] = id
	return id
}

func nodeIP(i int) string {
	return fmt.Sprintf("10.%d.%d.%d", 20+i/65536, (i/256)%256, i%256)
}

// latency draws a duration: log-normal around median (ms) with spread sigma, and one
// request in a hundred slowed by a Pareto factor (etcd compaction, GC pauses, APF
// queueing), capped at the apiserver's 60 s request timeout.
func (g *gen) latency(median, sigma float64) time.Duration {
	ms := median * math.Exp(sigma*g.rng.NormFloat64())
	if g.rng.Float64() < 0.01 {
		ms *= 1 + 10*(math.Pow(1-g.rng.Float64(), -1/1.5)-1)
	}
	ms = math.Min(ms, 60000)
	return time.Duration(ms * float64(time.Millisecond))
}

func (g *gen) pick(n int) int { return g.rng.IntN(n) }

func (g *gen) chance(p float64) bool { return g.rng.Float64() < p }

var namespaces = []string{"default", "kube-system", "monitoring", "payments", "checkout",
	"search", "ingress-nginx", "cert-manager", "argocd", "batch", "ci", "data-pipeline"}

func (g *gen) podName(ns string) string {
	return ns + "-" + strconv.Itoa(g.pick(40)) + "-" + strconv.FormatUint(uint64(g.rng.Uint32()%0xfffff), 36)
}

// actor weights: shares of the traffic outside the burst.
var actorWeights = []struct {
	w    float64
	kind int
}{
	{44, actKubelet}, {5, actKubeProxy}, {15, actController}, {5, actScheduler},
	{10, actWorkloadSA}, {4, actPeople}, {3, actProbe}, {0.8, actUnauthenticated},
	{0.6, actCIDeployer}, {2.6, actOperator},
}

const (
	actKubelet = iota
	actKubeProxy
	actController
	actScheduler
	actWorkloadSA
	actPeople
	actProbe
	actUnauthenticated
	actCIDeployer
	actOperator
)

var actorTotal = func() float64 {
	s := 0.0
	for _, a := range actorWeights {
		s += a.w
	}
	return s
}()

func (g *gen) event(t time.Time) *event {
	e := &event{level: "Metadata", stage: "ResponseComplete", code: 200, decision: "allow",
		version: "v1"}
	kind := actOperator
	if !g.inBurst(t) || !g.chance(2.0/3) {
		x := g.rng.Float64() * actorTotal
		for _, a := range actorWeights {
			if x < a.w {
				kind = a.kind
				break
			}
			x -= a.w
		}
	}
	var d time.Duration
	switch kind {
	case actKubelet:
		d = g.kubelet(e)
	case actKubeProxy:
		i := g.pick(g.opts.Nodes)
		e.user = g.sa("kube-system", "kube-proxy", "kube-proxy/"+k8sVersion+" (linux/amd64) kubernetes/6ca7b0e", nodeIP(i))
		e.authzReason = `RBAC: allowed by ClusterRoleBinding "kubeadm:node-proxier" of ClusterRole "system:node-proxier" to ServiceAccount "kube-proxy/kube-system"`
		if g.chance(0.5) {
			e.resource, e.group = "endpointslices", "discovery.k8s.io"
		} else {
			e.resource = "services"
		}
		d = g.watchOrList(e, 30)
	case actController:
		d = g.controller(e)
	case actScheduler:
		d = g.scheduler(e)
	case actWorkloadSA:
		d = g.workload(e)
	case actPeople:
		d = g.person(e)
	case actProbe:
		e.user = identity{name: "system:anonymous", groups: []string{"system:unauthenticated"}}
		e.ip = "10.0.255." + strconv.Itoa(1+g.pick(3))
		e.ua = "kube-probe/1.34"
		e.path = []string{"/livez", "/readyz", "/healthz"}[g.pick(3)]
		e.verb = "get"
		e.authzReason = `RBAC: allowed by ClusterRoleBinding "system:public-info-viewer" of ClusterRole "system:public-info-viewer" to Group "system:unauthenticated"`
		d = g.latency(0.4, 0.5)
	case actUnauthenticated:
		// Failed authentication: no user at all, no authorization annotations, and the
		// apiserver writes it at stage ResponseStarted.
		e.user = identity{}
		e.ip = []string{"198.51.100.7", "198.51.100.23", "192.0.2.44", "203.0.113.99"}[g.pick(4)]
		e.ua = []string{"python-requests/2.31.0", "curl/8.5.0", "Go-http-client/1.1"}[g.pick(3)]
		switch g.pick(3) {
		case 0:
			e.path = "/version"
			e.verb = "get"
		case 1:
			e.resource, e.verb = "secrets", "list"
		default:
			e.resource, e.ns, e.verb = "pods", "default", "list"
		}
		e.stage, e.code, e.decision = "ResponseStarted", 401, ""
		e.reason, e.message = "Unauthorized", "Unauthorized"
		d = g.latency(0.3, 0.6)
	case actCIDeployer:
		e.user = g.sa("ci", "deployer", "argocd-repo-server/v2.11.3 (linux/amd64) kubernetes/unknown", "10.64.3.17")
		e.verb = []string{"get", "list", "create", "patch"}[g.pick(4)]
		e.resource = []string{"secrets", "configmaps", "deployments"}[g.pick(3)]
		if e.resource == "deployments" {
			e.group = "apps"
		}
		e.ns = namespaces[g.pick(len(namespaces))]
		if e.verb != "list" && e.verb != "create" {
			e.name = "app-config"
		}
		if e.ns != "ci" && g.chance(0.8) {
			g.forbid(e)
		} else {
			e.authzReason = `RBAC: allowed by RoleBinding "deployer/ci" of Role "deployer" to ServiceAccount "deployer/ci"`
			if e.verb == "create" {
				e.code = 201
			}
		}
		d = g.latency(6, 0.7)
	case actOperator:
		e.user = g.sa("batch", "report-operator", "report-operator/v0.3.1 (linux/amd64) kubernetes/unknown", "10.64.9.41")
		e.authzReason = `RBAC: allowed by ClusterRoleBinding "report-operator" of ClusterRole "view" to ServiceAccount "report-operator/batch"`
		e.verb, e.resource = "list", []string{"pods", "pods", "events", "configmaps"}[g.pick(4)]
		if g.chance(0.2) {
			e.ns = namespaces[g.pick(len(namespaces))]
		}
		e.query = "?limit=" + strconv.Itoa([]int{0, 500}[g.pick(2)])
		if e.query == "?limit=0" {
			e.query = "?resourceVersion=0"
		}
		base := 40 + 0.6*float64(g.opts.Nodes)
		if g.inBurst(t) && g.chance(0.25) {
			e.code, e.reason, e.message = 429, "TooManyRequests", "Too many requests, please try again later."
			e.extraAnn = [][2]string{{"apiserver.latency.k8s.io/apf-queue-wait", ""}}
			d = g.latency(300, 0.8)
			e.extraAnn[0][1] = fmtDur(d)
		} else {
			if g.inBurst(t) {
				base *= 3
			}
			d = g.latency(base, 0.9)
		}
	}
	if e.ip == "" {
		e.ip = e.user.ip
	}
	if e.ua == "" {
		e.ua = e.user.ua
	}
	if e.code < 400 && g.chance(0.0005) && e.verb != "watch" && !e.longRunning {
		e.code, e.reason, e.message = 500, "InternalError", "Internal error occurred: etcdserver: request timed out"
		d = g.latency(5000, 0.3)
	}
	if e.longRunning && g.chance(0.5) {
		// Half of the streams are seen at their end: the request began minutes earlier.
		e.stage = "ResponseComplete"
		e.recv, e.done = t.Add(-d), t
	} else {
		if e.longRunning {
			e.stage = "ResponseStarted"
			d = g.latency(1.5, 0.6)
		}
		e.recv, e.done = t, t.Add(d)
	}
	// The log carries microseconds: keep the same precision in Stats.
	e.recv, e.done = e.recv.Truncate(time.Microsecond), e.done.Truncate(time.Microsecond)
	if d > 500*time.Millisecond && e.code < 400 && !e.longRunning {
		e.extraAnn = append(e.extraAnn,
			[2]string{"apiserver.latency.k8s.io/etcd", fmtDur(d * 7 / 10)},
			[2]string{"apiserver.latency.k8s.io/total", fmtDur(d)})
	}
	return e
}

func fmtDur(d time.Duration) string {
	return d.Round(time.Microsecond).String()
}

// watchOrList makes e a watch (long-running) or a list of its resource.
func (g *gen) watchOrList(e *event, listMedian float64) time.Duration {
	if g.chance(0.5) {
		e.verb = "watch"
		secs := 300 + g.pick(300)
		e.query = "?allowWatchBookmarks=true&resourceVersion=" + strconv.Itoa(100000+g.pick(900000)) +
			"&timeout=" + (time.Duration(secs) * time.Second).String() + "&timeoutSeconds=" + strconv.Itoa(secs) + "&watch=true"
		e.longRunning = true
		return time.Duration(secs)*time.Second + time.Duration(g.pick(1000))*time.Millisecond
	}
	e.verb = "list"
	e.query = "?limit=500&resourceVersion=0"
	return g.latency(listMedian, 0.8)
}

func (g *gen) kubelet(e *event) time.Duration {
	i := g.pick(g.opts.Nodes)
	e.user = g.node(i)
	nodeName := e.user.name[len("system:node:"):]
	x := g.pick(100)
	switch {
	case x < 38:
		e.verb, e.resource, e.group, e.ns, e.name = "update", "leases", "coordination.k8s.io", "kube-node-lease", nodeName
		if g.chance(0.003) {
			e.code, e.reason = 409, "Conflict"
			e.message = `Operation cannot be fulfilled on leases.coordination.k8s.io "` + nodeName + `": the object has been modified; please apply your changes to the latest version and try again`
		}
		return g.latency(4, 0.6)
	case x < 48:
		e.verb, e.resource, e.sub, e.name = "patch", "nodes", "status", nodeName
		e.query = "?timeout=10s"
		return g.latency(8, 0.7)
	case x < 56:
		e.verb, e.resource, e.name = "get", "nodes", nodeName
		e.query = "?resourceVersion=0&timeout=10s"
		return g.latency(1.5, 0.6)
	case x < 64:
		e.verb, e.resource, e.ns = "get", "pods", namespaces[g.pick(len(namespaces))]
		e.name = g.podName(e.ns)
		if g.chance(0.03) {
			g.notFound(e)
		}
		return g.latency(2, 0.6)
	case x < 74:
		e.verb, e.resource, e.sub, e.ns = "patch", "pods", "status", namespaces[g.pick(len(namespaces))]
		e.name = g.podName(e.ns)
		return g.latency(6, 0.8)
	case x < 78:
		e.resource = "pods"
		d := g.watchOrList(e, 10)
		e.query = "?fieldSelector=spec.nodeName%3D" + nodeName + "&" + e.query[1:]
		return d
	case x < 86:
		e.verb, e.ns = "get", namespaces[g.pick(len(namespaces))]
		e.resource = []string{"configmaps", "secrets"}[g.pick(2)]
		e.name = []string{"kube-root-ca.crt", "app-config", "tls", "db-credentials"}[g.pick(4)]
		if g.chance(0.04) {
			g.notFound(e)
		}
		return g.latency(1.8, 0.6)
	case x < 92:
		e.verb, e.resource, e.sub, e.ns = "create", "serviceaccounts", "token", namespaces[g.pick(len(namespaces))]
		e.name, e.code = "default", 201
		return g.latency(5, 0.6)
	default:
		e.verb, e.resource, e.group, e.ns, e.code = "create", "events", "events.k8s.io", namespaces[g.pick(len(namespaces))], 201
		return g.latency(3, 0.6)
	}
}

var controllers = []string{"replicaset-controller", "deployment-controller", "endpointslice-controller",
	"job-controller", "node-controller", "namespace-controller", "generic-garbage-collector",
	"horizontal-pod-autoscaler", "statefulset-controller", "daemon-set-controller"}

func (g *gen) controller(e *event) time.Duration {
	c := controllers[g.pick(len(controllers))]
	e.user = g.sa("kube-system", c, "kube-controller-manager/"+k8sVersion+" (linux/amd64) kubernetes/6ca7b0e/system:serviceaccount:kube-system:"+c, "10.0.0.10")
	e.authzReason = `RBAC: allowed by ClusterRoleBinding "system:controller:` + c + `" of ClusterRole "system:controller:` + c + `" to ServiceAccount "` + c + `/kube-system"`
	e.ns = namespaces[g.pick(len(namespaces))]
	switch x := g.pick(100); {
	case x < 20:
		e.resource, e.group = []string{"replicasets", "deployments", "statefulsets", "daemonsets"}[g.pick(4)], "apps"
		e.verb, e.sub, e.name = "update", "status", "web-"+strconv.Itoa(g.pick(30))
		if g.chance(0.02) {
			e.code, e.reason = 409, "Conflict"
			e.message = `Operation cannot be fulfilled on ` + e.resource + `.apps "` + e.name + `": the object has been modified; please apply your changes to the latest version and try again`
		}
		return g.latency(7, 0.7)
	case x < 35:
		e.verb, e.resource, e.code = "create", "pods", 201
		e.extraAnn = [][2]string{{"pod-security.kubernetes.io/enforce-policy", "baseline:latest"}}
		if g.chance(0.01) {
			e.code, e.reason, e.extraAnn = 422, "Invalid", nil
			e.message = `Pod "` + g.podName(e.ns) + `" is invalid: spec.containers[0].resources.requests: Invalid value: "2": must be less than or equal to cpu limit of 1`
		}
		return g.latency(12, 0.7)
	case x < 45:
		e.verb, e.resource, e.name = "delete", "pods", g.podName(e.ns)
		if g.chance(0.05) {
			g.notFound(e)
		}
		return g.latency(9, 0.7)
	case x < 60:
		e.verb, e.resource, e.group = "update", "endpointslices", "discovery.k8s.io"
		e.name = "svc-" + strconv.Itoa(g.pick(50))
		return g.latency(5, 0.6)
	case x < 70:
		e.verb, e.resource, e.group, e.ns, e.name = "update", "leases", "coordination.k8s.io", "kube-system", "kube-controller-manager"
		e.query = "?timeout=5s"
		return g.latency(3, 0.5)
	default:
		e.ns = ""
		e.resource = []string{"pods", "replicasets", "jobs", "nodes", "endpointslices"}[g.pick(5)]
		switch e.resource {
		case "replicasets":
			e.group = "apps"
		case "jobs":
			e.group = "batch"
		case "endpointslices":
			e.group = "discovery.k8s.io"
		}
		return g.watchOrList(e, 25+0.3*float64(g.opts.Nodes))
	}
}

func (g *gen) scheduler(e *event) time.Duration {
	e.user = identity{name: "system:kube-scheduler", uid: uid("system:kube-scheduler"),
		groups: []string{"system:authenticated"}, ua: "kube-scheduler/" + k8sVersion + " (linux/amd64) kubernetes/6ca7b0e/scheduler",
		ip: "10.0.0.10"}
	e.authzReason = `RBAC: allowed by ClusterRoleBinding "system:kube-scheduler" of ClusterRole "system:kube-scheduler" to User "system:kube-scheduler"`
	switch x := g.pick(100); {
	case x < 55:
		e.ns = namespaces[g.pick(len(namespaces))]
		e.verb, e.resource, e.sub, e.name, e.code = "create", "pods", "binding", g.podName(e.ns), 201
		return g.latency(6, 0.6)
	case x < 75:
		e.verb, e.resource, e.group, e.ns, e.name = "update", "leases", "coordination.k8s.io", "kube-system", "kube-scheduler"
		return g.latency(3, 0.5)
	case x < 90:
		e.ns = namespaces[g.pick(len(namespaces))]
		e.verb, e.resource, e.group, e.code = "create", "events", "events.k8s.io", 201
		return g.latency(3, 0.6)
	default:
		e.resource = []string{"pods", "nodes", "persistentvolumeclaims"}[g.pick(3)]
		return g.watchOrList(e, 20)
	}
}

func (g *gen) workload(e *event) time.Duration {
	switch g.pick(4) {
	case 0: // Prometheus scrapes and discovers targets.
		e.user = g.sa("monitoring", "prometheus-k8s", "Prometheus/2.53.1", "10.64.1.5")
		e.authzReason = `RBAC: allowed by ClusterRoleBinding "prometheus-k8s" of ClusterRole "prometheus-k8s" to ServiceAccount "prometheus-k8s/monitoring"`
		if g.chance(0.4) {
			e.verb, e.path = "get", "/metrics"
			return g.latency(45, 0.5)
		}
		e.resource = []string{"pods", "endpoints", "services"}[g.pick(3)]
		return g.watchOrList(e, 30+0.4*float64(g.opts.Nodes))
	case 1:
		e.user = g.sa("cert-manager", "cert-manager", "cert-manager-controller/v1.15.1 (linux/amd64) cert-manager/d6b5ea2", "10.64.2.9")
		e.authzReason = `RBAC: allowed by ClusterRoleBinding "cert-manager-controller-certificates" of ClusterRole "cert-manager-controller-certificates" to ServiceAccount "cert-manager/cert-manager"`
		e.ns = namespaces[g.pick(len(namespaces))]
		if g.chance(0.5) {
			e.verb, e.resource, e.name = []string{"get", "update"}[g.pick(2)], "secrets", "tls"
		} else {
			e.resource, e.group = "certificates", "cert-manager.io"
			e.verb, e.sub, e.name = "update", "status", "tls"
		}
		return g.latency(5, 0.7)
	case 2:
		e.user = g.sa("argocd", "argocd-application-controller", "argocd-application-controller/v2.11.3 (linux/amd64) kubernetes/unknown", "10.64.4.2")
		e.authzReason = `RBAC: allowed by ClusterRoleBinding "argocd-application-controller" of ClusterRole "argocd-application-controller" to ServiceAccount "argocd-application-controller/argocd"`
		e.resource = []string{"deployments", "services", "configmaps", "ingresses", "applications"}[g.pick(5)]
		switch e.resource {
		case "deployments":
			e.group = "apps"
		case "ingresses":
			e.group = "networking.k8s.io"
		case "applications":
			e.group, e.version = "argoproj.io", "v1alpha1"
		}
		if g.chance(0.3) {
			e.ns = namespaces[g.pick(len(namespaces))]
			e.verb, e.name = "patch", "web-"+strconv.Itoa(g.pick(30))
			return g.latency(9, 0.8)
		}
		return g.watchOrList(e, 60)
	default:
		e.user = g.sa("ingress-nginx", "ingress-nginx", "nginx-ingress-controller/v1.11.2 (linux/amd64) ingress-nginx/46e76e5916813cfca2a9b0bfdc34b69a0000f6b9", "10.64.5.3")
		e.authzReason = `RBAC: allowed by RoleBinding "ingress-nginx/ingress-nginx" of Role "ingress-nginx" to ServiceAccount "ingress-nginx/ingress-nginx"`
		if g.chance(0.6) {
			e.verb, e.resource, e.group, e.ns, e.name = "update", "leases", "coordination.k8s.io", "ingress-nginx", "ingress-nginx-leader"
			return g.latency(3, 0.5)
		}
		e.resource, e.group = "ingresses", "networking.k8s.io"
		return g.watchOrList(e, 15)
	}
}

func (g *gen) person(e *event) time.Duration {
	p := g.people[g.pick(len(g.people))]
	e.user = p
	admin := p.groups[0] == "oidc:platform-admins" || p.groups[0] == "oidc:sre"
	if admin {
		e.authzReason = `RBAC: allowed by ClusterRoleBinding "platform-admins" of ClusterRole "cluster-admin" to Group "` + p.groups[0] + `"`
	} else {
		e.authzReason = `RBAC: allowed by RoleBinding "developers/payments" of ClusterRole "edit" to Group "oidc:developers"`
	}
	e.ns = []string{"payments", "checkout", "search", "default"}[g.pick(4)]
	x := g.pick(100)
	switch {
	case x < 15: // discovery
		e.verb, e.ns = "get", ""
		e.path = []string{"/api", "/apis", "/version", "/openapi/v3"}[g.pick(4)]
		return g.latency(3, 0.8)
	case x < 40:
		e.verb, e.resource = []string{"get", "list"}[g.pick(2)], []string{"pods", "deployments", "services", "events"}[g.pick(4)]
		if e.resource == "deployments" {
			e.group = "apps"
		}
		if e.verb == "get" {
			e.name = "web-" + strconv.Itoa(g.pick(40))
			if g.chance(0.15) {
				g.notFound(e)
			}
		} else {
			e.query = "?limit=500"
		}
		return g.latency(8, 0.9)
	case x < 50:
		e.verb, e.resource, e.sub = "get", "pods", "log"
		e.name = g.podName(e.ns)
		if g.chance(0.5) {
			e.query = "?container=app&follow=true&tailLines=100"
			e.longRunning = true
			return time.Duration(5+g.pick(600)) * time.Second
		}
		e.query = "?container=app&tailLines=500"
		return g.latency(40, 0.8)
	case x < 55:
		e.verb, e.resource, e.sub, e.name = "create", "pods", "exec", g.podName(e.ns)
		e.query = "?command=sh&container=app&stdin=true&stdout=true&tty=true"
		e.code, e.longRunning = 101, true
		return time.Duration(10+g.pick(1800)) * time.Second
	case x < 70 && !admin:
		// Developers try what their role does not allow.
		e.verb = []string{"list", "get", "delete"}[g.pick(3)]
		e.resource = []string{"secrets", "nodes", "clusterroles"}[g.pick(3)]
		switch e.resource {
		case "nodes":
			e.ns = ""
		case "clusterroles":
			e.ns, e.group = "", "rbac.authorization.k8s.io"
		}
		if e.verb != "list" {
			e.name = "db-credentials"
		}
		g.forbid(e)
		return g.latency(2, 0.6)
	default:
		e.level = "RequestResponse"
		e.resource, e.group = "deployments", "apps"
		e.name = "web-" + strconv.Itoa(g.pick(40))
		switch g.pick(4) {
		case 0:
			e.verb, e.code = "create", 201
			if g.chance(0.2) {
				e.code, e.reason = 409, "AlreadyExists"
				e.message = `deployments.apps "` + e.name + `" already exists`
			} else if g.chance(0.1) {
				e.code, e.reason = 422, "Invalid"
				e.message = `Deployment.apps "` + e.name + `" is invalid: spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: ` + "`selector` does not match template `labels`"
			}
		case 1:
			e.verb = "delete"
		default:
			e.verb = "patch"
			e.query = "?fieldManager=kubectl-client-side-apply&fieldValidation=Strict"
		}
		if e.code < 400 {
			obj := `{"kind":"Deployment","apiVersion":"apps/v1","metadata":{"name":"` + e.name + `","namespace":"` + e.ns +
				`","labels":{"app":"web"}},"spec":{"replicas":` + strconv.Itoa(1+g.pick(6)) +
				`,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"app","image":"registry.example.com/web:1.` + strconv.Itoa(g.pick(90)) + `"}]}}}}`
			if e.verb != "delete" {
				e.requestObject = obj
			}
			e.responseObject = obj
		}
		return g.latency(14, 0.8)
	}
}

// forbid turns e into an RBAC denial, as the apiserver writes it.
func (g *gen) forbid(e *event) {
	e.code, e.reason, e.decision, e.authzReason = 403, "Forbidden", "forbid", ""
	group := e.group
	where := " at the cluster scope"
	if e.ns != "" {
		where = ` in the namespace "` + e.ns + `"`
	}
	res := e.resource
	if e.sub != "" {
		res += "/" + e.sub
	}
	what := e.resource
	if group != "" {
		what += "." + group
	}
	if e.name != "" {
		what += ` "` + e.name + `"`
	}
	e.message = what + ` is forbidden: User "` + e.user.name + `" cannot ` + e.verb + ` resource "` + res +
		`" in API group "` + group + `"` + where
}

func (g *gen) notFound(e *event) {
	e.code, e.reason = 404, "NotFound"
	what := e.resource
	if e.group != "" {
		what += "." + e.group
	}
	e.message = what + ` "` + e.name + `" not found`
}
