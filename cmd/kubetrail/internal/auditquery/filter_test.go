package auditquery

import (
	"bufio"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kubetrail/kubetrail/enrich"
	"github.com/kubetrail/kubetrail/test/repo"
)

func TestGlob(t *testing.T) {
	for _, c := range []struct {
		pattern, value string
		want           bool
	}{
		{"get", "get", true},
		{"get", "gets", false},
		{"*", "x", true},
		{"system:*", "system:node:a", true},
		{"system:*", "system", false},
		{"*:kube-system:*", "system:serviceaccount:kube-system:default", true},
		{"*:kube-system:*", "system:serviceaccount:default:kube-system", false},
		{"a*b*c", "abc", true},
		{"a*b*c", "axbyc", true},
		{"a*b*c", "acb", false},
		{"a*a", "a", false},
		{"*-gc", "generic-gc", true},
		{"**", "", true},
	} {
		if got := compile(c.pattern).MatchBytes([]byte(c.value)); got != c.want {
			t.Errorf("%q matches %q = %v, want %v", c.pattern, c.value, got, c.want)
		}
	}
}

func TestList(t *testing.T) {
	for _, c := range []struct {
		values []string
		norm   func(string) (string, error)
		match  []string // values that pass; "" is the absent value
		fail   []string
		err    string
	}{
		{values: nil, match: []string{"", "x"}},
		{values: []string{"get,list", "watch"}, match: []string{"get", "list", "watch"}, fail: []string{"", "create"}},
		{values: []string{" get , ,list "}, match: []string{"get", "list"}, fail: []string{" get "}},
		// only exclusions: everything else passes, as in kubectl-dev_tool
		{values: []string{"-get,-list"}, match: []string{"watch", ""}, fail: []string{"get", "list"}},
		{values: []string{"system:*,-system:node:*"}, match: []string{"system:admin"}, fail: []string{"system:node:a", "alice", ""}},
		{values: []string{"*"}, match: []string{"a"}, fail: []string{""}},
		{values: []string{"-*"}, match: []string{""}, fail: []string{"a"}},
		{values: []string{"GET,List"}, norm: lower, match: []string{"get", "list"}, fail: []string{"GET"}},
		{values: []string{"403,4xx"}, norm: code, match: []string{"403", "404", "422"}, fail: []string{"200", "", "5"}},
		{values: []string{"-2*"}, norm: code, match: []string{"403", ""}, fail: []string{"200", "201"}},
		{values: []string{"responsecomplete,PANIC"}, norm: known("stage", enrich.Stages), match: []string{"ResponseComplete", "Panic"}, fail: []string{"ResponseStarted"}},
		{values: []string{"Response*"}, norm: known("stage", enrich.Stages), match: []string{"ResponseComplete", "ResponseStarted"}, fail: []string{"Panic"}},
		{values: []string{"ResponseCompleted"}, norm: known("stage", enrich.Stages), err: `"ResponseCompleted": unknown stage: want one of RequestReceived, ResponseStarted, ResponseComplete, Panic`},
		{values: []string{"40x3"}, norm: code, err: `"40x3": not a status code: want 403, 4xx or 4*`},
		{values: []string{"a,-"}, err: `"-": nothing after the "-"`},
	} {
		l, err := ParseList(c.values, c.norm)
		if c.err != "" {
			if err == nil || err.Error() != c.err {
				t.Errorf("%q: err %v, want %s", c.values, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.values, err)
			continue
		}
		for _, v := range c.match {
			if !l.Match([]byte(v)) {
				t.Errorf("%q (%s) does not match %q", c.values, l, v)
			}
		}
		for _, v := range c.fail {
			if l.Match([]byte(v)) {
				t.Errorf("%q (%s) matches %q", c.values, l, v)
			}
		}
	}
}

func TestMatchAny(t *testing.T) {
	l, _ := ParseList([]string{"system:masters,-system:unauthenticated"}, nil)
	for _, c := range []struct {
		groups []string
		want   bool
	}{
		{[]string{"system:authenticated", "system:masters"}, true},
		{[]string{"system:authenticated"}, false},
		{[]string{"system:masters", "system:unauthenticated"}, false},
		{nil, false},
	} {
		var vs [][]byte
		for _, g := range c.groups {
			vs = append(vs, []byte(g))
		}
		if got := l.MatchAny(vs); got != c.want {
			t.Errorf("%q: %v", c.groups, got)
		}
	}
	// An empty group matches no pattern, not even "*" (as Match and the keep/drop rules).
	all, _ := ParseList([]string{"*"}, nil)
	if all.MatchAny([][]byte{{}}) || !all.MatchAny([][]byte{{}, []byte("g")}) {
		t.Errorf(`"*" over an empty group: want no match; beside a real one: want a match`)
	}
}

func TestResource(t *testing.T) {
	type gr struct{ res, group, sub string }
	pods, podsExec := gr{"pods", "", ""}, gr{"pods", "", "exec"}
	deploy, deployScale := gr{"deployments", "apps", ""}, gr{"deployments", "apps", "scale"}
	oldDeploy := gr{"deployments", "extensions", ""}
	sar := gr{"subjectaccessreviews", "authorization.k8s.io", ""}
	cfg := gr{"clusteroperators", "config.openshift.io", "status"}
	nonResource := gr{"", "", ""}
	all := []gr{pods, podsExec, deploy, deployScale, oldDeploy, sar, cfg, nonResource}
	for _, c := range []struct {
		values []string
		match  []gr
		err    string
	}{
		{values: []string{"pods"}, match: []gr{pods, podsExec}},
		{values: []string{"pods/exec"}, match: []gr{podsExec}},
		{values: []string{"deployments"}, match: nil}, // core group only, as in kubectl-dev_tool
		{values: []string{"deployments.*"}, match: []gr{deploy, deployScale, oldDeploy}},
		{values: []string{"deployments.apps"}, match: []gr{deploy, deployScale}},
		{values: []string{"*.apps"}, match: []gr{deploy, deployScale}},
		{values: []string{"*.*"}, match: []gr{pods, podsExec, deploy, deployScale, oldDeploy, sar, cfg}},
		{values: []string{"*.*/*"}, match: []gr{podsExec, deployScale, cfg}},
		{values: []string{"*/status"}, match: nil},
		{values: []string{"*.*/status"}, match: []gr{cfg}},
		{values: []string{"*.*", "-subjectaccessreviews.*,-*.config.openshift.io"}, match: []gr{pods, podsExec, deploy, deployScale, oldDeploy}},
		{values: []string{"-pods.*"}, match: []gr{deploy, deployScale, oldDeploy, sar, cfg, nonResource}},
		{values: []string{"*.*.k8s.io"}, match: []gr{sar}},
		{values: []string{".apps"}, err: `".apps": no resource before the group`},
		{values: []string{"pods."}, err: `"pods.": empty group after "."`},
		{values: []string{"pods/"}, err: `"pods/": the subresource after "/" must be one non-empty name`},
	} {
		l, err := parseResources(c.values)
		if c.err != "" {
			if err == nil || !strings.HasPrefix(err.Error(), c.err) {
				t.Errorf("%q: err %v, want %s", c.values, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", c.values, err)
		}
		var got []gr
		for _, r := range all {
			if l.match([]byte(r.res), []byte(r.group), []byte(r.sub)) {
				got = append(got, r)
			}
		}
		if !slices.Equal(got, c.match) {
			t.Errorf("%q matches %v, want %v", c.values, got, c.match)
		}
	}
}

func TestParseTime(t *testing.T) {
	now := time.Date(2025, 11, 20, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"2025-11-20T10:15:00Z":          time.Date(2025, 11, 20, 10, 15, 0, 0, time.UTC),
		"2025-11-20T10:15:00.5+01:00":   time.Date(2025, 11, 20, 9, 15, 0, 5e8, time.UTC),
		"2025-11-20T10:15:00":           time.Date(2025, 11, 20, 10, 15, 0, 0, time.UTC),
		"2025-11-20 10:15:00.123456789": time.Date(2025, 11, 20, 10, 15, 0, 123456789, time.UTC),
		"2025-11-20":                    time.Date(2025, 11, 20, 0, 0, 0, 0, time.UTC),
		"90m":                           time.Date(2025, 11, 20, 10, 30, 0, 0, time.UTC),
		"2d":                            time.Date(2025, 11, 18, 12, 0, 0, 0, time.UTC),
	} {
		got, err := ParseTime(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"yesterday", "-5m", "2025-13-01", "10:15"} {
		if _, err := ParseTime(bad, now); err == nil {
			t.Errorf("ParseTime(%q) accepted", bad)
		}
	}
}

func TestNewErrors(t *testing.T) {
	for _, c := range []struct {
		spec Spec
		err  string
	}{
		{Spec{Stages: []string{"Complete"}}, "--stage \"Complete\": unknown stage"},
		{Spec{UserTypes: []string{"robot"}}, "--user-type \"robot\": unknown user type"},
		{Spec{Codes: []string{"ok"}}, "--code \"ok\": not a status code"},
		{Spec{Resources: []string{"pods/"}}, "--resource \"pods/\""},
		{Spec{LongRunning: "maybe"}, "--long-running \"maybe\": want true or false"},
		{Spec{After: "soon"}, "--after \"soon\""},
		{Spec{After: "2025-11-20T11:00:00Z", Before: "2025-11-20T10:00:00Z"}, "--after 2025-11-20T11:00:00Z is not before --before"},
		{Spec{SlowerThan: "fast"}, "--slower-than \"fast\""},
	} {
		if _, err := New(c.spec); err == nil || !strings.HasPrefix(err.Error(), c.err) {
			t.Errorf("%+v: err %v, want %s...", c.spec, err, c.err)
		}
	}
}

// event is the test's own decoding of an audit event with encoding/json, to check the
// filters against values computed without enrich.
type event struct {
	AuditID, Stage, Verb, UserAgent string
	User                            struct {
		Username string
		Groups   []string
	}
	SourceIPs []string
	ObjectRef *struct {
		Resource, Namespace, Name, APIGroup, Subresource string
	}
	ResponseStatus                                      *struct{ Code int }
	RequestReceivedTimestamp, Timestamp, StageTimestamp time.Time
}

func corpus(t *testing.T) (lines [][]byte, events []event) {
	t.Helper()
	files := append(repo.SharedAuditFiles(t, "*.log"), repo.SharedAuditFiles(t, "*.json")...)
	for _, f := range []string{"apiserver-metadata.log", "metadata.log", "requestresponse.log"} {
		files = append(files, repo.Path(t, "enrich", "testdata", f))
	}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			var e event
			if json.Unmarshal(sc.Bytes(), &e) != nil || e.AuditID == "" {
				continue
			}
			lines = append(lines, append([]byte(nil), sc.Bytes()...))
			events = append(events, e)
		}
		fh.Close()
	}
	if len(events) < 600 { // the repository's own 682, more with the shared corpora
		t.Fatalf("corpus: %d events", len(events))
	}
	return lines, events
}

func TestMatchCorpus(t *testing.T) {
	lines, events := corpus(t)
	e, _ := enrich.New(enrich.Options{Summary: true})
	w := e.NewWorker()
	or := func(p *struct{ Resource, Namespace, Name, APIGroup, Subresource string }) struct {
		Resource, Namespace, Name, APIGroup, Subresource string
	} {
		if p == nil {
			return struct{ Resource, Namespace, Name, APIGroup, Subresource string }{}
		}
		return *p
	}
	codeOf := func(ev event) int {
		if ev.ResponseStatus == nil {
			return 0
		}
		return ev.ResponseStatus.Code
	}
	received := func(ev event) time.Time {
		if !ev.RequestReceivedTimestamp.IsZero() {
			return ev.RequestReceivedTimestamp
		}
		return ev.Timestamp
	}
	for _, c := range []struct {
		name string
		spec Spec
		want func(ev event) bool
	}{
		{"all", Spec{}, func(event) bool { return true }},
		{"verb", Spec{Verbs: []string{"GET,list", "watch"}}, func(ev event) bool {
			return ev.Verb == "get" || ev.Verb == "list" || ev.Verb == "watch"
		}},
		{"not get", Spec{Verbs: []string{"-get"}}, func(ev event) bool { return ev.Verb != "get" }},
		{"user prefix", Spec{Users: []string{"system:serviceaccount:*", "-system:serviceaccount:kube-system:*"}}, func(ev event) bool {
			u := ev.User.Username
			return strings.HasPrefix(u, "system:serviceaccount:") && !strings.HasPrefix(u, "system:serviceaccount:kube-system:")
		}},
		{"group", Spec{Groups: []string{"system:masters"}}, func(ev event) bool { return slices.Contains(ev.User.Groups, "system:masters") }},
		{"namespace", Spec{Namespaces: []string{"kube-system,default"}}, func(ev event) bool {
			ns := or(ev.ObjectRef).Namespace
			return ns == "kube-system" || ns == "default"
		}},
		{"cluster-scoped", Spec{Namespaces: []string{"-*"}}, func(ev event) bool { return or(ev.ObjectRef).Namespace == "" }},
		{"resource any group", Spec{Resources: []string{"leases.*,pods"}}, func(ev event) bool {
			r := or(ev.ObjectRef)
			return r.Resource == "leases" || r.Resource == "pods" && r.APIGroup == ""
		}},
		{"resource group", Spec{Resources: []string{"*.rbac.authorization.k8s.io"}}, func(ev event) bool {
			return or(ev.ObjectRef).APIGroup == "rbac.authorization.k8s.io" && or(ev.ObjectRef).Resource != ""
		}},
		{"subresource", Spec{Resources: []string{"*.*/status"}}, func(ev event) bool {
			return or(ev.ObjectRef).Subresource == "status" && or(ev.ObjectRef).Resource != ""
		}},
		{"no subresource", Spec{Subresources: []string{"-*"}}, func(ev event) bool { return or(ev.ObjectRef).Subresource == "" }},
		{"name", Spec{Names: []string{"kube-*"}}, func(ev event) bool { return strings.HasPrefix(or(ev.ObjectRef).Name, "kube-") }},
		{"codes", Spec{Codes: []string{"403,404", "5xx"}}, func(ev event) bool {
			c := codeOf(ev)
			return c == 403 || c == 404 || c >= 500 && c < 600
		}},
		{"not 2xx", Spec{Codes: []string{"-2xx"}}, func(ev event) bool { c := codeOf(ev); return c < 200 || c > 299 }},
		{"failed", Spec{Failed: true}, func(ev event) bool { return codeOf(ev) >= 400 || ev.Stage == "Panic" }},
		{"stage", Spec{Stages: []string{"ResponseStarted"}}, func(ev event) bool { return ev.Stage == "ResponseStarted" }},
		{"no RequestReceived or ResponseStarted", Spec{Stages: []string{"-RequestReceived,-ResponseStarted"}}, func(ev event) bool {
			return ev.Stage != "RequestReceived" && ev.Stage != "ResponseStarted"
		}},
		{"each request at its last stage", Spec{FinalStage: true}, func(ev event) bool {
			return ev.Stage != "RequestReceived" && (ev.Stage != "ResponseStarted" || codeOf(ev) >= 400)
		}},
		{"audit ID", Spec{AuditIDs: []string{events[5].AuditID}}, func(ev event) bool { return ev.AuditID == events[5].AuditID }},
		{"user agent", Spec{UserAgents: []string{"kubectl/*"}}, func(ev event) bool { return strings.HasPrefix(ev.UserAgent, "kubectl/") }},
		{"after/before", Spec{After: "2020-01-01T00:00:00Z", Before: "2026-11-22T00:00:00Z"}, func(ev event) bool {
			t := received(ev)
			return !t.IsZero() && !t.Before(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)) && t.Before(time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC))
		}},
		{"slower than 100ms", Spec{SlowerThan: "100ms"}, func(ev event) bool {
			return !ev.StageTimestamp.IsZero() && !received(ev).IsZero() && ev.StageTimestamp.Sub(received(ev)) >= 100*time.Millisecond
		}},
		{"combined", Spec{Verbs: []string{"-watch"}, Namespaces: []string{"kube-system"}, Codes: []string{"2*"}}, func(ev event) bool {
			c := codeOf(ev)
			return ev.Verb != "watch" && or(ev.ObjectRef).Namespace == "kube-system" && c >= 200 && c < 300
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f, err := New(c.spec)
			if err != nil {
				t.Fatal(err)
			}
			var groups [][]byte
			matched := 0
			for i, line := range lines {
				res := w.Text(line)
				if res.Err != nil || len(res.Records) != 1 {
					t.Fatalf("line %d: %v", i, res.Err)
				}
				var got bool
				got, groups = f.Match(&res.Records[0].Summary, groups)
				if want := c.want(events[i]); got != want {
					t.Fatalf("event %s: match %v, want %v", events[i].AuditID, got, want)
				}
				if got {
					matched++
				}
			}
			// A filter that matches nothing, or everything, tests little.
			if matched == 0 || c.name != "all" && matched == len(lines) && c.name != "after/before" {
				t.Errorf("%d of %d events matched", matched, len(lines))
			}
			t.Logf("%d of %d events matched", matched, len(lines))
		})
	}
}

func TestMatchAllocations(t *testing.T) {
	lines, _ := corpus(t)
	e, _ := enrich.New(enrich.Options{Summary: true})
	w := e.NewWorker()
	f, _ := New(Spec{Verbs: []string{"get,list"}, Groups: []string{"system:*"}, Resources: []string{"*.*"}, Codes: []string{"2xx"}, After: "2000-01-01"})
	res := w.Text(lines[0])
	groups := make([][]byte, 0, 16)
	if n := testing.AllocsPerRun(100, func() { _, groups = f.Match(&res.Records[0].Summary, groups) }); n != 0 {
		t.Errorf("Match allocates %v times", n)
	}
}
