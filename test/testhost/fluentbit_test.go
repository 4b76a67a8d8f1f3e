package testhost_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/kubetrail/kubetrail/test/fluentbit"
	"github.com/kubetrail/kubetrail/test/repo"
)

// fluentBit finds a real Fluent Bit (test/fluentbit); without one the test is
// skipped, saying why.
func fluentBit(t *testing.T) string {
	t.Helper()
	return fluentbit.Require(t, "run the library in a real one")
}

// fluentBitRun is what one run of a real Fluent Bit printed.
type fluentBitRun struct {
	Lines [][]byte // the JSON records (stdout, format json_lines), as printed
	Log   string   // everything else: its log, from stderr and stdout
}

// runFluentBit runs `fluent-bit -c cfg` in dir until want records came out (or 30 s
// passed), stops it with SIGTERM (SIGKILL after 20 s) and keeps what it printed while
// stopping too, so that a duplicate record would show.
func runFluentBit(t *testing.T, dir, cfg string, want int) fluentBitRun {
	t.Helper()
	cmd := exec.Command(fluentBit(t), "-c", cfg)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan []byte, 4096)
	var other bytes.Buffer // written by the reader until it closes lines
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 64<<20)
		for sc.Scan() {
			if json.Valid(sc.Bytes()) && bytes.HasPrefix(sc.Bytes(), []byte("{")) {
				lines <- append([]byte(nil), sc.Bytes()...)
			} else {
				other.WriteString(sc.Text() + "\n")
			}
		}
		close(lines)
	}()
	var run fluentBitRun
	timeout := time.After(30 * time.Second)
wait:
	for len(run.Lines) < want {
		select {
		case l, ok := <-lines:
			if !ok {
				break wait
			}
			run.Lines = append(run.Lines, l)
		case <-timeout:
			break wait
		}
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	killer := time.AfterFunc(20*time.Second, func() { _ = cmd.Process.Kill() })
	for l := range lines { // until the reader is done with other
		run.Lines = append(run.Lines, l)
	}
	_ = cmd.Wait()
	killer.Stop()
	run.Log = stderr.String() + other.String()
	if len(run.Lines) != want {
		t.Logf("Fluent Bit log:\n%s", run.Log)
	}
	return run
}

// records decodes the printed lines.
func (r fluentBitRun) records(t *testing.T) []map[string]any {
	t.Helper()
	out := make([]map[string]any, 0, len(r.Lines))
	for _, l := range r.Lines {
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatalf("record %s: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

// tailConfig writes a classic configuration that tails file from its head (lines up to
// 16 MiB: RequestResponse events exceed tail's 32 KiB default) through k8s_audit, with
// filterProps as extra filter lines, to stdout as json_lines. It returns its path.
func tailConfig(t *testing.T, file, filterProps string) string {
	t.Helper()
	pluginsConf := repo.Artefact(t, "build/plugins.conf", "make")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "fluent-bit.conf")
	err := os.WriteFile(cfg, []byte(fmt.Sprintf(`[SERVICE]
    Flush        1
    Grace        1
    Log_Level    info
    Plugins_File %s

[INPUT]
    Name              tail
    Path              %s
    Read_from_Head    on
    Buffer_Chunk_Size 256k
    Buffer_Max_Size   16m
    Tag               kube.audit
    DB                %s

[FILTER]
    Name   k8s_audit
    Match  kube.*
%s
[OUTPUT]
    Name   stdout
    Match  *
    Format json_lines
`, pluginsConf, file, filepath.Join(dir, "tail.db"), filterProps)), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
