package enrich

import (
	"fmt"
	"strconv"

	"github.com/kubetrail/kubetrail/enrich/rules"
)

// Keep/drop rules over audit events, in the grammar of package rules:
//
//	stage=RequestReceived; verb=get,update resource=leases.coordination.k8s.io user=system:*
//
// Fields:
//
//	stage        RequestReceived, ResponseStarted, ResponseComplete or Panic
//	verb         get, list, watch, create, update, patch, delete, ...
//	user         user.username
//	group        user.groups, a list: some group must match a plain pattern and no
//	             group may match a negated one
//	resource     resource[.apiGroup][/subresource]; empty for a non-resource request,
//	             so "resource=*" means "is a resource request"
//	namespace    empty for cluster-scoped requests: "namespace=!kube-system" also
//	             matches them, and "namespace=!*" means "has no namespace"
//	name         objectRef.name
//	nonresource  the path of a non-resource request (/healthz, /metrics)
//	user_type    serviceaccount, node, system, anonymous, user or unauthenticated
//	code         responseStatus.code in decimal, empty when absent; patterns are
//	             digits and "*" ("4*", "403")
//
// Stage and user_type patterns without "*" must be one of the known values.

// Indexes of the audit fields in ruleSchema.
const (
	fieldStage = iota
	fieldVerb
	fieldUser
	fieldGroup
	fieldResource
	fieldNamespace
	fieldName
	fieldNonResource
	fieldUserType
	fieldCode
)

// Stages are the audit stages, as spelt in events.
var Stages = []string{"RequestReceived", "ResponseStarted", "ResponseComplete", "Panic"}

// UserTypes are the values of the user_type field (and Summary.UserType).
var UserTypes = []string{"serviceaccount", "node", "system", "anonymous", "user", "unauthenticated"}

var ruleSchema = rules.Schema{
	fieldStage:       {Name: "stage", Known: Stages},
	fieldVerb:        {Name: "verb"},
	fieldUser:        {Name: "user"},
	fieldGroup:       {Name: "group", Multi: true},
	fieldResource:    {Name: "resource"},
	fieldNamespace:   {Name: "namespace"},
	fieldName:        {Name: "name"},
	fieldNonResource: {Name: "nonresource"},
	fieldUserType:    {Name: "user_type", Known: UserTypes},
	fieldCode:        {Name: "code", Check: checkCodePattern},
}

// checkCodePattern catches code patterns that could never match.
func checkCodePattern(p string) error {
	for i := 0; i < len(p); i++ {
		if c := p[i]; c != '*' && (c < '0' || c > '9') {
			return fmt.Errorf("pattern %q: a code pattern has only digits and '*' (e.g. 403, 4*)", p)
		}
	}
	return nil
}

// RuleSet is a parsed set of keep/drop rules; the zero value is the empty set, which
// matches nothing. A RuleSet is immutable and safe for concurrent use.
type RuleSet struct {
	set rules.Set
}

// ParseRules parses a rule set (see the fields above). Empty input, or input of only
// white space and semicolons, gives the empty set.
func ParseRules(s string) (RuleSet, error) {
	set, err := rules.Parse(s, ruleSchema)
	return RuleSet{set}, err
}

// Empty reports whether the set has no rules.
func (rs RuleSet) Empty() bool { return rs.set.Empty() }

// Match reports whether the event matches any rule of the set; the empty set matches
// nothing. It does not allocate and does not keep f or its strings.
func (rs RuleSet) Match(f *Facts) bool {
	if rs.set.Empty() {
		return false
	}
	values := [...]string{
		fieldStage:       f.Stage,
		fieldVerb:        f.Verb,
		fieldUser:        f.User,
		fieldResource:    f.GroupResource,
		fieldNamespace:   f.Namespace,
		fieldName:        f.Name,
		fieldNonResource: f.NonResourceURL,
		fieldUserType:    f.UserType,
		fieldCode:        codeText(f.Code),
	}
	lists := [...][]string{fieldGroup: f.Groups}
	return rs.set.Match(values[:], lists[:])
}

// String returns the set in canonical form, "field=p1,!p2 field=p3; ...", which
// ParseRules reads back to the same set; "" for the empty set.
func (rs RuleSet) String() string { return rs.set.String() }

// codeTexts holds the decimal text of the codes 1..999 (HTTP status codes), so that
// matching a code allocates nothing.
var codeTexts = func() (t [1000]string) {
	for i := 1; i < len(t); i++ {
		t[i] = strconv.Itoa(i)
	}
	return t
}()

// codeText returns the decimal text of a response code, "" for 0 (no status).
func codeText(c int) string {
	if c >= 0 && c < len(codeTexts) {
		return codeTexts[c]
	}
	return strconv.Itoa(c) // not an HTTP status code; allocates
}
