package enrich

import (
	"bytes"
	"encoding/binary"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/kubetrail/kubetrail/test/repo"
)

var update = flag.Bool("update", false, "rewrite docs/k8s-audit.md's field table from DerivedFields")

// derivedInOrder decodes a record made with DerivedKey "k8s" and returns its derived
// fields' names and values in the order written.
func derivedInOrder(t *testing.T, r Record) (names []string, values []any) {
	t.Helper()
	b := binary.BigEndian.AppendUint32([]byte{0xdf}, uint32(r.Count))
	dec := msgpack.NewDecoder(bytes.NewReader(append(b, r.Fields...)))
	n, err := dec.DecodeMapLen()
	if err != nil {
		t.Fatal(err)
	}
	for range n {
		k, err := dec.DecodeString()
		if err != nil {
			t.Fatal(err)
		}
		if k != "k8s" {
			if err := dec.Skip(); err != nil {
				t.Fatal(err)
			}
			continue
		}
		m, err := dec.DecodeMapLen()
		if err != nil {
			t.Fatal(err)
		}
		for range m {
			name, err := dec.DecodeString()
			if err != nil {
				t.Fatal(err)
			}
			v, err := dec.DecodeInterface()
			if err != nil {
				t.Fatal(err)
			}
			names, values = append(names, name), append(values, v)
		}
	}
	return names, values
}

func typeOf(v any) string {
	switch v.(type) {
	case bool:
		return "bool"
	case float64, float32:
		return "float"
	case string:
		return "string"
	case map[string]any:
		return "map"
	case []any:
		return "array"
	}
	return reflect.TypeOf(v).String()
}

// TestDerivedFields: DerivedFields is the one table of the derived fields. Over every
// record of the repository's corpora (and the shared ones when present), each field
// written is in the table, in its order, with its type; isDerivedName knows every
// name; Summary's derived tags name fields of the table; docs/k8s-audit.md shows the
// table FieldTable makes.
func TestDerivedFields(t *testing.T) {
	index := map[string]int{}
	for i, f := range DerivedFields {
		if _, dup := index[f.Name]; dup {
			t.Errorf("%s twice in DerivedFields", f.Name)
		}
		index[f.Name] = i
		if !isDerivedName([]byte(f.Name)) {
			t.Errorf("isDerivedName(%q) is false: an input field of that name would not be replaced", f.Name)
		}
	}
	if i, ok := index[""]; ok || DerivedFields[0].Doc == "" {
		t.Errorf("a field without a name (%d) or a first field without a Doc", i)
	}

	files, _ := filepath.Glob("testdata/*.log")
	files = append(append(files, "../conf/examples/sample-audit.log"), repo.SharedAuditFiles(t, "*.log")...)
	opts := defaults()
	opts.DerivedKey = "k8s"
	opts.Metrics, opts.TopUsers = true, 3
	e, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	w := e.NewWorker()
	seen := map[string]bool{}
	// What the repository's corpora lack: a node's impersonated request without objectRef
	// (the fields parsed from the URI), a negative duration, the deprecation and
	// truncation annotations.
	const crafted = `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"f1","stage":"ResponseComplete",` +
		`"requestURI":"/apis/apps/v1beta1/namespaces/ns/deployments/d/status?limit=5","verb":"get",` +
		`"user":{"username":"system:node:n1","groups":["system:nodes"]},"impersonatedUser":{"username":"jane"},"sourceIPs":["10.0.0.1"],"userAgent":"kubelet/v1.34.4",` +
		`"responseStatus":{"code":200},"requestReceivedTimestamp":"2026-11-20T10:15:31.000000Z","stageTimestamp":"2026-11-20T10:15:30.000000Z",` +
		`"annotations":{"k8s.io/deprecated":"true","k8s.io/removed-release":"1.16","audit.k8s.io/truncated":"true"}}`
	for _, f := range append(files, "") {
		ls := []string{crafted}
		if f != "" {
			ls = lines(t, f)
		}
		for _, l := range ls {
			res := w.Text([]byte("master-0 " + l)) // the hostname prefix: hostname too
			for _, r := range res.Records {
				names, values := derivedInOrder(t, r)
				last := -1
				for i, n := range names {
					j, ok := index[n]
					switch {
					case !ok:
						t.Fatalf("%s: derived field %q is not in DerivedFields", f, n)
					case j <= last:
						t.Fatalf("%s: derived field %q written after %q, against DerivedFields' order", f, n, DerivedFields[last].Name)
					case typeOf(values[i]) != DerivedFields[j].Type:
						t.Fatalf("%s: derived field %q is a %s, DerivedFields says %s", f, n, typeOf(values[i]), DerivedFields[j].Type)
					}
					last, seen[n] = j, true
				}
			}
		}
	}
	var unseen []string
	for _, d := range DerivedFields {
		if !seen[d.Name] {
			unseen = append(unseen, d.Name)
		}
	}
	t.Logf("%d of %d derived fields seen in %d files; not seen: %v", len(seen), len(DerivedFields), len(files), unseen)
	if len(unseen) > 0 {
		t.Errorf("derived fields %v never written: the corpora and the crafted event no longer exercise the table", unseen)
	}

	st := reflect.TypeOf(Summary{})
	tags := 0
	for i := range st.NumField() {
		name, ok := st.Field(i).Tag.Lookup("derived")
		if !ok {
			continue
		}
		tags++
		j, ok := index[name]
		if !ok {
			t.Errorf("Summary.%s: derived:%q is not in DerivedFields", st.Field(i).Name, name)
			continue
		}
		want := map[string][]reflect.Kind{"string": {reflect.String, reflect.Slice}, "float": {reflect.Float64}, "bool": {reflect.Bool}}[DerivedFields[j].Type]
		if !slices.Contains(want, st.Field(i).Type.Kind()) {
			t.Errorf("Summary.%s (%s) holds %s, a %s", st.Field(i).Name, st.Field(i).Type, name, DerivedFields[j].Type)
		}
	}
	if tags == 0 {
		t.Error("no derived tags in Summary")
	}

	doc := repo.Path(t, "docs", "k8s-audit.md")
	b, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	const head = "| field | type | meaning |\n"
	start := bytes.Index(b, []byte(head))
	if start < 0 {
		t.Fatalf("%s has no field table (%q)", doc, strings.TrimSpace(head))
	}
	end := start + bytes.Index(b[start:], []byte("\n\n")) + 1
	if end <= start {
		end = len(b)
	}
	want := FieldTable()
	if string(b[start:end]) == want {
		return
	}
	if *update {
		out := append(append(append([]byte{}, b[:start]...), want...), b[end:]...)
		if err := os.WriteFile(doc, out, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("rewrote the field table of %s", doc)
		return
	}
	t.Errorf("%s: the field table is not DerivedFields' (go test ./enrich -run TestDerivedFields -update rewrites it); want:\n%s", doc, want)
}
