package enrich

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kubetrail/kubetrail/test/repo"
)

// TestSummaryMatchesRecord checks, on every audit record of the shared corpus and the
// package's own, that Summary says what the encoded record says: the tools that read
// Summary and the filter's records must never disagree.
func TestSummaryMatchesRecord(t *testing.T) {
	files := repo.SharedAuditFiles(t, "*")
	own, _ := filepath.Glob("testdata/*.log")
	// conf's sample has an exec with command= parameters, which Summary shows redacted.
	files = append(files, append(own, "../conf/examples/sample-audit.log")...)
	opts := defaults()
	opts.RedactExecCommand = true
	opts.Summary = true
	e, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	w := e.NewWorker()
	// The same events through a SummaryOnly worker give the same Summary, no Fields.
	opts.SummaryOnly = true
	eo, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	wo := eo.NewWorker()
	checked := 0
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			res := w.Text(sc.Bytes())
			if res.Err != nil {
				continue
			}
			for _, r := range res.Records {
				if r.Err != nil {
					continue
				}
				checkSummary(t, f, r.Summary, fields(t, r))
				checked++
			}
			want := summaries(res)
			ro := wo.Text(sc.Bytes())
			if ro.Err != nil || len(ro.Records) != len(res.Records) {
				t.Fatalf("%s: SummaryOnly: %v, %d records, want %d", f, ro.Err, len(ro.Records), len(res.Records))
			}
			for i, r := range ro.Records {
				if len(r.Fields) != 0 || r.Count != 0 || r.Time != res.Records[i].Time {
					t.Fatalf("%s: SummaryOnly record %d: %d bytes of fields, count %d, time %v", f, i, len(r.Fields), r.Count, r.Time)
				}
			}
			if got := summaries(ro); !reflect.DeepEqual(got, want) {
				t.Fatalf("%s: SummaryOnly summaries\n got %+v\nwant %+v", f, got, want)
			}
		}
		fh.Close()
	}
	if checked < 100 {
		t.Fatalf("only %d records checked: corpus missing?", checked)
	}
	t.Logf("%d records checked", checked)
}

// summaries copies the Summaries of a result, groups resolved, for comparison.
func summaries(res Result) []any {
	type copied struct {
		S      Summary
		Groups []string
	}
	var out []any
	for _, r := range res.Records {
		c := copied{S: r.Summary}
		for _, g := range r.Summary.Groups(nil) {
			c.Groups = append(c.Groups, string(g))
		}
		c.S.groups = nil
		// Byte views into the worker's memory: copy them through a string.
		v := reflect.ValueOf(&c.S).Elem()
		for i := 0; i < v.NumField(); i++ {
			if f := v.Field(i); f.CanSet() && f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.Uint8 {
				f.SetBytes([]byte(string(f.Bytes())))
			}
		}
		out = append(out, c)
	}
	return out
}

func checkSummary(t *testing.T, file string, s Summary, m map[string]any) {
	t.Helper()
	get := func(path ...string) string {
		var v any = m
		for _, p := range path {
			mm, ok := v.(map[string]any)
			if !ok {
				return ""
			}
			v = mm[p]
		}
		str, _ := v.(string)
		return str
	}
	eq := func(name, got, want string) {
		if got != want {
			t.Errorf("%s %s: Summary %q, record %q", file, name, got, want)
		}
	}
	eq("auditID", string(s.AuditID), get("auditID"))
	eq("verb", string(s.Verb), get("verb"))
	eq("stage", string(s.Stage), get("stage"))
	eq("requestURI", string(s.RequestURI), get("requestURI"))
	eq("user", string(s.User), get("user", "username"))
	eq("effective_user", string(s.EffectiveUser), get("effective_user"))
	eq("user_type", s.UserType, get("user_type"))
	eq("group_resource", string(s.GroupResource), get("group_resource"))
	eq("outcome", s.Outcome, get("outcome"))
	eq("client_ip", string(s.ClientIP), get("client_ip"))
	eq("user_agent_product", string(s.UserAgentProduct), get("user_agent_product"))
	eq("authz_decision", string(s.AuthzDecision), get("authz_decision"))
	if ns := get("objectRef", "namespace"); ns != "" || get("namespace") != "" {
		eq("namespace", string(s.Namespace), ns+get("namespace"))
	}
	var groups []string
	for _, g := range s.Groups(nil) {
		groups = append(groups, string(g))
	}
	if want, _ := m["user"].(map[string]any)["groups"].([]any); len(want) != len(groups) {
		t.Errorf("%s groups: Summary %q, record %v", file, groups, want)
	}
	code, _ := toFloat(getAny(m, "responseStatus", "code"))
	if s.Code != int(code) {
		t.Errorf("%s code: Summary %d, record %v", file, s.Code, code)
	}
	d, has := toFloat(m["duration_ms"])
	if s.HasDuration != has || s.DurationMs != d {
		t.Errorf("%s duration: Summary %v (%v), record %v (%v)", file, s.DurationMs, s.HasDuration, d, has)
	}
	lr, _ := m["long_running"].(bool)
	if s.LongRunning != lr {
		t.Errorf("%s long_running: Summary %v, record %v", file, s.LongRunning, lr)
	}
	if rt := get("requestReceivedTimestamp"); rt != "" {
		want, err := time.Parse(time.RFC3339Nano, rt)
		if err == nil && !s.Received.Go().Equal(want) {
			t.Errorf("%s received: Summary %v, record %v", file, s.Received.Go(), want)
		}
	}
}

func getAny(m map[string]any, path ...string) any {
	var v any = m
	for _, p := range path {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[p]
	}
	return v
}

func toFloat(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case float32:
		return float64(n), true
	case int64:
		return float64(n), true
	case int8:
		return float64(n), true
	case int16:
		return float64(n), true
	case int32:
		return float64(n), true
	case uint8:
		return float64(n), true
	case uint16:
		return float64(n), true
	case uint32:
		return float64(n), true
	case uint64:
		return float64(n), true
	}
	return 0, false
}

// TestSummaryOnlyWhenAsked: the Fluent Bit filter does not ask for Summary and pays
// nothing for it; the exec command in the sample is redacted in Summary when it is.
func TestSummaryOnlyWhenAsked(t *testing.T) {
	b, err := os.ReadFile("../conf/examples/sample-audit.log")
	if err != nil {
		t.Fatal(err)
	}
	var line []byte
	for _, l := range bytes.Split(b, []byte("\n")) {
		if bytes.Contains(l, []byte("/exec?command=")) {
			line = l
		}
	}
	if line == nil {
		t.Fatal("no exec with command= in the sample")
	}
	plain := defaults()
	plain.RedactExecCommand = true
	e, _ := New(plain)
	res := e.NewWorker().Text(line)
	if len(res.Records) != 1 || !reflect.DeepEqual(res.Records[0].Summary, Summary{}) {
		t.Fatalf("Summary filled without Options.Summary: %+v", res.Records)
	}
	for _, only := range []bool{false, true} {
		o := plain
		o.Summary, o.SummaryOnly = true, only
		e, _ := New(o)
		res := e.NewWorker().Text(line)
		uri := string(res.Records[0].Summary.RequestURI)
		if !strings.Contains(uri, "/exec?") || strings.Contains(uri, "command=env") {
			t.Errorf("SummaryOnly %v: requestURI %q: want the exec URI with its command redacted", only, uri)
		}
	}
}
