package enrich

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// onePassOptions are the option sets the two paths are compared under.
func onePassOptions(t testing.TB) map[string]Options {
	rules := func(s string) RuleSet {
		rs, err := ParseRules(s)
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	sets := map[string]Options{"defaults": defaults()}
	o := defaults()
	o.Summary, o.TimeSource = true, TimeStage
	sets["summary, stage time"] = o
	o = defaults()
	o.DerivedKey = "k8s"
	sets["derived_key"] = o
	o = Options{SummaryOnly: true, TimeSource: TimeKeep}
	sets["summary only"] = o
	o = defaults()
	o.Keep = rules("verb=get,list,watch,create,update,patch,delete")
	o.Drop = rules("user=system:apiserver,group=system:nodes,resource=leases.coordination.k8s.io")
	sets["keep/drop"] = o
	return sets
}

// compareRecords fails unless the one-pass path and the parser's give the same result.
func compareRecords(t *testing.T, what string, got, want Result) {
	t.Helper()
	if fmt.Sprint(got.Err) != fmt.Sprint(want.Err) || got.Dropped != want.Dropped || got.Batch != want.Batch ||
		!reflect.DeepEqual(got.EnvelopeKeys, want.EnvelopeKeys) || len(got.Records) != len(want.Records) {
		t.Fatalf("%s:\n one pass: err %v, dropped %d, batch %v, %d records\n   parser: err %v, dropped %d, batch %v, %d records",
			what, got.Err, got.Dropped, got.Batch, len(got.Records), want.Err, want.Dropped, want.Batch, len(want.Records))
	}
	for i := range got.Records {
		g, w := &got.Records[i], &want.Records[i]
		if !bytes.Equal(g.Fields, w.Fields) || g.Count != w.Count || g.Time != w.Time || !bytes.Equal(g.ID, w.ID) ||
			fmt.Sprint(g.Err) != fmt.Sprint(w.Err) || !slices.Equal(g.keys, w.keys) {
			t.Fatalf("%s: record %d differs:\n one pass: %d fields % x\n   parser: %d fields % x", what, i, g.Count, g.Fields, w.Count, w.Fields)
		}
		gs, ws := g.Summary, w.Summary
		gg, wg := gs.Groups(nil), ws.Groups(nil)
		gs.groups, ws.groups = nil, nil
		if !reflect.DeepEqual(gs, ws) || !reflect.DeepEqual(gg, wg) {
			t.Fatalf("%s: record %d's summary differs:\n one pass: %+v %q\n   parser: %+v %q", what, i, gs, gg, ws, wg)
		}
	}
}

// TestOnePassAgrees: for every line of the real apiservers' logs (the repository's and
// the shared corpora), their wrapped and cut forms and crafted events, and under
// several option sets, the one-pass path gives exactly the parser's result: record
// bytes, key list, time, ID, summary, drops and errors. It also requires that the
// one-pass path did take the real apiserver's Metadata lines (a path that declined
// everything would agree trivially).
func TestOnePassAgrees(t *testing.T) {
	texts := append(seedLines(t), lines(t, "testdata/apiserver-metadata.log")...)
	texts = append(texts,
		ev(map[string]any{"user": map[string]any{"username": "system:serviceaccount:ns:sa", "groups": []any{"a", "b"},
			"extra": map[string]any{"authentication.kubernetes.io/pod-name": []any{"p"}, "authentication.kubernetes.io/credential-id": "x"}}}),
		ev(map[string]any{"impersonatedUser": map[string]any{"username": "bob"}, "sourceIPs": []any{"1.2.3.4", 7, "5.6.7.8"}}),
		ev(map[string]any{"objectRef": "not a map", "responseStatus": map[string]any{"code": 4.03e2}}),
		ev(map[string]any{"responseStatus": map[string]any{"code": uint64(18446744073709551615)}, "annotations": []any{1}}),
		ev(map[string]any{"duration_ms": 1, "hostname": "old", "k8s": map[string]any{"x": 1}}),
		`{"auditID":"a","auditID":"b","stage":"ResponseComplete","user":{"username":"x"},"user":{"username":"y"}}`,
		`{"auditID":"a","requestURI":"/api/v1/namespaces/default/pods?watch=true\u0026limit=500","verb":"watch"}`,
		`{"auditID":1,"stage":"ResponseComplete"}`,
		`{"auditID":"a","n":012}`,
		`{"kind":"EventList","items":[]}`,
	)
	e0, _ := New(defaults())
	probe := e0.NewWorker()
	taken := 0
	for _, l := range lines(t, "testdata/apiserver-metadata.log") {
		var res Result
		probe.reset()
		body := []byte(strings.TrimSpace(l))
		if probe.onePass(body, inputCtx{size: len(body)}, &res) {
			taken++
		}
	}
	if taken == 0 {
		t.Fatal("the one-pass path took none of the real apiserver's lines")
	}
	for name, o := range onePassOptions(t) {
		e, err := New(o)
		if err != nil {
			t.Fatal(err)
		}
		fast, slow := e.NewWorker(), e.NewWorker()
		slow.parserOnly = true
		for i, text := range texts {
			compareRecords(t, fmt.Sprintf("%s, text %d %.80q", name, i, text), fast.Text([]byte(text)), slow.Text([]byte(text)))
		}
	}
	t.Logf("%d texts, %d option sets; the one-pass path took %d of %d real apiserver lines", len(texts), len(onePassOptions(t)), taken, len(lines(t, "testdata/apiserver-metadata.log")))
}

// FuzzOnePass: on any text the two paths agree.
func FuzzOnePass(f *testing.F) {
	for _, s := range seedLines(f) {
		f.Add(s)
	}
	e, err := New(defaults())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, text string) {
		fast, slow := e.NewWorker(), e.NewWorker()
		slow.parserOnly = true
		compareRecords(t, fmt.Sprintf("%q", text), fast.Text([]byte(text)), slow.Text([]byte(text)))
	})
}

// mapRecords are the texts as Fluent Bit's JSON parser would hand them over (decoded,
// then msgpack), plus records only msgpack can hold: bin, float32, an EventTime ext,
// NaN, duplicate and integer keys, maps wider than the one-pass path takes.
func mapRecords(t testing.TB, texts []string) [][]byte {
	var out [][]byte
	for _, s := range texts {
		var v any
		if json.Unmarshal([]byte(s), &v) == nil {
			if b, err := msgpack.Marshal(v); err == nil {
				out = append(out, b)
			}
		}
	}
	ev := func(extra ...[]byte) []byte {
		b := []byte{0x80 | byte(3+len(extra)/2)}
		for _, kv := range [][2]any{{"auditID", "a"}, {"stage", "ResponseComplete"}, {"user", map[string]any{"username": "u"}}} {
			k, _ := msgpack.Marshal(kv[0])
			v, _ := msgpack.Marshal(kv[1])
			b = append(append(b, k...), v...)
		}
		for _, e := range extra {
			b = append(b, e...)
		}
		return b
	}
	str := func(s string) []byte { b, _ := msgpack.Marshal(s); return b }
	f32 := func(f float32) []byte { b, _ := msgpack.Marshal(f); return b }
	f64 := func(f float64) []byte { b, _ := msgpack.Marshal(f); return b }
	wide := map[string]any{}
	for i := 0; i < 40; i++ {
		wide[fmt.Sprint("k", i)] = i
	}
	wideB, _ := msgpack.Marshal(wide)
	out = append(out,
		ev(str("bin"), []byte{0xc4, 3, 'x', 'y', 'z'}),
		ev(str("f32"), f32(0.1)),
		ev(str("f64"), f64(2.0)),
		ev(str("big"), f64(1e21)),
		ev(str("negzero"), f64(math.Copysign(0, -1))),
		ev(str("nan"), f64(math.NaN())),
		ev(str("inf"), f64(math.Inf(1))),
		ev(str("u64"), []byte{0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}),
		ev(str("u64small"), []byte{0xcf, 0, 0, 0, 0, 0, 0, 0, 5}),
		ev(str("time"), []byte{0xd7, 0x00, 0x65, 0, 0, 0, 0, 0, 0, 1}),
		ev(str("stage"), str("Panic")),
		ev([]byte{0x07}, str("intkey")),
		ev(str("wide"), wideB),
		ev(str("nested"), []byte{0x82, 0xa1, 'a', 0x01, 0xa1, 'a', 0x02}),
		ev(str("bytes"), str("nul\x00 bell\a vt\v bad\xff tag\U000e0001 quote\" back\\ tab\t")),
	)
	return out
}

// TestOnePassMapAgrees: the same for records Fluent Bit already parsed (Worker.Map).
func TestOnePassMapAgrees(t *testing.T) {
	texts := append(seedLines(t), lines(t, "testdata/apiserver-metadata.log")...)
	recs := mapRecords(t, texts)
	e0, _ := New(defaults())
	probe := e0.NewWorker()
	taken := 0
	for _, m := range mapRecords(t, lines(t, "testdata/apiserver-metadata.log")) {
		probe.reset()
		var res Result
		if probe.onePassMap(m, &res) {
			taken++
		}
	}
	if taken < 600 {
		t.Fatalf("the one-pass path took only %d of the real apiserver's records", taken)
	}
	for name, o := range onePassOptions(t) {
		e, err := New(o)
		if err != nil {
			t.Fatal(err)
		}
		fast, slow := e.NewWorker(), e.NewWorker()
		slow.parserOnly = true
		for i, m := range recs {
			compareRecords(t, fmt.Sprintf("%s, record %d % .60x", name, i, m), fast.Map(m), slow.Map(m))
		}
	}
	t.Logf("%d records, the one-pass path took %d real apiserver ones", len(recs), taken)
}

// FuzzOnePassMap: on any msgpack record the two paths agree.
func FuzzOnePassMap(f *testing.F) {
	for _, m := range mapRecords(f, seedLines(f)) {
		f.Add(m)
	}
	e, err := New(defaults())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, m []byte) {
		fast, slow := e.NewWorker(), e.NewWorker()
		slow.parserOnly = true
		compareRecords(t, fmt.Sprintf("% x", m), fast.Map(m), slow.Map(m))
	})
}

// TestMapStringsKeepTheirBytes: a string of a map record comes out with the bytes it
// went in with on the parser's path too (a map wider than the one-pass path takes).
// fastjson's Arena.NewString wrote NUL as the four characters \x00, an invalid byte
// as \xff, U+E0001 as \U000e0001 (strconv.Quote's escapes, which JSON has not).
func TestMapStringsKeepTheirBytes(t *testing.T) {
	odd := "nul\x00 bell\a vt\v bad\xff tag\U000e0001 quote\" back\\ tab\t"
	rec := map[string]any{"auditID": "a", "stage": "ResponseComplete", "odd": odd,
		"annotations": map[string]any{"x": odd}, "list": []any{odd}}
	for i := 0; i < 40; i++ {
		rec[fmt.Sprint("pad", i)] = i // wider than wideMap: the parser's path
	}
	b, err := msgpack.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := New(defaults())
	res := e.NewWorker().Map(b)
	if res.Err != nil || len(res.Records) != 1 {
		t.Fatalf("%v, %d records", res.Err, len(res.Records))
	}
	m := fields(t, res.Records[0])
	if m["odd"] != odd || get(m, "annotations.x") != odd || m["list"].([]any)[0] != odd {
		t.Fatalf("strings changed: %q, %q, %q", m["odd"], get(m, "annotations.x"), m["list"])
	}
}
