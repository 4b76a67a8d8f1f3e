package k8saudit

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/kubetrail/kubetrail/conf"
)

func dedupCfg(file string, max int) conf.Audit {
	c := baseCfg()
	c.Dedup, c.DedupFile, c.DedupMaxEntries = true, file, max
	return c
}

func auditLine(i int, stage, ts string) string {
	return fmt.Sprintf(`{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"%08d-1111-4222-8333-444444444444","stage":%q,"requestURI":"/api/v1/namespaces/default/pods","verb":"list","user":{"username":"alice"},"requestReceivedTimestamp":"2026-03-04T05:06:07.000000Z","stageTimestamp":%q}`, i, stage, ts)
}

// lineChunk is a tail chunk of the lines, each as the log field.
func lineChunk(t testing.TB, lines ...string) []byte {
	var c []byte
	for i, l := range lines {
		c = append(c, v2(t, et(uint32(1700000000+i), 0), map[string]any{}, map[string]any{"log": l})...)
	}
	return c
}

// auditIDs returns "auditID/stage/stageTimestamp" of each output record, and the
// number of records without one.
func auditIDs(t *testing.T, out []byte) ([]string, int) {
	t.Helper()
	var ids []string
	other := 0
	for _, e := range decodeOut(t, out) {
		a, ok := e.body["auditID"].(string)
		if !ok {
			other++
			continue
		}
		ids = append(ids, fmt.Sprintf("%s/%v/%v", a, e.body["stage"], e.body["stageTimestamp"]))
	}
	return ids, other
}

func dedupEvents(n int) []string {
	var ls []string
	for i := 0; i < n; i++ {
		ls = append(ls, auditLine(i, "ResponseComplete", fmt.Sprintf("2026-03-04T05:06:07.%06dZ", i)))
	}
	return ls
}

// A file read again (in_tail after a rotation) and a restart of Fluent Bit: each event
// is emitted once, with the state carried across the restart by dedup_file.
func TestDedupAcrossRestart(t *testing.T) {
	file := filepath.Join(t.TempDir(), "audit-dedup")
	ls := dedupEvents(50)
	f, l := newFilter(t, dedupCfg(file, 1000))
	out, _ := process(t, f, lineChunk(t, ls[:30]...))
	if ids, _ := auditIDs(t, out); len(ids) != 30 {
		t.Fatalf("first read: %d records", len(ids))
	}
	// The same 30 again (and 10 new) while running.
	out, _ = process(t, f, lineChunk(t, ls[:40]...))
	if ids, _ := auditIDs(t, out); len(ids) != 10 || !strings.HasPrefix(ids[0], "00000030-") {
		t.Fatalf("read again: %d records %q", len(ids), ids)
	}
	if st := f.Close(); st.Duplicates != 30 || st.RecordsIn != 70 || st.RecordsOut != 40 {
		t.Fatalf("stats %v", st)
	}
	if strings.Contains(l.all(), "warn") || strings.Contains(l.all(), "error") {
		t.Errorf("log: %s", l.all())
	}

	// Restart: the whole file read from its head.
	f, _ = newFilter(t, dedupCfg(file, 1000))
	out, mod := process(t, f, lineChunk(t, ls...))
	ids, _ := auditIDs(t, out)
	if !mod || len(ids) != 10 || !strings.HasPrefix(ids[0], "00000040-") {
		t.Fatalf("after the restart: %d records %q", len(ids), ids)
	}
	// Everything a duplicate: an empty chunk, modified.
	if out, mod := process(t, f, lineChunk(t, ls...)); !mod || len(out) != 0 {
		t.Fatalf("all duplicates: modified %v, %d bytes", mod, len(out))
	}
	if st := f.Close(); st.Duplicates != 90 || !strings.Contains(st.String(), "duplicates=90") {
		t.Fatalf("stats %v", st)
	}
}

// What is keyed: (auditID, stage, stageTimestamp). A client can set Audit-ID, so two
// requests may share an auditID and stage: different stageTimestamps keep both. Records
// that are not audit events are never deduplicated.
func TestDedupKey(t *testing.T) {
	f, _ := newFilter(t, dedupCfg("", 1000))
	lines := []string{
		auditLine(1, "ResponseComplete", "2026-03-04T05:06:07.000001Z"),
		auditLine(1, "ResponseStarted", "2026-03-04T05:06:07.000001Z"),
		auditLine(1, "ResponseComplete", "2026-03-04T05:06:07.000002Z"),
		auditLine(2, "ResponseComplete", "2026-03-04T05:06:07.000001Z"),
		auditLine(1, "ResponseComplete", "2026-03-04T05:06:07.000001Z"), // the first again
		`I0304 05:06:07.000000 1 main.go:1] not an audit event`,
		`I0304 05:06:07.000000 1 main.go:1] not an audit event`,
		`{"kind":"PodList","items":[]}`,
		`{"kind":"PodList","items":[]}`,
	}
	out, _ := process(t, f, lineChunk(t, lines...))
	ids, other := auditIDs(t, out)
	if len(ids) != 4 || other != 4 {
		t.Fatalf("%d audit records %q, %d others; want 4 and 4", len(ids), ids, other)
	}
	if st := f.Close(); st.Duplicates != 1 || st.NotAudit != 4 {
		t.Errorf("stats %v", st)
	}
	// dedup off (the default): everything is emitted.
	g, _ := newFilter(t, baseCfg())
	out, _ = process(t, g, lineChunk(t, lines...))
	if ids, other := auditIDs(t, out); len(ids) != 5 || other != 4 {
		t.Errorf("dedup off: %d audit records, %d others", len(ids), other)
	}
}

// The apiserver re-sends a webhook batch whose answer timed out: in_http hands it
// over again as one map record; its events are emitted once.
func TestDedupWebhookRetry(t *testing.T) {
	f, _ := newFilter(t, dedupCfg("", 1000))
	var items []any
	for i := 0; i < 5; i++ {
		items = append(items, map[string]any{"kind": "Event", "auditID": fmt.Sprintf("w%d", i), "stage": "ResponseComplete",
			"stageTimestamp": "2026-03-04T05:06:07.000001Z", "verb": "get", "requestURI": "/api/v1/pods"})
	}
	batch := v2(t, et(1700000000, 0), map[string]any{}, map[string]any{"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": items})
	out, _ := process(t, f, batch)
	if ids, _ := auditIDs(t, out); len(ids) != 5 {
		t.Fatalf("batch: %d records", len(ids))
	}
	out, mod := process(t, f, batch)
	if ids, other := auditIDs(t, out); !mod || len(ids) != 0 || other != 0 {
		t.Fatalf("re-sent batch: %d records, %d others", len(ids), other)
	}
	if st := f.Close(); st.Duplicates != 5 {
		t.Errorf("stats %v", st)
	}
}

// dedup_max_entries bounds what is remembered: an event older than that is emitted
// again (a repeat, never a loss).
func TestDedupCapacity(t *testing.T) {
	f, _ := newFilter(t, dedupCfg("", 10))
	ls := dedupEvents(20)
	process(t, f, lineChunk(t, ls...))
	out, _ := process(t, f, lineChunk(t, ls...))
	// The 10 oldest were forgotten and are emitted again; re-adding them evicts the 10
	// others, which are then emitted again too: with a window too small, repeats.
	if ids, _ := auditIDs(t, out); len(ids) != 20 {
		t.Fatalf("%d records, want 20", len(ids))
	}
	out, _ = process(t, f, lineChunk(t, ls[10:]...))
	if ids, _ := auditIDs(t, out); len(ids) != 0 {
		t.Fatalf("the 10 most recent: %d records emitted again", len(ids))
	}
	f.Close()
}

// Several input threads call one instance at once (run with -race): each event is
// emitted exactly once in all.
func TestDedupConcurrent(t *testing.T) {
	f, _ := newFilter(t, dedupCfg(filepath.Join(t.TempDir(), "d"), 100000))
	chunk := lineChunk(t, dedupEvents(200)...)
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				o, mod := f.Process(chunk)
				if !mod {
					t.Error("not modified")
					return
				}
				ids, _ := auditIDs(t, append([]byte(nil), o.Bytes()...))
				o.Release()
				mu.Lock()
				for _, id := range ids {
					seen[id]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != 200 {
		t.Fatalf("%d events emitted, want 200", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("%s emitted %d times", id, n)
		}
	}
	if st := f.Close(); st.Duplicates != 200*79 {
		t.Errorf("stats %v", st)
	}
}

// A damaged dedup_file does not stop the filter: a warning, what was readable kept.
// A file that cannot be used (another instance holds it, its directory is missing)
// makes New fail: Fluent Bit then refuses to start, with the message.
func TestDedupFileProblems(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "d")
	ls := dedupEvents(10)
	f, _ := newFilter(t, dedupCfg(file, 100))
	process(t, f, lineChunk(t, ls...))
	f.Close()
	b, _ := os.ReadFile(file)
	if err := os.WriteFile(file, append(b, 0x05, 0, 0, 0, 1, 2), 0o600); err != nil { // a block cut short
		t.Fatal(err)
	}
	f, l := newFilter(t, dedupCfg(file, 100))
	if out, _ := process(t, f, lineChunk(t, ls...)); len(out) != 0 {
		t.Errorf("the readable part forgotten: %d bytes out", len(out))
	}
	if !strings.Contains(l.all(), "warn: dedup_file "+file) {
		t.Errorf("log: %s", l.all())
	}
	if _, err := New(dedupCfg(file, 100), &testLog{}); err == nil || !strings.Contains(err.Error(), "in use by another k8s_audit instance") {
		t.Errorf("a second instance on the same file: %v", err)
	}
	f.Close()
	if err := os.WriteFile(file, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, l = newFilter(t, dedupCfg(file, 100))
	if out, _ := process(t, f, lineChunk(t, ls...)); len(out) == 0 || !strings.Contains(l.all(), "moved to "+file+".corrupt") {
		t.Errorf("garbage file: %d bytes out; log %s", len(out), l.all())
	}
	f.Close()
	if _, err := New(dedupCfg(filepath.Join(dir, "missing", "d"), 100), &testLog{}); err == nil {
		t.Error("a dedup_file in a missing directory accepted")
	}
}

// BenchmarkProcessDedup is BenchmarkProcess with dedup: off; on with every record new
// (64 variants of the chunk, each with its own auditIDs, through a window smaller than
// them all, so that every Add misses, inserts and evicts); on with every record a
// duplicate (left out, nothing encoded). The index's cache misses in a full 1M-entry
// window are in dedup's BenchmarkAdd.
func BenchmarkProcessDedup(b *testing.B) {
	ls := sampleLines(b, "audit2rbac-demo-v1-relabeled.log")
	chunks := make([][]byte, 64)
	for k := range chunks {
		for i, l := range ls {
			l = strings.Replace(l, `"auditID":"`, fmt.Sprintf(`"auditID":"%02d-`, k), 1)
			chunks[k] = append(chunks[k], v2(b, et(uint32(i), 0), map[string]any{}, map[string]any{"log": l})...)
		}
	}
	for _, c := range []struct {
		name     string
		cfg      conf.Audit
		variants int
	}{
		{"off", baseCfg(), 1},
		{"new", dedupCfg("{tmp}", 1000), 64},
		{"duplicate", dedupCfg("{tmp}", 1000000), 1},
	} {
		b.Run(c.name, func(b *testing.B) {
			if c.cfg.Dedup {
				c.cfg.DedupFile = filepath.Join(b.TempDir(), "d") // a new file at each run
			}
			f, _ := newFilter(b, c.cfg)
			defer f.Close()
			b.SetBytes(int64(len(chunks[0])))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				o, _ := f.Process(chunks[i%c.variants])
				o.Release()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(ls)), "ns/record")
			if c.name == "new" && f.Stats().Duplicates != 0 {
				b.Fatalf("duplicates: %v", f.Stats())
			}
		})
	}
}
