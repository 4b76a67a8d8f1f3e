// Package auditquery holds the filters of `kubetrail audit`, written as users of
// `kubectl-dev_tool audit` (openshift/cluster-debug-tools) type them: every flag takes
// values separated by commas and/or is repeated; a value with a "-" prefix excludes;
// "*" matches any run of characters; `--resource` takes resource[.group][/subresource].
// A Query tests an enrich.Summary, so that a field means what the k8s_audit filter's
// record field of the same name means.
package auditquery

import (
	"fmt"
	"strings"
	"unsafe"

	"github.com/kubetrail/kubetrail/enrich/rules"
)

// List is the patterns of one flag: a value matches when it matches one of the
// included patterns (or there are none) and none of the excluded ones. The patterns and
// their matching are the k8s_audit filter's keep/drop rules' (enrich/rules), written
// with "-" for exclusion instead of the rules' "!": an empty value (the event does not
// say) matches no pattern, not even "*": "*" means "is set", "-*" means "is not set".
type List struct {
	pats rules.Patterns
}

// SplitValues splits flag values at commas, trims white space around each and drops
// empty ones: "--verb get,list --verb=watch" gives get, list, watch.
func SplitValues(values []string) []string {
	var out []string
	for _, v := range values {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// ParseList parses the values of one flag (see SplitValues). normalize, when not nil,
// checks and rewrites each pattern (without its "-"): lower-cases verbs, maps stages
// to their spelling.
func ParseList(values []string, normalize func(string) (string, error)) (List, error) {
	var l List
	for _, v := range SplitValues(values) {
		neg := strings.HasPrefix(v, "-")
		p := strings.TrimPrefix(v, "-")
		if p == "" {
			return List{}, fmt.Errorf("%q: nothing after the \"-\"", v)
		}
		if normalize != nil {
			var err error
			if p, err = normalize(p); err != nil {
				return List{}, fmt.Errorf("%q: %w", v, err)
			}
		}
		if neg {
			l.pats.Exclude = append(l.pats.Exclude, rules.Compile(p))
		} else {
			l.pats.Include = append(l.pats.Include, rules.Compile(p))
		}
	}
	return l, nil
}

// Empty reports whether the list has no patterns: it matches everything.
func (l List) Empty() bool { return l.pats.Empty() }

// Match reports whether one value passes the list.
func (l List) Match(v []byte) bool { return l.pats.Match(b2s(v)) }

// MatchAny is Match for a field with several values (user.groups): some value must
// match an included pattern (when there are any) and no value an excluded one. An
// empty value matches no pattern, as in Match and in the keep/drop rules.
func (l List) MatchAny(vs [][]byte) bool {
	hit := len(l.pats.Include) == 0
	for _, v := range vs {
		if len(v) == 0 {
			continue
		}
		if l.pats.Excluded(b2s(v)) {
			return false
		}
		if !hit && l.pats.Included(b2s(v)) {
			hit = true
		}
	}
	return hit
}

// String gives the list back as flag values, "a,-b".
func (l List) String() string {
	var parts []string
	for _, g := range l.pats.Include {
		parts = append(parts, g.String())
	}
	for _, g := range l.pats.Exclude {
		parts = append(parts, "-"+g.String())
	}
	return strings.Join(parts, ",")
}

// b2s views b as a string for matching, without copying; the string is not kept.
func b2s(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
