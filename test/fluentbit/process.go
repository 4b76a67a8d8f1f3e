package fluentbit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Process is a running Fluent Bit whose output is split as it comes: lines that are
// JSON objects (a stdout output with format json_lines) are records, the rest its log.
type Process struct {
	cmd     *exec.Cmd
	mu      sync.Mutex
	records []map[string]any
	log     bytes.Buffer
	done    chan struct{}
}

// Start runs `bin -c cfg` in dir with env added to the test's environment. The
// process is stopped when the test ends, and its log shown if the test failed.
func Start(t testing.TB, bin, dir, cfg string, env ...string) *Process {
	t.Helper()
	p := &Process{cmd: exec.Command(bin, "-c", cfg), done: make(chan struct{})}
	p.cmd.Dir = dir
	p.cmd.Env = append(os.Environ(), env...)
	pr, pw := io.Pipe()
	p.cmd.Stdout, p.cmd.Stderr = pw, pw
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting Fluent Bit: %v", err)
	}
	go func() {
		_ = p.cmd.Wait()
		pw.Close()
	}()
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(pr)
		sc.Buffer(nil, 64<<20)
		for sc.Scan() {
			var m map[string]any
			p.mu.Lock()
			if bytes.HasPrefix(sc.Bytes(), []byte("{")) && json.Unmarshal(sc.Bytes(), &m) == nil {
				p.records = append(p.records, m)
			} else {
				p.log.WriteString(sc.Text() + "\n")
			}
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			_, log := p.Snapshot()
			t.Logf("Fluent Bit (%s) log:\n%s", cfg, log)
		}
	})
	return p
}

// Snapshot returns the records and the log so far.
func (p *Process) Snapshot() ([]map[string]any, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.records), p.log.String()
}

// Exited reports whether the process has ended and its output been read.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop sends SIGTERM, SIGKILL after 30 s, and waits for the output to end.
func (p *Process) Stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}
