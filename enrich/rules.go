package enrich

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Keep/drop rules.
//
// Grammar (one line, as one Fluent Bit property value):
//
//	ruleset  = [ rule { ";" rule } ]        ; empty rules are ignored
//	rule     = matcher { WS matcher }       ; WS: spaces or tabs
//	matcher  = field "=" pattern { "," pattern }
//	pattern  = [ "!" ] text                 ; text: non-empty, no WS, ";" or ","
//	field    = stage | verb | user | group | resource | namespace | name |
//	           nonresource | user_type | code
//
// An event matches a rule set when it matches any of its rules, and a rule when it
// matches all of the rule's matchers. A matcher matches when the event's value matches
// any of its plain patterns (or it has none) and none of its negated ("!") patterns.
// For group, the value is the list of the user's groups: some group must match a plain
// pattern and no group may match a negated one.
//
// In a pattern, "*" matches any run of characters (none included, '/' and '.' included);
// every other character, '?' and '[' among them, stands for itself. Matching is
// case-sensitive. An empty value (no namespace, no response code, the resource of a
// non-resource request...) matches no pattern at all, not even "*": "resource=*" means
// "is a resource request", "namespace=!kube-system" also matches cluster-scoped
// requests, and "namespace=!*" means "has no namespace".
//
// A field may appear only once in a rule (list its patterns instead). Code patterns
// are digits and "*" ("4*", "403"); stage and user_type patterns without "*" must be
// one of the known values.

// ruleField identifies the Facts field a matcher looks at.
type ruleField uint8

const (
	fieldStage ruleField = iota
	fieldVerb
	fieldUser
	fieldGroup
	fieldResource
	fieldNamespace
	fieldName
	fieldNonResource
	fieldUserType
	fieldCode
	numRuleFields
)

var ruleFieldNames = [numRuleFields]string{
	fieldStage:       "stage",
	fieldVerb:        "verb",
	fieldUser:        "user",
	fieldGroup:       "group",
	fieldResource:    "resource",
	fieldNamespace:   "namespace",
	fieldName:        "name",
	fieldNonResource: "nonresource",
	fieldUserType:    "user_type",
	fieldCode:        "code",
}

// knownValues lists the values a literal pattern of a closed field may take.
var knownValues = [numRuleFields][]string{
	fieldStage:    {"RequestReceived", "ResponseStarted", "ResponseComplete", "Panic"},
	fieldUserType: {"serviceaccount", "node", "system", "anonymous", "user", "unauthenticated"},
}

// RuleSet is a parsed set of keep/drop rules; the zero value is the empty set, which
// matches nothing. A RuleSet is immutable and safe for concurrent use.
type RuleSet struct {
	rules []rule
}

type rule struct {
	matchers []matcher
}

type matcher struct {
	field ruleField
	any   []glob // plain patterns; empty: no constraint
	none  []glob // negated patterns
	text  []string
}

// glob is a compiled pattern in which only '*' is special.
type glob struct {
	wild   bool
	lit    string   // the whole pattern when !wild
	prefix string   // text before the first '*'
	suffix string   // text after the last '*'
	middle []string // non-empty texts between stars, in order
}

func compileGlob(p string) glob {
	if strings.IndexByte(p, '*') < 0 {
		return glob{lit: p}
	}
	segs := strings.Split(p, "*")
	g := glob{wild: true, prefix: segs[0], suffix: segs[len(segs)-1]}
	for _, s := range segs[1 : len(segs)-1] {
		if s != "" {
			g.middle = append(g.middle, s)
		}
	}
	return g
}

// match reports whether s matches the pattern. It does not allocate.
func (g *glob) match(s string) bool {
	if !g.wild {
		return s == g.lit
	}
	if len(s) < len(g.prefix)+len(g.suffix) ||
		s[:len(g.prefix)] != g.prefix || s[len(s)-len(g.suffix):] != g.suffix {
		return false
	}
	s = s[len(g.prefix) : len(s)-len(g.suffix)]
	// Taking the leftmost occurrence of each middle text is optimal when '*' is the
	// only wildcard: it leaves the most room for the texts after it.
	for _, m := range g.middle {
		i := strings.Index(s, m)
		if i < 0 {
			return false
		}
		s = s[i+len(m):]
	}
	return true
}

func anyMatch(gs []glob, s string) bool {
	for i := range gs {
		if gs[i].match(s) {
			return true
		}
	}
	return false
}

// ParseRules parses a rule set (see the grammar above). Empty input, or input of only
// white space and semicolons, gives the empty set.
func ParseRules(s string) (RuleSet, error) {
	var rs RuleSet
	for _, text := range strings.Split(s, ";") {
		text = strings.TrimSpace(text)
		if text == "" {
			continue
		}
		r, err := parseRule(text)
		if err != nil {
			return RuleSet{}, fmt.Errorf("rule %q: %w", text, err)
		}
		rs.rules = append(rs.rules, r)
	}
	return rs, nil
}

func parseRule(text string) (rule, error) {
	var r rule
	var seen [numRuleFields]bool
	toks := strings.Fields(text)
	for i, tok := range toks {
		if i+1 < len(toks) && (strings.HasSuffix(tok, "=") || strings.HasSuffix(tok, ",") ||
			toks[i+1][0] == '=' || toks[i+1][0] == ',') {
			return rule{}, fmt.Errorf("%q: no spaces are allowed around '=' or ','", tok+" "+toks[i+1])
		}
		eq := strings.IndexByte(tok, '=')
		if eq < 0 {
			return rule{}, fmt.Errorf("%q: missing '=' (want field=pattern[,pattern...])", tok)
		}
		name := tok[:eq]
		if name == "" {
			return rule{}, fmt.Errorf("%q: missing field name before '='", tok)
		}
		f, ok := lookupField(name)
		if !ok {
			return rule{}, fmt.Errorf("unknown field %q (valid fields: %s)", name, strings.Join(ruleFieldNames[:], ", "))
		}
		if seen[f] {
			return rule{}, fmt.Errorf("field %q given more than once (list its patterns instead: %s=a,b,!c)", name, name)
		}
		seen[f] = true
		m, err := parseMatcher(f, tok[eq+1:])
		if err != nil {
			return rule{}, fmt.Errorf("field %q: %w", name, err)
		}
		r.matchers = append(r.matchers, m)
	}
	return r, nil
}

func lookupField(name string) (ruleField, bool) {
	for f, n := range ruleFieldNames {
		if n == name {
			return ruleField(f), true
		}
	}
	return 0, false
}

func parseMatcher(f ruleField, list string) (matcher, error) {
	if list == "" {
		return matcher{}, errors.New("empty pattern list")
	}
	m := matcher{field: f}
	for _, p := range strings.Split(list, ",") {
		if p == "" {
			return matcher{}, fmt.Errorf("empty pattern in %q", list)
		}
		text, neg := p, false
		if text[0] == '!' {
			text, neg = text[1:], true
			if text == "" {
				return matcher{}, errors.New(`"!" without a pattern`)
			}
			if text[0] == '!' {
				return matcher{}, fmt.Errorf("pattern %q: double negation", p)
			}
		}
		if err := checkPattern(f, text); err != nil {
			return matcher{}, err
		}
		if neg {
			m.none = append(m.none, compileGlob(text))
		} else {
			m.any = append(m.any, compileGlob(text))
		}
		m.text = append(m.text, p)
	}
	return m, nil
}

// checkPattern catches patterns that could never match.
func checkPattern(f ruleField, p string) error {
	if f == fieldCode {
		for i := 0; i < len(p); i++ {
			if c := p[i]; c != '*' && (c < '0' || c > '9') {
				return fmt.Errorf("pattern %q: a code pattern has only digits and '*' (e.g. 403, 4*)", p)
			}
		}
		return nil
	}
	known := knownValues[f]
	if known == nil || strings.IndexByte(p, '*') >= 0 {
		return nil
	}
	for _, k := range known {
		if p == k {
			return nil
		}
	}
	return fmt.Errorf("pattern %q: not one of %s", p, strings.Join(known, ", "))
}

// Empty reports whether the set has no rules.
func (rs RuleSet) Empty() bool { return len(rs.rules) == 0 }

// Match reports whether the event matches any rule of the set; the empty set matches
// nothing. It does not allocate and does not keep f or its strings.
func (rs RuleSet) Match(f *Facts) bool {
	for i := range rs.rules {
		if rs.rules[i].match(f) {
			return true
		}
	}
	return false
}

func (r *rule) match(f *Facts) bool {
	for i := range r.matchers {
		m := &r.matchers[i]
		var ok bool
		switch m.field {
		case fieldGroup:
			ok = m.matchSet(f.Groups)
		default:
			ok = m.matchValue(factValue(f, m.field))
		}
		if !ok {
			return false
		}
	}
	return true
}

func (m *matcher) matchValue(v string) bool {
	if v == "" {
		// An empty value matches no pattern, plain or negated.
		return len(m.any) == 0
	}
	if len(m.any) > 0 && !anyMatch(m.any, v) {
		return false
	}
	return !anyMatch(m.none, v)
}

func (m *matcher) matchSet(vs []string) bool {
	hit := len(m.any) == 0
	for _, v := range vs {
		if v == "" {
			continue
		}
		if anyMatch(m.none, v) {
			return false
		}
		if !hit && anyMatch(m.any, v) {
			hit = true
		}
	}
	return hit
}

func factValue(f *Facts, field ruleField) string {
	switch field {
	case fieldStage:
		return f.Stage
	case fieldVerb:
		return f.Verb
	case fieldUser:
		return f.User
	case fieldResource:
		return f.GroupResource
	case fieldNamespace:
		return f.Namespace
	case fieldName:
		return f.Name
	case fieldNonResource:
		return f.NonResourceURL
	case fieldUserType:
		return f.UserType
	case fieldCode:
		return codeText(f.Code)
	}
	return ""
}

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

// String returns the set in canonical form, "field=p1,!p2 field=p3; ...", which
// ParseRules reads back to the same set; "" for the empty set.
func (rs RuleSet) String() string {
	var b strings.Builder
	for i, r := range rs.rules {
		if i > 0 {
			b.WriteString("; ")
		}
		for j, m := range r.matchers {
			if j > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(ruleFieldNames[m.field])
			b.WriteByte('=')
			b.WriteString(strings.Join(m.text, ","))
		}
	}
	return b.String()
}
