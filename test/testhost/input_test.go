package testhost_test

// The k8s_events input end to end: build/kubetrail.so run by `flb-testhost input`
// (Fluent Bit's Go-proxy sequence for a threaded input: own thread, collect every
// --interval-ms, the append into a ring that the engine thread drains into the output,
// the cleanup callback; see input.c) against a real kube-apiserver and etcd (test/testcluster). Each test starts its own cluster, one at a time: on
// a small machine two apiservers at once make the timing tests flaky.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kubetrail/kubetrail/test/repo"
	"github.com/kubetrail/kubetrail/test/testcluster"
)

const (
	inputInterval = "200" // --interval-ms of every input test
	inputWait     = 120 * time.Second
	inputPrefix   = "[input:k8s_events:k8s_events.0] "
)

var inputSummary = regexp.MustCompile(`(?m)^testhost input: callbacks=(\d+) batches=(\d+) records=(\d+) bytes=(\d+) malformed=(\d+) dropped=(\d+)$`)

// inputPaths returns build/flb-testhost and build/kubetrail.so (the Go-proxy input;
// KUBETRAIL_INPUT_LIB names another build of it, e.g. an older one to show that a
// test fails there).
func inputPaths(t testing.TB) (host, lib string) {
	t.Helper()
	host = repo.Artefact(t, "build/flb-testhost", "make")
	if l := os.Getenv("KUBETRAIL_INPUT_LIB"); l != "" {
		if _, err := os.Stat(l); err != nil {
			t.Fatalf("KUBETRAIL_INPUT_LIB: %v", err)
		}
		return host, l
	}
	return host, repo.Artefact(t, "build/kubetrail.so", "make")
}

// evKey identifies one version of an Event.
type evKey struct{ UID, RV string }

func (k evKey) String() string { return k.UID[:8] + "@" + k.RV }

// evCluster is a test cluster plus the Event versions the test created in it.
type evCluster struct {
	c         *testcluster.Cluster
	dir       string
	tokenFile string // the admin token

	mu      sync.Mutex
	created map[evKey]time.Time // every version created or updated, with when
	names   map[evKey]string
}

func newEvCluster(t *testing.T) *evCluster {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a real kube-apiserver")
	}
	inputPaths(t)
	e := &evCluster{c: testcluster.Start(t, testcluster.Options{}), dir: t.TempDir(),
		created: make(map[evKey]time.Time), names: make(map[evKey]string)}
	e.tokenFile = e.writeToken(t, "admin-token", e.c.AdminToken)
	return e
}

func (e *evCluster) writeToken(t *testing.T, name, token string) string {
	t.Helper()
	p := filepath.Join(e.dir, name)
	if err := os.WriteFile(p, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// props are the connection properties for this cluster, the token file and db given.
func (e *evCluster) props(tokenFile, db string) []string {
	return []string{"kube_url=" + e.c.URL, "kube_ca_file=" + e.c.CAFile, "kube_token_file=" + tokenFile, "db=" + db}
}

func (e *evCluster) request(method, path string, body any) (map[string]any, error) {
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			return nil, err
		}
	}
	status, resp, err := e.c.Do(method, path, b, e.c.AdminToken)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if status >= 300 {
		return nil, fmt.Errorf("%s %s: status %d: %s", method, path, status, resp)
	}
	var out map[string]any
	if err := json.Unmarshal(resp, &out); err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	return out, nil
}

// note records the version the API server returned.
func (e *evCluster) note(obj map[string]any) (evKey, error) {
	md, _ := obj["metadata"].(map[string]any)
	uid, _ := md["uid"].(string)
	rv, _ := md["resourceVersion"].(string)
	name, _ := md["name"].(string)
	if uid == "" || rv == "" {
		return evKey{}, fmt.Errorf("response without uid or resourceVersion: %v", obj)
	}
	k := evKey{uid, rv}
	e.mu.Lock()
	e.created[k] = time.Now()
	e.names[k] = name
	e.mu.Unlock()
	return k, nil
}

// create creates a core/v1 Event in default (safe from several goroutines).
func (e *evCluster) create(name string) (evKey, error) {
	now := time.Now().UTC().Format(time.RFC3339)
	obj, err := e.request(http.MethodPost, "/api/v1/namespaces/default/events", map[string]any{
		"metadata":       map[string]any{"name": name},
		"involvedObject": map[string]any{"kind": "Pod", "name": "pod-" + name, "namespace": "default"},
		"reason":         "Created",
		"message":        "test event " + name,
		"type":           "Normal",
		"source":         map[string]any{"component": testSource},
		"firstTimestamp": now,
		"lastTimestamp":  now,
		"count":          1,
	})
	if err != nil {
		return evKey{}, err
	}
	return e.note(obj)
}

func (e *evCluster) mustCreate(t *testing.T, name string) evKey {
	t.Helper()
	k, err := e.create(name)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// bump repeats an Event as the kubelet's recorder does (GET, count+1, PUT): a new version.
func (e *evCluster) bump(t *testing.T, name string) evKey {
	t.Helper()
	path := "/api/v1/namespaces/default/events/" + name
	ev, err := e.request(http.MethodGet, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	ev["count"] = ev["count"].(float64) + 1
	ev["lastTimestamp"] = time.Now().UTC().Format(time.RFC3339)
	if ev, err = e.request(http.MethodPut, path, ev); err != nil {
		t.Fatal(err)
	}
	k, err := e.note(ev)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// createdSince returns the versions created in [from, to].
func (e *evCluster) createdSince(from, to time.Time) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, at := range e.created {
		if !at.Before(from) && !at.After(to) {
			n++
		}
	}
	return n
}

func (e *evCluster) expected() map[evKey]time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[evKey]time.Time, len(e.created))
	for k, v := range e.created {
		out[k] = v
	}
	return out
}

// creator creates Events named prefix-NNNN, one every pause, until stop is called.
type creator struct {
	stopc chan struct{}
	done  chan struct{}
	n     int
	err   error
}

func (e *evCluster) startCreator(prefix string, pause time.Duration, max int) *creator {
	cr := &creator{stopc: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(cr.done)
		for cr.n < max {
			select {
			case <-cr.stopc:
				return
			default:
			}
			if _, err := e.create(fmt.Sprintf("%s-%04d", prefix, cr.n)); err != nil {
				cr.err = err
				return
			}
			cr.n++
			time.Sleep(pause)
		}
	}()
	return cr
}

// stop stops the creator and returns how many Events it created.
func (cr *creator) stop(t *testing.T) int {
	t.Helper()
	select {
	case <-cr.stopc:
	default:
		close(cr.stopc)
	}
	<-cr.done
	if cr.err != nil {
		t.Fatalf("creating Events: %v", cr.err)
	}
	return cr.n
}

// outRec is one line of the host's --out file.
type outRec struct {
	Key    evKey
	Name   string
	Source string // source.component
	Off    int64  // offset of the line in the file
}

// testSource is the source.component of the Events the tests create. The API server
// creates a few Events of its own (e.g. about the default/kubernetes Service's
// ClusterIP): those are recorded too, and not counted.
const testSource = "kubetrail-input-test"

// ours returns the records of Events the test created and fails on a record that
// claims to be one but is no version the test created.
func ours(t *testing.T, want map[evKey]time.Time, recs []outRec) []outRec {
	t.Helper()
	var out []outRec
	for _, r := range recs {
		if _, ok := want[r.Key]; ok {
			out = append(out, r)
		} else if r.Source == testSource {
			t.Errorf("record of a version the test did not create: %s %v", r.Name, r.Key)
		}
	}
	return out
}

// readOut parses the complete lines of an --out file; size is where they end.
func readOut(t testing.TB, path string) (recs []outRec, size int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0
	}
	if err != nil {
		t.Fatal(err)
	}
	var off int64
	for {
		i := bytes.IndexByte(b[off:], '\n')
		if i < 0 {
			return recs, off
		}
		line := b[off : off+int64(i)]
		var r struct {
			Date     *float64 `json:"date"`
			Metadata struct {
				UID             string `json:"uid"`
				ResourceVersion string `json:"resourceVersion"`
				Name            string `json:"name"`
			} `json:"metadata"`
			Source struct {
				Component string `json:"component"`
			} `json:"source"`
		}
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("%s at offset %d: not a JSON record: %v: %.300s", path, off, err, line)
		}
		if r.Date == nil || r.Metadata.UID == "" || r.Metadata.ResourceVersion == "" {
			t.Fatalf("%s at offset %d: record without date, uid or resourceVersion: %.300s", path, off, line)
		}
		recs = append(recs, outRec{Key: evKey{r.Metadata.UID, r.Metadata.ResourceVersion}, Name: r.Metadata.Name, Source: r.Source.Component, Off: off})
		off += int64(i) + 1
	}
}

// countKeys counts each version's records.
func countKeys(recs []outRec) map[evKey]int {
	m := make(map[evKey]int, len(recs))
	for _, r := range recs {
		m[r.Key]++
	}
	return m
}

// missing lists the expected versions that recs lacks.
func missing(want map[evKey]time.Time, recs []outRec) []evKey {
	have := countKeys(recs)
	var out []evKey
	for k := range want {
		if have[k] == 0 {
			out = append(out, k)
		}
	}
	return out
}

// waitUntil polls cond until it holds; on timeout it fails with what cond last said.
func waitUntil(t *testing.T, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %s", timeout, what, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// hostRun is one `flb-testhost input` process.
type hostRun struct {
	t       *testing.T
	name    string
	cmd     *exec.Cmd
	out     string
	logPath string // its stderr
	done    chan struct{}
	err     error // valid once done is closed
}

// startInput starts `flb-testhost input` with props, records appended to out, stderr
// to logPath. It is killed at the end of the test if still running.
func startInput(t *testing.T, name, out, logPath string, props []string, env ...string) *hostRun {
	t.Helper()
	return startInputArgs(t, name, out, logPath, props, nil, env...)
}

// startInputArgs is startInput with extra flags for the host (e.g. --no-ctx).
func startInputArgs(t *testing.T, name, out, logPath string, props, flags []string, env ...string) *hostRun {
	t.Helper()
	host, lib := inputPaths(t)
	args := []string{"input", "-l", lib}
	for _, p := range props {
		args = append(args, "-p", p)
	}
	args = append(args, "--out", out, "--interval-ms", inputInterval)
	args = append(args, flags...)
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(host, args...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &hostRun{t: t, name: name, cmd: cmd, out: out, logPath: logPath, done: make(chan struct{})}
	go func() {
		h.err = cmd.Wait()
		close(h.done)
	}()
	t.Cleanup(func() {
		if !h.exited() {
			_ = h.cmd.Process.Kill()
			<-h.done
		}
		if t.Failed() {
			t.Logf("%s: stderr:\n%s", h.name, h.log())
		}
	})
	return h
}

func (h *hostRun) exited() bool {
	select {
	case <-h.done:
		return true
	default:
		return false
	}
}

func (h *hostRun) log() string {
	b, _ := os.ReadFile(h.logPath)
	return string(b)
}

// code waits for the process and returns its exit code (-1: killed by a signal).
func (h *hostRun) code(timeout time.Duration) int {
	h.t.Helper()
	select {
	case <-h.done:
	case <-time.After(timeout):
		_ = h.cmd.Process.Kill()
		<-h.done
		h.t.Fatalf("%s did not exit within %v", h.name, timeout)
	}
	var ee *exec.ExitError
	switch {
	case h.err == nil:
		return 0
	case errors.As(h.err, &ee):
		return ee.ExitCode()
	}
	h.t.Fatalf("%s: %v", h.name, h.err)
	return -1
}

// term sends SIGTERM and checks the exit code 0 and the summary line; it returns the
// summary's records count.
func (h *hostRun) term() int {
	h.t.Helper()
	if h.exited() {
		h.t.Fatalf("%s exited before SIGTERM: %v", h.name, h.err)
	}
	if err := h.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		h.t.Fatal(err)
	}
	if c := h.code(60 * time.Second); c != 0 {
		h.t.Fatalf("%s: exit code %d after SIGTERM, want 0", h.name, c)
	}
	m := inputSummary.FindStringSubmatch(h.log())
	if m == nil {
		h.t.Fatalf("%s: no summary line on stderr", h.name)
	}
	if m[5] != "0" {
		h.t.Errorf("%s: malformed buffers: %s", h.name, m[0])
	}
	n, _ := strconv.Atoi(m[3])
	return n
}

func (h *hostRun) logHas(s string) bool { return strings.Contains(h.log(), s) }

// pluginLines returns the stderr lines of the plugin's own logger.
func pluginLines(log string) []string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "[input:k8s_events") {
			out = append(out, l)
		}
	}
	return out
}

// TestInputExactlyOnce: existing Events (listed), new ones and new versions of old ones
// (watched), each version exactly once; the log lines and a clean SIGTERM.
func TestInputExactlyOnce(t *testing.T) {
	began := time.Now()
	e := newEvCluster(t)
	for i := 0; i < 30; i++ {
		e.mustCreate(t, fmt.Sprintf("once-%02d", i))
	}
	out := filepath.Join(e.dir, "out.jsonl")
	db := filepath.Join(e.dir, "events.db")
	h := startInput(t, "host", out, filepath.Join(e.dir, "host.log"), e.props(e.tokenFile, db))

	waitUntil(t, "the 30 existing Events", inputWait, func() (bool, string) {
		recs, _ := readOut(t, out)
		return len(missing(e.expected(), recs)) == 0, fmt.Sprintf("%d records", len(recs))
	})
	for i := 30; i < 60; i++ {
		e.mustCreate(t, fmt.Sprintf("once-%02d", i))
	}
	for i := 0; i < 10; i++ {
		e.bump(t, fmt.Sprintf("once-%02d", i))
	}
	want := e.expected()
	if len(want) != 70 {
		t.Fatalf("%d versions created, want 70", len(want))
	}
	waitUntil(t, "the new and repeated Events", inputWait, func() (bool, string) {
		recs, _ := readOut(t, out)
		m := missing(want, recs)
		return len(m) == 0, fmt.Sprintf("%d records, %d versions missing", len(recs), len(m))
	})
	time.Sleep(2 * time.Second) // anything extra would arrive meanwhile
	if h.exited() {
		t.Fatalf("the host exited: %v", h.err)
	}
	recs, _ := readOut(t, out)
	for k, n := range countKeys(recs) {
		if n != 1 {
			t.Errorf("%s %v: %d records, want exactly 1", e.names[k], k, n)
		}
	}
	if n := len(ours(t, want, recs)); n != 70 {
		t.Errorf("%d records of the test's Events, want 70", n)
	}

	if n := h.term(); n != len(recs) {
		t.Errorf("summary says records=%d, the out file holds %d", n, len(recs))
	}
	log := h.log()
	var start string
	for _, l := range pluginLines(log) {
		if !strings.Contains(l, "] "+inputPrefix) {
			t.Errorf("plugin log line without the prefix %q: %s", inputPrefix, l)
		}
		if strings.Contains(l, inputPrefix+"starting: ") {
			start = l
		}
	}
	if start == "" {
		t.Fatalf("no start-up line %q in:\n%s", inputPrefix+"starting: ", log)
	}
	for _, kv := range []string{
		"kube_url=" + e.c.URL, "kube_ca_file=" + e.c.CAFile, "kube_token_file=" + e.tokenFile,
		"db=" + db, "kube_events_api=v1", "kube_tls_verify=on", "emit_existing=on",
		"leader_election=off", "kube_request_limit=500", "buffer_max_size=",
	} {
		if !strings.Contains(start, kv) {
			t.Errorf("start-up line lacks %q: %s", kv, start)
		}
	}
	if strings.Contains(log, e.c.AdminToken) {
		t.Errorf("the token's content is in the log")
	}
	if !strings.Contains(log, inputPrefix+"stopped: ") {
		t.Errorf("no %q line in:\n%s", inputPrefix+"stopped: ", log)
	}
	t.Logf("exactly once: %d records, %d plugin log lines, %v in all", len(recs), len(pluginLines(log)), time.Since(began).Round(time.Second))
}

// TestInputWithoutCtxCallbacks drives the library as Fluent Bit < 4.1 does: the plain
// collect and cleanup callbacks, which carry no instance, so the library finds it by
// the input's thread; FLBPluginExit finds it the same way (the "stopped:" line).
func TestInputWithoutCtxCallbacks(t *testing.T) {
	e := newEvCluster(t)
	for i := 0; i < 5; i++ {
		e.mustCreate(t, fmt.Sprintf("noctx-%d", i))
	}
	want := e.expected()
	out := filepath.Join(e.dir, "out.jsonl")
	h := startInputArgs(t, "host", out, filepath.Join(e.dir, "host.log"),
		e.props(e.tokenFile, filepath.Join(e.dir, "events.db")), []string{"--no-ctx"})
	waitUntil(t, "the Events through the plain callbacks", inputWait, func() (bool, string) {
		recs, _ := readOut(t, out)
		return len(missing(want, recs)) == 0, fmt.Sprintf("%d records", len(recs))
	})
	recs, _ := readOut(t, out)
	for k, n := range countKeys(ours(t, want, recs)) {
		if n != 1 {
			t.Errorf("%v: %d records, want 1", k, n)
		}
	}
	h.term()
	if !h.logHas(inputPrefix + "stopped: ") {
		t.Errorf("FLBPluginExit did not find the instance:\n%s", h.log())
	}
}

// TestInputLeaderElection runs two hosts sharing a Lease: only the leader emits, and
// stores its checkpoint in the ConfigMap every checkpoint_interval; after its SIGKILL
// the other takes over from that checkpoint, repeating at most what the leader handed
// over within one checkpoint interval and the commit delay.
func TestInputLeaderElection(t *testing.T) {
	began := time.Now()
	e := newEvCluster(t)
	const checkpointInterval = time.Second
	host := func(id string) *hostRun {
		props := append(e.props(e.tokenFile, filepath.Join(e.dir, id+".db")),
			"leader_election=on", "leader_election_namespace=default", "leader_election_identity="+id,
			"leader_election_lease_duration=4s", "leader_election_renew_deadline=3s",
			"leader_election_retry_period=0.5s", "checkpoint_interval=1s")
		return startInput(t, id, filepath.Join(e.dir, id+".jsonl"), filepath.Join(e.dir, id+".log"), props)
	}
	a, b := host("host-a"), host("host-b")
	var leader, standby *hostRun
	waitUntil(t, "a leader", inputWait, func() (bool, string) {
		for _, h := range []*hostRun{a, b} {
			if h.exited() {
				t.Fatalf("%s exited: %v", h.name, h.err)
			}
		}
		switch {
		case a.logHas("host-a is now the leader"):
			leader, standby = a, b
		case b.logHas("host-b is now the leader"):
			leader, standby = b, a
		}
		return leader != nil, "no 'is now the leader' line"
	})
	waitUntil(t, "the standby to see the leader", inputWait, func() (bool, string) {
		return standby.logHas(leader.name + " leads"), "no '" + leader.name + " leads' line"
	})

	for i := 0; i < 20; i++ {
		e.mustCreate(t, fmt.Sprintf("le-first-%02d", i))
	}
	first := e.expected()
	waitUntil(t, "the leader's records", inputWait, func() (bool, string) {
		recs, _ := readOut(t, leader.out)
		m := missing(first, recs)
		return len(m) == 0, fmt.Sprintf("%d records, %d missing", len(recs), len(m))
	})

	// Failover while Events keep coming.
	cr := e.startCreator("le-stream", 20*time.Millisecond, 5000)
	defer cr.stop(t)
	// The leader stores its checkpoint every checkpoint_interval while it leads (not
	// only when it stops): the ConfigMap changes at least three times in 5 s.
	seen := map[string]bool{}
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		if cm, err := e.request(http.MethodGet, "/api/v1/namespaces/default/configmaps/kubetrail-k8s-events-checkpoint", nil); err == nil {
			if data, ok := cm["data"].(map[string]any); ok {
				if cp, _ := data["checkpoint"].(string); cp != "" {
					seen[cp] = true
				}
			}
		}
	}
	if len(seen) < 3 {
		t.Errorf("the checkpoint ConfigMap held %d distinct checkpoints over 5 s of leading with checkpoint_interval=1s, want at least 3", len(seen))
	}
	if recs, _ := readOut(t, standby.out); len(recs) != 0 {
		t.Fatalf("the standby %s emitted %d records while %s led", standby.name, len(recs), leader.name)
	}
	// SIGKILL: no last checkpoint at exit, the next leader resumes from the periodic one.
	termAt := time.Now()
	_ = leader.cmd.Process.Kill()
	leader.code(inputWait)
	waitUntil(t, "the standby to take over", inputWait, func() (bool, string) {
		return standby.logHas(standby.name + " is now the leader"), "no takeover line"
	})
	tookOver := time.Since(termAt)
	time.Sleep(3 * time.Second)
	cr.stop(t)
	want := e.expected()
	waitUntil(t, "every Event version in the union", inputWait, func() (bool, string) {
		ra, _ := readOut(t, leader.out)
		rb, _ := readOut(t, standby.out)
		m := missing(want, append(ra, rb...))
		return len(m) == 0, fmt.Sprintf("%d+%d records, %d of %d versions missing", len(ra), len(rb), len(m), len(want))
	})
	time.Sleep(2 * time.Second)
	standby.term()

	ra, _ := readOut(t, leader.out)
	rb, _ := readOut(t, standby.out)
	ca, cb := countKeys(ra), countKeys(rb)
	for _, c := range []map[evKey]int{ca, cb} {
		for k, n := range c {
			if n != 1 {
				t.Errorf("%s %v: %d records from one host", e.names[k], k, n)
			}
		}
	}
	ours(t, want, ra)
	ours(t, want, rb)
	var dups []time.Time
	for k := range ca {
		if at, ok := want[k]; ok && cb[k] > 0 {
			dups = append(dups, at)
		} else if cb[k] > 0 {
			t.Logf("an Event of the API server's own emitted by both hosts: %v", k)
		}
	}
	sort.Slice(dups, func(i, j int) bool { return dups[i].Before(dups[j]) })
	// The new leader resumes from the last checkpoint the old one stored: it repeats
	// at most what the old one handed to Fluent Bit in one checkpoint interval plus
	// the commit delay of a threaded input (k8sevents.CommitDelay, 2 s), a callback
	// period and the time to store it.
	window := checkpointInterval + 4*time.Second
	bound := e.createdSince(termAt.Add(-window), termAt)
	if len(dups) > bound {
		t.Errorf("%d versions emitted by both hosts, more than the %d created in the %v before the SIGKILL", len(dups), bound, window)
	}
	for _, at := range dups {
		if at.Before(termAt.Add(-window)) {
			t.Errorf("a version created %v before the leader's SIGKILL was emitted by both hosts", termAt.Sub(at).Round(time.Millisecond))
		}
	}
	t.Logf("failover: %s led (%d records), %s took over %v after its SIGKILL (%d records); %d versions created, %d duplicates (bound %d); %v in all",
		leader.name, len(ra), standby.name, tookOver.Round(time.Millisecond), len(rb), len(want), len(dups), bound, time.Since(began).Round(time.Second))
}

// TestInputForbidden runs the host with a token that RBAC allows nothing: it keeps
// running and says what permission is missing.
func TestInputForbidden(t *testing.T) {
	e := newEvCluster(t)
	jane := e.writeToken(t, "jane-token", e.c.JaneToken)
	out := filepath.Join(e.dir, "out.jsonl")
	h := startInput(t, "host", out, filepath.Join(e.dir, "host.log"), e.props(jane, filepath.Join(e.dir, "events.db")))
	var line string
	waitUntil(t, "the forbidden error", inputWait, func() (bool, string) {
		if h.exited() {
			t.Fatalf("the host exited: %v", h.err)
		}
		for _, l := range pluginLines(h.log()) {
			if strings.Contains(l, "forbidden") {
				line = l
			}
		}
		return line != "", "no line says forbidden"
	})
	for _, s := range []string{inputPrefix, "[error]", "list events: forbidden", "list and watch", "resource events", "jane"} {
		if !strings.Contains(line, s) {
			t.Errorf("the forbidden line lacks %q: %s", s, line)
		}
	}
	time.Sleep(3 * time.Second) // retrying with backoff, not crashing
	if h.exited() {
		t.Fatalf("the host exited: %v", h.err)
	}
	if n := h.term(); n != 0 {
		t.Errorf("%d records", n)
	}
	// Retries repeat the same error: logged once, not once per retry (the exit line
	// counts the retries: at least two, or the check proves nothing).
	m := regexp.MustCompile(`stopped: .*api_errors=(\d+)`).FindStringSubmatch(h.log())
	if m == nil {
		t.Fatalf("no stopped line with api_errors:\n%s", h.log())
	}
	if retries, _ := strconv.Atoi(m[1]); retries < 2 {
		t.Fatalf("api_errors=%d: fewer than two failed LISTs in 3 s, nothing shows the error is logged once", retries)
	}
	if n := strings.Count(h.log(), "list events: forbidden"); n != 1 {
		t.Errorf("the forbidden error was logged %d times over %s retries, want once", n, m[1])
	}
	if strings.Contains(h.log(), e.c.JaneToken) {
		t.Errorf("the token's content is in the log")
	}
}

// TestInputBadConfig: an invalid property fails FLBPluginInit (exit code 2), naming it.
func TestInputBadConfig(t *testing.T) {
	host, lib := inputPaths(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		props []string
		name  string // the property the message must name
	}{
		{[]string{"kube_events_api=bogus"}, "kube_events_api"},
		{[]string{"kube_request_limit=-1"}, "kube_request_limit"},
		{[]string{"kube_url=ftp://example.com"}, "kube_url"},
		{[]string{"buffer_max_size=1k"}, "buffer_max_size"},
		{[]string{"leader_election=on", "leader_election_namespace=default", "leader_election_lease_duration=2s",
			"leader_election_renew_deadline=3s"}, "leader_election_lease_duration"},
	} {
		args := []string{"input", "-l", lib, "--out", filepath.Join(dir, "out.jsonl"), "--exit-after-ms", "5000"}
		for _, p := range tc.props {
			args = append(args, "-p", p)
		}
		cmd := exec.Command(host, args...)
		var stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stderr, &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Errorf("%v: %v, want exit code 2\n%s", tc.props, err, stderr.String())
			continue
		}
		log := stderr.String()
		if !strings.Contains(log, inputPrefix+"invalid configuration") || !strings.Contains(log, tc.name) {
			t.Errorf("%v: the message does not name %s:\n%s", tc.props, tc.name, log)
		}
		if inputSummary.MatchString(log) {
			t.Errorf("%v: a summary line after a failed init:\n%s", tc.props, log)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "out.jsonl")); err == nil && fi.Size() != 0 {
		t.Errorf("records written by a host whose init failed")
	}
}
