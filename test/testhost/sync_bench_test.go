package testhost_test

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kubetrail/kubetrail/test/testcluster"
)

// TestSyncExistingEvents measures the first sync: N Events exist, k8s_events starts
// (flb-testhost, defaults, a db file) and the time until all N records are written,
// and the host's peak RSS (VmHWM), are logged. For each N of KUBETRAIL_SYNC_EVENTS
// (e.g. 10000,100000); skipped when unset (make bench-events sets it).
func TestSyncExistingEvents(t *testing.T) {
	spec := os.Getenv("KUBETRAIL_SYNC_EVENTS")
	if spec == "" {
		t.Skip("a long measurement: set KUBETRAIL_SYNC_EVENTS=10000,100000 (make bench-events)")
	}
	host, _ := paths(t)
	lib, _ := filepath.Abs("../../build/kubetrail.so")
	for _, f := range strings.Split(spec, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			t.Fatalf("KUBETRAIL_SYNC_EVENTS: %q", f)
		}
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			c := testcluster.Start(t, testcluster.Options{AuditPolicy: steadyPolicy})
			began := time.Now()
			createEvents(t, c, n)
			t.Logf("created %d Events in %v", n, time.Since(began).Round(time.Second))

			dir := t.TempDir()
			token := filepath.Join(dir, "token")
			if err := os.WriteFile(token, []byte(c.AdminToken), 0o600); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(dir, "out.json")
			args := []string{"input", "-l", lib, "--out", out,
				"-p", "kube_url=" + c.URL, "-p", "kube_ca_file=" + c.CAFile, "-p", "kube_token_file=" + token,
				"-p", "db=" + filepath.Join(dir, "events.db")}
			if b := os.Getenv("KUBETRAIL_SYNC_BUFFER"); b != "" {
				args = append(args, "-p", "buffer_max_size="+b)
			}
			cmd := exec.Command(host, args...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			start := time.Now()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
			lines, hwm, anon := 0, 0, 0
			for lines < n {
				if time.Since(start) > 5*time.Minute {
					t.Fatalf("only %d of %d records after 5 minutes:\n%s", lines, n, stderr.String())
				}
				time.Sleep(100 * time.Millisecond)
				lines = countLines(t, out)
				hwm = max(hwm, procStatus(cmd.Process.Pid, "VmHWM"))
				anon = max(anon, procStatus(cmd.Process.Pid, "RssAnon"))
			}
			took := time.Since(start)
			_ = cmd.Process.Signal(syscall.SIGTERM)
			_ = cmd.Wait()
			size, _ := os.Stat(out)
			for _, l := range strings.Split(stderr.String(), "\n") {
				if strings.Contains(l, "] listed ") {
					t.Logf("plugin: %s (started %s)", l, start.Format("15:04:05.000"))
				}
			}
			// RSS includes the library's file pages (shared page cache: ~36 MB, the same
			// with no Events at all); the private (anonymous) peak is sampled.
			t.Logf("synced %d Events in %v (%.0f Events/s), peak RSS %d MB, private (RssAnon) peak %d MB, %d MB of records",
				n, took.Round(10*time.Millisecond), float64(n)/took.Seconds(), hwm>>10, anon>>10, size.Size()>>20)
		})
	}
}

// createEvents creates n core/v1 Events in default, 16 at a time.
func createEvents(t *testing.T, c *testcluster.Cluster, n int) {
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	now := time.Now().UTC().Format(time.RFC3339)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) || failed.Load() != nil {
					return
				}
				body := fmt.Sprintf(`{"metadata":{"name":"sync-%07d"},"involvedObject":{"kind":"Pod","name":"web-%d","namespace":"default","uid":"4a1b1f4e-2c4e-4f7e-9a55-%012d","apiVersion":"v1","resourceVersion":"12345"},"reason":"BackOff","message":"Back-off restarting failed container web in pod web-%d_default","type":"Warning","source":{"component":"kubelet","host":"node-%d"},"reportingComponent":"kubelet","reportingInstance":"node-%d","count":1,"firstTimestamp":%q,"lastTimestamp":%q}`,
					i, i, i, i, i%50, i%50, now, now)
				st, b, err := c.Do(http.MethodPost, "/api/v1/namespaces/default/events", []byte(body), c.AdminToken)
				if err != nil || st != 201 {
					failed.Store(fmt.Sprintf("event %d: %d %v %s", i, st, err, b))
					return
				}
			}
		}()
	}
	wg.Wait()
	if f := failed.Load(); f != nil {
		t.Fatal(f)
	}
}

func countLines(t *testing.T, path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		if os.IsNotExist(err) {
			return 0
		}
		t.Fatal(err)
	}
	return bytes.Count(b, []byte("\n"))
}

// procStatus reads one KiB figure of /proc/PID/status (VmHWM: peak RSS; RssAnon:
// private resident memory now); 0 if unknown.
func procStatus(pid int, field string) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, field+":") {
			n, _ := strconv.Atoi(strings.Fields(l)[1])
			return n
		}
	}
	return 0
}
