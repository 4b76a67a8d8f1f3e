package auditreport

import (
	"bytes"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kubetrail/kubetrail/enrich"
	"github.com/kubetrail/kubetrail/test/auditgen"
)

// topKey is the independent statement of each --by key, from the decoded event.
func topKey(by string, e ev) []string {
	switch by {
	case "user":
		return []string{e.user()}
	case "group":
		if len(e.User.Groups) == 0 {
			return []string{"(no groups)"}
		}
		return e.User.Groups
	case "verb":
		return []string{e.Verb}
	case "resource":
		return []string{e.resource()}
	case "namespace":
		if e.ObjectRef == nil || e.ObjectRef.Namespace == "" {
			return []string{"(none)"}
		}
		return []string{e.ObjectRef.Namespace}
	case "code":
		if e.code() == 0 {
			return []string{"(none)"}
		}
		return []string{strconv.Itoa(e.code())}
	case "useragent":
		tok, _, _ := strings.Cut(e.UserAgent, " ")
		p, _, _ := strings.Cut(tok, "/")
		if p == "" {
			return []string{"(none)"}
		}
		return []string{p}
	case "source-ip":
		if len(e.SourceIPs) == 0 {
			return []string{"(none)"}
		}
		return []string{e.SourceIPs[0]}
	}
	panic(by)
}

func checkTop(t *testing.T, data []byte) {
	for _, by := range TopKeys {
		t.Run(by, func(t *testing.T) {
			top, err := NewTop(by, 5)
			if err != nil {
				t.Fatal(err)
			}
			lines := feed(t, data, top)
			g := newGrouped()
			for _, l := range lines {
				e := decode(t, l)
				for _, k := range topKey(by, e) {
					g.add(k, e)
				}
			}
			rows := top.Rows()
			if len(rows) != len(g.count) {
				t.Errorf("%d keys, independent count %d", len(rows), len(g.count))
			}
			for i, r := range rows {
				if r.Count != g.count[r.Key] || r.Long != g.long[r.Key] {
					t.Errorf("%s: count %d long %d, independent %d %d", r.Key, r.Count, r.Long, g.count[r.Key], g.long[r.Key])
				}
				if i > 0 && rows[i-1].Count < r.Count {
					t.Errorf("rows not sorted by count at %d", i)
				}
				d := g.durs[r.Key]
				if r.HasDurations != (len(d) > 0) {
					t.Errorf("%s: HasDurations %v with %d durations", r.Key, r.HasDurations, len(d))
					continue
				}
				if len(d) == 0 {
					continue
				}
				slices.Sort(d)
				within(t, r.Key+" p50", r.P50, exactQuantile(d, 0.5))
				within(t, r.Key+" p90", r.P90, exactQuantile(d, 0.9))
				within(t, r.Key+" p99", r.P99, exactQuantile(d, 0.99))
			}
			var out bytes.Buffer
			if err := top.Write(&out); err != nil {
				t.Fatal(err)
			}
			text := out.String()
			if !strings.HasPrefix(text, "# "+strconv.Itoa(len(lines))+" records") {
				t.Errorf("header: %.80q", text)
			}
			if len(rows) > 5 && !strings.Contains(text, "(other "+strconv.Itoa(len(rows)-5)+" keys)") {
				t.Errorf("no other row:\n%s", text)
			}
			if n := strings.Count(text, "\n"); n != 3+min(len(rows), 5)+b2i(len(rows) > 5) {
				t.Errorf("%d lines:\n%s", n, text)
			}
		})
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestTopGenerated(t *testing.T) {
	data, st := generated(t, auditgen.Options{Seed: 11, Records: 30000, Nodes: 40})
	checkTop(t, data)
	// The generator's own ground truth agrees with the top by user and by code.
	top, _ := NewTop("user", 0)
	feed(t, data, top)
	for _, r := range top.Rows() {
		k := r.Key
		if k == "(unauthenticated)" {
			k = ""
		}
		if st.ByUser[k] != r.Count {
			t.Errorf("user %s: %d, generator says %d", r.Key, r.Count, st.ByUser[k])
		}
	}
}

func TestTopCorpus(t *testing.T) { checkTop(t, corpus(t)) }

func TestTopRateAndShare(t *testing.T) {
	// 3 records over 10 s: two by alice (rate 0.2/s, share 66.7%).
	top, _ := NewTop("user", 0)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, u := range []string{"alice", "bob", "alice"} {
		s := enrich.Summary{User: []byte(u), Verb: []byte("get"), Received: enrich.Time{Sec: base.Unix() + int64(5*i)},
			HasDuration: true, DurationMs: float64(i + 1)}
		top.Add(&s)
	}
	var out bytes.Buffer
	if err := top.Write(&out); err != nil {
		t.Fatal(err)
	}
	// Durations 1 and 3 ms: the p50, p90 and p99 ranks (floor(q*(n-1))) are all the
	// first value, 1 ms, which the sketch gives within 1%.
	want := "alice 2 66.7% 0.200 1.01 1.01 1.01 0"
	if !strings.Contains(fields(out.String()), want) {
		t.Errorf("want line %q in\n%s", want, out.String())
	}
}

func TestTopBadKey(t *testing.T) {
	_, err := NewTop("pod", 10)
	if err == nil || !strings.Contains(err.Error(), "user, group, verb, resource, namespace, code, useragent, source-ip") {
		t.Errorf("error %v", err)
	}
	if _, err := NewTop("user", -1); err == nil {
		t.Error("negative limit accepted")
	}
}

func TestTopEdgeCases(t *testing.T) {
	top, _ := NewTop("verb", 10)
	var out bytes.Buffer
	if err := top.Write(&out); err != nil || out.String() != "# 0 records\n" {
		t.Errorf("no records: %q %v", out.String(), err)
	}
	// One record without time or duration: no rate, no percentiles, but counted.
	top.Add(&enrich.Summary{Verb: []byte("get")})
	out.Reset()
	if err := top.Write(&out); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "# 1 records\n") || !strings.Contains(fields(out.String()), "get 1 100.0% - - - - 0") {
		t.Errorf("one record:\n%s", out.String())
	}
	// Only long-running requests: counted apart, no percentiles.
	top, _ = NewTop("verb", 10)
	top.Add(&enrich.Summary{Verb: []byte("watch"), LongRunning: true, HasDuration: true, DurationMs: 300000})
	if r := top.Rows()[0]; r.HasDurations || r.Long != 1 {
		t.Errorf("watch row %+v", r)
	}
}

// fields normalizes runs of spaces, to compare table lines without their alignment.
func fields(s string) string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		lines = append(lines, strings.Join(strings.Fields(l), " "))
	}
	return strings.Join(lines, "\n")
}
