package testhost_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubetrail/kubetrail/test/repo"
	"github.com/kubetrail/kubetrail/test/testcluster"
)

// hostileEvent is a small audit event with extra fields spliced in (`,"k":v` text).
func hostileEvent(id, extra string) string {
	return `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"` + id +
		`","stage":"ResponseComplete","requestURI":"/api/v1/pods","verb":"list","user":{"username":"alice"},` +
		`"sourceIPs":["10.0.0.1"],"responseStatus":{"code":200},"requestReceivedTimestamp":"2026-01-02T03:04:05.000001Z",` +
		`"stageTimestamp":"2026-01-02T03:04:05.002001Z"` + extra + `}`
}

// TestHostileInputsInRealFluentBit: hostile lines through tail, and envelopes and
// batches posted to the http input (which hands a JSON object over as one map record),
// through k8s_audit in a real Fluent Bit: every record comes out (the exact number of
// records is known), each line valid JSON as json_lines prints it, every webhook event
// once, none carrying its batch, and Fluent Bit alive to the end.
func TestHostileInputsInRealFluentBit(t *testing.T) {
	fluentBit(t)
	pluginsConf := repo.Artefact(t, "build/plugins.conf", "make")
	klog := `I0102 03:04:05.123456       1 controller.go:615] quota admission added evaluator for: leases`
	ev := func(id string) string { return hostileEvent(id, "") }
	mustJSON := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	rng := rand.New(rand.NewSource(14))
	binary := make([]byte, 64<<10)
	rng.Read(binary)
	binary = bytes.ReplaceAll(binary, []byte("\n"), []byte(" "))

	// Lines for tail, each with the number of records it must give.
	lines := []struct {
		text string
		out  int
	}{
		{ev("t-plain"), 1},
		{`[]`, 1}, {`{"kind":"PodList","items":[]}`, 1}, {`{"items":[],"msg":"x"}`, 1}, {`{"kind":"EventList","items":[]}`, 1},
		{`{"kind":"PodList","items":[{"a":1},{"b":2}]}`, 1},
		{hostileEvent("t-nan", `,"requestObject":{"x":NaN}`), 1},
		{hostileEvent("t-inf", `,"requestObject":{"x":-inf}`), 1},
		{hostileEvent("t-1e400", `,"requestObject":{"x":1e400}`), 1},
		{strings.Repeat(`{"a":`, 5000) + "1" + strings.Repeat("}", 5000), 1},
		{hostileEvent("t-big", `,"requestObject":{"blob":"`+strings.Repeat("x", 3<<20)+`"}`), 1},
		{strings.Repeat("[", 1<<19) + strings.Repeat(",", 1<<19) + "[Truncated...]", 1},
		{ev("t-cut")[:200] + "[Truncated...]", 1},
		{hostileEvent("t-dup", `,"verb":"get","auditID":"t-dup"`), 1},
		{hostileEvent("t-utf8", `,"requestObject":{"n":"`+"\xff\xfe"+`"}`), 1},
		{string(binary), 1},
		{klog, 1},
		{mustJSON(map[string]any{"records": []any{
			map[string]any{"category": "kube-audit", "properties": map[string]any{"log": ev("t-eh1")}},
			map[string]any{"category": "kube-apiserver", "properties": map[string]any{"log": klog}},
			map[string]any{"category": "kube-audit", "properties": map[string]any{"log": ev("t-eh2")}}}}), 3},
		{mustJSON(map[string]any{"messageType": "DATA_MESSAGE", "logGroup": "/aws/eks/c/cluster", "logEvents": []any{
			map[string]any{"id": "1", "timestamp": 1, "message": ev("t-cw1")}, map[string]any{"id": "2", "timestamp": 2, "message": klog}}}), 2},
		{hostileEvent("t-aks", `,"requestObject":"skipped-too-big-size-object"`), 1},
		{ev("t-last"), 1},
	}
	// Bodies for http, each with the number of records it must give.
	var items []any
	for i := 0; i < 400; i++ {
		var m map[string]any
		_ = json.Unmarshal([]byte(ev(fmt.Sprintf("h-%03d", i))), &m)
		items = append(items, m)
	}
	bodies := []struct {
		body string
		out  int
	}{
		{mustJSON(map[string]any{"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": map[string]any{}, "items": items}), 400},
		{`{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":[]}`, 1},
		{`{"kind":"PodList","items":[{"a":1}]}`, 1},
		{`{"items":[],"msg":"x"}`, 1},
		{mustJSON(map[string]any{"records": []any{
			map[string]any{"category": "kube-audit", "properties": map[string]any{"log": ev("h-eh1")}},
			map[string]any{"category": "kube-apiserver", "properties": map[string]any{"log": klog}}}}), 2},
		{mustJSON(map[string]any{"messageType": "DATA_MESSAGE", "logGroup": "g", "logEvents": []any{
			map[string]any{"id": "1", "timestamp": 1, "message": ev("h-cw1")}, map[string]any{"id": "2", "timestamp": 2, "message": klog}}}), 2},
		{`{"messageType":"CONTROL_MESSAGE","logEvents":[{"id":"1","timestamp":1,"message":"CWL CONTROL MESSAGE"}]}`, 1},
		{hostileEvent("h-1e400", `,"requestObject":{"x":1e400,"y":-1e400}`), 1}, // Fluent Bit's parser makes it ±inf
	}

	dir := t.TempDir()
	var file bytes.Buffer
	want := 0
	for _, l := range lines {
		file.WriteString(l.text + "\n")
		want += l.out
	}
	for _, b := range bodies {
		want += b.out
	}
	logFile := filepath.Join(dir, "audit.log")
	if err := os.WriteFile(logFile, file.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	ports, err := testcluster.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "fluent-bit.conf")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`[SERVICE]
    Flush        1
    Grace        2
    Log_Level    info
    Plugins_File %s

[INPUT]
    Name              tail
    Path              %s
    Read_from_Head    on
    Buffer_Chunk_Size 256k
    Buffer_Max_Size   16m
    Tag               kube.tail

[INPUT]
    Name              http
    Listen            127.0.0.1
    Port              %d
    Buffer_Max_Size   16M
    Tag               kube.http

[FILTER]
    Name   k8s_audit
    Match  kube.*

[OUTPUT]
    Name   stdout
    Match  *
    Format json_lines
`, pluginsConf, logFile, ports[0])), 0o644); err != nil {
		t.Fatal(err)
	}

	posted := make(chan error, 1)
	go func() {
		url := fmt.Sprintf("http://127.0.0.1:%d/", ports[0])
		deadline := time.Now().Add(20 * time.Second)
		for i := 0; i < len(bodies); {
			resp, err := http.Post(url, "application/json", strings.NewReader(bodies[i].body))
			if err != nil { // not listening yet
				if time.Now().After(deadline) {
					posted <- err
					return
				}
				time.Sleep(100 * time.Millisecond)
				continue
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				posted <- fmt.Errorf("body %d: HTTP %d", i, resp.StatusCode)
				return
			}
			i++
		}
		posted <- nil
	}()
	run := runFluentBit(t, dir, cfg, want)
	if err := <-posted; err != nil {
		t.Fatalf("posting to the http input: %v", err)
	}
	if len(run.Lines) != want {
		t.Fatalf("%d valid JSON records printed, want %d (one per record in, the batches' events each)", len(run.Lines), want)
	}
	if strings.Contains(run.Log, "panic:") || !strings.Contains(run.Log, "stopped: chunks=") || !strings.Contains(run.Log, "panics=0") {
		t.Fatalf("k8s_audit did not stop cleanly:\n%s", run.Log)
	}
	seen := map[string]int{}
	for _, r := range run.records(t) {
		id, _ := r["auditID"].(string)
		seen[id]++
		if id != "" && (r["items"] != nil || r["records"] != nil || r["logEvents"] != nil || r["kind"] == "EventList") {
			t.Errorf("event %s carries its batch", id)
		}
		switch id {
		case "t-1e400":
			if ro, _ := r["requestObject"].(map[string]any); ro["x"] != "1e400" {
				t.Errorf("t-1e400: requestObject %v", r["requestObject"])
			}
		case "h-1e400":
			// Fluent Bit 5.1.1's JSON parser makes ±inf of it (written "+Inf", "-Inf");
			// 4.1.2's makes 1 and -1 (printed as numbers, valid JSON either way).
			if ro, _ := r["requestObject"].(map[string]any); ro["x"] != "+Inf" && ro["x"] != 1.0 || ro["y"] != "-Inf" && ro["y"] != -1.0 {
				t.Errorf("h-1e400: requestObject %v", r["requestObject"])
			}
			t.Logf("1e400 posted to http comes out as %v", r["requestObject"])
		case "t-aks":
			if r["truncation"] != "aks" {
				t.Errorf("t-aks: truncation %v", r["truncation"])
			}
		}
	}
	for i := 0; i < 400; i++ {
		if id := fmt.Sprintf("h-%03d", i); seen[id] != 1 {
			t.Errorf("webhook event %s printed %d times", id, seen[id])
		}
	}
	for _, id := range []string{"t-plain", "t-1e400", "t-big", "t-cut", "t-dup", "t-utf8", "t-eh1", "t-eh2", "t-cw1", "t-aks", "t-last", "h-eh1", "h-cw1", "h-1e400"} {
		if seen[id] != 1 {
			t.Errorf("event %s printed %d times, want once", id, seen[id])
		}
	}
	for _, id := range []string{"t-nan", "t-inf"} { // not JSON: passed through under log
		if seen[id] != 0 {
			t.Errorf("%s taken as an audit event", id)
		}
	}
}
