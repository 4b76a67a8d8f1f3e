package testhost_test

// TestTailRotation measures how Fluent Bit's tail input follows kube-apiserver's audit
// log across rotations: a real kube-apiserver (test/testcluster) rotating with
// lumberjack at --audit-log-maxsize=1 (audit.log renamed audit-<time>.log, a new
// audit.log created), a real Fluent Bit running, then stopped across at least two
// rotations, then started again, with several stock tail settings side by side (one
// Fluent Bit, one tail input per setting, each with its own db and output file, so that
// all see the same rotations at the same moments). Every event the apiserver wrote (all
// files are kept: --audit-log-maxbackup=0) is looked for in each output by (auditID,
// stage): lost = written but never output, repeated = output more than once.
//
// What stock tail does (Fluent Bit 5.1.1 and 4.1.2, plugins/in_tail):
//
//   - Path audit.log (the live file only): a file renamed while Fluent Bit was stopped
//     is never opened again; what it held past the saved offset, and every file that was
//     created and rotated away meanwhile, are lost.
//   - Path audit*.log: nothing is lost, but a file renamed while Fluent Bit had it open
//     is marked rotated (tail_file.c, flb_tail_file_rotated) and its db row is deleted
//     when it is let go (flb_tail_file_remove: after rotate_wait by flb_tail_file_purge,
//     or at shutdown by flb_tail_file_remove_all); the next scan then finds it under its
//     new name, unknown to the db, and reads it again from its head (after the first
//     scan read_newly_discovered_files_from_head makes read_from_head true).
//
// The test asserts those two facts (so that a Fluent Bit release that changes them is
// noticed), that no setting outputs an event that was never written, and that the glob
// with k8s_audit's dedup (dedup_file next to tail's db; the setting of deploy/) neither
// loses nor repeats an event; it logs the numbers of every setting.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kubetrail/kubetrail/test/fluentbit"
	"github.com/kubetrail/kubetrail/test/testcluster"
)

// tailSetting is one way of tailing the audit log: the tail properties besides Name,
// Tag, DB and the buffer sizes, which are those of deploy/configmap.yaml, and the
// k8s_audit properties (each setting has its own filter).
type tailSetting struct {
	name   string
	props  [][2]string
	filter [][2]string
}

// Path is filled in with the cluster's directory.
var rotationSettings = []tailSetting{
	// deploy/configmap.yaml's tail stanza, as issue 14 found it.
	{name: "live", props: [][2]string{{"Path", "{dir}/audit.log"}, {"Read_from_Head", "on"}, {"Refresh_Interval", "10"}, {"Rotate_Wait", "10"}}},
	{name: "live-keep", props: [][2]string{{"Path", "{dir}/audit.log"}, {"Read_from_Head", "on"}, {"Refresh_Interval", "10"}, {"Rotate_Wait", "31536000"}}},
	// The rotated files too.
	{name: "glob", props: [][2]string{{"Path", "{dir}/audit*.log"}, {"Read_from_Head", "on"}, {"Refresh_Interval", "10"}, {"Rotate_Wait", "10"}}},
	// ... never letting a rotated file go while it exists (rotate_wait one year).
	{name: "glob-keep", props: [][2]string{{"Path", "{dir}/audit*.log"}, {"Read_from_Head", "on"}, {"Refresh_Interval", "10"}, {"Rotate_Wait", "31536000"}}},
	{name: "glob-keep-fast", props: [][2]string{{"Path", "{dir}/audit*.log"}, {"Read_from_Head", "on"}, {"Refresh_Interval", "1"}, {"Rotate_Wait", "31536000"}}},
	// ... with the db row matched by name and inode.
	{name: "glob-compare", props: [][2]string{{"Path", "{dir}/audit*.log"}, {"Read_from_Head", "on"}, {"Refresh_Interval", "10"}, {"Rotate_Wait", "10"}, {"DB.compare_filename", "on"}}},
	// ... not reading files found at start from their head.
	{name: "glob-nohead", props: [][2]string{{"Path", "{dir}/audit*.log"}, {"Read_from_Head", "off"}, {"Refresh_Interval", "10"}, {"Rotate_Wait", "10"}}},
	// ... with the stat watcher instead of inotify.
	{name: "glob-stat", props: [][2]string{{"Path", "{dir}/audit*.log"}, {"Read_from_Head", "on"}, {"Refresh_Interval", "10"}, {"Rotate_Wait", "10"}, {"Inotify_Watcher", "false"}}},
	// ... with the file name on each record (it does not change what is read).
	{name: "glob-pathkey", props: [][2]string{{"Path", "{dir}/audit*.log"}, {"Read_from_Head", "on"}, {"Refresh_Interval", "10"}, {"Rotate_Wait", "10"}, {"Path_Key", "audit_file"}}},
	// The glob with k8s_audit's dedup, its state in a file next to tail's db: what
	// tail reads again is left out, across the restart too.
	{name: "glob-dedup", props: [][2]string{{"Path", "{dir}/audit*.log"}, {"Read_from_Head", "on"}, {"Refresh_Interval", "10"}, {"Rotate_Wait", "10"}},
		filter: [][2]string{{"dedup", "on"}, {"dedup_file", "{state}/glob-dedup.dedup"}}},
	// ... as deploy/configmap.yaml has it (rotate_wait one year).
	{name: "glob-keep-dedup", props: [][2]string{{"Path", "{dir}/audit*.log"}, {"Read_from_Head", "on"}, {"Refresh_Interval", "10"}, {"Rotate_Wait", "31536000"}},
		filter: [][2]string{{"dedup", "on"}, {"dedup_file", "{state}/glob-keep-dedup.dedup"}}},
}

// rotationConfig writes the classic configuration: one tail, one k8s_audit filter and
// one file output per setting ({dir} in a tail property is the audit log's folder,
// {state} in a filter property the test's).
func rotationConfig(t *testing.T, dir, logDir, outDir string) string {
	t.Helper()
	pluginsConf, _ := filepath.Abs("../../build/plugins.conf")
	var b strings.Builder
	fmt.Fprintf(&b, "[SERVICE]\n    Flush        1\n    Grace        5\n    Log_Level    info\n    Plugins_File %s\n\n", pluginsConf)
	for _, s := range rotationSettings {
		fmt.Fprintf(&b, "[INPUT]\n    Name              tail\n    Tag               rot.%s\n    DB                %s\n    DB.locking        true\n", s.name, filepath.Join(dir, s.name+".db"))
		b.WriteString("    Buffer_Chunk_Size 256k\n    Buffer_Max_Size   4M\n    Skip_Long_Lines   off\n")
		for _, p := range s.props {
			fmt.Fprintf(&b, "    %-17s %s\n", p[0], strings.ReplaceAll(p[1], "{dir}", logDir))
		}
		b.WriteString("\n")
	}
	for _, s := range rotationSettings {
		fmt.Fprintf(&b, "[FILTER]\n    Name  k8s_audit\n    Match rot.%s\n", s.name)
		for _, p := range s.filter {
			fmt.Fprintf(&b, "    %s %s\n", p[0], strings.ReplaceAll(p[1], "{state}", dir))
		}
		b.WriteString("\n")
	}
	for _, s := range rotationSettings {
		fmt.Fprintf(&b, "[OUTPUT]\n    Name   file\n    Match  rot.%s\n    Path   %s\n    File   %s.jsonl\n    Format plain\n\n", s.name, outDir, s.name)
	}
	cfg := filepath.Join(dir, "fluent-bit.conf")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// auditKeys reads JSON lines and returns, for each (auditID, stage), how many lines
// have it, and the lines that have none.
func auditKeys(t *testing.T, path string) (map[string]int, int) {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return map[string]int{}, 0
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	keys := map[string]int{}
	bad := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var ev struct {
			AuditID string `json:"auditID"`
			Stage   string `json:"stage"`
		}
		if json.Unmarshal(sc.Bytes(), &ev) != nil || ev.AuditID == "" {
			bad++
			continue
		}
		keys[ev.AuditID+"/"+ev.Stage]++
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return keys, bad
}

// rotationResult is what one setting output, against what the apiserver wrote.
type rotationResult struct {
	written, out, lost, repeated, unknown, bad int
	lostIn, repeatedIn                         map[string]int // by audit log file
}

func (r rotationResult) String() string {
	files := func(m map[string]int) string {
		var s []string
		for f, n := range m {
			s = append(s, fmt.Sprintf("%s:%d", f, n))
		}
		sort.Strings(s)
		return strings.Join(s, " ")
	}
	return fmt.Sprintf("written %d, output %d, lost %d, repeated %d, never written %d, unreadable %d; lost in [%s], repeated from [%s]",
		r.written, r.out, r.lost, r.repeated, r.unknown, r.bad, files(r.lostIn), files(r.repeatedIn))
}

// truth returns every (auditID, stage) the apiserver wrote, with the file holding it.
func rotationTruth(t *testing.T, logDir string) (map[string]string, int) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(logDir, "audit*.log"))
	if err != nil {
		t.Fatal(err)
	}
	where := map[string]string{}
	dups := 0
	for _, f := range files {
		keys, bad := auditKeys(t, f)
		if bad > 0 {
			t.Fatalf("%s: %d lines that are not audit events", f, bad)
		}
		for k, n := range keys {
			if _, ok := where[k]; ok || n > 1 {
				dups++
			}
			where[k] = filepath.Base(f)
		}
	}
	return where, dups
}

func rotationCompare(t *testing.T, truth map[string]string, outFile string) rotationResult {
	t.Helper()
	got, bad := auditKeys(t, outFile)
	r := rotationResult{written: len(truth), bad: bad, lostIn: map[string]int{}, repeatedIn: map[string]int{}}
	for k, n := range got {
		r.out += n
		f, ok := truth[k]
		if !ok {
			r.unknown += n
			continue
		}
		if n > 1 {
			r.repeated += n - 1
			r.repeatedIn[f] += n - 1
		}
	}
	for k, f := range truth {
		if got[k] == 0 {
			r.lost++
			r.lostIn[f]++
		}
	}
	return r
}

// rotations counts the rotated files (audit-<time>.log).
func rotations(t *testing.T, logDir string) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(logDir, "audit-*.log"))
	if err != nil {
		t.Fatal(err)
	}
	return len(m)
}

func TestTailRotation(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real kube-apiserver and writes about 10 MB of audit log")
	}
	bin := fluentbit.Require(t, "measure tail across audit log rotations")
	paths(t)
	c := testcluster.Start(t, testcluster.Options{ExtraArgs: []string{
		"--audit-log-maxsize=1",   // MiB: lumberjack rotates every ~60 requests below
		"--audit-log-maxbackup=0", // keep every rotated file: they are the truth
	}})
	logDir := filepath.Dir(c.AuditLog)
	dir := t.TempDir()
	outDir := filepath.Join(dir, "out")
	if err := os.Mkdir(outDir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := rotationConfig(t, dir, logDir, outDir)

	const ns = "rotation"
	if st, b, err := c.Do(http.MethodPost, "/api/v1/namespaces", []byte(`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"`+ns+`"}}`), c.AdminToken); err != nil || st != http.StatusCreated {
		t.Fatalf("creating the namespace: %d %v %s", st, err, b)
	}
	// Load: ConfigMaps of 8 KiB, each a RequestResponse event of about 17 KiB.
	data := strings.Repeat("x", 8<<10)
	var stop atomic.Bool
	var sent atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; !stop.Load(); i++ {
			body := fmt.Sprintf(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"rot-%d"},"data":{"d":%q}}`, i, data)
			st, b, err := c.Do(http.MethodPost, "/api/v1/namespaces/"+ns+"/configmaps", []byte(body), c.AdminToken)
			if err != nil || st != http.StatusCreated {
				t.Errorf("creating a ConfigMap: %d %v %.200s", st, err, b)
				return
			}
			sent.Add(1)
			time.Sleep(15 * time.Millisecond)
		}
	}()
	defer func() { stop.Store(true); wg.Wait() }()
	waitRotations := func(what string, n int) {
		t.Helper()
		start := rotations(t, logDir)
		waitUntil(t, what, 3*time.Minute, func() (bool, string) {
			if t.Failed() {
				t.FailNow()
			}
			r := rotations(t, logDir)
			return r >= start+n, fmt.Sprintf("%d rotations", r-start)
		})
		time.Sleep(time.Second) // into the new audit.log
	}

	// 1. Fluent Bit running across two rotations.
	fb := fluentbit.Start(t, bin, dir, cfg)
	waitRotations("two rotations with Fluent Bit running", 2)
	fb.Stop()
	_, log1 := fb.Snapshot()
	t.Logf("stopped Fluent Bit after %d rotations, %d requests", rotations(t, logDir), sent.Load())
	// 2. Stopped across three.
	waitRotations("three rotations with Fluent Bit stopped", 3)
	// 3. Running again across two more, then the load stops.
	fb = fluentbit.Start(t, bin, dir, cfg)
	waitRotations("two rotations after the restart", 2)
	stop.Store(true)
	wg.Wait()
	lastRotation := time.Now()
	t.Logf("load stopped: %d requests, %d rotations", sent.Load(), rotations(t, logDir))

	// Until every output is still for 5 s, and long enough after the last rotation for
	// rotate_wait (10 s) and a refresh (10 s) to have acted.
	sizes := func() string {
		var s []string
		for _, set := range rotationSettings {
			fi, err := os.Stat(filepath.Join(outDir, set.name+".jsonl"))
			if err == nil {
				s = append(s, fmt.Sprint(fi.Size()))
			}
		}
		return strings.Join(s, ",")
	}
	prev, since := sizes(), time.Now()
	waitUntil(t, "the outputs to settle", 3*time.Minute, func() (bool, string) {
		if fb.Exited() {
			t.Fatalf("Fluent Bit exited")
		}
		if s := sizes(); s != prev {
			prev, since = s, time.Now()
		}
		return time.Since(since) > 5*time.Second && time.Since(lastRotation) > 25*time.Second, prev
	})
	fb.Stop()
	_, log2 := fb.Snapshot()
	for _, l := range strings.Split(log1+log2, "\n") {
		if strings.Contains(l, "[error]") || strings.Contains(l, "[ warn]") {
			t.Logf("Fluent Bit: %s", l)
		}
	}

	truth, dups := rotationTruth(t, logDir)
	if dups > 0 {
		t.Fatalf("%d (auditID, stage) pairs written twice by the apiserver", dups)
	}
	t.Logf("%s: %d events in %d files", bin, len(truth), rotations(t, logDir)+1)
	results := map[string]rotationResult{}
	for _, s := range rotationSettings {
		r := rotationCompare(t, truth, filepath.Join(outDir, s.name+".jsonl"))
		results[s.name] = r
		t.Logf("%-15s %s", s.name, r)
		if r.unknown > 0 || r.bad > 0 {
			t.Errorf("%s: %d records of events never written, %d unreadable", s.name, r.unknown, r.bad)
		}
	}
	// The facts the README and deploy/ rely on.
	if r := results["live"]; r.lost == 0 {
		t.Errorf("live: no event lost with Fluent Bit stopped across rotations: has in_tail changed? %s", r)
	}
	for _, name := range []string{"glob", "glob-keep", "glob-stat"} {
		if r := results[name]; r.lost != 0 {
			t.Errorf("%s: %d events lost", name, r.lost)
		}
	}
	if r := results["glob"]; r.repeated == 0 {
		t.Errorf("glob: nothing repeated after rotations: has in_tail changed? %s", r)
	}
	// What deploy/ relies on: the glob with dedup neither loses nor repeats.
	for _, name := range []string{"glob-dedup", "glob-keep-dedup"} {
		if r := results[name]; r.lost != 0 || r.repeated != 0 {
			t.Errorf("%s: %d lost, %d repeated, want none", name, r.lost, r.repeated)
		}
	}
	for _, l := range strings.Split(log1+log2, "\n") {
		if strings.Contains(l, "duplicates=") {
			t.Logf("Fluent Bit: %s", l)
		}
	}
}
