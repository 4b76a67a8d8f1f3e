package k8saudit

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/kubetrail/kubetrail/conf"
	"github.com/kubetrail/kubetrail/enrich"
	"github.com/kubetrail/kubetrail/plugin/flbchunk"
	"github.com/kubetrail/kubetrail/test/repo"
)

type testLog struct {
	mu   sync.Mutex
	msgs []string
}

func (l *testLog) add(level, format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, level+": "+fmt.Sprintf(format, args...))
}
func (l *testLog) Errorf(f string, a ...any) { l.add("error", f, a...) }
func (l *testLog) Warnf(f string, a ...any)  { l.add("warn", f, a...) }
func (l *testLog) Infof(f string, a ...any)  { l.add("info", f, a...) }
func (l *testLog) Debugf(f string, a ...any) { l.add("debug", f, a...) }

func (l *testLog) all() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.msgs, "\n")
}

func baseCfg() conf.Audit {
	return conf.Audit{Key: "log", ReserveData: true, Enrich: enrich.Options{TimeSource: enrich.TimeKeep, Redact: true}}
}

func newFilter(t testing.TB, cfg conf.Audit) (*Filter, *testLog) {
	t.Helper()
	l := &testLog{}
	f, err := New(cfg, l)
	if err != nil {
		t.Fatal(err)
	}
	return f, l
}

func mp(t testing.TB, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.SetSortMapKeys(true)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type raw []byte

func (r raw) MarshalMsgpack() ([]byte, error) { return r, nil }

func et(sec, nsec uint32) raw {
	b := []byte{0xd7, 0}
	b = binary.BigEndian.AppendUint32(b, sec)
	return binary.BigEndian.AppendUint32(b, nsec)
}

func v2(t testing.TB, ts any, meta, body map[string]any) []byte {
	return mp(t, []any{[]any{ts, meta}, body})
}

func sampleLines(t testing.TB, name string) []string {
	t.Helper()
	f, err := os.Open(filepath.Join(repo.SharedAudit(t), name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) != "" {
			out = append(out, sc.Text())
		}
	}
	return out
}

type outEvent struct {
	ev   flbchunk.Event
	body map[string]any
}

func decodeOut(t testing.TB, chunk []byte) []outEvent {
	t.Helper()
	var d flbchunk.Decoder
	d.Reset(chunk)
	var out []outEvent
	for {
		var ev flbchunk.Event
		err := d.Next(&ev)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("output does not decode: %v", err)
		}
		var m map[string]any
		if err := msgpack.Unmarshal(ev.Body, &m); err != nil {
			t.Fatalf("body: %v", err)
		}
		if n := flbchunk.NewMapIter(ev.Body); n.Len() != len(m) {
			t.Fatalf("body has %d pairs but %d distinct keys: duplicate keys", n.Len(), len(m))
		}
		out = append(out, outEvent{ev, m})
	}
}

func process(t testing.TB, f *Filter, chunk []byte) ([]byte, bool) {
	t.Helper()
	o, mod := f.Process(chunk)
	if !mod {
		if o != nil {
			t.Fatal("output without modification")
		}
		return nil, false
	}
	b := append([]byte{}, o.Bytes()...)
	o.Release()
	return b, true
}

func TestRealSamples(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(repo.SharedAudit(t), "*"))
	var chunk []byte
	var lines []string
	for _, fn := range files {
		if strings.HasSuffix(fn, ".md") {
			continue
		}
		for _, l := range sampleLines(t, filepath.Base(fn)) {
			lines = append(lines, l)
			chunk = append(chunk, v2(t, et(1700000000, uint32(len(lines))), map[string]any{"m": len(lines)},
				map[string]any{"log": l, "stream": "stdout"})...)
		}
	}
	if len(lines) < 40 {
		t.Fatalf("only %d sample lines", len(lines))
	}
	f, l := newFilter(t, baseCfg())
	out, mod := process(t, f, chunk)
	if !mod {
		t.Fatal("not modified")
	}
	evs := decodeOut(t, out)
	if len(evs) != len(lines) {
		t.Fatalf("%d records out of %d lines", len(evs), len(lines))
	}
	audit := 0
	for i, e := range evs {
		var meta map[string]any
		_ = msgpack.Unmarshal(e.ev.Meta, &meta)
		if fmt.Sprint(meta["m"]) != fmt.Sprint(i+1) || e.ev.Time != (flbchunk.Time{Sec: 1700000000, Nsec: int64(i + 1)}) {
			t.Fatalf("record %d: metadata %v time %+v", i, meta, e.ev.Time)
		}
		if e.body["stream"] != "stdout" {
			t.Fatalf("record %d lost reserved field: %v", i, e.body)
		}
		if e.body["auditID"] != nil {
			audit++
			if _, has := e.body["log"]; has {
				t.Fatalf("record %d kept log without preserve_key", i)
			}
		} else if e.body["log"] != lines[i] {
			t.Fatalf("record %d neither enriched nor passed through: %v", i, e.body)
		}
	}
	st := f.Close()
	t.Logf("%d audit records, stats %v", audit, st)
	if audit != len(lines)-1 || st.NotAudit != 1 { // the GKE LogEntry line is not an audit event
		t.Fatalf("audit %d, stats %v", audit, st)
	}
	if st.RecordsIn != uint64(len(lines)) || st.RecordsOut != uint64(len(lines)) || st.Chunks != 1 {
		t.Fatalf("stats %v", st)
	}
	if l.all() != "" {
		t.Fatalf("unexpected log: %s", l.all())
	}
}

func firstAudit(t testing.TB) string {
	return sampleLines(t, "elastic-test-audit.log")[0]
}

func TestLegacyAndTimestamps(t *testing.T) {
	line := firstAudit(t)
	chunk := bytes.Join([][]byte{
		mp(t, []any{et(1700000001, 5), map[string]any{"log": line}}),
		mp(t, []any{uint32(1700000002), map[string]any{"log": line}}),
		mp(t, []any{1700000003.5, map[string]any{"log": line}}),
		v2(t, int64(1700000004), map[string]any{"k": "v"}, map[string]any{"log": line}),
	}, nil)
	f, _ := newFilter(t, baseCfg())
	out, mod := process(t, f, chunk)
	if !mod {
		t.Fatal("not modified")
	}
	evs := decodeOut(t, out)
	want := []flbchunk.Time{{Sec: 1700000001, Nsec: 5}, {Sec: 1700000002}, {Sec: 1700000003, Nsec: 500000000}, {Sec: 1700000004}}
	for i, e := range evs {
		if e.ev.Legacy || e.ev.Time != want[i] || e.body["auditID"] != "abcde12345" {
			t.Fatalf("record %d: %+v %v", i, e.ev, e.body)
		}
	}
	if !bytes.Equal(evs[0].ev.Meta, []byte{0x80}) || !bytes.Equal(evs[3].ev.Meta, mp(t, map[string]any{"k": "v"})) {
		t.Fatal("metadata")
	}

	// With the stage time as record time, the event's own time wins.
	cfg := baseCfg()
	cfg.Enrich.TimeSource = enrich.TimeStage
	f, _ = newFilter(t, cfg)
	out, _ = process(t, f, chunk)
	for _, e := range decodeOut(t, out) {
		if e.ev.Time != (flbchunk.Time{Sec: 1741069338, Nsec: 822532000}) { // 2025-03-04T06:22:18.822532Z
			t.Fatalf("stage time: %+v", e.ev.Time)
		}
	}
}

func TestGroupMarkersAndPassThrough(t *testing.T) {
	line := firstAudit(t)
	start := v2(t, et(0xFFFFFFFF, 0), map[string]any{"g": "meta"}, map[string]any{"resource": map[string]any{"a": 1}})
	end := v2(t, et(0xFFFFFFFE, 0), map[string]any{}, map[string]any{})
	startInt := v2(t, int64(-1), map[string]any{}, map[string]any{"log": line})
	endInt := v2(t, int64(-2), map[string]any{}, map[string]any{"log": line})
	notAudit := v2(t, et(5, 0), map[string]any{}, map[string]any{"log": "plain text"})
	badTime := v2(t, int64(-7), map[string]any{}, map[string]any{"log": line})
	audit := v2(t, et(6, 0), map[string]any{}, map[string]any{"log": line})

	f, _ := newFilter(t, baseCfg())
	// Nothing to change: NOTOUCH.
	unchanged := bytes.Join([][]byte{start, notAudit, badTime, startInt, endInt, end}, nil)
	if _, mod := process(t, f, unchanged); mod {
		t.Fatal("chunk without audit records was modified")
	}
	chunk := bytes.Join([][]byte{start, notAudit, audit, startInt, endInt, badTime, end}, nil)
	out, mod := process(t, f, chunk)
	if !mod {
		t.Fatal("not modified")
	}
	evs := decodeOut(t, out)
	if len(evs) != 7 {
		t.Fatalf("%d events", len(evs))
	}
	for i, want := range [][]byte{start, notAudit, nil, startInt, endInt, badTime, end} {
		if want != nil && !bytes.Equal(evs[i].ev.Raw, want) {
			t.Fatalf("event %d not passed byte for byte", i)
		}
	}
	if evs[2].body["auditID"] == nil {
		t.Fatal("audit event not enriched")
	}
	st := f.Close()
	if st.Skipped != 2 || st.NotAudit != 2 || st.RecordsIn != 5 || st.RecordsOut != 5 {
		t.Fatalf("stats %v", st)
	}
}

func TestParseErrorPreserveKeyAndMaps(t *testing.T) {
	line := firstAudit(t)
	var evMap map[string]any
	if err := json.Unmarshal([]byte(line), &evMap); err != nil {
		t.Fatal(err)
	}
	cfg := baseCfg()
	cfg.AddParseError = true
	cfg.PreserveKey = true
	f, _ := newFilter(t, cfg)
	chunk := bytes.Join([][]byte{
		v2(t, et(7, 8), map[string]any{"x": 1}, map[string]any{"log": "not json", "parse_error": "old", "a": 1}),
		v2(t, et(9, 0), map[string]any{}, map[string]any{"log": line, "verb": "shadowed", "extra": true}),
		v2(t, et(10, 0), map[string]any{}, map[string]any{"log": evMap, "extra": "x"}), // key holds the decoded event
		v2(t, et(11, 0), map[string]any{}, evMap),                                      // the body is the decoded event
	}, nil)
	out, _ := process(t, f, chunk)
	evs := decodeOut(t, out)
	if len(evs) != 4 {
		t.Fatalf("%d events", len(evs))
	}
	pe, _ := evs[0].body["parse_error"].(string)
	if pe == "" || pe == "old" || evs[0].body["log"] != "not json" || evs[0].body["a"] != int8(1) ||
		evs[0].ev.Time != (flbchunk.Time{Sec: 7, Nsec: 8}) || !bytes.Equal(evs[0].ev.Meta, mp(t, map[string]any{"x": 1})) {
		t.Fatalf("parse_error record: %+v %v", evs[0].ev, evs[0].body)
	}
	t.Logf("parse_error: %s", pe)
	if evs[1].body["log"] != line || evs[1].body["verb"] != "get" || evs[1].body["extra"] != true {
		t.Fatalf("preserve_key record: %v", evs[1].body)
	}
	if evs[2].body["auditID"] != "abcde12345" || evs[2].body["extra"] != "x" || evs[2].body["log"] == nil {
		t.Fatalf("map under key: %v", evs[2].body)
	}
	if evs[3].body["auditID"] != "abcde12345" || evs[3].body["verb"] != "get" {
		t.Fatalf("map body: %v", evs[3].body)
	}

	// Without reserve_data only the audit fields remain.
	cfg = baseCfg()
	cfg.ReserveData = false
	f, _ = newFilter(t, cfg)
	out, _ = process(t, f, chunk)
	evs = decodeOut(t, out)
	if evs[1].body["extra"] != nil || evs[1].body["log"] != nil || evs[1].body["auditID"] == nil {
		t.Fatalf("no reserve_data: %v", evs[1].body)
	}
	if !bytes.Equal(evs[0].ev.Raw, chunk[:len(evs[0].ev.Raw)]) {
		t.Fatal("not-audit record changed without add_parse_error")
	}
}

func TestEventListSplit(t *testing.T) {
	ls := sampleLines(t, "audit2rbac-demo-v1-relabeled.log")
	list := `{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":[` + strings.Join(ls, ",") + `]}`
	f, _ := newFilter(t, baseCfg())
	out, mod := process(t, f, v2(t, et(1, 0), map[string]any{}, map[string]any{"log": list, "tag": "t"}))
	if !mod {
		t.Fatal("not modified")
	}
	evs := decodeOut(t, out)
	if len(evs) != len(ls) {
		t.Fatalf("%d records from a list of %d", len(evs), len(ls))
	}
	for i, e := range evs {
		var want map[string]any
		if err := json.Unmarshal([]byte(ls[i]), &want); err != nil {
			t.Fatal(err)
		}
		if e.body["auditID"] != want["auditID"] || e.body["stage"] != want["stage"] || e.body["requestURI"] != want["requestURI"] ||
			e.body["tag"] != "t" || e.body["log"] != nil || e.body["items"] != nil {
			t.Fatalf("record %d is not item %d (auditID %v, stage %v, requestURI %v) with the record's other field: %v",
				i, i, want["auditID"], want["stage"], want["requestURI"], e.body)
		}
	}
	if st := f.Close(); st.RecordsIn != 1 || st.RecordsOut != uint64(len(ls)) {
		t.Fatalf("stats %v", st)
	}
}

func TestDecodeErrorKeepsBytes(t *testing.T) {
	line := firstAudit(t)
	good := v2(t, et(1, 0), map[string]any{}, map[string]any{"log": line})
	garbage := []byte{0x92, 0xc1, 0xff, 0x00, 'g', 'a', 'r', 'b'}
	f, l := newFilter(t, baseCfg())
	out, mod := process(t, f, append(append(append([]byte{}, good...), good...), garbage...))
	if !mod {
		t.Fatal("not modified")
	}
	if !bytes.HasSuffix(out, garbage) {
		t.Fatal("undecodable remainder not copied")
	}
	evs := decodeOut(t, out[:len(out)-len(garbage)])
	if len(evs) != 2 || evs[0].body["auditID"] == nil {
		t.Fatalf("%d events", len(evs))
	}
	if !strings.Contains(l.all(), fmt.Sprintf("at byte %d", 2*len(good))) {
		t.Fatalf("log: %q", l.all())
	}
	// Garbage alone: unchanged.
	if _, mod := process(t, f, garbage); mod {
		t.Fatal("garbage modified")
	}
	if st := f.Close(); st.DecodeErrors != 2 {
		t.Fatalf("stats %v", st)
	}
}

func TestConcurrentProcess(t *testing.T) {
	var chunk []byte
	for i, l := range sampleLines(t, "audit2rbac-demo-v1-relabeled.log") {
		chunk = append(chunk, v2(t, et(uint32(i), 0), map[string]any{}, map[string]any{"log": l})...)
	}
	f, _ := newFilter(t, baseCfg())
	want, _ := process(t, f, chunk)
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 30; i++ {
				o, mod := f.Process(chunk)
				if !mod || !bytes.Equal(o.Bytes(), want) {
					errs <- "output differs"
					return
				}
				o.Release()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
}

func BenchmarkProcess(b *testing.B) {
	ls := sampleLines(b, "audit2rbac-demo-v1-relabeled.log")
	var chunk []byte
	for i, l := range ls {
		chunk = append(chunk, v2(b, et(uint32(i), 0), map[string]any{}, map[string]any{"log": l})...)
	}
	f, _ := newFilter(b, baseCfg())
	b.SetBytes(int64(len(chunk)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		o, _ := f.Process(chunk)
		o.Release()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(ls)), "ns/record")
}

// BenchmarkProcessWide is one map record (in_tail with a JSON parser, in_http) with n
// keys in requestObject, or n keys at its top level (kept by reserve_data): the time
// per key must not grow with n. Reproduce: go test ./plugin/k8saudit -run '^$' -bench Wide
func BenchmarkProcessWide(b *testing.B) {
	for _, where := range []string{"requestObject", "top"} {
		for _, n := range []int{1000, 4000, 16000, 64000} {
			b.Run(fmt.Sprintf("%s/%d", where, n), func(b *testing.B) {
				ev := map[string]any{"kind": "Event", "auditID": "wide", "stage": "ResponseComplete", "verb": "create",
					"requestURI": "/api/v1/namespaces/default/configmaps"}
				wide := ev
				if where == "requestObject" {
					wide = map[string]any{}
					ev["requestObject"] = wide
				}
				for i := 0; i < n; i++ {
					wide[fmt.Sprintf("key-%07d", i)] = "v"
				}
				chunk := v2(b, et(1, 0), map[string]any{}, ev)
				cfg := baseCfg()
				f, _ := newFilter(b, cfg)
				b.SetBytes(int64(len(chunk)))
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					o, mod := f.Process(chunk)
					if !mod {
						b.Fatal("not processed")
					}
					o.Release()
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/key")
			})
		}
	}
}
