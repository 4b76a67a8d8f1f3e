package auditquery

import (
	"strings"
	"testing"
)

// FuzzParse: no flag value makes New panic, and what parses matches without panic; a
// pattern without '*' matches exactly itself.
func FuzzParse(f *testing.F) {
	f.Add("get,-list", "pods.*/exec", "4xx", "a*b")
	f.Fuzz(func(t *testing.T, verb, resource, code, value string) {
		flt, err := New(Spec{Verbs: []string{verb}, Resources: []string{resource}, Codes: []string{code}, Users: []string{value}})
		if err == nil && flt == nil {
			t.Fatal("nil filter without error")
		}
		l, err := ParseList([]string{value}, nil)
		if err != nil {
			return
		}
		l.Match([]byte(value))
		if !strings.Contains(value, "*") && !compile(value).MatchBytes([]byte(value)) {
			t.Fatalf("%q does not match itself", value)
		}
	})
}
