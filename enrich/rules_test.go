package enrich

import (
	"reflect"
	"testing"
)

// TestParseRules covers the audit fields; the grammar itself is tested in package rules.
func TestParseRules(t *testing.T) {
	for in, want := range map[string]string{
		"":                                       "",
		" ; ;; ":                                 "",
		"stage=RequestReceived":                  "stage=RequestReceived",
		"nonresource=/healthz*,/readyz*,/livez*": "nonresource=/healthz*,/readyz*,/livez*",
		"verb=get,update resource=leases.coordination.k8s.io user=system:*": "verb=get,update resource=leases.coordination.k8s.io user=system:*",
		"user=system:*,!system:serviceaccount:*":                            "user=system:*,!system:serviceaccount:*",
		"code=4*,5*":                                                        "code=4*,5*",
		"group=system:nodes":                                                "group=system:nodes",
		"namespace=!kube-system":                                            "namespace=!kube-system",
		"  stage=RequestReceived ;  verb=watch\tuser_type=node ;":           "stage=RequestReceived; verb=watch user_type=node",
		"name=a=b":                        "name=a=b",
		"stage=Response*":                 "stage=Response*",
		"user_type=!serviceaccount,!node": "user_type=!serviceaccount,!node",
	} {
		rs, err := ParseRules(in)
		if err != nil || rs.String() != want || rs.Empty() != (want == "") {
			t.Errorf("ParseRules(%q) = %q (empty %v), %v; want %q", in, rs, rs.Empty(), err, want)
			continue
		}
		if again, err := ParseRules(want); err != nil || !reflect.DeepEqual(again, rs) {
			t.Errorf("round trip of %q changed the set: %#v, %v", in, again, err)
		}
	}
	for in, want := range map[string]string{
		"foo=bar":                  `rule "foo=bar": unknown field "foo" (valid fields: stage, verb, user, group, resource, namespace, name, nonresource, user_type, code)`,
		"Verb=get":                 `rule "Verb=get": unknown field "Verb" (valid fields: stage, verb, user, group, resource, namespace, name, nonresource, user_type, code)`,
		"verb":                     `rule "verb": "verb": missing '=' (want field=pattern[,pattern...])`,
		"verb= get":                `rule "verb= get": "verb= get": no spaces are allowed around '=' or ','`,
		"verb=":                    `rule "verb=": field "verb": empty pattern list`,
		"user=a user=b":            `rule "user=a user=b": field "user" given more than once (list its patterns instead: user=a,b,!c)`,
		"group=!":                  `rule "group=!": field "group": "!" without a pattern`,
		"code=4xx":                 `rule "code=4xx": field "code": pattern "4xx": a code pattern has only digits and '*' (e.g. 403, 4*)`,
		"code=!-1":                 `rule "code=!-1": field "code": pattern "-1": a code pattern has only digits and '*' (e.g. 403, 4*)`,
		"stage=ResponseCompleted":  `rule "stage=ResponseCompleted": field "stage": pattern "ResponseCompleted": not one of RequestReceived, ResponseStarted, ResponseComplete, Panic`,
		"user_type=ServiceAccount": `rule "user_type=ServiceAccount": field "user_type": pattern "ServiceAccount": not one of serviceaccount, node, system, anonymous, user, unauthenticated`,
		"stage=Panic; bad":         `rule "bad": "bad": missing '=' (want field=pattern[,pattern...])`,
	} {
		rs, err := ParseRules(in)
		if err == nil || err.Error() != want || !rs.Empty() {
			t.Errorf("ParseRules(%q) = %q, %v; want the empty set and error %q", in, rs, err, want)
		}
	}
}

func TestRuleMatch(t *testing.T) {
	base := Facts{
		Stage:         "ResponseComplete",
		Verb:          "update",
		User:          "system:kube-scheduler",
		Groups:        []string{"system:authenticated"},
		GroupResource: "leases.coordination.k8s.io",
		Namespace:     "kube-system",
		Name:          "kube-scheduler",
		UserType:      "system",
		Code:          200,
	}
	nonResource := Facts{
		Stage:          "ResponseComplete",
		Verb:           "get",
		User:           "system:anonymous",
		Groups:         []string{"system:unauthenticated"},
		NonResourceURL: "/healthz/etcd",
		UserType:       "anonymous",
		Code:           403,
	}
	sa := Facts{
		Stage:         "RequestReceived",
		Verb:          "create",
		User:          "system:serviceaccount:default:builder",
		Groups:        []string{"system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated"},
		GroupResource: "pods/exec",
		Namespace:     "default",
		Name:          "web-0",
		UserType:      "serviceaccount",
	}
	node := Facts{
		Stage:         "ResponseStarted",
		Verb:          "watch",
		User:          "system:node:worker-1",
		Groups:        []string{"system:nodes", "system:authenticated"},
		GroupResource: "nodes",
		Name:          "worker-1",
		UserType:      "node",
		Code:          500,
	}
	noGroups := Facts{Stage: "ResponseComplete", Verb: "list", User: "alice", UserType: "user", GroupResource: "pods", Code: 200}

	tests := []struct {
		rules string
		f     *Facts
		want  bool
	}{
		// stage
		{"stage=RequestReceived", &sa, true},
		{"stage=RequestReceived", &base, false},
		{"stage=Response*", &node, true},
		{"stage=!RequestReceived", &sa, false},
		{"stage=!RequestReceived", &base, true},
		// verb
		{"verb=get,update", &base, true},
		{"verb=get,update", &sa, false},
		{"verb=!get,!list", &noGroups, false},
		{"verb=!get,!list", &base, true},
		// user
		{"user=system:*", &base, true},
		{"user=system:*", &noGroups, false},
		{"user=system:*,!system:serviceaccount:*", &base, true},
		{"user=system:*,!system:serviceaccount:*", &sa, false},
		{"user=system:*,!system:serviceaccount:*", &noGroups, false},
		{"user=!system:*", &noGroups, true},
		// group: any group matches; negation: no group matches
		{"group=system:nodes", &node, true},
		{"group=system:nodes", &base, false},
		{"group=system:nodes", &noGroups, false},
		{"group=system:serviceaccounts:*", &sa, true},
		{"group=system:authenticated,!system:nodes", &base, true},
		{"group=system:authenticated,!system:nodes", &node, false},
		{"group=!system:nodes", &node, false},
		{"group=!system:nodes", &sa, true},
		{"group=!system:nodes", &noGroups, true},
		{"group=*", &noGroups, false},
		// resource: empty for non-resource requests, so "*" means "is a resource request"
		{"resource=leases.coordination.k8s.io", &base, true},
		{"resource=leases.coordination.k8s.io", &node, false},
		{"resource=*", &base, true},
		{"resource=*", &nonResource, false},
		{"resource=!*", &nonResource, true},
		{"resource=!*", &base, false},
		{"resource=pods/*", &sa, true},
		{"resource=pods/*", &noGroups, false},
		{"resource=pods", &sa, false},
		{"resource=!pods/exec", &sa, false},
		{"resource=!pods/exec", &nonResource, true},
		// namespace
		{"namespace=!kube-system", &base, false},
		{"namespace=!kube-system", &sa, true},
		{"namespace=!kube-system", &node, true}, // cluster-scoped
		{"namespace=kube-*", &base, true},
		{"namespace=*", &node, false},
		{"namespace=!*", &node, true},
		// name
		{"name=kube-scheduler", &base, true},
		{"name=kube-scheduler", &sa, false},
		{"name=web-*", &sa, true},
		{"name=!web-*", &sa, false},
		// nonresource
		{"nonresource=/healthz*,/readyz*,/livez*", &nonResource, true},
		{"nonresource=/healthz*,/readyz*,/livez*", &base, false},
		{"nonresource=/healthz", &nonResource, false},
		{"nonresource=*,!/healthz/*", &nonResource, false},
		// user_type
		{"user_type=serviceaccount", &sa, true},
		{"user_type=serviceaccount", &node, false},
		{"user_type=!serviceaccount,!node", &base, true},
		{"user_type=!serviceaccount,!node", &node, false},
		// code: decimal text, 0 = no status = ""
		{"code=4*,5*", &nonResource, true},
		{"code=4*,5*", &node, true},
		{"code=4*,5*", &base, false},
		{"code=4*,5*", &sa, false},
		{"code=403", &nonResource, true},
		{"code=40", &nonResource, false},
		{"code=!2*", &sa, true},
		{"code=!2*", &base, false},
		{"code=*", &sa, false},
		{"code=!*", &sa, true},
		// several matchers: all must match
		{"verb=get,update resource=leases.coordination.k8s.io user=system:*", &base, true},
		{"verb=get,update resource=leases.coordination.k8s.io user=system:*", &noGroups, false},
		{"verb=update resource=leases.coordination.k8s.io user=!system:kube-*", &base, false},
		// several rules: any may match
		{"stage=RequestReceived; nonresource=/healthz*", &sa, true},
		{"stage=RequestReceived; nonresource=/healthz*", &nonResource, true},
		{"stage=RequestReceived; nonresource=/healthz*", &base, false},
		// empty set matches nothing
		{"", &base, false},
	}
	for _, tt := range tests {
		rs, err := ParseRules(tt.rules)
		if err != nil {
			t.Fatalf("ParseRules(%q): %v", tt.rules, err)
		}
		if got := rs.Match(tt.f); got != tt.want {
			t.Errorf("%q.Match(%+v) = %v, want %v", tt.rules, *tt.f, got, tt.want)
		}
	}
}

func TestCodeText(t *testing.T) {
	for c, want := range map[int]string{0: "", 7: "7", 200: "200", 999: "999", 1000: "1000", -1: "-1"} {
		if got := codeText(c); got != want {
			t.Errorf("codeText(%d) = %q, want %q", c, got, want)
		}
	}
}

func benchRules(tb testing.TB) (RuleSet, []Facts) {
	rs, err := ParseRules("stage=RequestReceived; nonresource=/healthz*,/readyz*,/livez*; " +
		"verb=get,update resource=leases.coordination.k8s.io user=system:*,!system:serviceaccount:*; " +
		"group=system:nodes code=2*,3*; namespace=kube-*,!kube-public name=*-lock*")
	if err != nil {
		tb.Fatal(err)
	}
	facts := []Facts{
		{Stage: "ResponseComplete", Verb: "update", User: "system:kube-controller-manager",
			Groups: []string{"system:authenticated"}, GroupResource: "leases.coordination.k8s.io",
			Namespace: "kube-system", Name: "kube-controller-manager", UserType: "system", Code: 200},
		{Stage: "ResponseComplete", Verb: "create", User: "alice@example.com",
			Groups: []string{"devs", "system:authenticated"}, GroupResource: "deployments.apps",
			Namespace: "shop", Name: "web", UserType: "user", Code: 201},
		{Stage: "ResponseComplete", Verb: "get", User: "system:node:worker-1",
			Groups: []string{"system:nodes", "system:authenticated"}, GroupResource: "configmaps",
			Namespace: "default", Name: "settings", UserType: "node", Code: 404},
	}
	return rs, facts
}

func TestRuleSetMatchAllocs(t *testing.T) {
	rs, facts := benchRules(t)
	allocs := testing.AllocsPerRun(100, func() {
		for i := range facts {
			rs.Match(&facts[i])
		}
	})
	if allocs != 0 {
		t.Errorf("RuleSet.Match allocates %v times per run, want 0", allocs)
	}
}

func BenchmarkRuleSetMatch(b *testing.B) {
	rs, facts := benchRules(b)
	b.ReportAllocs()
	n := 0
	for i := 0; b.Loop(); i++ {
		if rs.Match(&facts[i%len(facts)]) {
			n++
		}
	}
	_ = n
}

// TestRuleFactsThroughWorker runs one keep rule per field through Worker.Text, so that
// the Facts the Worker extracts from a parsed event (not hand-made ones) are matched:
// every field of every event has a value no other field has, a rule on the right field
// keeps the event and the same value under any other field does not.
func TestRuleFactsThroughWorker(t *testing.T) {
	events := []struct {
		name string
		json string
		// field -> its value in the event ("" for none)
		facts map[string]string
	}{
		{"resource, objectRef with group and subresource", ev(map[string]any{
			"stage": "ResponseStarted", "verb": "create",
			"requestURI":     "/apis/apps/v1/namespaces/team-a/deployments/web-0/scale",
			"user":           map[string]any{"username": "system:serviceaccount:team-a:builder", "groups": []string{"system:serviceaccounts", "devs-1", "devs-2"}},
			"objectRef":      map[string]any{"resource": "deployments", "subresource": "scale", "apiGroup": "apps", "namespace": "team-a", "name": "web-0", "apiVersion": "v1"},
			"responseStatus": map[string]any{"code": 201},
		}), map[string]string{
			"stage": "ResponseStarted", "verb": "create", "user": "system:serviceaccount:team-a:builder",
			"group": "devs-2", "resource": "deployments.apps/scale", "namespace": "team-a", "name": "web-0",
			"nonresource": "", "user_type": "serviceaccount", "code": "201",
		}},
		{"non-resource", ev(map[string]any{
			"stage": "RequestReceived", "verb": "head", "requestURI": "/healthz/etcd?verbose=1",
			"user":      map[string]any{"username": "system:anonymous", "groups": []string{"system:unauthenticated"}},
			"objectRef": nil, "responseStatus": nil,
		}), map[string]string{
			"stage": "RequestReceived", "verb": "head", "user": "system:anonymous",
			"group": "system:unauthenticated", "resource": "", "namespace": "", "name": "",
			"nonresource": "/healthz/etcd", "user_type": "anonymous", "code": "",
		}},
		{"resource from the URI, no groups", ev(map[string]any{
			"stage": "Panic", "verb": "patch", "requestURI": "/api/v1/namespaces/shop/configmaps/settings",
			"user":      map[string]any{"username": "system:node:worker-1"},
			"objectRef": nil, "responseStatus": map[string]any{"code": 500},
		}), map[string]string{
			"stage": "Panic", "verb": "patch", "user": "system:node:worker-1",
			"group": "", "resource": "configmaps", "namespace": "shop", "name": "settings",
			"nonresource": "", "user_type": "node", "code": "500",
		}},
	}
	fields := []string{"stage", "verb", "user", "group", "resource", "namespace", "name", "nonresource", "user_type", "code"}
	kept := func(t *testing.T, rule, event string) bool {
		t.Helper()
		keep, err := ParseRules(rule)
		if err != nil {
			t.Fatalf("ParseRules(%q): %v", rule, err)
		}
		o := defaults()
		o.Keep = keep
		e, err := New(o)
		if err != nil {
			t.Fatal(err)
		}
		res := e.NewWorker().Text([]byte(event))
		if res.Err != nil {
			t.Fatalf("%s: %v", event, res.Err)
		}
		if len(res.Records)+res.Dropped != 1 {
			t.Fatalf("keep %q: %d records, %d dropped; want one or the other", rule, len(res.Records), res.Dropped)
		}
		return len(res.Records) == 1
	}
	for _, ev := range events {
		t.Run(ev.name, func(t *testing.T) {
			for _, f := range fields {
				v := ev.facts[f]
				if f == "stage" || f == "user_type" {
					// Known values only: the other values of the list must not match.
					known := Stages
					if f == "user_type" {
						known = UserTypes
					}
					for _, k := range known {
						if got := kept(t, f+"="+k, ev.json); got != (k == v) {
							t.Errorf("keep %s=%s: kept %v, the event's %s is %q", f, k, got, f, v)
						}
					}
					continue
				}
				if v == "" {
					// No value: "*" matches nothing, "!*" matches.
					if kept(t, f+"=*", ev.json) || !kept(t, f+"=!*", ev.json) {
						t.Errorf("keep %s=* kept or %s=!* dropped an event without %s", f, f, f)
					}
					continue
				}
				if !kept(t, f+"="+v, ev.json) {
					t.Errorf("keep %s=%s dropped the event", f, v)
				}
				if kept(t, f+"=!"+v, ev.json) {
					t.Errorf("keep %s=!%s kept the event", f, v)
				}
				// The same value under every other field: no match.
				for _, other := range fields {
					if other == f || other == "stage" || other == "user_type" || ev.facts[other] == v {
						continue
					}
					if other == "code" {
						continue // digits only
					}
					if kept(t, other+"="+v, ev.json) {
						t.Errorf("keep %s=%s kept the event: the value is its %s", other, v, f)
					}
				}
			}
		})
	}
}
