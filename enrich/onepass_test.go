package enrich

import (
	"bytes"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
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
