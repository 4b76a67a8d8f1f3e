// Package rules implements keep/drop rules: small boolean filters over the named fields
// of a record, written on one line so that they fit one Fluent Bit property value. The
// fields are not fixed here: each user describes its own in a Schema.
//
// Grammar:
//
//	set      = [ rule { ";" rule } ]        ; empty rules are ignored
//	rule     = matcher { WS matcher }       ; WS: spaces or tabs
//	matcher  = field "=" pattern { "," pattern }
//	pattern  = [ "!" ] text                 ; text: non-empty, no WS, ";" or ","
//	field    = the Name of a Field of the schema
//
// A record matches a set when it matches any of its rules, and a rule when it matches
// all of the rule's matchers. A matcher matches when the record's value matches any of
// its plain patterns (or it has none) and none of its negated ("!") patterns. For a
// multi-valued field (Field.Multi), whose value is a list, some element must match a
// plain pattern and no element may match a negated one.
//
// In a pattern, "*" matches any run of characters (none included, '/' and '.' included);
// every other character, '?' and '[' among them, stands for itself. Matching is
// case-sensitive. An empty value matches no pattern at all, not even "*": "f=*" means
// "f is set", "f=!x" also matches records without f, and "f=!*" means "f is not set".
// Empty elements of a list are ignored.
//
// A field may appear only once in a rule (list its patterns instead). A field with known
// values (Field.Known) takes only those values in patterns without "*"; a field may
// also check its patterns further (Field.Check).
package rules

import (
	"errors"
	"fmt"
	"strings"
	"unsafe"
)

// Field describes one field rules can test.
type Field struct {
	// Name is the name rules use. Names must be distinct and non-empty, and hold no
	// '=', ',', ';' or white space.
	Name string
	// Multi: the value is a list (the lists argument of Set.Match), not one string.
	Multi bool
	// Known, when not nil, is the closed set of values: a pattern without '*' must be
	// one of them.
	Known []string
	// Check, when not nil, validates each pattern (without its "!"); its error is
	// reported with the field's name.
	Check func(pattern string) error
}

// Schema lists the fields rules can test; a field's index is its position.
type Schema []Field

// Set is a parsed set of rules; the zero value is the empty set, which matches nothing.
// A Set is immutable and safe for concurrent use.
type Set struct {
	rules []rule
}

type rule struct {
	matchers []matcher
	text     []string // the matchers as written, "field=p1,!p2", for String
}

type matcher struct {
	field int
	multi bool
	pats  Patterns
}

// Pattern is a compiled pattern of the grammar above, in which only '*' is special.
// It is the one pattern matcher of the project: keep/drop rules, k8s_events'
// include/exclude lists (through rules) and the filters of `kubetrail audit`, which
// write exclusion with a "-" prefix but compile to the same Patterns.
type Pattern struct {
	text   string   // the pattern as written
	wild   bool     // it has a '*'
	prefix string   // text before the first '*'
	suffix string   // text after the last '*'
	middle []string // non-empty texts between stars, in order
}

// Compile compiles one pattern (without its negation prefix). Every string is a
// valid pattern.
func Compile(p string) Pattern {
	if strings.IndexByte(p, '*') < 0 {
		return Pattern{text: p}
	}
	segs := strings.Split(p, "*")
	g := Pattern{text: p, wild: true, prefix: segs[0], suffix: segs[len(segs)-1]}
	for _, s := range segs[1 : len(segs)-1] {
		if s != "" {
			g.middle = append(g.middle, s)
		}
	}
	return g
}

// String returns the pattern as written.
func (g *Pattern) String() string { return g.text }

// Match reports whether s matches the pattern. It does not allocate.
func (g *Pattern) Match(s string) bool {
	if !g.wild {
		return s == g.text
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

// MatchBytes is Match for a byte slice, without copying it.
func (g *Pattern) MatchBytes(b []byte) bool {
	return g.Match(unsafe.String(unsafe.SliceData(b), len(b)))
}

// Patterns is one list of patterns: a value passes when it matches one of Include
// (or Include is empty) and none of Exclude. An empty value (the record does not say)
// matches no pattern at all, not even "*".
type Patterns struct {
	Include, Exclude []Pattern
}

// Empty reports whether the list has no patterns: it lets every value pass.
func (ps *Patterns) Empty() bool { return len(ps.Include) == 0 && len(ps.Exclude) == 0 }

// Included reports whether s matches one of Include.
func (ps *Patterns) Included(s string) bool { return anyMatch(ps.Include, s) }

// Excluded reports whether s matches one of Exclude.
func (ps *Patterns) Excluded(s string) bool { return anyMatch(ps.Exclude, s) }

// Match reports whether one value passes the list.
func (ps *Patterns) Match(v string) bool {
	if v == "" {
		// An empty value matches no pattern, included or excluded.
		return len(ps.Include) == 0
	}
	if len(ps.Include) > 0 && !ps.Included(v) {
		return false
	}
	return !ps.Excluded(v)
}

// MatchList is Match for a field with several values: some value must match an
// included pattern (when there are any) and no value an excluded one. Empty values
// are ignored.
func (ps *Patterns) MatchList(vs []string) bool {
	hit := len(ps.Include) == 0
	for _, v := range vs {
		if v == "" {
			continue
		}
		if ps.Excluded(v) {
			return false
		}
		if !hit && ps.Included(v) {
			hit = true
		}
	}
	return hit
}

func anyMatch(gs []Pattern, s string) bool {
	for i := range gs {
		if gs[i].Match(s) {
			return true
		}
	}
	return false
}

// Parse parses a rule set (see the package comment) over the fields of schema. Empty
// input, or input of only white space and semicolons, gives the empty set. Errors name
// the rule, and the field and pattern at fault.
func Parse(text string, schema Schema) (Set, error) {
	var s Set
	for _, t := range strings.Split(text, ";") {
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		r, err := parseRule(t, schema)
		if err != nil {
			return Set{}, fmt.Errorf("rule %q: %w", t, err)
		}
		s.rules = append(s.rules, r)
	}
	return s, nil
}

func parseRule(text string, schema Schema) (rule, error) {
	var r rule
	seen := make([]bool, len(schema))
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
		f := schema.lookup(name)
		if f < 0 {
			return rule{}, fmt.Errorf("unknown field %q (valid fields: %s)", name, schema.names())
		}
		if seen[f] {
			return rule{}, fmt.Errorf("field %q given more than once (list its patterns instead: %s=a,b,!c)", name, name)
		}
		seen[f] = true
		m, err := parseMatcher(f, &schema[f], tok[eq+1:])
		if err != nil {
			return rule{}, fmt.Errorf("field %q: %w", name, err)
		}
		r.matchers = append(r.matchers, m)
		r.text = append(r.text, tok)
	}
	return r, nil
}

func (s Schema) lookup(name string) int {
	for i := range s {
		if s[i].Name == name {
			return i
		}
	}
	return -1
}

func (s Schema) names() string {
	names := make([]string, len(s))
	for i := range s {
		names[i] = s[i].Name
	}
	return strings.Join(names, ", ")
}

func parseMatcher(index int, f *Field, list string) (matcher, error) {
	if list == "" {
		return matcher{}, errors.New("empty pattern list")
	}
	m := matcher{field: index, multi: f.Multi}
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
		if err := f.checkPattern(text); err != nil {
			return matcher{}, err
		}
		if neg {
			m.pats.Exclude = append(m.pats.Exclude, Compile(text))
		} else {
			m.pats.Include = append(m.pats.Include, Compile(text))
		}
	}
	return m, nil
}

// checkPattern catches patterns that could never match.
func (f *Field) checkPattern(p string) error {
	if f.Check != nil {
		if err := f.Check(p); err != nil {
			return err
		}
	}
	if f.Known == nil || strings.IndexByte(p, '*') >= 0 {
		return nil
	}
	for _, k := range f.Known {
		if p == k {
			return nil
		}
	}
	return fmt.Errorf("pattern %q: not one of %s", p, strings.Join(f.Known, ", "))
}

// Empty reports whether the set has no rules.
func (s Set) Empty() bool { return len(s.rules) == 0 }

// Match reports whether a record matches any rule of the set; the empty set matches
// nothing. The record's fields are given by index in the schema: values[i] is the value
// of field i, or lists[i] when field i is Multi. "", an empty list, or an index past the
// end of the slice means the field is absent. Match does not allocate and keeps neither
// slice nor their strings.
func (s Set) Match(values []string, lists [][]string) bool {
	for i := range s.rules {
		if s.rules[i].match(values, lists) {
			return true
		}
	}
	return false
}

func (r *rule) match(values []string, lists [][]string) bool {
	for i := range r.matchers {
		m := &r.matchers[i]
		var ok bool
		if !m.multi {
			var v string
			if m.field < len(values) {
				v = values[m.field]
			}
			ok = m.matchValue(v)
		} else {
			var vs []string
			if m.field < len(lists) {
				vs = lists[m.field]
			}
			ok = m.matchList(vs)
		}
		if !ok {
			return false
		}
	}
	return true
}

func (m *matcher) matchValue(v string) bool { return m.pats.Match(v) }

func (m *matcher) matchList(vs []string) bool { return m.pats.MatchList(vs) }

// String returns the set in canonical form, "field=p1,!p2 field=p3; ...", which Parse
// reads back to the same set with the same schema; "" for the empty set.
func (s Set) String() string {
	var b strings.Builder
	for i, r := range s.rules {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(strings.Join(r.text, " "))
	}
	return b.String()
}
