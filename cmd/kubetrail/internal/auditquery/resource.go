package auditquery

import (
	"fmt"
	"strings"

	"github.com/kubetrail/kubetrail/enrich/rules"
)

// resourcePattern is one value of --resource: resource[.group][/subresource], as
// kubectl-dev_tool reads it ("deployments.*", "*.apps", "-subjectaccessreviews.*")
// plus a subresource.
type resourcePattern struct {
	resource rules.Pattern
	// group: nil for no group in the pattern, which means the core group ("pods" is
	// core pods only, as kubectl-dev_tool reads it); "*" matches every group, core
	// included.
	group *rules.Pattern
	// sub: nil when the pattern names no subresource (any, or none, matches).
	sub *rules.Pattern
}

func compile(p string) *rules.Pattern {
	g := rules.Compile(p)
	return &g
}

func parseResource(p string) (resourcePattern, error) {
	var rp resourcePattern
	rest, sub, hasSub := strings.Cut(p, "/")
	if hasSub {
		if sub == "" || strings.Contains(sub, "/") {
			return rp, fmt.Errorf("the subresource after \"/\" must be one non-empty name (pods/exec, */status)")
		}
		rp.sub = compile(sub)
	}
	res, group, hasGroup := strings.Cut(rest, ".")
	if res == "" {
		return rp, fmt.Errorf("no resource before the group: write resource[.group][/subresource], \"*\" for any")
	}
	rp.resource = rules.Compile(res)
	if hasGroup {
		if group == "" {
			return rp, fmt.Errorf("empty group after \".\": write \"pods\" for the core group, \"pods.*\" for any group")
		}
		rp.group = compile(group)
	}
	return rp, nil
}

func (rp resourcePattern) match(resource, group, sub []byte) bool {
	if len(resource) == 0 || !rp.resource.MatchBytes(resource) {
		return false
	}
	switch {
	case rp.group == nil:
		if len(group) != 0 {
			return false
		}
	case rp.group.String() == "*": // any group, core included
	default:
		if !rp.group.MatchBytes(group) {
			return false
		}
	}
	if rp.sub != nil && (len(sub) == 0 || !rp.sub.MatchBytes(sub)) {
		return false
	}
	return true
}

func (rp resourcePattern) String() string {
	s := rp.resource.String()
	if rp.group != nil {
		s += "." + rp.group.String()
	}
	if rp.sub != nil {
		s += "/" + rp.sub.String()
	}
	return s
}

// resourceList is --resource: included and excluded resource patterns, with List's
// logic. A non-resource request (/healthz) has no resource and matches no pattern.
type resourceList struct {
	include, exclude []resourcePattern
}

func parseResources(values []string) (resourceList, error) {
	var l resourceList
	for _, v := range SplitValues(values) {
		neg := strings.HasPrefix(v, "-")
		rp, err := parseResource(strings.TrimPrefix(v, "-"))
		if err != nil {
			return resourceList{}, fmt.Errorf("%q: %w", v, err)
		}
		if neg {
			l.exclude = append(l.exclude, rp)
		} else {
			l.include = append(l.include, rp)
		}
	}
	return l, nil
}

func (l resourceList) empty() bool { return len(l.include) == 0 && len(l.exclude) == 0 }

func (l resourceList) match(resource, group, sub []byte) bool {
	if len(resource) == 0 {
		return len(l.include) == 0
	}
	for _, rp := range l.exclude {
		if rp.match(resource, group, sub) {
			return false
		}
	}
	if len(l.include) == 0 {
		return true
	}
	for _, rp := range l.include {
		if rp.match(resource, group, sub) {
			return true
		}
	}
	return false
}
