package testhost_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestExampleConfigsInRealFluentBit runs every example configuration in conf/ as a user
// would (from the repository root, after make) and checks that the bundled sample comes
// out enriched, with the recommended drop rule applied and no error logged.
func TestExampleConfigsInRealFluentBit(t *testing.T) {
	fb := fluentBit(t)
	paths(t)
	configs, _ := filepath.Glob("../conf/*.conf")
	yamls, _ := filepath.Glob("../conf/*.yaml")
	configs = append(configs, yamls...)
	if len(configs) < 2 {
		t.Fatalf("expected the classic and the YAML example in conf/, found %v", configs)
	}
	// 12 sample events; the example's drop rule removes a /readyz probe and a lease renewal.
	const want = 10
	for _, cfg := range configs {
		t.Run(filepath.Base(cfg), func(t *testing.T) {
			cmd := exec.Command(fb, "-c", strings.TrimPrefix(cfg, "../"))
			cmd.Dir = ".."
			var logs bytes.Buffer
			cmd.Stderr = &logs
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			records := make(chan map[string]any, 64)
			go func() {
				sc := bufio.NewScanner(stdout)
				sc.Buffer(nil, 16<<20)
				for sc.Scan() {
					var m map[string]any
					if json.Unmarshal(sc.Bytes(), &m) == nil {
						records <- m
					} else {
						logs.WriteString(sc.Text() + "\n")
					}
				}
				close(records)
			}()
			var got []map[string]any
			deadline := time.After(30 * time.Second)
		wait:
			for len(got) < want {
				select {
				case m, ok := <-records:
					if !ok {
						break wait
					}
					got = append(got, m)
				case <-deadline:
					break wait
				}
			}
			cmd.Process.Signal(syscall.SIGTERM)
			for m := range records {
				got = append(got, m)
			}
			cmd.Wait()
			if len(got) != want {
				t.Fatalf("%d records, want %d; Fluent Bit said:\n%s", len(got), want, logs.String())
			}
			for _, m := range got {
				if m["outcome"] == nil || m["auditID"] == nil || m["parse_error"] != nil || m["request_path"] == "/readyz" {
					t.Errorf("record not enriched as configured: %v", m)
				}
			}
			if strings.Contains(logs.String(), "[error]") || !strings.Contains(logs.String(), "dropped=2") {
				t.Errorf("unexpected Fluent Bit log:\n%s", logs.String())
			}
		})
	}
}
