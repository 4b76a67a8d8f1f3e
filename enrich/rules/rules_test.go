package rules

import (
	"errors"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// The test schema: an open field, a list, a closed field and a checked one.
const (
	fKind = iota
	fTag
	fLevel
	fNum
)

var testSchema = Schema{
	fKind:  {Name: "kind"},
	fTag:   {Name: "tag", Multi: true},
	fLevel: {Name: "level", Known: []string{"debug", "info", "warn"}},
	fNum:   {Name: "num", Check: digits},
}

func digits(p string) error {
	if strings.Trim(p, "0123456789*") != "" {
		return errors.New("digits only")
	}
	return nil
}

// rec is a record of the test schema.
type rec struct {
	kind, level, num string
	tags             []string
}

func (r *rec) match(s Set) bool {
	return s.Match([]string{fKind: r.kind, fLevel: r.level, fNum: r.num}, [][]string{fTag: r.tags})
}

func TestParse(t *testing.T) {
	tests := []struct {
		in    string
		want  string // canonical form; ignored when err is set
		rules int
		err   string // expected error substring; "" for success
	}{
		{in: "", want: "", rules: 0},
		{in: "  \t ", want: "", rules: 0},
		{in: " ; ;; ", want: "", rules: 0},
		{in: "kind=Pod", want: "kind=Pod", rules: 1},
		{in: "kind=Pod,Node*,!NodeX tag=a level=info", want: "kind=Pod,Node*,!NodeX tag=a level=info", rules: 1},
		{in: "  kind=a ;  tag=x\tnum=4* ;", want: "kind=a; tag=x num=4*", rules: 2},
		{in: "kind=a=b", want: "kind=a=b", rules: 1},
		{in: "kind=a=", want: "kind=a=", rules: 1},
		{in: "level=*o*", want: "level=*o*", rules: 1},
		{in: "level=!debug,!warn", want: "level=!debug,!warn", rules: 1},

		{in: "foo=bar", err: `rule "foo=bar": unknown field "foo" (valid fields: kind, tag, level, num)`},
		{in: "Kind=a", err: `unknown field "Kind"`},
		{in: "kind", err: `rule "kind": "kind": missing '=' (want field=pattern[,pattern...])`},
		{in: "kind=a b", err: `"b": missing '='`},
		{in: "kind=a, b", err: "no spaces are allowed around '=' or ','"},
		{in: "kind= a", err: `rule "kind= a": "kind= a": no spaces are allowed around '=' or ','`},
		{in: "kind =a", err: "no spaces are allowed"},
		{in: "kind=a ,b", err: "no spaces are allowed"},
		{in: "kind= tag=a", err: "no spaces are allowed"},
		{in: "kind=a= tag=b", err: "no spaces are allowed"},
		{in: "=a", err: `"=a": missing field name before '='`},
		{in: "kind=", err: `rule "kind=": field "kind": empty pattern list`},
		{in: "kind=a,", err: `field "kind": empty pattern in "a,"`},
		{in: "kind=,a", err: "empty pattern"},
		{in: "kind=a,,b", err: "empty pattern"},
		{in: "kind=a kind=b", err: `rule "kind=a kind=b": field "kind" given more than once (list its patterns instead: kind=a,b,!c)`},
		{in: "tag=x; kind=a level=info kind=b", err: `field "kind" given more than once`},
		{in: "kind=!", err: `field "kind": "!" without a pattern`},
		{in: "kind=a,!", err: `"!" without a pattern`},
		{in: "kind=!!a", err: `pattern "!!a": double negation`},
		{in: "level=Info", err: `field "level": pattern "Info": not one of debug, info, warn`},
		{in: "level=!error", err: "not one of"},
		{in: "num=4x", err: `rule "num=4x": field "num": digits only`},
		{in: "num=!x*", err: "digits only"},
		{in: "kind=a; bad", err: `rule "bad"`},
	}
	for _, tt := range tests {
		s, err := Parse(tt.in, testSchema)
		if tt.err != "" {
			if err == nil {
				t.Errorf("Parse(%q) = %q, want error containing %q", tt.in, s, tt.err)
			} else if !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Parse(%q) error %q, want it to contain %q", tt.in, err, tt.err)
			}
			if !s.Empty() {
				t.Errorf("Parse(%q) returned rules with an error", tt.in)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.in, err)
			continue
		}
		if got := s.String(); got != tt.want {
			t.Errorf("Parse(%q).String() = %q, want %q", tt.in, got, tt.want)
		}
		if len(s.rules) != tt.rules || s.Empty() != (tt.rules == 0) {
			t.Errorf("Parse(%q): %d rules, Empty %v; want %d", tt.in, len(s.rules), s.Empty(), tt.rules)
		}
		// Round trip: the canonical form parses back to the same set.
		again, err := Parse(s.String(), testSchema)
		if err != nil {
			t.Errorf("Parse(%q) (canonical of %q): %v", s.String(), tt.in, err)
		} else if !reflect.DeepEqual(again, s) {
			t.Errorf("round trip of %q changed the set: %#v vs %#v", tt.in, again, s)
		}
	}
}

func TestGlob(t *testing.T) {
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
		g := Compile(tt.pat)
		if got, gotBytes := g.Match(tt.s), g.MatchBytes([]byte(tt.s)); got != tt.want || gotBytes != tt.want {
			t.Errorf("glob %q match %q = %v, want %v", tt.pat, tt.s, got, tt.want)
		}
	}
}

// TestGlobExhaustive compares the glob matcher with a regexp on every pattern and
// string of up to 5 characters over a small alphabet.
func TestGlobExhaustive(t *testing.T) {
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
		g := Compile(p)
		for _, s := range strs {
			if got, want := g.Match(s), re.MatchString(s); got != want {
				t.Fatalf("glob %q match %q = %v, want %v", p, s, got, want)
			}
		}
	}
}

func TestMatch(t *testing.T) {
	pod := rec{kind: "Pod", level: "info", num: "404", tags: []string{"web", "prod"}}
	node := rec{kind: "Node", level: "warn", tags: []string{"", "infra"}}
	bare := rec{kind: "Event"}

	tests := []struct {
		rules string
		r     *rec
		want  bool
	}{
		// plain and negated patterns
		{"kind=Pod", &pod, true},
		{"kind=Pod", &node, false},
		{"kind=Pod,Node", &node, true},
		{"kind=!Pod", &pod, false},
		{"kind=!Pod", &node, true},
		{"kind=*o*,!Pod", &pod, false},
		{"kind=*o*,!Pod", &node, true},
		// an empty value matches no pattern, not even "*"
		{"num=*", &node, false},
		{"num=!*", &node, true},
		{"num=!4*", &node, true},
		{"num=4*", &pod, true},
		{"num=!4*", &pod, false},
		{"level=!debug", &bare, true},
		{"level=info", &bare, false},
		// lists: some element matches a plain pattern, none a negated one
		{"tag=prod", &pod, true},
		{"tag=prod", &node, false},
		{"tag=*", &bare, false},
		{"tag=!prod", &pod, false},
		{"tag=!prod", &node, true},
		{"tag=!prod", &bare, true},
		{"tag=*,!web", &pod, false},
		{"tag=*,!web", &node, true},
		{"tag=!*", &node, false}, // the empty element is ignored
		{"tag=!*", &bare, true},
		// several matchers: all must match
		{"kind=Pod level=info tag=web", &pod, true},
		{"kind=Pod level=warn tag=web", &pod, false},
		// several rules: any may match
		{"kind=Node; tag=web", &pod, true},
		{"kind=Node; tag=web", &node, true},
		{"kind=Node; tag=web", &bare, false},
		// the empty set matches nothing
		{"", &pod, false},
	}
	for _, tt := range tests {
		s, err := Parse(tt.rules, testSchema)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tt.rules, err)
		}
		if got := tt.r.match(s); got != tt.want {
			t.Errorf("%q.Match(%+v) = %v, want %v", tt.rules, *tt.r, got, tt.want)
		}
	}
	if (Set{}).Match(nil, nil) || !(Set{}).Empty() || (Set{}).String() != "" {
		t.Error("the zero Set is not the empty set")
	}
	// Fields past the end of the slices are absent.
	s, _ := Parse("kind=!Pod num=!* tag=!x", testSchema)
	if !s.Match(nil, nil) || !s.Match([]string{"Node"}, nil) || s.Match([]string{"Pod"}, nil) {
		t.Error("fields past the end of the slices are not absent")
	}
	s, _ = Parse("tag=*", testSchema)
	if s.Match([]string{"Pod", "", "info", "1"}, nil) || !s.Match(nil, [][]string{fTag: {"x"}}) {
		t.Error("lists are not read by index")
	}
}

func TestMatchAllocs(t *testing.T) {
	s, err := Parse("kind=Pod,Node* tag=*,!x level=!debug; num=4*,5* tag=a*b*c", testSchema)
	if err != nil {
		t.Fatal(err)
	}
	recs := []rec{
		{kind: "NodeLease", level: "info", tags: []string{"x-1", "y"}},
		{kind: "Pod", num: "503", tags: []string{"aXbYc"}},
	}
	allocs := testing.AllocsPerRun(100, func() {
		for i := range recs {
			recs[i].match(s)
		}
	})
	if allocs != 0 {
		t.Errorf("Set.Match allocates %v times per run, want 0", allocs)
	}
}

// FuzzParse: Parse never panics, the canonical form of what it accepts parses back to
// the same set, and matching a parsed set does not panic.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"", " ; ;; ", "kind=Pod", "kind=Pod,Node*,!NodeX tag=a level=info",
		"  kind=a ;  tag=x\tnum=4* ;", "kind=a=b", "kind=a=", "level=*o*", "tag=!*",
		"kind=a, b", "kind=!!a", "level=Info", "num=4x", "kind=a kind=b", "=a",
		"kind=a\u00a0tag=b", "kind=\xff*\xfe", "tag=**a***b*",
	} {
		f.Add(s)
	}
	recs := []rec{
		{kind: "Pod", level: "info", num: "404", tags: []string{"web", "", "prod"}},
		{},
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := Parse(in, testSchema)
		if err != nil {
			if !s.Empty() {
				t.Fatalf("Parse(%q): error %v with a non-empty set", in, err)
			}
			return
		}
		canon := s.String()
		again, err := Parse(canon, testSchema)
		if err != nil {
			t.Fatalf("Parse(%q) of the canonical form of %q: %v", canon, in, err)
		}
		if got := again.String(); got != canon {
			t.Fatalf("canonical form of %q: %q, then %q", in, canon, got)
		}
		if !reflect.DeepEqual(again, s) {
			t.Fatalf("round trip of %q changed the set", in)
		}
		for i := range recs {
			if recs[i].match(s) != recs[i].match(again) {
				t.Fatalf("%q and its canonical form match %+v differently", in, recs[i])
			}
		}
	})
}

func BenchmarkMatch(b *testing.B) {
	s, err := Parse("kind=Pod,Node* tag=*,!x level=!debug; num=4*,5* tag=a*b*c", testSchema)
	if err != nil {
		b.Fatal(err)
	}
	r := rec{kind: "NodeLease", level: "info", num: "200", tags: []string{"x-1", "y"}}
	b.ReportAllocs()
	for b.Loop() {
		r.match(s)
	}
}
