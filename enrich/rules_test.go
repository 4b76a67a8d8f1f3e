package enrich

import (
	"reflect"
	"regexp"
	"strings"
	"testing"
)

func TestParseRules(t *testing.T) {
	tests := []struct {
		in    string
		want  string // canonical form; ignored when err is set
		rules int
		err   string // expected error substring; "" for success
	}{
		{in: "", want: "", rules: 0},
		{in: "  \t ", want: "", rules: 0},
		{in: " ; ;; ", want: "", rules: 0},
		{in: "stage=RequestReceived", want: "stage=RequestReceived", rules: 1},
		{in: "nonresource=/healthz*,/readyz*,/livez*", want: "nonresource=/healthz*,/readyz*,/livez*", rules: 1},
		{in: "verb=get,update resource=leases.coordination.k8s.io user=system:*",
			want: "verb=get,update resource=leases.coordination.k8s.io user=system:*", rules: 1},
		{in: "user=system:*,!system:serviceaccount:*", want: "user=system:*,!system:serviceaccount:*", rules: 1},
		{in: "code=4*,5*", want: "code=4*,5*", rules: 1},
		{in: "group=system:nodes", want: "group=system:nodes", rules: 1},
		{in: "namespace=!kube-system", want: "namespace=!kube-system", rules: 1},
		{in: "  stage=RequestReceived ;  verb=watch\tuser_type=node ;", want: "stage=RequestReceived; verb=watch user_type=node", rules: 2},
		{in: "name=a=b", want: "name=a=b", rules: 1},
		{in: "stage=Response*", want: "stage=Response*", rules: 1},
		{in: "user_type=!serviceaccount,!node", want: "user_type=!serviceaccount,!node", rules: 1},

		{in: "foo=bar", err: `rule "foo=bar": unknown field "foo" (valid fields: stage, verb, user, group, resource, namespace, name, nonresource, user_type, code)`},
		{in: "Verb=get", err: `unknown field "Verb"`},
		{in: "verb", err: `rule "verb": "verb": missing '='`},
		{in: "verb=get list", err: `"list": missing '='`},
		{in: "verb=get, list", err: "no spaces are allowed around '=' or ','"},
		{in: "verb= get", err: `rule "verb= get": "verb= get": no spaces are allowed around '=' or ','`},
		{in: "verb =get", err: "no spaces are allowed"},
		{in: "verb=get ,list", err: "no spaces are allowed"},
		{in: "verb= user=a", err: "no spaces are allowed"},
		{in: "=get", err: "missing field name"},
		{in: "verb=", err: `rule "verb=": field "verb": empty pattern list`},
		{in: "verb=get,", err: `field "verb": empty pattern in "get,"`},
		{in: "verb=,get", err: "empty pattern"},
		{in: "verb=get,,list", err: "empty pattern"},
		{in: "user=a user=b", err: `rule "user=a user=b": field "user" given more than once`},
		{in: "stage=Panic; user=a user_type=node user=b", err: `field "user" given more than once`},
		{in: "user=!", err: `field "user": "!" without a pattern`},
		{in: "user=a,!", err: `"!" without a pattern`},
		{in: "user=!!a", err: "double negation"},
		{in: "code=4xx", err: `pattern "4xx": a code pattern has only digits`},
		{in: "code=!-1", err: "only digits"},
		{in: "stage=ResponseCompleted", err: `pattern "ResponseCompleted": not one of RequestReceived, ResponseStarted, ResponseComplete, Panic`},
		{in: "user_type=ServiceAccount", err: "not one of serviceaccount, node"},
		{in: "stage=Panic; bad", err: `rule "bad"`},
	}
	for _, tt := range tests {
		rs, err := ParseRules(tt.in)
		if tt.err != "" {
			if err == nil {
				t.Errorf("ParseRules(%q) = %q, want error containing %q", tt.in, rs, tt.err)
			} else if !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseRules(%q) error %q, want it to contain %q", tt.in, err, tt.err)
			}
			if !rs.Empty() {
				t.Errorf("ParseRules(%q) returned rules with an error", tt.in)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseRules(%q): %v", tt.in, err)
			continue
		}
		if got := rs.String(); got != tt.want {
			t.Errorf("ParseRules(%q).String() = %q, want %q", tt.in, got, tt.want)
		}
		if len(rs.rules) != tt.rules || rs.Empty() != (tt.rules == 0) {
			t.Errorf("ParseRules(%q): %d rules, Empty %v; want %d", tt.in, len(rs.rules), rs.Empty(), tt.rules)
		}
		// Round trip: the canonical form parses back to the same set.
		again, err := ParseRules(rs.String())
		if err != nil {
			t.Errorf("ParseRules(%q) (canonical of %q): %v", rs.String(), tt.in, err)
		} else if !reflect.DeepEqual(again, rs) {
			t.Errorf("round trip of %q changed the set: %#v vs %#v", tt.in, again, rs)
		}
	}
}

func TestGlobRule(t *testing.T) {
	tests := []struct {
		pat, s string
		want   bool
	}{
		{"*", "a", true},
		{"*", "a/b.c", true},
		{"**", "x", true},
		{"a*b*c", "abc", true},
		{"a*b*c", "aXbYc", true},
		{"a*b*c", "abbbcc", true},
		{"a*b*c", "acb", false},
		{"a*b*c", "ab", false},
		{"a*b*c", "abcd", false},
		{"*x", "x", true},
		{"*x", "abx", true},
		{"*x", "xa", false},
		{"x*", "x", true},
		{"x*", "ax", false},
		{"a*a", "a", false},
		{"a*a", "aa", true},
		{"*ab*ab*", "abab", true},
		{"*ab*ab*", "aab", false},
		{"a?c", "abc", false},
		{"a?c", "a?c", true},
		{"[ab]", "a", false},
		{"[ab]", "[ab]", true},
		{"pods", "Pods", false},
		{"pods", "pods", true},
		{"pods", "pods/exec", false},
		{"pods*", "pods/exec", true},
		{"*.apps*", "deployments.apps/scale", true},
	}
	for _, tt := range tests {
		g := compileGlob(tt.pat)
		if got := g.match(tt.s); got != tt.want {
			t.Errorf("glob %q match %q = %v, want %v", tt.pat, tt.s, got, tt.want)
		}
	}
}

// TestGlobRuleExhaustive compares the glob matcher with a regexp on every pattern and
// string of up to 5 characters over a small alphabet.
func TestGlobRuleExhaustive(t *testing.T) {
	var all func(alphabet string, n int) []string
	all = func(alphabet string, n int) []string {
		if n == 0 {
			return []string{""}
		}
		out := []string{""}
		for _, s := range all(alphabet, n-1) {
			if len(s) == n-1 {
				for _, c := range alphabet {
					out = append(out, s+string(c))
				}
			}
		}
		return append(out, all(alphabet, n-1)[1:]...)
	}
	pats, strs := all("ab*", 5), all("ab?", 5)
	for _, p := range pats {
		re := regexp.MustCompile("^" + strings.ReplaceAll(regexp.QuoteMeta(p), `\*`, ".*") + "$")
		g := compileGlob(p)
		for _, s := range strs {
			if got, want := g.match(s), re.MatchString(s); got != want {
				t.Fatalf("glob %q match %q = %v, want %v", p, s, got, want)
			}
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
