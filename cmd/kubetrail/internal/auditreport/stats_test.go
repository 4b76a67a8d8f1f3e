package auditreport

import (
	"bytes"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/kubetrail/kubetrail/enrich"
	"github.com/kubetrail/kubetrail/test/auditgen"
)

func checkStats(t *testing.T, data []byte) {
	st := NewStats()
	lines := feed(t, data, st)
	g := newGrouped()
	for _, l := range lines {
		e := decode(t, l)
		g.add(e.Verb+" "+e.resource(), e)
		g.add("(all)", e)
	}
	rows := st.Rows()
	if len(rows) != len(g.count)-1 {
		t.Errorf("%d rows, independent %d", len(rows), len(g.count)-1)
	}
	for _, r := range append(rows, st.Total()) {
		k := strings.TrimSpace(r.Verb + " " + r.Resource)
		if r.Count != g.count[k] || r.Long != g.long[k] {
			t.Errorf("%s: count %d long %d, independent %d %d", k, r.Count, r.Long, g.count[k], g.long[k])
		}
		d := g.durs[k]
		if r.NoDuration != r.Count-r.Long-len(d) {
			t.Errorf("%s: NoDuration %d, independent %d", k, r.NoDuration, r.Count-r.Long-len(d))
		}
		if len(d) == 0 {
			if r.HasDurations {
				t.Errorf("%s: durations without any", k)
			}
			continue
		}
		slices.Sort(d)
		within(t, k+" p50", r.P50, exactQuantile(d, 0.5))
		within(t, k+" p90", r.P90, exactQuantile(d, 0.9))
		within(t, k+" p99", r.P99, exactQuantile(d, 0.99))
		if math.Abs(r.Max-g.max[k]) > 1e-6 {
			t.Errorf("%s: max %v, exact %v", k, r.Max, g.max[k])
		}
	}
	var out bytes.Buffer
	if err := st.Write(&out); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), "\n"); n != len(rows)+4 {
		t.Errorf("%d lines for %d rows", n, len(rows))
	}
}

func TestStatsGenerated(t *testing.T) {
	data, _ := generated(t, auditgen.Options{Seed: 5, Records: 30000})
	checkStats(t, data)
}

func TestStatsCorpus(t *testing.T) { checkStats(t, corpus(t)) }

func TestStatsEdgeCases(t *testing.T) {
	st := NewStats()
	var out bytes.Buffer
	if err := st.Write(&out); err != nil || out.String() != "# 0 records\n" {
		t.Errorf("no records: %q %v", out.String(), err)
	}
	st.Add(&enrich.Summary{Verb: []byte("get"), GroupResource: []byte("pods"), HasDuration: true, DurationMs: 12.5})
	st.Add(&enrich.Summary{Verb: []byte("get"), NonResourceURL: []byte("/healthz")})
	out.Reset()
	if err := st.Write(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"get    pods          1     0      0    12.5    12.5    12.5    12.5",
		"get    /healthz      1     0      1       -       -       -       -",
		"(all)                2     0      1    12.5    12.5    12.5    12.5",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("want %q in\n%s", want, out.String())
		}
	}
}
