package enrich

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/kubetrail/kubetrail/test/repo"
)

// seedLines are real apiserver lines plus the wrapped and cut forms the parser accepts.
func seedLines(f testing.TB) []string {
	var seeds []string
	files := repo.SharedAuditFiles(f, "*.*")
	files = append(files, "testdata/metadata.log", "testdata/requestresponse.log")
	for _, file := range files {
		if strings.HasSuffix(file, ".md") {
			continue
		}
		seeds = append(seeds, lines(f, file)...)
	}
	first := seeds[0]
	seeds = append(seeds,
		"node-1 "+first,
		"2026-11-20T10:00:00Z stdout F "+first,
		first[:len(first)/2]+"[Truncated...]",
		`{"kind":"EventList","items":[`+first+`,{}]}`,
		`[`+first+`,1,"x",null]`,
		`{"properties":{"log":`+strings.ReplaceAll(strings.ReplaceAll(first, `\`, `\\`), `"`, `\"`)+`}}`,
	)
	return seeds
}

// checkResult asserts what must hold for any input: every record is Count well-formed
// msgpack key/value pairs with string keys, and no derived field appears twice. (Keys
// the input itself repeats are kept as they came, as Fluent Bit's JSON parser does.)
func checkResult(t *testing.T, res Result) {
	if res.Err != nil && len(res.Records) > 0 {
		t.Fatalf("error %v with %d records", res.Err, len(res.Records))
	}
	for _, r := range res.Records {
		dec := msgpack.NewDecoder(bytes.NewReader(r.Fields))
		seen := map[string]bool{}
		for i := 0; i < r.Count; i++ {
			k, err := dec.DecodeString()
			if err != nil {
				t.Fatalf("pair %d: key: %v", i, err)
			}
			if seen[k] && isDerivedName([]byte(k)) {
				t.Fatalf("derived field %q written twice", k)
			}
			seen[k] = true
			if _, err := dec.DecodeInterface(); err != nil {
				t.Fatalf("pair %d (%s): value: %v", i, k, err)
			}
		}
		if dec.Buffered().(*bytes.Reader).Len() != 0 {
			t.Fatalf("bytes left after %d pairs", r.Count)
		}
	}
}

func FuzzText(f *testing.F) {
	for _, s := range seedLines(f) {
		f.Add(s)
	}
	opts := defaults()
	opts.RedactExecCommand = true
	opts.RedactPaths = []string{"requestObject.*.password", "responseObject.items.*"}
	opts.MaxObjectSize = 512
	e, err := New(opts)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, line string) {
		checkResult(t, e.NewWorker().Text([]byte(line)))
	})
}

func FuzzMap(f *testing.F) {
	for _, s := range seedLines(f) {
		var v any
		if json.Unmarshal([]byte(s), &v) == nil {
			if b, err := msgpack.Marshal(v); err == nil {
				f.Add(b)
			}
		}
	}
	e, _ := New(defaults())
	f.Fuzz(func(t *testing.T, m []byte) {
		checkResult(t, e.NewWorker().Map(m))
	})
}
