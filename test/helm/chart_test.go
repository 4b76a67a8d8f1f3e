package helm_test

// The chart without a cluster: Helm's linter, the defaults against deploy/ as kustomize
// builds it, the webhook variant against deploy/ with deploy/webhook/, the metrics
// pipeline against conf/examples/, and what each value changes.

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/kubetrail/kubetrail/conf"
	"github.com/kubetrail/kubetrail/test/fluentbit"
	"github.com/kubetrail/kubetrail/test/repo"
	"github.com/kubetrail/kubetrail/test/testcluster"
)

// A combination of values, rendered and (TestApply) applied to a real apiserver, each
// as a release of its own in a namespace of its own.
type combination struct {
	name    string // the release: the names of the objects
	vals    map[string]any
	webhook bool
	metrics bool
	leader  bool
	lease   string
}

func (c combination) namespace() string {
	ns, _ := at(c.vals, "namespace.name").(string)
	if ns == "" {
		return "kubetrail"
	}
	return ns
}

func combinations() []combination {
	return []combination{
		{name: "kubetrail", leader: true, lease: "kubetrail-k8s-events"},
		{name: "kubetrail-webhook", webhook: true, leader: true, lease: "kubetrail-k8s-events", vals: map[string]any{
			"namespace": map[string]any{"name": "kubetrail-webhook"},
			"audit":     map[string]any{"source": "webhook"},
		}},
		{name: "kubetrail-metrics", metrics: true, leader: true, lease: "kubetrail-k8s-events", vals: map[string]any{
			"namespace": map[string]any{"name": "kubetrail-metrics"},
			"metrics":   map[string]any{"enabled": true},
		}},
		{name: "kubetrail-webhook-metrics", webhook: true, metrics: true, leader: true, lease: "audit-collector", vals: map[string]any{
			"namespace":      map[string]any{"name": "kubetrail-webhook-metrics"},
			"audit":          map[string]any{"source": "webhook"},
			"metrics":        map[string]any{"enabled": true},
			"leaderElection": map[string]any{"name": "audit-collector"},
		}},
		{name: "kubetrail-custom", lease: "kubetrail-k8s-events", vals: customValues()},
	}
}

// customValues changes every value the chart has beside the audit source and metrics.
func customValues() map[string]any {
	return map[string]any{
		"namespace":      map[string]any{"name": "kubetrail-custom"},
		"image":          map[string]any{"repository": "registry.example.com/platform/kubetrail", "tag": "0.2.0-rc1", "pullPolicy": "Always"},
		"clusterName":    "prod-eu-1",
		"leaderElection": map[string]any{"enabled": false},
		"audit":          map[string]any{"logPath": "/var/log/kube-apiserver/api-audit.json"},
		"serviceAccount": map[string]any{"name": "collector", "annotations": map[string]any{"example.com/owner": "platform"}},
		"resources": map[string]any{
			"requests": map[string]any{"cpu": "200m", "memory": "128Mi"},
			"limits":   map[string]any{"memory": "512Mi"},
		},
		"tolerations":       []any{map[string]any{"operator": "Exists"}},
		"nodeSelector":      map[string]any{"kubernetes.io/os": "linux", "node-role.kubernetes.io/control-plane": nil}, // a map merges with the default's: null removes a key
		"affinity":          map[string]any{"nodeAffinity": map[string]any{"requiredDuringSchedulingIgnoredDuringExecution": map[string]any{"nodeSelectorTerms": []any{map[string]any{"matchExpressions": []any{map[string]any{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}}}}}}},
		"priorityClassName": "system-cluster-critical",
		"podAnnotations":    map[string]any{"example.com/team": "platform"},
		"podLabels":         map[string]any{"example.com/tier": "audit"},
		"env":               []any{map[string]any{"name": "OPENSEARCH_PASSWORD", "valueFrom": map[string]any{"secretKeyRef": map[string]any{"name": "opensearch", "key": "password"}}}},
		"envFrom":           []any{map[string]any{"secretRef": map[string]any{"name": "kubetrail-outputs"}}},
		"imagePullSecrets":  []any{map[string]any{"name": "registry"}},
		"config":            map[string]any{"outputs": "- name: opensearch\n  match: '*'\n  host: opensearch.logging.svc\n  port: 9200\n  http_passwd: ${OPENSEARCH_PASSWORD}\n"},
	}
}

// TestLint runs Helm's linter (what `helm lint` runs: Chart.yaml, values, every
// template rendered and parsed, the dependencies) with each combination: no warning,
// no error.
func TestLint(t *testing.T) {
	for _, c := range combinations() {
		l := lint.All(chartDir(t), c.vals, releaseNamespace, false)
		for _, m := range l.Messages {
			if m.Severity >= support.WarningSev {
				t.Errorf("%s: helm lint: %s", c.name, m)
			} else {
				t.Logf("%s: helm lint: %s", c.name, m)
			}
		}
		if l.HighestSeverity >= support.WarningSev {
			t.Errorf("%s: helm lint: highest severity %d", c.name, l.HighestSeverity)
		}
	}
}

// TestDefaultsAreKustomize: `helm install kubetrail` with the default values renders
// the objects of `kubectl apply -k deploy/`, object by object (Helm's labels aside),
// fluent-bit.yaml to the byte.
func TestDefaultsAreKustomize(t *testing.T) {
	r := render(t, "kubetrail", nil)
	t.Logf("rendered %d objects in %v", len(r.Objects), r.Took)
	compareWithKustomize(t, r.Objects, kustomize(t, false))
	if !strings.Contains(r.Notes, "kubetrail") {
		t.Errorf("NOTES.txt rendered to %q", r.Notes)
	}
}

// TestWebhookIsKustomize: audit.source webhook renders deploy/ with the component
// deploy/webhook/ (its DaemonSet patch, its fluent-bit.yaml).
func TestWebhookIsKustomize(t *testing.T) {
	r := render(t, "kubetrail", map[string]any{"audit": map[string]any{"source": "webhook"}})
	t.Logf("rendered %d objects in %v", len(r.Objects), r.Took)
	compareWithKustomize(t, r.Objects, kustomize(t, true))
}

// TestKustomizeReader checks the test's reading of deploy/ (kustomize above) against
// `kubectl kustomize`, with and without the webhook component: what the two
// equivalence tests compare the chart with is what kubectl applies.
func TestKustomizeReader(t *testing.T) {
	kubectl, err := testcluster.Kubectl()
	if err != nil {
		if kubectl, err = exec.LookPath("kubectl"); err != nil {
			repo.Missing(t, "kubectl (kubectl kustomize deploy/)", "`make apiserver`, which builds one")
		}
	}
	dir := t.TempDir()
	deploy := repo.Path(t, "deploy")
	rel, err := filepath.Rel(dir, deploy)
	if err != nil {
		t.Fatal(err)
	}
	k := "resources:\n  - " + rel + "\ncomponents:\n  - " + rel + "/webhook\n"
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, webhook := range []bool{false, true} {
		src := deploy
		if webhook {
			src = dir
		}
		out, err := exec.Command(kubectl, "kustomize", src).Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				t.Fatalf("kubectl kustomize: %v\n%s", err, ee.Stderr)
			}
			t.Fatal(err)
		}
		want := parseObjects(t, "kubectl kustomize", out)
		got := kustomize(t, webhook)
		if len(got) != len(want) {
			t.Errorf("webhook %v: %d objects, kubectl kustomize %d", webhook, len(got), len(want))
		}
		for _, w := range want {
			g, ok := find(got, w.Kind, w.Name)
			if !ok {
				t.Errorf("webhook %v: %s missing", webhook, w)
				continue
			}
			if !reflect.DeepEqual(g.Obj, w.Obj) {
				t.Errorf("webhook %v: %s differs from kubectl kustomize's, %s", webhook, w, firstDiff(g.yaml(), w.yaml()))
			}
		}
	}
}

// fluentBitConfig is the rendered fluent-bit.yaml, parsed.
func fluentBitConfig(t *testing.T, objs []object, release string) map[string]any {
	t.Helper()
	cm := mustFind(t, objs, "ConfigMap", release+"-config")
	text, _ := at(cm.Obj, "data").(map[string]any)["fluent-bit.yaml"].(string)
	var m map[string]any
	if err := yaml.Unmarshal([]byte(text), &m); err != nil {
		t.Fatalf("fluent-bit.yaml: %v\n%s", err, text)
	}
	return m
}

// plugins returns the stanzas of pipeline.<section> named name.
func plugins(cfg map[string]any, section, name string) []map[string]any {
	list, _ := at(cfg, "pipeline."+section).([]any)
	var out []map[string]any
	for _, p := range list {
		if m, ok := p.(map[string]any); ok && m["name"] == name {
			out = append(out, m)
		}
	}
	return out
}

// processor returns the k8s_audit processor of the audit input (tail or http).
func auditProcessor(t *testing.T, cfg map[string]any) map[string]any {
	t.Helper()
	for _, in := range []string{"tail", "http"} {
		for _, p := range plugins(cfg, "inputs", in) {
			logs, _ := at(p, "processors.logs").([]any)
			for _, l := range logs {
				if m, ok := l.(map[string]any); ok && m["name"] == "k8s_audit" {
					return m
				}
			}
		}
	}
	t.Fatalf("no k8s_audit processor in fluent-bit.yaml")
	return nil
}

func props(m map[string]any) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		switch v.(type) {
		case map[string]any, []any:
		default:
			out[k] = fmt.Sprint(v)
		}
	}
	return out
}

func yamlScalar(v any) string {
	b, _ := yaml.Marshal(v)
	return string(b)
}

// TestMetricsPipeline: metrics.enabled adds the metrics pipeline exactly as
// conf/examples/audit-metrics.yaml and events-metrics.yaml define it (the YAML twins
// of the .conf examples): k8s_audit's metrics and metrics_top_users, k8s_events'
// metrics_port, every log_to_metrics filter, fluentbit_metrics, prometheus_scrape and
// prometheus_exporter stanza equal to the example's; plus the Service of the port
// and the pod's prometheus.io annotations. Without it, none of them.
func TestMetricsPipeline(t *testing.T) {
	var examples []map[string]any
	for _, f := range []string{"audit-metrics.yaml", "events-metrics.yaml"} {
		b, err := os.ReadFile(repo.Path(t, "conf", "examples", f))
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		examples = append(examples, m)
	}
	metricsPlugins := map[string]string{
		"fluentbit_metrics": "inputs", "prometheus_scrape": "inputs",
		"log_to_metrics": "filters", "prometheus_exporter": "outputs",
	}
	for _, webhook := range []bool{false, true} {
		vals := map[string]any{"metrics": map[string]any{"enabled": true}}
		if webhook {
			vals["audit"] = map[string]any{"source": "webhook"}
		}
		r := render(t, "kubetrail", vals)
		cfg := fluentBitConfig(t, r.Objects, "kubetrail")
		for _, ex := range examples {
			for name, section := range metricsPlugins {
				want := plugins(ex, section, name)
				got := plugins(cfg, section, name)
				for _, w := range want {
					if !slices.ContainsFunc(got, func(g map[string]any) bool { return reflect.DeepEqual(g, w) }) {
						t.Errorf("webhook %v: the example's %s %s is not in the chart's pipeline as it is:\n%s", webhook, section, name, yamlScalar(w))
					}
				}
			}
			if exAudit := plugins(ex, "filters", "k8s_audit"); len(exAudit) == 1 {
				a := auditProcessor(t, cfg)
				for _, k := range []string{"metrics", "metrics_top_users"} {
					if !reflect.DeepEqual(a[k], exAudit[0][k]) {
						t.Errorf("webhook %v: k8s_audit %s = %v, the example's %v", webhook, k, a[k], exAudit[0][k])
					}
				}
			}
			if exEv := plugins(ex, "inputs", "k8s_events"); len(exEv) == 1 {
				ev := plugins(cfg, "inputs", "k8s_events")
				if len(ev) != 1 || !reflect.DeepEqual(ev[0]["metrics_port"], exEv[0]["metrics_port"]) {
					t.Errorf("webhook %v: k8s_events metrics_port: %v, the example's %v", webhook, ev, exEv[0]["metrics_port"])
				}
			}
		}
		// Exactly the examples' log_to_metrics filters, no other.
		n := 0
		for _, ex := range examples {
			n += len(plugins(ex, "filters", "log_to_metrics"))
		}
		if got := len(plugins(cfg, "filters", "log_to_metrics")); got != n || n == 0 {
			t.Errorf("webhook %v: %d log_to_metrics filters, the examples have %d", webhook, got, n)
		}
		// The records' output does not take the metrics too.
		for _, o := range plugins(cfg, "outputs", "stdout") {
			if m, _ := o["match"].(string); m == "*" || strings.HasPrefix("metrics.", strings.TrimSuffix(m, "*")) {
				t.Errorf("webhook %v: stdout matches %q: it would print the metrics too", webhook, m)
			}
		}

		svc := mustFind(t, r.Objects, "Service", "kubetrail-metrics")
		var s corev1.Service
		decodeStrict(t, svc, &s)
		if len(s.Spec.Ports) != 1 || s.Spec.Ports[0].Port != 2021 || s.Spec.Ports[0].TargetPort.String() != "metrics" || s.Spec.Selector["app.kubernetes.io/name"] != "kubetrail" || s.Namespace != "kubetrail" {
			t.Errorf("webhook %v: Service %+v", webhook, s.Spec)
		}
		var ds appsv1.DaemonSet
		decodeStrict(t, mustFind(t, r.Objects, "DaemonSet", "kubetrail"), &ds)
		ann := ds.Spec.Template.Annotations
		if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/port"] != "2021" || ann["prometheus.io/path"] != "/metrics" {
			t.Errorf("webhook %v: pod annotations %v", webhook, ann)
		}
		if !slices.ContainsFunc(ds.Spec.Template.Spec.Containers[0].Ports, func(p corev1.ContainerPort) bool { return p.Name == "metrics" && p.ContainerPort == 2021 }) {
			t.Errorf("webhook %v: no container port metrics 2021", webhook)
		}
	}

	// Off (the default): none of it.
	r := render(t, "kubetrail", nil)
	cfg := fluentBitConfig(t, r.Objects, "kubetrail")
	for name, section := range metricsPlugins {
		if len(plugins(cfg, section, name)) != 0 {
			t.Errorf("metrics off: a %s %s", section, name)
		}
	}
	if _, ok := find(r.Objects, "Service", "kubetrail-metrics"); ok {
		t.Errorf("metrics off: a Service")
	}
}

// TestFluentBitConfig: in every combination, the k8s_events and k8s_audit stanzas
// name only properties kubetrail has (conf.EventsProperties, conf.AuditProperties,
// Fluent Bit's own per-instance ones) with values it accepts (conf.ParseEvents,
// conf.ParseAudit), and leader_election follows the value.
func TestFluentBitConfig(t *testing.T) {
	for _, c := range combinations() {
		r := render(t, c.name, c.vals)
		cfg := fluentBitConfig(t, r.Objects, c.name)
		var ds appsv1.DaemonSet
		decodeStrict(t, mustFind(t, r.Objects, "DaemonSet", c.name), &ds)
		env := map[string]string{"POD_NAME": c.name + "-x7k2p", "POD_NAMESPACE": c.namespace(), "NODE_NAME": "cp-1"}
		for _, e := range ds.Spec.Template.Spec.Containers[0].Env {
			if e.ValueFrom == nil {
				env[e.Name] = e.Value
			}
		}
		for k, v := range env {
			t.Setenv(k, v) // ParseEvents reads $POD_NAMESPACE and $POD_NAME
		}
		expand := func(s string) string { return os.Expand(s, func(k string) string { return env[k] }) }

		evs := plugins(cfg, "inputs", "k8s_events")
		if len(evs) != 1 {
			t.Fatalf("%s: %d k8s_events inputs", c.name, len(evs))
		}
		own, unknown := fluentbit.PluginProperties("input", props(evs[0]), conf.EventsProperties)
		if len(unknown) > 0 {
			t.Errorf("%s: k8s_events properties %q are not in conf.EventsProperties", c.name, unknown)
		}
		g := conf.MapGetter{}
		for k, v := range own {
			g[k] = expand(v)
		}
		e, err := conf.ParseEvents(g)
		if err != nil {
			t.Errorf("%s: k8s_events does not accept the configuration: %v", c.name, err)
		} else {
			if e.LeaderElection != c.leader {
				t.Errorf("%s: leader_election %v, want %v", c.name, e.LeaderElection, c.leader)
			}
			if c.leader && (e.LeaseName != c.lease || e.LeaseNamespace != c.namespace()) {
				t.Errorf("%s: Lease %s/%s, want %s/%s", c.name, e.LeaseNamespace, e.LeaseName, c.namespace(), c.lease)
			}
			if e.ClusterName != env["CLUSTER_NAME"] || e.ClusterName == "" {
				t.Errorf("%s: cluster_name %q, CLUSTER_NAME %q", c.name, e.ClusterName, env["CLUSTER_NAME"])
			}
		}

		a := auditProcessor(t, cfg)
		own, unknown = fluentbit.PluginProperties("processor", props(a), conf.AuditProperties)
		if len(unknown) > 0 {
			t.Errorf("%s: k8s_audit properties %q are neither Fluent Bit's nor in conf.AuditProperties", c.name, unknown)
		}
		ga := conf.MapGetter{}
		for k, v := range own {
			ga[k] = expand(v)
		}
		if _, err := conf.ParseAudit(ga); err != nil {
			t.Errorf("%s: k8s_audit does not accept the configuration: %v", c.name, err)
		}
		// Every ${VAR} of the configuration is set by the DaemonSet.
		cm := mustFind(t, r.Objects, "ConfigMap", c.name+"-config")
		text, _ := at(cm.Obj, "data").(map[string]any)["fluent-bit.yaml"].(string)
		names := map[string]bool{}
		for _, e := range ds.Spec.Template.Spec.Containers[0].Env {
			names[e.Name] = true
		}
		for _, l := range strings.Split(text, "\n") {
			if strings.HasPrefix(strings.TrimSpace(l), "#") {
				continue
			}
			for _, m := range regexp.MustCompile(`\$\{(\w+)\}`).FindAllStringSubmatch(l, -1) {
				if !names[m[1]] {
					t.Errorf("%s: fluent-bit.yaml uses ${%s}, which the DaemonSet does not set", c.name, m[1])
				}
			}
		}
	}
}

// TestValues checks what each value changes (the custom combination, and the values
// that remove objects).
func TestValues(t *testing.T) {
	const name = "kubetrail-custom"
	r := render(t, name, customValues())
	var ds appsv1.DaemonSet
	decodeStrict(t, mustFind(t, r.Objects, "DaemonSet", name), &ds)
	p := ds.Spec.Template.Spec
	c := p.Containers[0]
	if c.Image != "registry.example.com/platform/kubetrail:0.2.0-rc1" || c.ImagePullPolicy != corev1.PullAlways {
		t.Errorf("image %q, pull policy %q", c.Image, c.ImagePullPolicy)
	}
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	if env["CLUSTER_NAME"].Value != "prod-eu-1" || env["OPENSEARCH_PASSWORD"].ValueFrom == nil || env["POD_NAME"].ValueFrom == nil || env["GOMEMLIMIT"].Value != "160MiB" {
		t.Errorf("env %+v", c.Env)
	}
	if len(c.EnvFrom) != 1 || c.EnvFrom[0].SecretRef == nil || c.EnvFrom[0].SecretRef.Name != "kubetrail-outputs" {
		t.Errorf("envFrom %+v", c.EnvFrom)
	}
	if c.Resources.Requests.Cpu().String() != "200m" || c.Resources.Limits.Memory().String() != "512Mi" {
		t.Errorf("resources %+v", c.Resources)
	}
	if len(p.Tolerations) != 1 || p.Tolerations[0].Operator != corev1.TolerationOpExists || p.Tolerations[0].Key != "" {
		t.Errorf("tolerations %+v", p.Tolerations)
	}
	if !reflect.DeepEqual(p.NodeSelector, map[string]string{"kubernetes.io/os": "linux"}) {
		t.Errorf("nodeSelector %v", p.NodeSelector)
	}
	if p.Affinity == nil || p.Affinity.NodeAffinity == nil {
		t.Errorf("affinity %+v", p.Affinity)
	}
	if p.PriorityClassName != "system-cluster-critical" || p.ServiceAccountName != "collector" {
		t.Errorf("priorityClassName %q, serviceAccountName %q", p.PriorityClassName, p.ServiceAccountName)
	}
	if len(p.ImagePullSecrets) != 1 || p.ImagePullSecrets[0].Name != "registry" {
		t.Errorf("imagePullSecrets %+v", p.ImagePullSecrets)
	}
	if ds.Spec.Template.Annotations["example.com/team"] != "platform" || ds.Spec.Template.Labels["example.com/tier"] != "audit" {
		t.Errorf("pod annotations %v, labels %v", ds.Spec.Template.Annotations, ds.Spec.Template.Labels)
	}
	if !reflect.DeepEqual(ds.Spec.Selector.MatchLabels, map[string]string{"app.kubernetes.io/name": "kubetrail"}) {
		t.Errorf("selector %v", ds.Spec.Selector.MatchLabels)
	}
	// audit.logPath: its directory mounted, its rotated files tailed.
	hostPaths := map[string]string{}
	for _, v := range p.Volumes {
		if v.HostPath != nil {
			hostPaths[v.Name] = v.HostPath.Path
		}
	}
	if hostPaths["audit-log"] != "/var/log/kube-apiserver" {
		t.Errorf("audit-log hostPath %q", hostPaths["audit-log"])
	}
	cfg := fluentBitConfig(t, r.Objects, name)
	if tail := plugins(cfg, "inputs", "tail"); len(tail) != 1 || tail[0]["path"] != "/var/log/kube-apiserver/api-audit*.json" {
		t.Errorf("tail %v", tail)
	}
	// config.outputs replaces stdout.
	if len(plugins(cfg, "outputs", "stdout")) != 0 || len(plugins(cfg, "outputs", "opensearch")) != 1 {
		t.Errorf("outputs %v", at(cfg, "pipeline.outputs"))
	}
	// leaderElection off: no Role, no RoleBinding; the ClusterRole's binding names the
	// ServiceAccount.
	for _, kind := range []string{"Role", "RoleBinding"} {
		if _, ok := find(r.Objects, kind, name+"-leader-election"); ok {
			t.Errorf("leaderElection off: a %s", kind)
		}
	}
	sa := mustFind(t, r.Objects, "ServiceAccount", "collector")
	if ann, _ := at(sa.Obj, "metadata.annotations").(map[string]any); ann["example.com/owner"] != "platform" {
		t.Errorf("ServiceAccount annotations missing")
	}
	var crb rbacv1.ClusterRoleBinding
	decodeStrict(t, mustFind(t, r.Objects, "ClusterRoleBinding", name+"-events"), &crb)
	if !reflect.DeepEqual(crb.Subjects, []rbacv1.Subject{{Kind: "ServiceAccount", Name: "collector", Namespace: "kubetrail-custom"}}) {
		t.Errorf("ClusterRoleBinding subjects %+v", crb.Subjects)
	}

	// A lease of another name: the Role names it (and its checkpoint).
	r = render(t, "kubetrail", map[string]any{"leaderElection": map[string]any{"name": "audit-collector"}})
	var role rbacv1.Role
	decodeStrict(t, mustFind(t, r.Objects, "Role", "kubetrail-leader-election"), &role)
	var names []string
	for _, rule := range role.Rules {
		names = append(names, rule.ResourceNames...)
	}
	if !slices.Equal(names, []string{"audit-collector", "audit-collector-checkpoint"}) {
		t.Errorf("Role resourceNames %q", names)
	}

	// rbac.create, serviceAccount.create and namespace.create false: none of them;
	// namespace.name empty: the release's namespace.
	r = render(t, "kubetrail", map[string]any{
		"rbac":           map[string]any{"create": false},
		"serviceAccount": map[string]any{"create": false, "name": "existing"},
		"namespace":      map[string]any{"create": false, "name": ""},
	})
	var kinds []string
	for _, o := range r.Objects {
		kinds = append(kinds, o.Kind)
		if o.Namespace != releaseNamespace {
			t.Errorf("%s: not in the release's namespace %s", o, releaseNamespace)
		}
	}
	if !slices.Equal(kinds, []string{"ConfigMap", "DaemonSet"}) {
		t.Errorf("objects %q, want the ConfigMap and the DaemonSet", kinds)
	}
	decodeStrict(t, mustFind(t, r.Objects, "DaemonSet", "kubetrail"), &ds)
	if ds.Spec.Template.Spec.ServiceAccountName != "existing" {
		t.Errorf("serviceAccountName %q", ds.Spec.Template.Spec.ServiceAccountName)
	}

	// Another release name: other names, the same namespace.
	r = render(t, "audit", nil)
	for _, o := range r.Objects {
		if o.Kind != "Namespace" && !strings.HasPrefix(o.Name, "audit-kubetrail") {
			t.Errorf("release audit: %s", o)
		}
	}

	// Values the chart refuses.
	for _, bad := range []map[string]any{
		{"audit": map[string]any{"source": "syslog"}},
		{"audit": map[string]any{"logPath": "audit.log"}},
		{"namespace": map[string]any{"create": true, "name": ""}},
		{"metrics": map[string]any{"enabled": true, "topUsers": 1001}},
	} {
		if _, err := tryRender(t, "kubetrail", bad); err == nil {
			t.Errorf("values %v: rendered, want an error", bad)
		} else {
			t.Logf("values %v: %v", bad, err)
		}
	}
}
