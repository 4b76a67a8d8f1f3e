package auditquery

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/kubetrail/kubetrail/enrich"
)

// Spec is what the user typed: the values of each flag, as given (SplitValues splits
// them). The zero Spec matches every record.
type Spec struct {
	Verbs, Users, Groups, Namespaces, Names []string
	// Resources are resource[.group][/subresource] patterns.
	Resources, Subresources []string
	// Codes are HTTP status codes: "403", "4xx" (or "4*"), "-200".
	Codes []string
	// Stages: RequestReceived, ResponseStarted, ResponseComplete, Panic (any case).
	Stages []string
	// FinalStage keeps each request once, at the last stage the apiserver logged for it
	// (enrich.FinalStage): RequestReceived is left out, and so is ResponseStarted (a
	// long-running request's, whose ResponseComplete follows even when it failed) but
	// for a failed authentication, which the apiserver writes (401, no user) at
	// ResponseStarted and at no other stage: leaving out every ResponseStarted (as
	// kubectl-dev_tool does) would hide every 401.
	FinalStage bool
	// UserTypes: serviceaccount, node, system, anonymous, user, unauthenticated.
	UserTypes                      []string
	AuditIDs, UserAgents, SourceIP []string
	// Failed keeps only requests whose outcome is failure (4xx, 5xx, Panic, forbid).
	Failed bool
	// LongRunning: "" for any, "true" or "false".
	LongRunning string
	// After and Before bound requestReceivedTimestamp: After <= t < Before. Each is an
	// RFC 3339 time ("2025-11-20T10:15:00Z", "2025-11-20T10:15:00.5+01:00"), a time
	// without zone (UTC), a date, or a duration before Now ("90m", "2h", "3d").
	After, Before string
	// SlowerThan keeps requests that took at least this long ("500ms", "2s").
	SlowerThan string
	// Now is what relative times count back from; zero: time.Now().
	Now time.Time
}

// Query is a parsed Spec: the events `kubetrail audit` keeps. It is immutable and safe for concurrent use.
type Query struct {
	verbs, users, groups, namespaces, names, subresources     List
	codes, stages, userTypes, auditIDs, userAgents, sourceIPs List
	resources                                                 resourceList
	failed, finalStage                                        bool
	longRunning                                               int // 0 any, 1 true, 2 false
	after, before                                             time.Time
	slowerThanMs                                              float64
	hasSlower                                                 bool
	// all is set when no filter is given: Match is then true without looking.
	all bool
}

// New parses a Spec; errors name the flag and the value at fault.
func New(s Spec) (*Query, error) {
	f := &Query{}
	var err error
	lists := []struct {
		flag   string
		values []string
		dst    *List
		norm   func(string) (string, error)
	}{
		{"verb", s.Verbs, &f.verbs, lower},
		{"user", s.Users, &f.users, nil},
		{"group", s.Groups, &f.groups, nil},
		{"namespace", s.Namespaces, &f.namespaces, nil},
		{"name", s.Names, &f.names, nil},
		{"subresource", s.Subresources, &f.subresources, nil},
		{"code", s.Codes, &f.codes, code},
		{"stage", s.Stages, &f.stages, known("stage", enrich.Stages)},
		{"user-type", s.UserTypes, &f.userTypes, known("user type", enrich.UserTypes)},
		{"audit-id", s.AuditIDs, &f.auditIDs, nil},
		{"user-agent", s.UserAgents, &f.userAgents, nil},
		{"source-ip", s.SourceIP, &f.sourceIPs, nil},
	}
	for _, l := range lists {
		if *l.dst, err = ParseList(l.values, l.norm); err != nil {
			return nil, fmt.Errorf("--%s %w", l.flag, err)
		}
	}
	if f.resources, err = parseResources(s.Resources); err != nil {
		return nil, fmt.Errorf("--resource %w", err)
	}
	f.failed = s.Failed
	f.finalStage = s.FinalStage
	switch strings.ToLower(s.LongRunning) {
	case "":
	case "true", "yes", "1":
		f.longRunning = 1
	case "false", "no", "0":
		f.longRunning = 2
	default:
		return nil, fmt.Errorf("--long-running %q: want true or false", s.LongRunning)
	}
	now := s.Now
	if now.IsZero() {
		now = time.Now()
	}
	if f.after, err = ParseTime(s.After, now); err != nil {
		return nil, fmt.Errorf("--after %w", err)
	}
	if f.before, err = ParseTime(s.Before, now); err != nil {
		return nil, fmt.Errorf("--before %w", err)
	}
	if !f.after.IsZero() && !f.before.IsZero() && !f.after.Before(f.before) {
		return nil, fmt.Errorf("--after %s is not before --before %s: no request can match",
			f.after.Format(time.RFC3339Nano), f.before.Format(time.RFC3339Nano))
	}
	if s.SlowerThan != "" {
		d, err := time.ParseDuration(s.SlowerThan)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("--slower-than %q: want a duration such as 500ms or 2s", s.SlowerThan)
		}
		f.slowerThanMs, f.hasSlower = float64(d)/float64(time.Millisecond), true
	}
	f.all = !f.failed && !f.finalStage && f.longRunning == 0 && f.after.IsZero() && f.before.IsZero() && !f.hasSlower && f.resources.empty()
	for _, l := range lists {
		f.all = f.all && l.dst.Empty()
	}
	return f, nil
}

// Match reports whether a record passes every filter. groups is scratch space for
// user.groups (pass the slice returned last time to avoid allocating); it returns it.
func (f *Query) Match(s *enrich.Summary, groups [][]byte) (bool, [][]byte) {
	if f.all {
		return true, groups
	}
	if !f.verbs.Match(s.Verb) || !f.users.Match(s.User) || !f.namespaces.Match(s.Namespace) ||
		!f.names.Match(s.Name) || !f.subresources.Match(s.Subresource) || !f.stages.Match(s.Stage) ||
		!f.auditIDs.Match(s.AuditID) || !f.userAgents.Match(s.UserAgent) || !f.sourceIPs.Match(s.ClientIP) ||
		!f.userTypes.Match([]byte(s.UserType)) {
		return false, groups
	}
	if !f.resources.empty() && !f.resources.match(s.Resource, s.APIGroup, s.Subresource) {
		return false, groups
	}
	if !f.codes.Empty() {
		var buf [20]byte
		var c []byte
		if s.Code != 0 {
			c = strconv.AppendInt(buf[:0], int64(s.Code), 10)
		}
		if !f.codes.Match(c) {
			return false, groups
		}
	}
	if f.finalStage && !finalStage(s) {
		return false, groups
	}
	if f.failed && s.Outcome != "failure" {
		return false, groups
	}
	if f.longRunning == 1 && !s.LongRunning || f.longRunning == 2 && s.LongRunning {
		return false, groups
	}
	if !f.after.IsZero() || !f.before.IsZero() {
		if s.Received.IsZero() {
			return false, groups
		}
		t := s.Received.Go()
		if !f.after.IsZero() && t.Before(f.after) || !f.before.IsZero() && !t.Before(f.before) {
			return false, groups
		}
	}
	if f.hasSlower && (!s.HasDuration || s.DurationMs < f.slowerThanMs) {
		return false, groups
	}
	if !f.groups.Empty() {
		groups = s.Groups(groups[:0])
		if !f.groups.MatchAny(groups) {
			return false, groups
		}
	}
	return true, groups
}

func lower(p string) (string, error) { return strings.ToLower(p), nil }

// code accepts digits and '*', and "4xx" for "4*".
func code(p string) (string, error) {
	if strings.HasSuffix(strings.ToLower(p), "xx") && len(p) == 3 {
		p = p[:1] + "*"
	}
	for _, c := range p {
		if (c < '0' || c > '9') && c != '*' {
			return "", fmt.Errorf("not a status code: want 403, 4xx or 4*")
		}
	}
	return p, nil
}

// known maps a pattern without '*' to the spelling of one of the values, whatever
// its case, and refuses others: a misspelt stage would silently match nothing.
func known(what string, values []string) func(string) (string, error) {
	return func(p string) (string, error) {
		if strings.Contains(p, "*") {
			return p, nil
		}
		for _, v := range values {
			if strings.EqualFold(p, v) {
				return v, nil
			}
		}
		return "", fmt.Errorf("unknown %s: want one of %s", what, strings.Join(values, ", "))
	}
}

// ParseTime reads an --after/--before value (see Spec.After); "" gives the zero time.
func ParseTime(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	if n, ok := strings.CutSuffix(s, "d"); ok {
		if days, err := strconv.Atoi(n); err == nil && days >= 0 {
			return now.Add(-time.Duration(days) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q: want an RFC 3339 time (2025-11-20T10:15:00Z), a date (2025-11-20) or a duration before now (90m, 2h, 3d)", s)
}

// finalStage reports whether the record is the last the apiserver wrote for its
// request (see Spec.FinalStage and enrich.FinalStage, which k8s_audit's metrics field
// uses too).
func finalStage(s *enrich.Summary) bool { return enrich.FinalStage(s.Stage, int64(s.Code), s.User) }
