package deploy_test

// The manifests of deploy/ checked as they are applied: rendered by
// `kubectl kustomize`, accepted by a real kube-apiserver (server-side dry run),
// RBAC exactly what kubetrail calls (SubjectAccessReview), the audit policy loaded
// by kube-apiserver and doing what it says, fluent-bit.yaml naming only properties
// kubetrail has, and (with a Fluent Bit: $FLUENT_BIT or on PATH) the ConfigMap's
// pipeline run in a real Fluent Bit with the ServiceAccount's token.
//
// The apiserver tests start their own cluster each (test/testcluster) and are
// skipped with -short; without kubectl everything is skipped.

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	yaml "go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/kubetrail/kubetrail/conf"
	"github.com/kubetrail/kubetrail/test/fluentbit"
	"github.com/kubetrail/kubetrail/test/rbaccheck"
	"github.com/kubetrail/kubetrail/test/repo"
	"github.com/kubetrail/kubetrail/test/testcluster"
)

const (
	namespace      = "kubetrail"
	saName         = "kubetrail"
	saUser         = "system:serviceaccount:" + namespace + ":" + saName
	leaseName      = "kubetrail-k8s-events" // conf: leader_election_name's default
	checkpointName = leaseName + "-checkpoint"
	configMapName  = "kubetrail-config"
	image          = "ghcr.io/kubetrail/kubetrail:0.1.0"
	auditLogDir    = "/var/log/kubernetes/audit"
	stateDir       = "/var/lib/kubetrail"
	configDir      = "/fluent-bit/config"
	pluginsDir     = "/fluent-bit/plugins"
)

// doc is one object of the rendered manifests.
type doc struct {
	Kind, Name, Namespace string
	YAML                  []byte
}

func (d doc) String() string { return d.Kind + "/" + d.Name }

// kubectlPath is the kubectl `make apiserver` builds (the apiserver's release), else
// one on PATH.
func kubectlPath(t *testing.T) string {
	t.Helper()
	if p, err := testcluster.Kubectl(); err == nil {
		return p
	}
	p, err := exec.LookPath("kubectl")
	if err != nil {
		repo.Missing(t, "kubectl (it renders deploy/ with kubectl kustomize and applies it)", "`make apiserver`, which builds one")
	}
	return p
}

// render runs `kubectl kustomize .` (the test's working directory is deploy/) and
// splits the result into its objects.
func render(t *testing.T) []doc {
	t.Helper()
	out, err := exec.Command(kubectlPath(t), "kustomize", ".").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("kubectl kustomize deploy/: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("kubectl kustomize deploy/: %v", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(out))
	var docs []doc
	for {
		var n yaml.Node
		if err := dec.Decode(&n); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("rendered manifests: %v", err)
		}
		var meta struct {
			Kind     string `yaml:"kind"`
			Metadata struct {
				Name      string `yaml:"name"`
				Namespace string `yaml:"namespace"`
			} `yaml:"metadata"`
		}
		if err := n.Decode(&meta); err != nil {
			t.Fatalf("rendered manifests: %v", err)
		}
		b, err := yaml.Marshal(&n)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, doc{meta.Kind, meta.Metadata.Name, meta.Metadata.Namespace, b})
	}
	return docs
}

func find(t *testing.T, docs []doc, kind, name string) doc {
	t.Helper()
	for _, d := range docs {
		if d.Kind == kind && d.Name == name {
			return d
		}
	}
	t.Fatalf("no %s/%s in the rendered manifests", kind, name)
	return doc{}
}

// decode decodes d strictly (an unknown field is an error: a typo in a manifest).
func decode(t *testing.T, d doc, v any) {
	t.Helper()
	if err := sigsyaml.UnmarshalStrict(d.YAML, v); err != nil {
		t.Fatalf("%s: %v", d, err)
	}
}

func join(docs []doc) []byte {
	var b bytes.Buffer
	for _, d := range docs {
		b.WriteString("---\n")
		b.Write(d.YAML)
	}
	return b.Bytes()
}

func pick(docs []doc, keep func(doc) bool) []doc {
	var out []doc
	for _, d := range docs {
		if keep(d) {
			out = append(out, d)
		}
	}
	return out
}

// kubectl runs kubectl against the cluster with stdin and returns its output.
func kubectl(t *testing.T, c *testcluster.Cluster, stdin []byte, args ...string) string {
	t.Helper()
	cmd := exec.Command(kubectlPath(t), append([]string{"--kubeconfig=" + c.Kubeconfig}, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func needCluster(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a real kube-apiserver")
	}
}

// TestRendered checks what the manifests say, without a cluster: the objects, the
// exact RBAC rules, and what the DaemonSet must have.
func TestRendered(t *testing.T) {
	docs := render(t)
	var got []string
	for _, d := range docs {
		got = append(got, d.String())
		if d.Kind != "Namespace" && d.Kind != "ClusterRole" && d.Kind != "ClusterRoleBinding" && d.Namespace != namespace {
			t.Errorf("%s is in namespace %q, want %q", d, d.Namespace, namespace)
		}
	}
	slices.Sort(got)
	want := []string{
		"ClusterRole/kubetrail-events", "ClusterRoleBinding/kubetrail-events",
		"ConfigMap/" + configMapName, "DaemonSet/kubetrail", "Namespace/" + namespace,
		"Role/kubetrail-leader-election", "RoleBinding/kubetrail-leader-election",
		"ServiceAccount/" + saName,
	}
	if !slices.Equal(got, want) {
		t.Errorf("objects:\n got %q\nwant %q", got, want)
	}

	// RBAC: exactly these rules, so that any added permission fails here too.
	var cr rbacv1.ClusterRole
	decode(t, find(t, docs, "ClusterRole", "kubetrail-events"), &cr)
	wantCR := []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"list", "watch"}},
		{APIGroups: []string{"events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"list", "watch"}},
	}
	if !reflect.DeepEqual(cr.Rules, wantCR) || cr.AggregationRule != nil {
		t.Errorf("ClusterRole rules:\n got %+v\nwant %+v", cr.Rules, wantCR)
	}
	var role rbacv1.Role
	decode(t, find(t, docs, "Role", "kubetrail-leader-election"), &role)
	wantRole := []rbacv1.PolicyRule{
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, ResourceNames: []string{leaseName}, Verbs: []string{"get", "update"}},
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"create"}},
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{checkpointName}, Verbs: []string{"get", "update"}},
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"create"}},
	}
	if !reflect.DeepEqual(role.Rules, wantRole) {
		t.Errorf("Role rules:\n got %+v\nwant %+v", role.Rules, wantRole)
	}
	sa := rbacv1.Subject{Kind: "ServiceAccount", Name: saName, Namespace: namespace}
	var crb rbacv1.ClusterRoleBinding
	decode(t, find(t, docs, "ClusterRoleBinding", "kubetrail-events"), &crb)
	if crb.RoleRef != (rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: cr.Name}) || !reflect.DeepEqual(crb.Subjects, []rbacv1.Subject{sa}) {
		t.Errorf("ClusterRoleBinding: %+v %+v", crb.RoleRef, crb.Subjects)
	}
	var rb rbacv1.RoleBinding
	decode(t, find(t, docs, "RoleBinding", "kubetrail-leader-election"), &rb)
	if rb.RoleRef != (rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name}) || !reflect.DeepEqual(rb.Subjects, []rbacv1.Subject{sa}) {
		t.Errorf("RoleBinding: %+v %+v", rb.RoleRef, rb.Subjects)
	}

	var ds appsv1.DaemonSet
	decode(t, find(t, docs, "DaemonSet", "kubetrail"), &ds)
	checkDaemonSet(t, ds)
}

func checkDaemonSet(t *testing.T, ds appsv1.DaemonSet) {
	t.Helper()
	p := ds.Spec.Template.Spec
	if p.ServiceAccountName != saName {
		t.Errorf("serviceAccountName %q", p.ServiceAccountName)
	}
	if v, ok := p.NodeSelector["node-role.kubernetes.io/control-plane"]; !ok || v != "" || len(p.NodeSelector) != 1 {
		t.Errorf("nodeSelector %v", p.NodeSelector)
	}
	for _, key := range []string{"node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master"} {
		if !slices.ContainsFunc(p.Tolerations, func(tl corev1.Toleration) bool {
			return tl.Key == key && tl.Operator == corev1.TolerationOpExists && tl.Effect == corev1.TaintEffectNoSchedule
		}) {
			t.Errorf("no NoSchedule toleration for %s", key)
		}
	}
	if p.PriorityClassName != "system-node-critical" {
		t.Errorf("priorityClassName %q", p.PriorityClassName)
	}
	if sc := p.SecurityContext; sc == nil || sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod seccompProfile is not RuntimeDefault")
	}
	if len(p.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(p.Containers))
	}
	c := p.Containers[0]
	if c.Image != image {
		t.Errorf("image %q, want %q", c.Image, image)
	}
	if !slices.Equal(c.Args, []string{"--config=" + configDir + "/fluent-bit.yaml"}) {
		t.Errorf("args %q", c.Args)
	}
	fieldRefs := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			fieldRefs[e.Name] = e.ValueFrom.FieldRef.FieldPath
		}
	}
	if fieldRefs["POD_NAME"] != "metadata.name" || fieldRefs["POD_NAMESPACE"] != "metadata.namespace" {
		t.Errorf("POD_NAME/POD_NAMESPACE from the downward API: %v", fieldRefs)
	}
	sc := c.SecurityContext
	switch {
	case sc == nil:
		t.Errorf("no container securityContext")
	case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Errorf("readOnlyRootFilesystem is not true")
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Errorf("allowPrivilegeEscalation is not false")
	case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0:
		t.Errorf("capabilities: want drop [ALL] and no add: %+v", sc.Capabilities)
	}
	res := c.Resources
	for what, q := range map[string]struct {
		got  resource.Quantity
		want string
	}{
		"requests.cpu":    {res.Requests[corev1.ResourceCPU], "100m"},
		"requests.memory": {res.Requests[corev1.ResourceMemory], "64Mi"},
		"limits.memory":   {res.Limits[corev1.ResourceMemory], "256Mi"},
	} {
		if q.got.Cmp(resource.MustParse(q.want)) != 0 {
			t.Errorf("resources.%s = %s, want %s", what, q.got.String(), q.want)
		}
	}
	for name, pr := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		if pr == nil || pr.HTTPGet == nil || pr.HTTPGet.Path != "/api/v1/health" || pr.HTTPGet.Port.String() != "http" {
			t.Errorf("%s probe: want httpGet /api/v1/health on port http: %+v", name, pr)
		}
	}
	if !slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == "http" && p.ContainerPort == 2020 }) {
		t.Errorf("no port http 2020: %+v", c.Ports)
	}

	// Volumes: the mount and the hostPath behind it.
	type mount struct {
		hostPath string
		hpType   corev1.HostPathType
		readOnly bool
	}
	mounts := map[string]mount{}
	for _, m := range c.VolumeMounts {
		for _, v := range p.Volumes {
			if v.Name != m.Name {
				continue
			}
			mt := mount{readOnly: m.ReadOnly}
			if v.HostPath != nil {
				mt.hostPath = v.HostPath.Path
				if v.HostPath.Type != nil {
					mt.hpType = *v.HostPath.Type
				}
			}
			mounts[m.MountPath] = mt
		}
	}
	if m := mounts[auditLogDir]; m.hostPath != auditLogDir || !m.readOnly {
		t.Errorf("%s: want hostPath %s read-only: %+v", auditLogDir, auditLogDir, m)
	}
	if m := mounts[stateDir]; m.hostPath != stateDir || m.hpType != corev1.HostPathDirectoryOrCreate || m.readOnly {
		t.Errorf("%s: want hostPath %s DirectoryOrCreate, writable: %+v", stateDir, stateDir, m)
	}
	if _, ok := mounts[configDir]; !ok {
		t.Errorf("the ConfigMap is not mounted at %s", configDir)
	}
	if !slices.ContainsFunc(p.Volumes, func(v corev1.Volume) bool { return v.ConfigMap != nil && v.ConfigMap.Name == configMapName }) {
		t.Errorf("no volume of ConfigMap %s", configMapName)
	}
}

// TestServerDryRun applies the namespace for real, then everything else with
// --dry-run=server: kube-apiserver validates and admits every object (defaulting,
// schema, PodSecurity, the priority class) without creating it.
func TestServerDryRun(t *testing.T) {
	docs := render(t)
	needCluster(t)
	c := testcluster.Start(t, testcluster.Options{})

	ns := pick(docs, func(d doc) bool { return d.Kind == "Namespace" })
	rest := pick(docs, func(d doc) bool { return d.Kind != "Namespace" })
	if len(ns) != 1 || len(rest) == 0 {
		t.Fatalf("%d namespaces, %d other objects", len(ns), len(rest))
	}
	out := kubectl(t, c, join(ns), "apply", "-f", "-")
	t.Logf("%s", out)
	out = kubectl(t, c, join(rest), "apply", "--dry-run=server", "-f", "-")
	t.Logf("%s", out)
	for _, d := range rest {
		// kubectl prints e.g. "daemonset.apps/kubetrail created (server dry run)".
		re := regexp.MustCompile(`(?mi)^` + regexp.QuoteMeta(strings.ToLower(d.Kind)) + `(\.[a-z0-9.]+)?/` + regexp.QuoteMeta(d.Name) + ` created \(server dry run\)$`)
		if !re.MatchString(out) {
			t.Errorf("%s: not accepted by the server dry run", d)
		}
	}
	if strings.Contains(strings.ToLower(out), "warning") {
		t.Errorf("the apiserver warned:\n%s", out)
	}
}

// sar asks the apiserver whether the ServiceAccount (with the groups its token
// carries) may do a.
func sar(t *testing.T, c *testcluster.Cluster, a rbaccheck.Access) (bool, string) {
	t.Helper()
	body, err := json.Marshal(rbaccheck.Review(namespace, saName, a))
	if err != nil {
		t.Fatal(err)
	}
	status, resp, err := c.Do(http.MethodPost, "/apis/authorization.k8s.io/v1/subjectaccessreviews", body, c.AdminToken)
	if err != nil || status != http.StatusCreated {
		t.Fatalf("SubjectAccessReview: %d %v\n%s", status, err, resp)
	}
	var r authorizationv1.SubjectAccessReview
	if err := json.Unmarshal(resp, &r); err != nil {
		t.Fatal(err)
	}
	return r.Status.Allowed, r.Status.Reason + r.Status.EvaluationError
}

// applyRBAC creates the namespace, the ServiceAccount and the RBAC objects for real.
func applyRBAC(t *testing.T, c *testcluster.Cluster, docs []doc) {
	t.Helper()
	kinds := []string{"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
	var objs []doc
	for _, k := range kinds { // the namespace first
		objs = append(objs, pick(docs, func(d doc) bool { return d.Kind == k })...)
	}
	t.Logf("%s", kubectl(t, c, join(objs), "apply", "-f", "-"))
}

// TestRBAC checks that the ServiceAccount may do exactly what k8s_events does (list
// and watch Events; get, create and update its Lease and checkpoint ConfigMap) and
// nothing next to it.
func TestRBAC(t *testing.T) {
	docs := render(t)
	needCluster(t)
	c := testcluster.Start(t, testcluster.Options{})
	applyRBAC(t, c, docs)

	// The lists are test/rbaccheck's, shared with test/helm.
	allowed, denied := rbaccheck.Expected(rbaccheck.Params{
		Namespace: namespace, Lease: leaseName, Checkpoint: checkpointName, Config: configMapName,
		LeaderElection: true, // deploy/configmap.yaml turns it on
	})
	rbaccheck.Check(t, saUser, allowed, denied, func(a rbaccheck.Access) (bool, string) { return sar(t, c, a) })

	// The same, as kubectl sees it through impersonation (the groups a token
	// of this ServiceAccount would carry are added by the apiserver).
	as := "--as=" + saUser
	for _, args := range [][]string{
		{"list", "events.events.k8s.io", "--all-namespaces"},
		{"update", "leases/" + leaseName, "-n", namespace},
		{"update", "configmaps/" + checkpointName, "-n", namespace},
	} {
		if out := canI(t, c, append(args, as)...); out != "yes" {
			t.Errorf("kubectl auth can-i %s: %s", strings.Join(args, " "), out)
		}
	}
	for _, args := range [][]string{
		{"get", "secrets", "--all-namespaces"},
		{"update", "configmaps/arbitrary-name", "-n", namespace},
		{"create", "events", "-n", "default"},
	} {
		if out := canI(t, c, append(args, as)...); out != "no" {
			t.Errorf("kubectl auth can-i %s: %s", strings.Join(args, " "), out)
		}
	}

	// What k8s_events really asks for, not a list of what it should: the input as the
	// ConfigMap configures it (leader election on), in build/flb-testhost, with a
	// token of the ServiceAccount.
	t.Run("k8s_events with the ServiceAccount's token", func(t *testing.T) { runInputAsServiceAccount(t, c, docs) })
}

// runInputAsServiceAccount runs the ConfigMap's k8s_events stanza in `flb-testhost
// input` (build/kubetrail.so, loaded as Fluent Bit loads it) with a token of the
// ServiceAccount and the DaemonSet's environment, only the paths and the API server
// changed. With the RBAC of deploy/ it must list and watch Events (one comes out),
// take the Lease, store the checkpoint ConfigMap, and release the Lease on SIGTERM,
// all without a 403.
func runInputAsServiceAccount(t *testing.T, c *testcluster.Cluster, docs []doc) {
	host, lib := repo.Artefact(t, "build/flb-testhost", "make"), repo.Artefact(t, "build/kubetrail.so", "make")
	api := func(method, path string, body any, want ...int) (int, map[string]any) {
		t.Helper()
		var b []byte
		if body != nil {
			var err error
			if b, err = json.Marshal(body); err != nil {
				t.Fatal(err)
			}
		}
		status, resp, err := c.Do(method, path, b, c.AdminToken)
		if err != nil || (len(want) > 0 && !slices.Contains(want, status)) {
			t.Fatalf("%s %s: %d %v, want %v\n%s", method, path, status, err, want, resp)
		}
		var out map[string]any
		_ = json.Unmarshal(resp, &out)
		return status, out
	}
	_, tr := api(http.MethodPost, "/api/v1/namespaces/"+namespace+"/serviceaccounts/"+saName+"/token",
		map[string]any{"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": map[string]any{"expirationSeconds": 3600}},
		http.StatusCreated)
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(str(tr, "status.token")), 0o600); err != nil {
		t.Fatal(err)
	}

	// The DaemonSet's environment.
	var ds appsv1.DaemonSet
	decode(t, find(t, docs, "DaemonSet", "kubetrail"), &ds)
	const podName, nodeName = "kubetrail-rbac01", "cp-1"
	var env []string
	vals := map[string]string{}
	for _, e := range ds.Spec.Template.Spec.Containers[0].Env {
		v := e.Value
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			v = map[string]string{"metadata.name": podName, "metadata.namespace": namespace, "spec.nodeName": nodeName}[e.ValueFrom.FieldRef.FieldPath]
		}
		env = append(env, e.Name+"="+v)
		vals[e.Name] = v
	}

	// The ConfigMap's k8s_events properties, ${VAR} expanded as Fluent Bit does.
	cfgRoot, _, _ := fluentBitConfig(t, docs)
	ev := plugin(get(get(cfgRoot, "pipeline"), "inputs"), "k8s_events")
	if ev == nil {
		t.Fatal("no k8s_events input in the ConfigMap")
	}
	all, _ := props(t, ev)
	own, unknown := fluentbit.PluginProperties("input", all, conf.EventsProperties)
	if len(unknown) != 0 {
		t.Fatalf("k8s_events properties unknown: %q", unknown)
	}
	if own["leader_election"] != "on" {
		t.Fatalf("the ConfigMap's k8s_events has leader_election %q, want on", own["leader_election"])
	}
	for k, v := range own {
		own[k] = os.Expand(v, func(name string) string { return vals[name] })
	}
	for k, v := range map[string]string{
		"db":              filepath.Join(dir, "k8s-events.db"),
		"kube_url":        c.URL,
		"kube_ca_file":    c.CAFile,
		"kube_token_file": tokenFile,
		// Soon, so that the test sees a stored checkpoint.
		"checkpoint_interval": "1s",
	} {
		own[k] = v
	}
	args := []string{"input", "-l", lib, "--out", filepath.Join(dir, "out.jsonl"), "--interval-ms", "200"}
	for k, v := range own {
		args = append(args, "-p", k+"="+v)
	}
	logPath := filepath.Join(dir, "host.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(host, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	exited := false
	defer func() {
		if !exited {
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("flb-testhost input log:\n%s", b)
		}
	}()

	// An Event, created now: listed or watched as the ServiceAccount.
	now := time.Now().UTC().Format(time.RFC3339)
	api(http.MethodPost, "/api/v1/namespaces/default/events", map[string]any{
		"metadata":       map[string]any{"name": "kubetrail-rbac-e2e"},
		"involvedObject": map[string]any{"kind": "Pod", "name": "p", "namespace": "default"},
		"reason":         "RBACE2E", "message": "from TestRBAC", "type": "Normal",
		"firstTimestamp": now, "lastTimestamp": now, "count": 1,
	}, http.StatusCreated)
	waitFor(t, "the Event in the input's output", 60*time.Second, func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "out.jsonl"))
		return bytes.Contains(b, []byte(`"name":"kubetrail-rbac-e2e"`))
	})
	leasePath := "/apis/coordination.k8s.io/v1/namespaces/" + namespace + "/leases/" + leaseName
	waitFor(t, "the Lease held by the pod", 30*time.Second, func() bool {
		st, lease := api(http.MethodGet, leasePath, nil)
		return st == http.StatusOK && str(lease, "spec.holderIdentity") == podName
	})
	waitFor(t, "the checkpoint ConfigMap stored by the pod", 30*time.Second, func() bool {
		st, cp := api(http.MethodGet, "/api/v1/namespaces/"+namespace+"/configmaps/"+checkpointName, nil)
		return st == http.StatusOK && str(cp, "data.leader") == podName && str(cp, "data.checkpoint") != ""
	})
	// SIGTERM: the last checkpoint stored and the Lease released, with the same RBAC.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		exited = true
		if err != nil {
			t.Errorf("flb-testhost input: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("flb-testhost input did not exit 30s after SIGTERM")
	}
	if _, lease := api(http.MethodGet, leasePath, nil, http.StatusOK); str(lease, "spec.holderIdentity") != "" {
		t.Errorf("after SIGTERM the Lease is still held by %q", str(lease, "spec.holderIdentity"))
	}
	b, _ := os.ReadFile(logPath)
	for _, bad := range []string{"forbidden", "[error]", "[ warn]"} {
		if bytes.Contains(bytes.ToLower(b), []byte(bad)) {
			t.Errorf("the input's log says %q", bad)
		}
	}
}

// canI runs `kubectl auth can-i` and returns its answer (it exits 1 for "no").
func canI(t *testing.T, c *testcluster.Cluster, args ...string) string {
	t.Helper()
	cmd := exec.Command(kubectlPath(t), append([]string{"--kubeconfig=" + c.Kubeconfig, "auth", "can-i"}, args...)...)
	out, err := cmd.Output()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("kubectl auth can-i: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// auditLine is the part of an audit event the policy test looks at.
type auditLine struct {
	Level      string `json:"level"`
	Stage      string `json:"stage"`
	RequestURI string `json:"requestURI"`
	Verb       string `json:"verb"`
	ObjectRef  *struct {
		Resource    string `json:"resource"`
		Subresource string `json:"subresource"`
		Namespace   string `json:"namespace"`
		Name        string `json:"name"`
	} `json:"objectRef"`
	RequestObject  json.RawMessage `json:"requestObject"`
	ResponseObject json.RawMessage `json:"responseObject"`
}

func readAudit(t *testing.T, path string) []auditLine {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []auditLine
	for _, l := range bytes.Split(b, []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		var a auditLine
		if err := json.Unmarshal(l, &a); err != nil {
			t.Fatalf("audit line %s: %v", l, err)
		}
		out = append(out, a)
	}
	return out
}

// TestAuditPolicy starts kube-apiserver with deploy/audit-policy.yaml and checks
// what lands in its audit log, and at which level.
func TestAuditPolicy(t *testing.T) {
	needCluster(t)
	policy, err := os.ReadFile("audit-policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c := testcluster.Start(t, testcluster.Options{AuditPolicy: string(policy)})

	do := func(method, path string, body any, want int) {
		t.Helper()
		var b []byte
		if body != nil {
			if b, err = json.Marshal(body); err != nil {
				t.Fatal(err)
			}
		}
		status, resp, err := c.Do(method, path, b, c.AdminToken)
		if err != nil || status != want {
			t.Fatalf("%s %s: %d %v, want %d\n%s", method, path, status, err, want, resp)
		}
	}
	do(http.MethodGet, "/healthz", nil, http.StatusOK)
	do(http.MethodGet, "/livez", nil, http.StatusOK)
	do(http.MethodGet, "/metrics", nil, http.StatusOK)
	do(http.MethodPost, "/api/v1/namespaces/default/events", map[string]any{
		"metadata":       map[string]any{"name": "audit-policy-test"},
		"involvedObject": map[string]any{"kind": "Pod", "name": "p", "namespace": "default"},
		"reason":         "Test", "message": "not audited", "type": "Normal",
	}, http.StatusCreated)
	do(http.MethodPost, "/api/v1/namespaces/default/configmaps", map[string]any{
		"metadata": map[string]any{"name": "audit-policy-cm"}, "data": map[string]string{"k": "v"},
	}, http.StatusCreated)
	do(http.MethodPost, "/apis/rbac.authorization.k8s.io/v1/clusterroles", map[string]any{
		"metadata": map[string]any{"name": "audit-policy-role"},
		"rules":    []any{map[string]any{"apiGroups": []string{""}, "resources": []string{"pods"}, "verbs": []string{"get"}}},
	}, http.StatusCreated)
	do(http.MethodGet, "/api/v1/namespaces/default", nil, http.StatusOK)
	// Last: blocking audit mode writes its line before the response, so once it is
	// in the log, every line of the requests above is too.
	do(http.MethodPost, "/api/v1/namespaces/default/secrets", map[string]any{
		"metadata": map[string]any{"name": "audit-policy-secret"}, "stringData": map[string]string{"password": "s3cret"},
	}, http.StatusCreated)
	c.WaitAudit(t, func(l []byte) bool { return bytes.Contains(l, []byte(`"audit-policy-secret"`)) }, 10*time.Second)

	lines := readAudit(t, c.AuditLog)
	var secret, cm, role, ns *auditLine
	for i := range lines {
		a := &lines[i]
		if a.Stage == "RequestReceived" {
			t.Errorf("stage RequestReceived is logged: %s %s", a.Verb, a.RequestURI)
		}
		for _, p := range []string{"/healthz", "/livez", "/readyz", "/metrics"} {
			if strings.HasPrefix(a.RequestURI, p) {
				t.Errorf("%s is logged: %+v", a.RequestURI, a)
			}
		}
		if a.ObjectRef == nil {
			continue
		}
		switch {
		case a.ObjectRef.Resource == "events":
			t.Errorf("an Event request is logged: %s %s", a.Verb, a.RequestURI)
		case a.Verb == "create" && a.ObjectRef.Resource == "secrets" && a.ObjectRef.Name == "audit-policy-secret":
			secret = a
		case a.Verb == "create" && a.ObjectRef.Resource == "configmaps" && a.ObjectRef.Name == "audit-policy-cm":
			cm = a
		case a.Verb == "create" && a.ObjectRef.Resource == "clusterroles" && a.ObjectRef.Name == "audit-policy-role":
			role = a
		case a.Verb == "get" && a.ObjectRef.Resource == "namespaces" && a.ObjectRef.Name == "default":
			ns = a
		}
	}
	for what, v := range map[string]struct {
		a    *auditLine
		want string
	}{
		"secret create": {secret, "Metadata"}, "configmap create": {cm, "Metadata"},
		"clusterrole create": {role, "RequestResponse"}, "namespace get": {ns, "Metadata"},
	} {
		switch {
		case v.a == nil:
			t.Errorf("%s: not in the audit log", what)
		case v.a.Level != v.want:
			t.Errorf("%s: level %s, want %s", what, v.a.Level, v.want)
		case v.want == "Metadata" && (v.a.RequestObject != nil || v.a.ResponseObject != nil):
			t.Errorf("%s: logged with its request or response object", what)
		case v.want == "RequestResponse" && (v.a.RequestObject == nil || v.a.ResponseObject == nil):
			t.Errorf("%s: request or response object missing", what)
		}
	}
	if secret != nil && bytes.Contains(secret.RequestObject, []byte("s3cret")) {
		t.Errorf("the secret's value is in the audit log")
	}
	if role != nil && bytes.Contains(role.RequestObject, []byte("managedFields")) {
		t.Errorf("managedFields are logged (omitManagedFields)")
	}
}

// fluentBitConfig is fluent-bit.yaml and plugins.conf of the rendered ConfigMap.
func fluentBitConfig(t *testing.T, docs []doc) (root *yaml.Node, text, plugins string) {
	t.Helper()
	var cm corev1.ConfigMap
	decode(t, find(t, docs, "ConfigMap", configMapName), &cm)
	text, plugins = cm.Data["fluent-bit.yaml"], cm.Data["plugins.conf"]
	if text == "" || plugins == "" {
		t.Fatalf("ConfigMap %s: want data fluent-bit.yaml and plugins.conf, have %d keys", configMapName, len(cm.Data))
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		t.Fatalf("fluent-bit.yaml: %v", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		t.Fatalf("fluent-bit.yaml is not a mapping")
	}
	return doc.Content[0], text, plugins
}

// get returns the value of key in mapping m (nil if absent), compared as Fluent Bit
// does: case-insensitively.
func get(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if strings.EqualFold(m.Content[i].Value, key) {
			return m.Content[i+1]
		}
	}
	return nil
}

// set sets key in mapping m to the scalar value.
func set(m *yaml.Node, key, value string) {
	if v := get(m, key); v != nil {
		v.Kind, v.Tag, v.Value, v.Style = yaml.ScalarNode, "!!str", value, 0
		return
	}
	m.Content = append(m.Content,
		&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key},
		&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value})
}

// props returns a plugin's scalar properties, lower-case names (Fluent Bit reads
// every YAML scalar as a string), and its other keys (processors).
func props(t *testing.T, m *yaml.Node) (map[string]string, []string) {
	t.Helper()
	out := map[string]string{}
	var other []string
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := strings.ToLower(m.Content[i].Value), m.Content[i+1]
		if v.Kind == yaml.ScalarNode {
			out[k] = v.Value
		} else {
			other = append(other, k)
		}
	}
	return out, other
}

// plugin finds the plugin named name in a sequence of plugins.
func plugin(seq *yaml.Node, name string) *yaml.Node {
	if seq == nil {
		return nil
	}
	for _, p := range seq.Content {
		if n := get(p, "name"); n != nil && n.Value == name {
			return p
		}
	}
	return nil
}

// TestFluentBitYAML checks the pipeline in the ConfigMap: k8s_events with leader
// election and the k8s_audit filter, only with properties kubetrail has and values
// it accepts, consistent with the DaemonSet (paths, environment, port) and RBAC.
func TestFluentBitYAML(t *testing.T) {
	docs := render(t)
	root, text, plugins := fluentBitConfig(t, docs)
	var ds appsv1.DaemonSet
	decode(t, find(t, docs, "DaemonSet", "kubetrail"), &ds)

	// The environment the DaemonSet gives Fluent Bit, with made-up pod values.
	env := map[string]string{}
	for _, e := range ds.Spec.Template.Spec.Containers[0].Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.FieldRef != nil:
			env[e.Name] = map[string]string{"metadata.name": "kubetrail-x7k2p", "metadata.namespace": namespace, "spec.nodeName": "cp-1"}[e.ValueFrom.FieldRef.FieldPath]
		}
	}
	// Every ${VAR} the active configuration uses is set by the DaemonSet.
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "#") {
			continue
		}
		for _, m := range regexp.MustCompile(`\$\{(\w+)\}`).FindAllStringSubmatch(l, -1) {
			if env[m[1]] == "" {
				t.Errorf("fluent-bit.yaml uses ${%s}, which the DaemonSet does not set", m[1])
			}
		}
	}
	expand := func(s string) string { return os.Expand(s, func(k string) string { return env[k] }) }

	service := get(root, "service")
	svc, _ := props(t, service)
	for k, want := range map[string]string{"http_server": "on", "http_port": "2020", "health_check": "on", "plugins_file": configDir + "/plugins.conf"} {
		if svc[k] != want {
			t.Errorf("service.%s = %q, want %q", k, svc[k], want)
		}
	}
	if !strings.HasPrefix(svc["storage.path"], stateDir+"/") {
		t.Errorf("service.storage.path %q is not under %s", svc["storage.path"], stateDir)
	}
	for _, lib := range []string{pluginsDir + "/kubetrail.so", pluginsDir + "/flb-filter_k8s_audit.so"} {
		if !regexp.MustCompile(`(?m)^\s*Path\s+` + regexp.QuoteMeta(lib) + `\s*$`).MatchString(plugins) {
			t.Errorf("plugins.conf does not list %s:\n%s", lib, plugins)
		}
	}

	pipeline := get(root, "pipeline")
	inputs := get(pipeline, "inputs")

	// k8s_events.
	ev := plugin(inputs, "k8s_events")
	if ev == nil {
		t.Fatalf("no k8s_events input in fluent-bit.yaml")
	}
	evProps, other := props(t, ev)
	if len(other) != 0 {
		t.Errorf("k8s_events: unexpected non-scalar keys %q", other)
	}
	own, unknown := fluentbit.PluginProperties("input", evProps, conf.EventsProperties)
	if len(unknown) > 0 {
		t.Errorf("k8s_events: properties %q are not in conf.EventsProperties", unknown)
	}
	g := conf.MapGetter{}
	for k, v := range own {
		g[k] = expand(v)
	}
	for k, v := range env {
		t.Setenv(k, v) // ParseEvents reads $POD_NAMESPACE and $POD_NAME
	}
	e, err := conf.ParseEvents(g)
	if err != nil {
		t.Fatalf("k8s_events does not accept the configuration: %v", err)
	}
	if !e.LeaderElection {
		t.Errorf("k8s_events: leader_election is off")
	}
	// The Lease and the checkpoint ConfigMap are those the Role names.
	if e.LeaseNamespace != namespace || e.LeaseName != leaseName || e.Identity != env["POD_NAME"] {
		t.Errorf("k8s_events: Lease %s/%s, identity %q: want %s/%s, $POD_NAME", e.LeaseNamespace, e.LeaseName, e.Identity, namespace, leaseName)
	}
	if !strings.HasPrefix(e.DB, stateDir+"/") {
		t.Errorf("k8s_events: db %q is not on the state hostPath %s", e.DB, stateDir)
	}
	if e.ClusterName == "" {
		t.Errorf("k8s_events: no cluster_name")
	}
	if e.Namespace != "" || e.API != conf.EventsAPICore {
		t.Errorf("k8s_events: kube_namespace %q, kube_events_api %q: the ClusterRole is for all namespaces", e.Namespace, e.API)
	}

	// tail of the audit log, with k8s_audit (a processor of the input, or a filter).
	tail := plugin(inputs, "tail")
	if tail == nil {
		t.Fatalf("no tail input")
	}
	tailProps, _ := props(t, tail)
	// The glob: files rotated while Fluent Bit was down are read too (k8s_audit's
	// dedup drops what tail reads again: testhost TestTailRotation).
	if tailProps["path"] != auditLogDir+"/audit*.log" || !strings.HasPrefix(tailProps["db"], stateDir+"/") {
		t.Errorf("tail: path %q, db %q", tailProps["path"], tailProps["db"])
	}
	audit := plugin(get(get(tail, "processors"), "logs"), "k8s_audit")
	auditIsFilter := false
	if audit == nil {
		audit, auditIsFilter = plugin(get(pipeline, "filters"), "k8s_audit"), true
	}
	if audit == nil {
		t.Fatalf("no k8s_audit processor of the tail input, and no k8s_audit filter")
	}
	auProps, other := props(t, audit)
	if len(other) != 0 {
		t.Errorf("k8s_audit: unexpected non-scalar keys %q", other)
	}
	kind := "processor"
	if auditIsFilter {
		kind = "filter"
	}
	own, unknown = fluentbit.PluginProperties(kind, auProps, conf.AuditProperties)
	if len(unknown) > 0 {
		t.Errorf("k8s_audit %s: properties %q are neither Fluent Bit's nor in conf.AuditProperties", kind, unknown)
	}
	ga := conf.MapGetter{}
	for k, v := range own {
		ga[k] = expand(v)
	}
	if _, err := conf.ParseAudit(ga); err != nil {
		t.Errorf("k8s_audit does not accept the configuration: %v", err)
	}
	if auditIsFilter && auProps["match"] == "" {
		t.Errorf("the k8s_audit filter has no match")
	}
	if out := get(pipeline, "outputs"); plugin(out, "stdout") == nil {
		t.Errorf("no stdout output")
	}
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// at follows a dotted path through maps.
func at(m map[string]any, path string) any {
	var cur any = m
	for _, p := range strings.Split(path, ".") {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[p]
	}
	return cur
}

func str(m map[string]any, path string) string {
	s, _ := at(m, path).(string)
	return s
}

// TestFluentBitPipeline runs the ConfigMap's fluent-bit.yaml, as the DaemonSet
// would (its environment, the plugins.conf of the ConfigMap), in a real Fluent Bit
// with build/kubetrail.so, against a kube-apiserver that uses deploy/audit-policy.yaml
// and with the ServiceAccount's own token: only the paths and the API server's
// address are changed. It checks that Events and audit records come out, that the
// leader holds the Lease and stores its checkpoint (RBAC suffices), that the health
// endpoint answers, and that the Lease is released on SIGTERM.
func TestFluentBitPipeline(t *testing.T) {
	docs := render(t)
	needCluster(t)
	bin := fluentbit.Require(t, "run the ConfigMap's pipeline")
	root := repo.Path(t)
	for _, lib := range []string{"kubetrail.so", "flb-filter_k8s_audit.so"} {
		repo.Artefact(t, "build/"+lib, "make")
	}
	policy, err := os.ReadFile("audit-policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c := testcluster.Start(t, testcluster.Options{AuditPolicy: string(policy)})
	applyRBAC(t, c, docs)

	api := func(method, path string, body any, want ...int) map[string]any {
		t.Helper()
		var b []byte
		if body != nil {
			if b, err = json.Marshal(body); err != nil {
				t.Fatal(err)
			}
		}
		status, resp, err := c.Do(method, path, b, c.AdminToken)
		if err != nil || !slices.Contains(want, status) {
			t.Fatalf("%s %s: %d %v, want %v\n%s", method, path, status, err, want, resp)
		}
		var out map[string]any
		_ = json.Unmarshal(resp, &out)
		return out
	}
	// The ServiceAccount's token, as the kubelet would mount it.
	tr := api(http.MethodPost, "/api/v1/namespaces/"+namespace+"/serviceaccounts/"+saName+"/token",
		map[string]any{"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": map[string]any{"expirationSeconds": 3600}},
		http.StatusCreated)
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(str(tr, "status.token")), 0o600); err != nil {
		t.Fatal(err)
	}

	// The configuration with this machine's paths.
	cfgRoot, text, plugins := fluentBitConfig(t, docs)
	state := filepath.Join(dir, "state")
	if err := os.Mkdir(state, 0o755); err != nil {
		t.Fatal(err)
	}
	plugins = strings.ReplaceAll(plugins, pluginsDir+"/", filepath.Join(root, "build")+"/")
	if err := os.WriteFile(filepath.Join(dir, "plugins.conf"), []byte(plugins), 0o644); err != nil {
		t.Fatal(err)
	}
	text = strings.NewReplacer(
		configDir+"/", dir+"/",
		auditLogDir+"/audit*.log", filepath.Join(filepath.Dir(c.AuditLog), "audit*.log"),
		stateDir+"/", state+"/",
	).Replace(text)
	for _, l := range strings.Split(text, "\n") {
		if s := strings.TrimSpace(l); !strings.HasPrefix(s, "#") && (strings.Contains(s, " /fluent-bit/") || strings.Contains(s, " /var/")) {
			t.Fatalf("a path of the pod is left in fluent-bit.yaml: %s", l)
		}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		t.Fatal(err)
	}
	cfgRoot = doc.Content[0]
	port := freePort(t)
	set(get(cfgRoot, "service"), "http_port", strconv.Itoa(port))
	set(get(cfgRoot, "service"), "grace", "5")
	ev := plugin(get(get(cfgRoot, "pipeline"), "inputs"), "k8s_events")
	set(ev, "kube_url", c.URL)
	set(ev, "kube_ca_file", c.CAFile)
	set(ev, "kube_token_file", tokenFile)
	set(ev, "checkpoint_interval", "1s")
	b, err := yaml.Marshal(&doc)
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "fluent-bit.yaml")
	if err := os.WriteFile(cfg, b, 0o644); err != nil {
		t.Fatal(err)
	}

	// The DaemonSet's environment.
	var ds appsv1.DaemonSet
	decode(t, find(t, docs, "DaemonSet", "kubetrail"), &ds)
	const podName, nodeName = "kubetrail-e2e01", "cp-1"
	var env []string
	vals := map[string]string{}
	for _, e := range ds.Spec.Template.Spec.Containers[0].Env {
		v := e.Value
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			v = map[string]string{"metadata.name": podName, "metadata.namespace": namespace, "spec.nodeName": nodeName}[e.ValueFrom.FieldRef.FieldPath]
		}
		env = append(env, e.Name+"="+v)
		vals[e.Name] = v
	}
	clusterName := vals["CLUSTER_NAME"]

	fb := fluentbit.Start(t, bin, dir, cfg, env...)

	// An Event (collected by k8s_events, not audited) and a Secret (audited).
	api(http.MethodPost, "/api/v1/namespaces/default/events", map[string]any{
		"metadata":       map[string]any{"name": "kubetrail-deploy-e2e"},
		"involvedObject": map[string]any{"kind": "Pod", "name": "p", "namespace": "default"},
		"reason":         "DeployE2E", "message": "from deploy_test", "type": "Warning",
		"firstTimestamp": time.Now().UTC().Format(time.RFC3339), "lastTimestamp": time.Now().UTC().Format(time.RFC3339), "count": 1,
	}, http.StatusCreated)
	api(http.MethodPost, "/api/v1/namespaces/default/secrets", map[string]any{
		"metadata": map[string]any{"name": "kubetrail-deploy-e2e"}, "stringData": map[string]string{"password": "s3cret-e2e"},
	}, http.StatusCreated)

	var event, secret map[string]any
	waitFor(t, "the Event and the Secret's audit record on stdout", 60*time.Second, func() bool {
		recs, _ := fb.Snapshot()
		for _, r := range recs {
			switch {
			case str(r, "apiVersion") == "v1" && str(r, "kind") == "Event" && str(r, "metadata.name") == "kubetrail-deploy-e2e":
				event = r
			case str(r, "apiVersion") == "audit.k8s.io/v1" && str(r, "verb") == "create" && str(r, "objectRef.resource") == "secrets" && str(r, "objectRef.name") == "kubetrail-deploy-e2e":
				secret = r
			}
		}
		return event != nil && secret != nil
	})
	if got := str(event, "cluster_name"); got != clusterName {
		t.Errorf("Event record: cluster_name %q, want %q", got, clusterName)
	}
	for path, want := range map[string]string{
		"level": "Metadata", "outcome": "success", "apiserver_node": nodeName, "cluster_name": clusterName, "user_type": "user",
	} {
		if got := str(secret, path); got != want {
			t.Errorf("Secret's audit record: %s = %q, want %q", path, got, want)
		}
	}
	if at(secret, "requestObject") != nil {
		t.Errorf("Secret's audit record has a requestObject")
	}

	// The leader's Lease and checkpoint, written with the ServiceAccount's RBAC.
	lease := api(http.MethodGet, "/apis/coordination.k8s.io/v1/namespaces/"+namespace+"/leases/"+leaseName, nil, http.StatusOK)
	if got := str(lease, "spec.holderIdentity"); got != podName {
		t.Errorf("Lease holder %q, want %q", got, podName)
	}
	var cp map[string]any
	waitFor(t, "the checkpoint ConfigMap", 30*time.Second, func() bool {
		status, resp, err := c.Do(http.MethodGet, "/api/v1/namespaces/"+namespace+"/configmaps/"+checkpointName, nil, c.AdminToken)
		return err == nil && status == http.StatusOK && json.Unmarshal(resp, &cp) == nil && str(cp, "data.checkpoint") != ""
	})
	if got := str(cp, "data.leader"); got != podName {
		t.Errorf("checkpoint stored by %q, want %q", got, podName)
	}

	// The probes' endpoint.
	resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/api/v1/health")
	if err != nil {
		t.Fatalf("health: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /api/v1/health: %d %s", resp.StatusCode, body)
	}

	recs, log := fb.Snapshot()
	nEvents, nAudit := 0, 0
	for _, r := range recs {
		if str(r, "apiVersion") == "audit.k8s.io/v1" {
			nAudit++
		} else {
			nEvents++
		}
	}
	t.Logf("Fluent Bit wrote %d Event records and %d audit records", nEvents, nAudit)
	for _, r := range recs {
		if str(r, "apiVersion") != "audit.k8s.io/v1" {
			continue
		}
		res, verb := str(r, "objectRef.resource"), str(r, "verb")
		switch {
		case res == "events":
			t.Errorf("an audit record of an Event request (the policy drops them): %s %s", verb, str(r, "requestURI"))
		case res == "leases" && (verb == "get" || verb == "update"):
			t.Errorf("a Lease renewal passed the k8s_audit drop rule: %s %s by %s", verb, str(r, "requestURI"), str(r, "user.username"))
		case strings.HasPrefix(str(r, "requestURI"), "/healthz"), strings.HasPrefix(str(r, "requestURI"), "/readyz"):
			t.Errorf("a health check is audited: %s", str(r, "requestURI"))
		}
	}
	for _, bad := range []string{"forbidden", "[error]", "[ warn]"} {
		if strings.Contains(strings.ToLower(log), bad) {
			t.Errorf("Fluent Bit's log says %q", bad)
		}
	}
	for _, f := range []string{"k8s-events.db", "tail-audit.db"} {
		if _, err := os.Stat(filepath.Join(state, f)); err != nil {
			t.Errorf("state: %v", err)
		}
	}

	// SIGTERM: the leader hands the Lease back (another pod takes over at once).
	fb.Stop()
	lease = api(http.MethodGet, "/apis/coordination.k8s.io/v1/namespaces/"+namespace+"/leases/"+leaseName, nil, http.StatusOK)
	if got := str(lease, "spec.holderIdentity"); got != "" {
		t.Errorf("after SIGTERM the Lease is still held by %q", got)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	p, err := testcluster.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	return p[0]
}
