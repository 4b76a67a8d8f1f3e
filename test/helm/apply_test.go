package helm_test

// The rendered chart applied to a real kube-apiserver (test/testcluster), each
// combination as a release in its own namespace, and its RBAC checked with
// SubjectAccessReviews as test/deploy's TestRBAC checks deploy/'s (test/rbaccheck).

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubetrail/kubetrail/test/rbaccheck"
	"github.com/kubetrail/kubetrail/test/testcluster"
)

// warnings collects the apiserver's warnings (deprecated fields, PodSecurity, ...).
type warnings struct {
	mu   sync.Mutex
	list []string
}

func (w *warnings) HandleWarningHeader(code int, agent, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, text)
}

func (w *warnings) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	l := w.list
	w.list = nil
	return l
}

// rbacChecks are what the ServiceAccount of c may do and what it may not: exactly
// what k8s_events calls (test/rbaccheck's lists, shared with test/deploy's TestRBAC,
// for c's namespace, Lease and leader election), nothing beside it, nothing in the
// other release's namespace.
func rbacChecks(c combination, other string) (allowed, denied []rbaccheck.Access) {
	return rbaccheck.Expected(rbaccheck.Params{
		Namespace: c.namespace(), Lease: c.lease, Checkpoint: c.lease + "-checkpoint", Config: c.name + "-config",
		LeaderElection: c.leader, Other: other,
	})
}

// TestApply renders every combination and applies all it renders, in Helm's install
// order, to a real kube-apiserver with server-side apply (client-go's dynamic client):
// each object accepted (schema, defaulting, admission: PodSecurity with the
// namespace's label, the priority classes), without a warning, and there after.
// Then the RBAC of each release, by SubjectAccessReview for its ServiceAccount.
func TestApply(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real kube-apiserver")
	}
	var all []rendered
	for _, c := range combinations() {
		all = append(all, render(t, c.name, c.vals))
	}
	c := testcluster.Start(t, testcluster.Options{})
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	warn := &warnings{}
	cfg.WarningHandler = warn
	cfg.QPS, cfg.Burst = -1, 0 // no client-side rate limit (client-go's default: 5 requests/s)
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	resource := func(o object) (dynamic.ResourceInterface, error) {
		u := &unstructured.Unstructured{Object: o.Obj}
		gvk := u.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			return nil, err
		}
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			if o.Namespace == "" {
				return nil, fmt.Errorf("%s: namespaced, but no namespace", o)
			}
			return dyn.Resource(m.Resource).Namespace(o.Namespace), nil
		}
		return dyn.Resource(m.Resource), nil
	}

	applied := 0
	began := time.Now()
	for i, comb := range combinations() {
		kinds := map[string]int{}
		for _, o := range all[i].Objects {
			ri, err := resource(o)
			if err != nil {
				t.Fatalf("%s: %s: %v", comb.name, o, err)
			}
			u := &unstructured.Unstructured{Object: o.Obj}
			if _, err := ri.Apply(ctx, o.Name, u, metav1.ApplyOptions{FieldManager: "kubetrail-helm-test"}); err != nil {
				t.Errorf("%s: applying %s: %v", comb.name, o, err)
				continue
			}
			if w := warn.take(); len(w) > 0 {
				t.Errorf("%s: applying %s, the apiserver warned: %q", comb.name, o, w)
			}
			got, err := ri.Get(ctx, o.Name, metav1.GetOptions{})
			if err != nil {
				t.Errorf("%s: %s not there after the apply: %v", comb.name, o, err)
				continue
			}
			if got.GetUID() == "" || got.GetNamespace() != o.Namespace {
				t.Errorf("%s: %s read back as %s/%s", comb.name, o, got.GetNamespace(), got.GetName())
			}
			applied++
			kinds[o.Kind]++
		}
		t.Logf("%s: applied %d objects %v (rendered in %v)", comb.name, len(all[i].Objects), kinds, all[i].Took.Round(time.Microsecond))
	}
	t.Logf("applied %d objects of %d releases in %v", applied, len(all), time.Since(began).Round(time.Millisecond))

	// RBAC.
	sar := func(comb combination, a rbaccheck.Access) (bool, string) {
		r, err := cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, rbaccheck.Review(comb.namespace(), serviceAccount(comb), a), metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("SubjectAccessReview: %v", err)
		}
		return r.Status.Allowed, r.Status.Reason
	}
	passed, checks := 0, 0
	combs := combinations()
	for i, comb := range combs {
		other := combs[(i+1)%len(combs)].namespace()
		allowed, denied := rbacChecks(comb, other)
		p, n := rbaccheck.Check(t, comb.name+": the ServiceAccount", allowed, denied, func(a rbaccheck.Access) (bool, string) { return sar(comb, a) })
		passed, checks = passed+p, checks+n
	}
	t.Logf("RBAC: %d of %d SubjectAccessReviews as expected", passed, checks)
}

// serviceAccount is the name of c's ServiceAccount.
func serviceAccount(c combination) string {
	if sa, _ := at(c.vals, "serviceAccount.name").(string); sa != "" {
		return sa
	}
	return c.name
}
