package testhost_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kubetrail/kubetrail/test/fluentbit"
	"github.com/kubetrail/kubetrail/test/testcluster"
)

// TestSyncExistingEvents measures the first sync: N Events exist, a consumer starts
// and the time until all N records are written, and the consumer's peak RSS (VmHWM)
// and private memory (RssAnon) peak, are logged, one consumer after the other on the
// same apiserver: k8s_events in flb-testhost (defaults, a db file); with a real Fluent
// Bit (FLUENT_BIT or PATH), k8s_events in it as the examples run it (threaded off, a
// db file) and its own kubernetes_events (kube_request_limit 500 as k8s_events' default
// page, a db file), both to a file output. Then, the consumer left idle for
// KUBETRAIL_SYNC_SETTLE (default 15s), its RSS and private memory at steady state.
// For each N of KUBETRAIL_SYNC_EVENTS (e.g. 10000,100000); skipped when unset (make
// bench-events sets it). It asserts only that every consumer writes all N records, and
// k8s_events none twice: the
// figures are for docs/performance.md.
//
// Knobs, for measuring configurations on one apiserver (creating 100,000 Events takes
// a minute):
//   - KUBETRAIL_SYNC_CONSUMERS: run only the consumer of that name (e.g. "fluent-bit
//     k8s_events");
//   - KUBETRAIL_SYNC_VARIANTS: configurations of the k8s_events consumers separated by
//     ";", each run in turn on the same Events; a word NAME=value with an upper-case
//     NAME is set in the consumer's environment only (GOMEMLIMIT, GOGC, GODEBUG: the
//     apiserver and etcd the test started do not get it, as they would if it were
//     exported before go test), any other word is a property (buffer_max_size=4m);
//     "-" is the defaults. kubernetes_events runs once, with the first;
//   - KUBETRAIL_SYNC_LIB: the library to load instead of build/kubetrail.so;
//   - KUBETRAIL_SYNC_LOGS: a directory where each consumer's log is written (with
//     GODEBUG=gctrace=1 the Go heap at each GC).
func TestSyncExistingEvents(t *testing.T) {
	spec := os.Getenv("KUBETRAIL_SYNC_EVENTS")
	if spec == "" {
		t.Skip("a long measurement: set KUBETRAIL_SYNC_EVENTS=10000,100000 (make bench-events)")
	}
	host, _ := paths(t)
	lib, _ := filepath.Abs("../../build/kubetrail.so")
	if l := os.Getenv("KUBETRAIL_SYNC_LIB"); l != "" {
		lib = l // a copy, which a make all during the measurement does not replace
	}
	fb, err := fluentbit.Find()
	if err != nil {
		t.Fatal(err)
	}
	only := os.Getenv("KUBETRAIL_SYNC_CONSUMERS") // e.g. "fluent-bit k8s_events"; all when empty
	variants := parseVariants(t, os.Getenv("KUBETRAIL_SYNC_VARIANTS"))
	logs := os.Getenv("KUBETRAIL_SYNC_LOGS")
	settle := 15 * time.Second
	if s := os.Getenv("KUBETRAIL_SYNC_SETTLE"); s != "" {
		if settle, err = time.ParseDuration(s); err != nil {
			t.Fatalf("KUBETRAIL_SYNC_SETTLE: %v", err)
		}
	}
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
			conn := []string{"kube_url=" + c.URL, "kube_ca_file=" + c.CAFile, "kube_token_file=" + token}
			type consumer struct {
				name  string
				limit time.Duration
				cmd   func(out, db string, v variant) *exec.Cmd
			}
			consumers := []consumer{{"flb-testhost k8s_events", 5 * time.Minute, func(out, db string, v variant) *exec.Cmd {
				args := []string{"input", "-l", lib, "--out", out}
				for _, p := range append(append(slices.Clone(conn), "db="+db), v.props...) {
					args = append(args, "-p", p)
				}
				return v.command(host, args...)
			}}}
			if fb != "" {
				// Fluent Bit's file output, format plain: one JSON record per line.
				fileOut := func(out string) []string {
					return []string{"-o", "file", "-p", "path=" + filepath.Dir(out), "-p", "file=" + filepath.Base(out), "-p", "format=plain", "-f", "1"}
				}
				consumers = append(consumers, consumer{"fluent-bit k8s_events", 5 * time.Minute, func(out, db string, v variant) *exec.Cmd {
					args := []string{"-e", lib, "-i", "k8s_events", "-p", "threaded=off", "-p", "db=" + db}
					for _, p := range append(slices.Clone(conn), v.props...) {
						args = append(args, "-p", p)
					}
					return v.command(fb, append(args, fileOut(out)...)...)
				}}, consumer{"fluent-bit kubernetes_events", 15 * time.Minute, func(out, db string, _ variant) *exec.Cmd {
					args := []string{"-i", "kubernetes_events", "-p", "kube_url=" + c.URL, "-p", "kube_ca_file=" + c.CAFile,
						"-p", "kube_token_file=" + token, "-p", "kube_request_limit=500", "-p", "db=" + db}
					return exec.Command(fb, append(args, fileOut(out)...)...)
				}})
			} else {
				t.Log("no real Fluent Bit (FLUENT_BIT or PATH): measuring flb-testhost only")
			}
			run := 0
			for vi, v := range variants {
				for _, cs := range consumers {
					if only != "" && cs.name != only {
						continue
					}
					ours := strings.Contains(cs.name, "k8s_events")
					if !ours && vi > 0 {
						continue // not configured by the variants: once is enough
					}
					name := cs.name
					if ours && v.name != "-" {
						name += " [" + v.name + "]"
					}
					run++
					sub := filepath.Join(dir, strconv.Itoa(run))
					if err := os.Mkdir(sub, 0o755); err != nil {
						t.Fatal(err)
					}
					out := filepath.Join(sub, "out.json")
					m := measureSync(t, cs.cmd(out, filepath.Join(sub, "events.db"), v), out, n, cs.limit, settle)
					if ours {
						// At least n records (the cluster may add Events of its own), and no
						// version of an Event twice.
						if d := repeated(t, out); d > 0 {
							t.Errorf("%s: %d records repeat an Event version already written", name, d)
						}
					}
					// RSS includes the library's file pages (shared page cache: ~36 MB, the
					// same with no Events at all); the private (anonymous) peak is sampled.
					t.Logf("%s: synced %d Events in %v (%.0f Events/s), peak RSS %d MB, private (RssAnon) peak %d MB, %d MB of records; %v later RSS %d MB, private %d MB",
						name, n, m.took.Round(10*time.Millisecond), float64(n)/m.took.Seconds(), m.hwm>>10, m.anon>>10, m.size>>20,
						settle, m.rss>>10, m.rssAnon>>10)
					for _, l := range strings.Split(m.log, "\n") {
						if strings.Contains(l, "] listed ") || strings.Contains(l, "memory limit") {
							t.Logf("  plugin: %s", l)
						}
					}
					if logs != "" {
						f := filepath.Join(logs, fmt.Sprintf("%d-%d-%s.log", n, run, strings.NewReplacer(" ", "_", "/", "_").Replace(name)))
						for suffix, b := range map[string][]byte{"": []byte(m.log), ".smaps-synced": m.smapsSynced, ".smaps-settled": m.smapsSettled} {
							if err := os.WriteFile(f+suffix, b, 0o644); err != nil {
								t.Error(err)
							}
						}
					}
				}
			}
		})
	}
}

// variant is one configuration of the k8s_events consumers (KUBETRAIL_SYNC_VARIANTS).
type variant struct {
	name  string
	env   []string // NAME=value, for the consumer only
	props []string // property=value
}

func parseVariants(t *testing.T, spec string) []variant {
	var vs []variant
	for _, s := range strings.Split(spec, ";") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		v := variant{name: s}
		for _, w := range strings.Fields(s) {
			k, _, ok := strings.Cut(w, "=")
			switch {
			case w == "-":
			case !ok || k == "":
				t.Fatalf("KUBETRAIL_SYNC_VARIANTS: %q is not NAME=value", w)
			case strings.ToUpper(k) == k:
				v.env = append(v.env, w)
			default:
				v.props = append(v.props, w)
			}
		}
		vs = append(vs, v)
	}
	if len(vs) == 0 {
		vs = []variant{{name: "-"}}
	}
	return vs
}

// command is exec.Command with the variant's environment added to the test's (later
// entries win in os/exec), and GOMEMLIMIT, GOGC or GODEBUG exported to the test itself
// left out unless the variant sets them: they are meant for the consumer.
func (v variant) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	for _, e := range os.Environ() {
		k, _, _ := strings.Cut(e, "=")
		if k != "GOMEMLIMIT" && k != "GOGC" && k != "GODEBUG" {
			cmd.Env = append(cmd.Env, e)
		}
	}
	cmd.Env = append(cmd.Env, v.env...)
	return cmd
}

// syncFigures are one consumer's figures: time to the last record, peak RSS and peak
// private memory (KiB), bytes written, and its log.
type syncFigures struct {
	took         time.Duration
	hwm, anon    int
	rss, rssAnon int // after settle
	size         int64
	log          string
	// /proc/PID/smaps when the last record was written and after settle, for
	// KUBETRAIL_SYNC_LOGS: which mappings hold the memory (the Go heap's arenas, glibc's
	// arenas, the library's file pages).
	smapsSynced, smapsSettled []byte
}

// measureSync starts cmd, waits until out holds n lines (failing after limit), samples
// its memory every 100 ms, reads it again after settle, then stops it.
func measureSync(t *testing.T, cmd *exec.Cmd, out string, n int, limit, settle time.Duration) syncFigures {
	t.Helper()
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	var m syncFigures
	var lc lineCounter
	for lines := 0; lines < n; {
		if time.Since(start) > limit {
			t.Fatalf("%s: only %d of %d records after %v:\n%s", cmd.Path, lines, n, limit, lastLines(stderr.String(), 30))
		}
		time.Sleep(100 * time.Millisecond)
		lines = lc.count(t, out)
		m.hwm = max(m.hwm, procStatus(cmd.Process.Pid, "VmHWM"))
		m.anon = max(m.anon, procStatus(cmd.Process.Pid, "RssAnon"))
	}
	m.took = time.Since(start)
	m.smapsSynced, _ = os.ReadFile(fmt.Sprintf("/proc/%d/smaps", cmd.Process.Pid))
	for end := time.Now().Add(settle); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		m.hwm = max(m.hwm, procStatus(cmd.Process.Pid, "VmHWM"))
		m.anon = max(m.anon, procStatus(cmd.Process.Pid, "RssAnon"))
	}
	m.smapsSettled, _ = os.ReadFile(fmt.Sprintf("/proc/%d/smaps", cmd.Process.Pid))
	m.rss = procStatus(cmd.Process.Pid, "VmRSS")
	m.rssAnon = procStatus(cmd.Process.Pid, "RssAnon")
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()
	if st, err := os.Stat(out); err == nil {
		m.size = st.Size()
	}
	m.log = stderr.String()
	return m
}

// repeated counts the records of out (JSON lines) whose (uid, resourceVersion) an
// earlier record had.
func repeated(t *testing.T, out string) int {
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := make(map[[2]string]bool)
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var r struct {
			Metadata struct{ UID, ResourceVersion string }
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%s: %v: %.200s", out, err, sc.Bytes())
		}
		k := [2]string{r.Metadata.UID, r.Metadata.ResourceVersion}
		if seen[k] {
			n++
		}
		seen[k] = true
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return n
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

// lineCounter counts the lines of a growing file, reading only what was added since
// the last call: re-reading a 68 MB output every 100 ms would itself load the machine
// being measured.
type lineCounter struct {
	off   int64
	lines int
}

func (lc *lineCounter) count(t *testing.T, path string) int {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return 0
	} else if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for {
		k, err := f.ReadAt(buf, lc.off)
		lc.lines += bytes.Count(buf[:k], []byte("\n"))
		lc.off += int64(k)
		if err != nil || k == 0 {
			return lc.lines
		}
	}
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
