// Package testhost_test runs the built library inside build/flb-testhost, which loads
// it exactly as Fluent Bit does, and inside a real Fluent Bit when one is available.
// Run `make` first: the tests use build/flb-testhost and build/flb-filter_k8s_audit.so.
package testhost_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/kubetrail/kubetrail/plugin/flbchunk"
	"github.com/kubetrail/kubetrail/test/repo"
)

const (
	modified = 1
	notouch  = 2
)

func paths(t testing.TB) (host, lib string) {
	t.Helper()
	return repo.Artefact(t, "build/flb-testhost", "make"), repo.Artefact(t, "build/flb-filter_k8s_audit.so", "make")
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

func legacy(t testing.TB, ts any, body map[string]any) []byte {
	return mp(t, []any{ts, body})
}

func sampleLines(t testing.TB, name string) []string {
	t.Helper()
	return readLines(t, filepath.Join(repo.SharedAudit(t), name))
}

// readLines returns the file's lines that are not blank.
func readLines(t testing.TB, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

func frames(chunks [][]byte) []byte {
	var b []byte
	for _, c := range chunks {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(c)))
		b = append(b, c...)
	}
	return b
}

type result struct {
	rc  uint32
	out []byte
}

// runFrames sends chunks through `flb-testhost frames` and returns one result per chunk
// and the host's stderr.
func runFrames(t testing.TB, props []string, chunks [][]byte) ([]result, string) {
	t.Helper()
	host, lib := paths(t)
	args := []string{"frames", "-l", lib}
	for _, p := range props {
		args = append(args, "-p", p)
	}
	cmd := exec.Command(host, args...)
	cmd.Stdin = bytes.NewReader(frames(chunks))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("flb-testhost frames: %v\n%s", err, stderr.String())
	}
	var res []result
	b := stdout.Bytes()
	for len(b) > 0 {
		if len(b) < 8 {
			t.Fatalf("truncated output")
		}
		rc, n := binary.LittleEndian.Uint32(b), binary.LittleEndian.Uint32(b[4:])
		if uint32(len(b)-8) < n {
			t.Fatalf("truncated output frame")
		}
		res = append(res, result{rc, b[8 : 8+n]})
		b = b[8+n:]
	}
	if len(res) != len(chunks) {
		t.Fatalf("%d results for %d chunks\n%s", len(res), len(chunks), stderr.String())
	}
	return res, stderr.String()
}

type event struct {
	flbchunk.Event
	body map[string]any
}

func decode(t testing.TB, chunk []byte) []event {
	t.Helper()
	var d flbchunk.Decoder
	d.Reset(chunk)
	var out []event
	for {
		var ev flbchunk.Event
		err := d.Next(&ev)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("output chunk: %v", err)
		}
		var m map[string]any
		if err := msgpack.Unmarshal(ev.Body, &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, event{ev, m})
	}
}

func TestV2AndLegacyEvents(t *testing.T) {
	line := sampleLines(t, "elastic-test-audit.log")[0]
	chunk := bytes.Join([][]byte{
		v2(t, et(1700000000, 1), map[string]any{"m": "v"}, map[string]any{"log": line, "stream": "stderr"}),
		legacy(t, et(1700000001, 2), map[string]any{"log": line}),
	}, nil)
	res, stderr := runFrames(t, nil, [][]byte{chunk})
	if res[0].rc != modified {
		t.Fatalf("rc %d\n%s", res[0].rc, stderr)
	}
	evs := decode(t, res[0].out)
	if len(evs) != 2 {
		t.Fatalf("%d events", len(evs))
	}
	for i, e := range evs {
		if e.body["auditID"] != "abcde12345" || e.body["outcome"] != "success" || e.Legacy {
			t.Fatalf("event %d: %v", i, e.body)
		}
		// time_source defaults to request_received: 2025-03-04T06:22:18.819232Z
		if e.Time != (flbchunk.Time{Sec: 1741069338, Nsec: 819232000}) {
			t.Fatalf("event %d time %+v", i, e.Time)
		}
	}
	if evs[0].body["stream"] != "stderr" || !bytes.Equal(evs[0].Meta, mp(t, map[string]any{"m": "v"})) {
		t.Fatalf("reserve_data / metadata: %v %x", evs[0].body, evs[0].Meta)
	}
	if !bytes.Equal(evs[1].Meta, []byte{0x80}) {
		t.Fatalf("legacy event metadata %x", evs[1].Meta)
	}
	if !strings.Contains(stderr, "[filter:k8s_audit:k8s_audit.0] ready: key=log") ||
		!strings.Contains(stderr, "[filter:k8s_audit:k8s_audit.0] stopped: chunks=1 records_in=2 records_out=2") {
		t.Fatalf("log lines:\n%s", stderr)
	}
}

func TestTimestampKinds(t *testing.T) {
	line := sampleLines(t, "elastic-test-audit.log")[0]
	body := map[string]any{"log": line}
	cases := []struct {
		name string
		ev   []byte
		want flbchunk.Time
	}{
		{"v2 ext", v2(t, et(1700000000, 5), map[string]any{}, body), flbchunk.Time{Sec: 1700000000, Nsec: 5}},
		{"v2 int", v2(t, uint32(1700000001), map[string]any{}, body), flbchunk.Time{Sec: 1700000001}},
		{"v2 float", v2(t, 1700000002.25, map[string]any{}, body), flbchunk.Time{Sec: 1700000002, Nsec: 250000000}},
		{"legacy ext", legacy(t, et(1700000003, 7), body), flbchunk.Time{Sec: 1700000003, Nsec: 7}},
		{"legacy int", legacy(t, int64(1700000004), body), flbchunk.Time{Sec: 1700000004}},
		{"legacy float", legacy(t, 1700000005.5, body), flbchunk.Time{Sec: 1700000005, Nsec: 500000000}},
	}
	var chunks [][]byte
	for _, c := range cases {
		chunks = append(chunks, c.ev)
	}
	res, stderr := runFrames(t, []string{"time_source=keep"}, chunks)
	for i, c := range cases {
		if res[i].rc != modified {
			t.Fatalf("%s: rc %d\n%s", c.name, res[i].rc, stderr)
		}
		evs := decode(t, res[i].out)
		if len(evs) != 1 || evs[0].Time != c.want || evs[0].body["verb"] != "get" {
			t.Fatalf("%s: %+v", c.name, evs)
		}
	}
}

func TestGroupMarkersInOrder(t *testing.T) {
	lines := sampleLines(t, "elastic-test-audit.log")
	startExt := v2(t, et(0xFFFFFFFF, 0), map[string]any{"schema": "otlp"}, map[string]any{"resource": map[string]any{"attributes": map[string]any{"k": "v"}}})
	endExt := v2(t, et(0xFFFFFFFE, 0), map[string]any{}, map[string]any{})
	startInt := v2(t, int64(-1), map[string]any{"g": 2}, map[string]any{"scope": "s"})
	endInt := v2(t, int64(-2), map[string]any{}, map[string]any{})
	rec := func(i int) []byte {
		return v2(t, et(1700000000, uint32(i)), map[string]any{}, map[string]any{"log": lines[i]})
	}
	chunk := bytes.Join([][]byte{startExt, rec(0), rec(1), endExt, startInt, rec(2), endInt}, nil)
	res, _ := runFrames(t, nil, [][]byte{chunk})
	if res[0].rc != modified {
		t.Fatal("not modified")
	}
	evs := decode(t, res[0].out)
	if len(evs) != 7 {
		t.Fatalf("%d events", len(evs))
	}
	for i, want := range map[int][]byte{0: startExt, 3: endExt, 4: startInt, 6: endInt} {
		if !bytes.Equal(evs[i].Raw, want) {
			t.Fatalf("group marker %d changed", i)
		}
	}
	for _, i := range []int{1, 2, 5} {
		if evs[i].body["auditID"] == nil {
			t.Fatalf("event %d not enriched", i)
		}
	}
}

func TestGarbageIsPreserved(t *testing.T) {
	line := sampleLines(t, "elastic-test-audit.log")[0]
	good := v2(t, et(1, 0), map[string]any{}, map[string]any{"log": line})
	garbage := []byte("\x92\xc1 this is not msgpack \xff\xfe")
	rng := rand.New(rand.NewSource(1))
	chunks := [][]byte{garbage, append(append([]byte{}, good...), garbage...), {}, good[:len(good)/2]}
	for i := 0; i < 200; i++ {
		b := make([]byte, rng.Intn(300))
		rng.Read(b)
		if i%2 == 0 { // start like an event to get further into the decoder
			b = append([]byte{0x92, 0x92, 0xd7, 0x00}, b...)
		}
		chunks = append(chunks, b)
	}
	res, stderr := runFrames(t, nil, chunks)
	for i, r := range res {
		switch {
		case i == 1:
			if r.rc != modified || !bytes.HasSuffix(r.out, garbage) || len(decode(t, r.out[:len(r.out)-len(garbage)])) != 1 {
				t.Fatalf("good event + garbage: rc %d", r.rc)
			}
		case r.rc == notouch:
			if !bytes.Equal(r.out, chunks[i]) {
				t.Fatalf("chunk %d: NOTOUCH output differs from input", i)
			}
		default:
			t.Fatalf("chunk %d: rc %d for garbage", i, r.rc)
		}
	}
	if !strings.Contains(stderr, "passing the last") {
		t.Fatalf("no decode error logged:\n%s", stderr)
	}
}

func TestEventListSplit(t *testing.T) {
	ls := sampleLines(t, "audit2rbac-demo-v1-relabeled.log")
	list := `{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":[` + strings.Join(ls, ",") + `]}`
	res, _ := runFrames(t, nil, [][]byte{v2(t, et(5, 0), map[string]any{}, map[string]any{"log": list})})
	evs := decode(t, res[0].out)
	if res[0].rc != modified || len(evs) != len(ls) {
		t.Fatalf("rc %d, %d records from %d items", res[0].rc, len(evs), len(ls))
	}
	seen := map[any]bool{}
	for _, e := range evs {
		seen[e.body["auditID"]] = true
	}
	if len(seen) < 2 || seen[nil] {
		t.Fatalf("auditIDs %v", seen)
	}
}

func TestAllDroppedIsEmptyOutput(t *testing.T) {
	line := sampleLines(t, "elastic-test-audit.log")[0]
	chunk := v2(t, et(1, 0), map[string]any{}, map[string]any{"log": line})
	res, stderr := runFrames(t, []string{"drop=verb=*"}, [][]byte{chunk})
	if res[0].rc != modified || len(res[0].out) != 0 {
		t.Fatalf("rc %d, %d bytes\n%s", res[0].rc, len(res[0].out), stderr)
	}
	if !strings.Contains(stderr, "dropped=1") {
		t.Fatalf("stats:\n%s", stderr)
	}
}

func TestInvalidPropertyFailsInit(t *testing.T) {
	host, lib := paths(t)
	cmd := exec.Command(host, "frames", "-l", lib, "-p", "max_object_size=huge")
	cmd.Stdin = bytes.NewReader(nil)
	out, err := cmd.CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 2 {
		t.Fatalf("want exit code 2, got %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "[error] [filter:k8s_audit:k8s_audit.0]") || !strings.Contains(string(out), "max_object_size") {
		t.Fatalf("message does not name the property:\n%s", out)
	}
	t.Logf("%s", out)
}

func TestLoadErrors(t *testing.T) {
	host, lib := paths(t)
	dir := t.TempDir()
	other := filepath.Join(dir, "flb-filter_other.so")
	if err := os.Symlink(lib, other); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ lib, want string }{
		{filepath.Join(dir, "flb-filter_missing.so"), "cannot open library"},
		{other, "registration structure is missing 'filter_other_plugin'"},
	} {
		out, err := exec.Command(host, "frames", "-l", c.lib).CombinedOutput()
		if err == nil || !strings.Contains(string(out), c.want) {
			t.Fatalf("%s: %v\n%s", c.lib, err, out)
		}
	}
}

// TestFilterMode runs the user tool over the sample logs and checks the JSON lines.
func TestFilterMode(t *testing.T) {
	host, lib := paths(t)
	file := filepath.Join(repo.SharedAudit(t), "audit2rbac-demo-v1-relabeled.log")
	cmd := exec.Command(host, "filter", "-l", lib, "-n", "5", "-p", "log_level=warn", file)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %d is not JSON: %v\n%s", n+1, err, sc.Text())
		}
		if _, ok := m["date"].(float64); !ok || m["auditID"] == nil || m["user_type"] == nil {
			t.Fatalf("line %d: %v", n+1, m)
		}
		n++
	}
	if want := len(sampleLines(t, "audit2rbac-demo-v1-relabeled.log")); n != want {
		t.Fatalf("%d lines out of %d", n, want)
	}
	if stderr.Len() != 0 { // log_level=warn hides the info lines
		t.Fatalf("stderr at log_level=warn:\n%s", stderr.String())
	}
}

func writeFrames(t testing.TB, perChunk int) string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(repo.SharedAudit(t), "*"))
	var chunks [][]byte
	var cur []byte
	n := 0
	for _, f := range files {
		if strings.HasSuffix(f, ".md") {
			continue
		}
		for _, l := range sampleLines(t, filepath.Base(f)) {
			cur = append(cur, v2(t, et(1700000000, uint32(n)), map[string]any{}, map[string]any{"log": l, "n": n})...)
			n++
			if n%perChunk == 0 {
				chunks = append(chunks, cur)
				cur = nil
			}
		}
	}
	if len(cur) > 0 {
		chunks = append(chunks, cur)
	}
	p := filepath.Join(t.TempDir(), "frames.bin")
	if err := os.WriteFile(p, frames(chunks), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

type stressSummary struct {
	Threads    int   `json:"threads"`
	Repeat     int   `json:"repeat"`
	Warmup     int   `json:"warmup_repeat"`
	Frames     int   `json:"frames"`
	Calls      int64 `json:"calls"`
	Mismatches int64 `json:"mismatches"`
	RSSStart   int64 `json:"rss_kb_start"`
	RSSWarm    int64 `json:"rss_kb_warm"`
	RSSEnd     int64 `json:"rss_kb_end"`
}

func runStress(t *testing.T, threads, repeat int, framesFile string) stressSummary {
	t.Helper()
	host, lib := paths(t)
	cmd := exec.Command(host, "stress", "-l", lib, "-p", "add_parse_error=on",
		"--threads", fmt.Sprint(threads), "--repeat", fmt.Sprint(repeat), framesFile)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v\n%s\n%s", err, out, stderr.String())
	}
	var s stressSummary
	if err := json.Unmarshal(out, &s); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return s
}

func TestConcurrentCallsOneInstance(t *testing.T) {
	s := runStress(t, 4, 20, writeFrames(t, 7))
	t.Logf("%+v", s)
	if s.Mismatches != 0 || s.Calls != int64(s.Threads*(s.Repeat+s.Warmup)*s.Frames) {
		t.Fatalf("%+v", s)
	}
}

func TestMemoryStaysBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	s := runStress(t, 2, 3000, writeFrames(t, 10))
	growth := s.RSSEnd - s.RSSWarm
	t.Logf("%d calls: RSS %d kB at start, %d kB after warm-up, %d kB at end (growth %d kB)",
		s.Calls, s.RSSStart, s.RSSWarm, s.RSSEnd, growth)
	if s.Mismatches != 0 {
		t.Fatalf("%+v", s)
	}
	// 60,000 calls after warm-up (2 threads x 3,000 x 10 frames): a leaked output
	// buffer (kilobytes) would show.
	if growth > 8<<10 {
		t.Fatalf("RSS grew by %d kB after warm-up", growth)
	}
}

// TestRealFluentBit runs tail -> k8s_audit -> stdout (json_lines) in a real Fluent Bit
// with the plugins file that make writes, and checks the enriched records: with
// Time_Source stage, each record's time (json_lines' date) is its stageTimestamp.
func TestRealFluentBit(t *testing.T) {
	_, _ = paths(t)
	// Events with both timestamps, stageTimestamp later than requestReceivedTimestamp.
	sample, _ := filepath.Abs("../../conf/examples/sample-audit.log")
	stages := map[string]time.Time{}
	differ := 0
	for _, l := range readLines(t, sample) {
		var ev struct {
			AuditID  string    `json:"auditID"`
			Received time.Time `json:"requestReceivedTimestamp"`
			Stage    time.Time `json:"stageTimestamp"`
		}
		if err := json.Unmarshal([]byte(l), &ev); err != nil || ev.AuditID == "" || ev.Stage.IsZero() {
			t.Fatalf("sample line without auditID or stageTimestamp (%v): %s", err, l)
		}
		stages[ev.AuditID] = ev.Stage
		if ev.Stage.Sub(ev.Received) > time.Millisecond {
			differ++
		}
	}
	if differ < len(stages)/2 {
		t.Fatalf("only %d of %d sample events have a stage time apart from the received time", differ, len(stages))
	}
	want := len(stages)
	cfg := tailConfig(t, sample, "    Alias        audit_e2e\n    Time_Source  stage\n")
	run := runFluentBit(t, "", cfg, want)
	got := run.records(t)
	logs := run.Log
	t.Logf("Fluent Bit log:\n%s", logs)
	if len(got) != want {
		t.Fatalf("%d records from %d lines", len(got), want)
	}
	for i, m := range got {
		if m["auditID"] == nil || m["user_type"] == nil {
			t.Fatalf("record %d not enriched: %v", i, m)
		}
		date, ok := m["date"].(float64)
		if !ok {
			t.Fatalf("record %d has no date: %v", i, m)
		}
		id, _ := m["auditID"].(string)
		stage, ok := stages[id]
		if !ok {
			t.Fatalf("record %d: auditID %q is not the sample's", i, id)
		}
		delete(stages, id) // each once
		// json_lines prints the time as seconds with 6 decimals.
		if d := date - float64(stage.UnixMicro())/1e6; d > 1e-6 || d < -1e-6 {
			t.Errorf("record %d (%s): date %.6f, want stageTimestamp %s (%.6f)", i, id, date, stage.Format(time.RFC3339Nano), float64(stage.UnixMicro())/1e6)
		}
		if m["log"] != nil {
			t.Fatalf("record %d kept the raw log", i)
		}
	}
	if !strings.Contains(logs, "[filter:k8s_audit:audit_e2e] ready: key=log") {
		t.Fatalf("no ready line with the instance alias")
	}
}
