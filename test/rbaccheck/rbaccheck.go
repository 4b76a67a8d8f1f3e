// Package rbaccheck is the table of what kubetrail's ServiceAccount may do and what
// it may not, checked with SubjectAccessReviews against a real kube-apiserver by
// test/deploy (deploy/rbac.yaml) and test/helm (the chart's RBAC, per release).
//
// Allowed is exactly what k8s_events calls (plugin/k8sevents: list and watch Events;
// with leader election, get, create and update its Lease and checkpoint ConfigMap);
// denied is what lies next to it.
package rbaccheck

import (
	"fmt"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Access is one request the ServiceAccount may or may not make.
type Access struct {
	Verb, Group, Resource, Namespace, Name string
}

func (a Access) String() string {
	return fmt.Sprintf("%s %s/%s %s/%s", a.Verb, a.Group, a.Resource, a.Namespace, a.Name)
}

// Attributes are a's ResourceAttributes for a SubjectAccessReview.
func (a Access) Attributes() *authorizationv1.ResourceAttributes {
	return &authorizationv1.ResourceAttributes{Verb: a.Verb, Group: a.Group, Resource: a.Resource, Namespace: a.Namespace, Name: a.Name}
}

// Params name kubetrail's objects in the installation checked.
type Params struct {
	Namespace      string // kubetrail's namespace (its ServiceAccount's, leader_election_namespace)
	Lease          string // leader_election_name
	Checkpoint     string // the checkpoint ConfigMap: <leader_election_name>-checkpoint
	Config         string // the ConfigMap holding fluent-bit.yaml
	LeaderElection bool   // leader_election on: the Lease and checkpoint rules granted
	// Other is another installation's namespace (another Helm release), whose Lease
	// and checkpoint (the default names) must be out of reach; "" for none.
	Other string
}

// DefaultLease is leader_election_name's default; the checkpoint is DefaultLease+"-checkpoint".
const DefaultLease = "kubetrail-k8s-events"

// Expected are the accesses the ServiceAccount must be allowed and those it must be
// denied. allowed is never empty; its first and last entries come from different
// bindings when leader election is on (Check waits for both).
func Expected(p Params) (allowed, denied []Access) {
	ns, lease, cp := p.Namespace, p.Lease, p.Checkpoint
	allowed = []Access{
		// Events: list and watch, both API groups, cluster-wide and so in any namespace.
		{"list", "", "events", "", ""},
		{"watch", "", "events", "", ""},
		{"list", "events.k8s.io", "events", "", ""},
		{"watch", "events.k8s.io", "events", "", ""},
		{"list", "", "events", "default", ""},
		{"watch", "events.k8s.io", "events", "kube-system", ""},
	}
	// Leader election: get/update its own Lease and checkpoint by name; create
	// namespace-wide (the authorizer sees no name on a create). Without leader
	// election there is no Role: none of it.
	election := []Access{
		{"get", "coordination.k8s.io", "leases", ns, lease},
		{"create", "coordination.k8s.io", "leases", ns, ""},
		{"update", "coordination.k8s.io", "leases", ns, lease},
		{"get", "", "configmaps", ns, cp},
		{"create", "", "configmaps", ns, ""},
		{"update", "", "configmaps", ns, cp},
	}
	if p.LeaderElection {
		allowed = append(allowed, election...)
	} else {
		denied = append(denied, election...)
	}
	denied = append(denied, []Access{
		// Secrets and other workloads' objects.
		{"get", "", "secrets", "", ""},
		{"list", "", "secrets", "", ""},
		{"get", "", "secrets", ns, "any"},
		{"list", "", "secrets", ns, ""},
		{"list", "", "pods", "", ""},
		{"list", "", "pods", ns, ""},
		// Events: read, never written; not even get (the input never GETs one).
		{"create", "", "events", "default", ""},
		{"create", "events.k8s.io", "events", "default", ""},
		{"delete", "", "events", "default", "some-event"},
		{"delete", "events.k8s.io", "events", "default", "some-event"},
		{"patch", "", "events", "default", "some-event"},
		{"get", "", "events", "default", "some-event"},
		// Leases: only its own, only get/update (create cannot name it).
		{"update", "coordination.k8s.io", "leases", "kube-system", lease},
		{"update", "coordination.k8s.io", "leases", "kube-system", "kube-controller-manager"},
		{"get", "coordination.k8s.io", "leases", "kube-system", "kube-scheduler"},
		{"create", "coordination.k8s.io", "leases", "kube-system", ""},
		{"update", "coordination.k8s.io", "leases", ns, "another-lease"},
		{"get", "coordination.k8s.io", "leases", ns, "another-lease"},
		{"patch", "coordination.k8s.io", "leases", ns, lease},
		{"delete", "coordination.k8s.io", "leases", ns, lease},
		{"list", "coordination.k8s.io", "leases", ns, ""},
		{"watch", "coordination.k8s.io", "leases", ns, ""},
		// ConfigMaps: only the checkpoint, only get/update; not its own configuration.
		{"get", "", "configmaps", "kube-system", "kubeadm-config"},
		{"get", "", "configmaps", "kube-system", cp},
		{"create", "", "configmaps", "kube-system", ""},
		{"update", "", "configmaps", ns, "arbitrary-name"},
		{"get", "", "configmaps", ns, p.Config},
		{"update", "", "configmaps", ns, p.Config},
		{"patch", "", "configmaps", ns, cp},
		{"delete", "", "configmaps", ns, cp},
		{"list", "", "configmaps", ns, ""},
		{"watch", "", "configmaps", ns, ""},
	}...)
	if p.Other != "" {
		// Another release's Lease and checkpoint: the Role is in its own namespace only.
		denied = append(denied, []Access{
			{"get", "coordination.k8s.io", "leases", p.Other, DefaultLease},
			{"update", "coordination.k8s.io", "leases", p.Other, DefaultLease},
			{"create", "coordination.k8s.io", "leases", p.Other, ""},
			{"update", "", "configmaps", p.Other, DefaultLease + "-checkpoint"},
		}...)
	}
	return allowed, denied
}

// Review is the SubjectAccessReview asking whether the ServiceAccount namespace/name,
// with the groups its token carries, may do a.
func Review(namespace, name string, a Access) *authorizationv1.SubjectAccessReview {
	return &authorizationv1.SubjectAccessReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "authorization.k8s.io/v1", Kind: "SubjectAccessReview"},
		Spec: authorizationv1.SubjectAccessReviewSpec{
			User:               User(namespace, name),
			Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"},
			ResourceAttributes: a.Attributes(),
		},
	}
}

// User is the user name of the ServiceAccount namespace/name.
func User(namespace, name string) string {
	return "system:serviceaccount:" + namespace + ":" + name
}

// Check asks sar (a SubjectAccessReview, e.g. of Review) about every access of allowed
// and denied and reports each answer not as expected as an error, prefixed by who.
// It first waits up to 20s for the bindings to be in effect. It returns how many
// answers were as expected, of how many.
func Check(t testing.TB, who string, allowed, denied []Access, sar func(Access) (bool, string)) (passed, checks int) {
	t.Helper()
	// The RBAC authorizer learns of new bindings through informers: wait for them.
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok1, _ := sar(allowed[0])
		ok2, _ := sar(allowed[len(allowed)-1])
		if ok1 && ok2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the bindings are not in effect after 20s", who)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, a := range allowed {
		checks++
		if ok, why := sar(a); !ok {
			t.Errorf("%s may not %s, want allowed (%s)", who, a, why)
		} else {
			passed++
		}
	}
	for _, a := range denied {
		checks++
		if ok, why := sar(a); ok {
			t.Errorf("%s may %s, want denied (%s)", who, a, why)
		} else {
			passed++
		}
	}
	return passed, checks
}
