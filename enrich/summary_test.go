package enrich

import (
	"bufio"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestSummaryMatchesRecord checks, on every audit record of the shared corpus and the
// package's own, that Summary says what the encoded record says: the tools that read
// Summary and the filter's records must never disagree.
func TestSummaryMatchesRecord(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(sharedAudit, "*"))
	own, _ := filepath.Glob("testdata/*.log")
	files = append(files, own...)
	e, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	w := e.NewWorker()
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
		}
		fh.Close()
	}
	if checked < 100 {
		t.Fatalf("only %d records checked: corpus missing?", checked)
	}
	t.Logf("%d records checked", checked)
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
