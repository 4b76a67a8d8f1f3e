// Package auditquery holds the filters of `kubetrail audit`, written as users of
// `kubectl-dev_tool audit` (openshift/cluster-debug-tools) type them: every flag takes
// values separated by commas and/or is repeated; a value with a "-" prefix excludes;
// "*" matches any run of characters; `--resource` takes resource[.group][/subresource].
// A Filter tests an enrich.Summary, so that a field means what the k8s_audit filter's
// record field of the same name means.
package auditquery

import (
	"bytes"
	"fmt"
	"strings"
)

// List is the patterns of one flag: a value matches when it matches one of the
// included patterns (or there are none) and none of the excluded ones. As in the
// k8s_audit filter's keep/drop rules, an empty value (the event does not say) matches
// no pattern, not even "*": "*" means "is set", "-*" means "is not set".
type List struct {
	include, exclude []glob
}

// glob is a pattern split at its '*'s: "a*b*c" is {"a", "b", "c"}, "*" is {"", ""}.
type glob []string

func compile(p string) glob { return strings.Split(p, "*") }

func (g glob) String() string { return strings.Join(g, "*") }

// match reports whether v matches the pattern. It does not allocate.
func (g glob) match(v []byte) bool {
	if len(g) == 1 {
		return string(v) == g[0]
	}
	first, last := g[0], g[len(g)-1]
	if len(v) < len(first)+len(last) || string(v[:len(first)]) != first || string(v[len(v)-len(last):]) != last {
		return false
	}
	v = v[len(first) : len(v)-len(last)]
	for _, part := range g[1 : len(g)-1] {
		i := bytes.Index(v, []byte(part))
		if i < 0 {
			return false
		}
		v = v[i+len(part):]
	}
	return true
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
			l.exclude = append(l.exclude, compile(p))
		} else {
			l.include = append(l.include, compile(p))
		}
	}
	return l, nil
}

// Empty reports whether the list has no patterns: it matches everything.
func (l List) Empty() bool { return len(l.include) == 0 && len(l.exclude) == 0 }

// Match reports whether one value passes the list.
func (l List) Match(v []byte) bool {
	if len(v) == 0 {
		return len(l.include) == 0
	}
	for _, g := range l.exclude {
		if g.match(v) {
			return false
		}
	}
	if len(l.include) == 0 {
		return true
	}
	for _, g := range l.include {
		if g.match(v) {
			return true
		}
	}
	return false
}

// MatchAny is Match for a field with several values (user.groups): some value must
// match an included pattern (when there are any) and no value an excluded one. An
// empty value matches no pattern, as in Match and in the keep/drop rules.
func (l List) MatchAny(vs [][]byte) bool {
	for _, v := range vs {
		if len(v) == 0 {
			continue
		}
		for _, g := range l.exclude {
			if g.match(v) {
				return false
			}
		}
	}
	if len(l.include) == 0 {
		return true
	}
	for _, v := range vs {
		if len(v) == 0 {
			continue
		}
		for _, g := range l.include {
			if g.match(v) {
				return true
			}
		}
	}
	return false
}

// String gives the list back as flag values, "a,-b".
func (l List) String() string {
	var parts []string
	for _, g := range l.include {
		parts = append(parts, g.String())
	}
	for _, g := range l.exclude {
		parts = append(parts, "-"+g.String())
	}
	return strings.Join(parts, ",")
}
