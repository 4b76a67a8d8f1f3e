package k8sevents

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/kubetrail/kubetrail/conf"
	"github.com/kubetrail/kubetrail/plugin/flbchunk"
	"github.com/kubetrail/kubetrail/state"
	"github.com/kubetrail/kubetrail/test/testcluster"
)

// These tests run the input against a real kube-apiserver and etcd
// (test/testcluster) and play Fluent Bit's part with fakeHost: Collect every tick,
// decode what it returns, Commit.

// testLogger collects the input's messages.
type testLogger struct {
	t     testing.TB
	mu    sync.Mutex
	lines []string
}

func (l *testLogger) add(level, format string, args ...any) {
	msg := level + " " + fmt.Sprintf(format, args...)
	l.mu.Lock()
	l.lines = append(l.lines, msg)
	l.mu.Unlock()
	l.t.Log(msg)
}
func (l *testLogger) Errorf(f string, a ...any) { l.add("[error]", f, a...) }
func (l *testLogger) Warnf(f string, a ...any)  { l.add("[warn]", f, a...) }
func (l *testLogger) Infof(f string, a ...any)  { l.add("[info]", f, a...) }
func (l *testLogger) Debugf(f string, a ...any) { l.add("[debug]", f, a...) }

func (l *testLogger) contains(s string) bool {
	return l.find(s) != ""
}

// find returns the first message that contains s, "" if none.
func (l *testLogger) find(s string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		if strings.Contains(line, s) {
			return line
		}
	}
	return ""
}

// waitFor waits until a message contains s and returns it.
func (l *testLogger) waitFor(s string, timeout time.Duration) string {
	l.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if line := l.find(s); line != "" {
			return line
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("timed out after %v waiting for a message with %q", timeout, s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitStats waits until pred holds for the input's counts and returns them.
func waitStats(t testing.TB, in *Input, what string, timeout time.Duration, pred func(Stats) bool) Stats {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st := in.Stats()
		if pred(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %s", timeout, what, st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// record is one emitted Event as the test reads it back.
type record struct {
	Time   time.Time
	Fields map[string]any
}

func (r record) key() state.Key {
	md, _ := r.Fields["metadata"].(map[string]any)
	uid, _ := md["uid"].(string)
	rv, _ := md["resourceVersion"].(string)
	return state.Key{UID: uid, ResourceVersion: rv}
}

func (r record) name() string {
	md, _ := r.Fields["metadata"].(map[string]any)
	n, _ := md["name"].(string)
	return n
}

// decodeBatch reads a batch back as Fluent Bit would.
func decodeBatch(t testing.TB, data []byte) []record {
	t.Helper()
	var out []record
	d := flbchunk.NewDecoder(data)
	for {
		var ev flbchunk.Event
		err := d.Next(&ev)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("batch does not decode as Fluent Bit events: %v", err)
		}
		var fields map[string]any
		if err := msgpack.Unmarshal(ev.Body, &fields); err != nil {
			t.Fatalf("record body: %v", err)
		}
		out = append(out, record{Time: time.Unix(ev.Time.Sec, ev.Time.Nsec), Fields: fields})
	}
}

// fakeHost drives an Input as Fluent Bit's proxy does: Collect, append, Commit.
type fakeHost struct {
	t    testing.TB
	in   *Input
	mu   sync.Mutex
	recs []record
	stop chan struct{}
	done chan struct{}
	// paused stops collecting (Fluent Bit's back-pressure).
	paused sync.Mutex
}

func startHost(t testing.TB, in *Input, every time.Duration) *fakeHost {
	h := &fakeHost{t: t, in: in, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(h.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-h.stop:
				return
			case <-tick.C:
			}
			h.paused.Lock()
			if b := in.Collect(); b != nil {
				recs := decodeBatch(t, batchBytes(b))
				if len(recs) != b.Records() {
					t.Errorf("batch says %d records, holds %d", b.Records(), len(recs))
				}
				h.mu.Lock()
				h.recs = append(h.recs, recs...)
				h.mu.Unlock()
				in.Commit(b)
			}
			h.paused.Unlock()
		}
	}()
	return h
}

// close stops the host, then the input (Fluent Bit's order).
func (h *fakeHost) close() Stats {
	close(h.stop)
	<-h.done
	return h.in.Close()
}

func (h *fakeHost) records() []record {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]record(nil), h.recs...)
}

// waitFor waits until pred holds for the records received so far.
func (h *fakeHost) waitFor(what string, timeout time.Duration, pred func([]record) bool) []record {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		recs := h.records()
		if pred(recs) {
			return recs
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out after %v waiting for %s (%d records so far)", timeout, what, len(recs))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func atLeast(n int) func([]record) bool { return func(r []record) bool { return len(r) >= n } }

// env is one test cluster plus what an input needs to reach it.
type env struct {
	c         *testcluster.Cluster
	tokenFile string
	dir       string
	barriers  int // barrier Events created
}

func newEnv(t *testing.T, opts testcluster.Options) *env {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a real kube-apiserver")
	}
	c := testcluster.Start(t, opts)
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	if err := os.WriteFile(tok, []byte(c.AdminToken), 0o600); err != nil {
		t.Fatal(err)
	}
	return &env{c: c, tokenFile: tok, dir: dir}
}

// config returns a parsed configuration for this cluster with extra properties.
func (e *env) config(t testing.TB, props map[string]string) conf.Events {
	t.Helper()
	g := conf.MapGetter{
		"kube_url":        e.c.URL,
		"kube_ca_file":    e.c.CAFile,
		"kube_token_file": e.tokenFile,
		"db":              filepath.Join(e.dir, "events.db"),
	}
	for k, v := range props {
		g[k] = v
	}
	cfg, err := conf.ParseEvents(g)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func (e *env) start(t *testing.T, props map[string]string) (*fakeHost, *testLogger) {
	t.Helper()
	log := &testLogger{t: t}
	in, err := New(e.config(t, props), log)
	if err != nil {
		t.Fatal(err)
	}
	h := startHost(t, in, 20*time.Millisecond)
	t.Cleanup(func() {
		select {
		case <-h.done:
		default:
			h.close()
		}
	})
	return h, log
}

// request sends a JSON request as admin and fails the test unless it succeeds.
func (e *env) request(t testing.TB, method, path string, body any) map[string]any {
	t.Helper()
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	status, resp, err := e.c.Do(method, path, b, e.c.AdminToken)
	if err != nil || status >= 300 {
		t.Fatalf("%s %s: status %d, %v: %s", method, path, status, err, resp)
	}
	var out map[string]any
	if err := json.Unmarshal(resp, &out); err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return out
}

// createEvent creates a core/v1 Event named name in default.
func (e *env) createEvent(t testing.TB, name, reason, typ string) map[string]any {
	return e.postEvent(t, "default", name, map[string]any{"reason": reason, "type": typ})
}

// postEvent creates a core/v1 Event named name in namespace ns: a Pod's, from
// kubetrail-test, happening now, with the fields of over set (nil deletes one).
func (e *env) postEvent(t testing.TB, ns, name string, over map[string]any) map[string]any {
	t.Helper()
	now := time.Now().UTC().Format(time.RFC3339)
	ev := map[string]any{
		"metadata":       map[string]any{"name": name},
		"involvedObject": map[string]any{"kind": "Pod", "name": "pod-" + name, "namespace": ns},
		"reason":         "Created",
		"message":        "test event " + name,
		"type":           "Normal",
		"source":         map[string]any{"component": "kubetrail-test"},
		"firstTimestamp": now,
		"lastTimestamp":  now,
		"count":          1,
	}
	for k, v := range over {
		if v == nil {
			delete(ev, k)
		} else {
			ev[k] = v
		}
	}
	return e.request(t, http.MethodPost, "/api/v1/namespaces/"+ns+"/events", ev)
}

// barrierPrefix names the Events barrier creates.
const barrierPrefix = "zzzz-barrier-"

// barrier creates an Event of type typ in default after everything the test did so
// far and waits until it is emitted, then returns all records. Anything the input
// would wrongly emit from before (a repeat, an Event that rules or retention should
// have skipped) is emitted before it: a watch delivers in resourceVersion order, and
// within a LIST the barrier's name sorts after every other Event of default. So an
// absence checked on these records is not a guess about how long to wait.
func (e *env) barrier(t testing.TB, h *fakeHost, typ string) []record {
	t.Helper()
	e.barriers++
	name := fmt.Sprintf("%s%02d", barrierPrefix, e.barriers)
	e.createEvent(t, name, "Barrier", typ)
	return h.waitFor("barrier Event "+name, 30*time.Second, func(r []record) bool { return names(r, name)[name] == 1 })
}

// withoutBarriers drops the barrier Events from recs.
func withoutBarriers(recs []record) []record {
	var out []record
	for _, r := range recs {
		if !strings.HasPrefix(r.name(), barrierPrefix) {
			out = append(out, r)
		}
	}
	return out
}

// bumpEvent repeats an Event as the kubelet's recorder does: count+1, new lastTimestamp.
func (e *env) bumpEvent(t testing.TB, name string) {
	ev := e.request(t, http.MethodGet, "/api/v1/namespaces/default/events/"+name, nil)
	ev["count"] = ev["count"].(float64) + 1
	ev["lastTimestamp"] = time.Now().UTC().Format(time.RFC3339)
	e.request(t, http.MethodPut, "/api/v1/namespaces/default/events/"+name, ev)
}

// checkOnce fails on any (uid, resourceVersion) received twice and returns the
// records by key.
func checkOnce(t testing.TB, recs []record) map[state.Key]record {
	t.Helper()
	seen := make(map[state.Key]record)
	for _, r := range recs {
		k := r.key()
		if k.UID == "" || k.ResourceVersion == "" {
			t.Fatalf("record without uid/resourceVersion: %v", r.Fields)
		}
		if _, dup := seen[k]; dup {
			t.Errorf("emitted twice: %s %+v", r.name(), k)
		}
		seen[k] = r
	}
	return seen
}

// names returns how many records each test Event name got.
func names(recs []record, prefix string) map[string]int {
	out := make(map[string]int)
	for _, r := range recs {
		if n := r.name(); strings.HasPrefix(n, prefix) {
			out[n]++
		}
	}
	return out
}

func TestEachVersionOnce(t *testing.T) {
	e := newEnv(t, testcluster.Options{})
	const n = 40
	for i := 0; i < n/2; i++ { // half exist before the input starts
		e.createEvent(t, fmt.Sprintf("once-%02d", i), "Created", "Normal")
	}
	h, log := e.start(t, map[string]string{"kube_request_limit": "7", "cluster_name": "test-1"})
	h.waitFor("existing Events", 30*time.Second, func(r []record) bool { return len(names(r, "once-")) == n/2 })
	// Pages of at most kube_request_limit Events: the 20 Events take 3 pages.
	listed := log.waitFor("listed ", 30*time.Second)
	var items, pages int
	if _, err := fmt.Sscanf(listed[strings.Index(listed, "listed "):], "listed %d Events in %d pages", &items, &pages); err != nil {
		t.Fatalf("%q: %v", listed, err)
	}
	if items < n/2 || pages != (items+6)/7 {
		t.Errorf("%q: want %d Events or more in pages of 7", listed, n/2)
	}
	for i := n / 2; i < n; i++ {
		e.createEvent(t, fmt.Sprintf("once-%02d", i), "Created", "Normal")
	}
	for i := 0; i < 10; i++ {
		e.bumpEvent(t, fmt.Sprintf("once-%02d", i))
	}
	recs := h.waitFor("new and repeated Events", 30*time.Second, func(r []record) bool {
		c := names(r, "once-")
		return len(c) == n && c["once-09"] == 2
	})
	recs = e.barrier(t, h, "Normal") // anything extra arrives before it
	checkOnce(t, recs)
	counts := names(recs, "once-")
	for i := 0; i < n; i++ {
		name, want := fmt.Sprintf("once-%02d", i), 1
		if i < 10 {
			want = 2 // created, then repeated (count 2): two versions
		}
		if counts[name] != want {
			t.Errorf("%s: %d records, want %d", name, counts[name], want)
		}
	}
	for _, r := range recs {
		if r.name() == "once-03" && r.Fields["cluster_name"] != "test-1" {
			t.Errorf("cluster_name = %v", r.Fields["cluster_name"])
		}
		if md := r.Fields["metadata"].(map[string]any); md["managedFields"] != nil {
			t.Errorf("managedFields kept")
		}
		if r.Fields["kind"] != "Event" || r.Fields["apiVersion"] != "v1" {
			t.Errorf("kind/apiVersion = %v/%v", r.Fields["kind"], r.Fields["apiVersion"])
		}
	}
	st := h.close()
	if st.Lists != 1 || st.Relists != 0 {
		t.Errorf("stats %s: want exactly one LIST pass", st)
	}
}

func TestRestartResumesWithoutList(t *testing.T) {
	e := newEnv(t, testcluster.Options{})
	for i := 0; i < 5; i++ {
		e.createEvent(t, fmt.Sprintf("first-%d", i), "Created", "Normal")
	}
	h, _ := e.start(t, nil)
	h.waitFor("first Events", 30*time.Second, func(r []record) bool { return len(names(r, "first-")) == 5 })
	h.close()
	// While the input is down: new Events and a new version of an old one.
	for i := 0; i < 5; i++ {
		e.createEvent(t, fmt.Sprintf("second-%d", i), "Created", "Normal")
	}
	e.bumpEvent(t, "first-0")

	h2, log := e.start(t, nil)
	recs := h2.waitFor("Events created while down", 30*time.Second, func(r []record) bool {
		return len(names(r, "second-")) == 5 && names(r, "first-")["first-0"] == 1
	})
	recs = e.barrier(t, h2, "Normal")
	checkOnce(t, append(h.records(), recs...))
	if c := names(recs, "first-"); len(c) != 1 {
		t.Errorf("after restart, old Events repeated: %v", c)
	}
	st := h2.close()
	if st.Lists != 0 {
		t.Errorf("stats %s: want no LIST after a short restart", st)
	}
	if !log.contains("resuming the watch from resourceVersion") {
		t.Error("no resume message")
	}
}

// compactEtcd compacts etcd to its current revision, as the API server does every 5
// minutes: every older resourceVersion is gone (410 on a WATCH from it).
func (e *env) compactEtcd(t testing.TB) {
	t.Helper()
	post := func(path, body string) map[string]any {
		resp, err := http.Post(e.c.EtcdURL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
			t.Fatalf("etcd %s: %d %v %v", path, resp.StatusCode, err, out)
		}
		return out
	}
	rev := post("/v3/kv/range", `{"key":"AA=="}`)["header"].(map[string]any)["revision"].(string)
	post("/v3/kv/compaction", `{"revision":"`+rev+`","physical":true}`)
}

func TestCompactedCheckpointRelistsWithoutRepeats(t *testing.T) {
	e := newEnv(t, testcluster.Options{})
	for i := 0; i < 6; i++ {
		e.createEvent(t, fmt.Sprintf("old-%d", i), "Created", "Normal")
	}
	h, _ := e.start(t, nil)
	h.waitFor("Events before compaction", 30*time.Second, func(r []record) bool { return len(names(r, "old-")) == 6 })
	h.close()
	for i := 0; i < 3; i++ {
		e.createEvent(t, fmt.Sprintf("new-%d", i), "Created", "Normal")
	}
	e.compactEtcd(t) // the checkpoint is now too old

	h2, log := e.start(t, nil)
	h2.waitFor("Events created while down", 30*time.Second, func(r []record) bool { return len(names(r, "new-")) == 3 })
	recs := e.barrier(t, h2, "Normal")
	checkOnce(t, append(h.records(), recs...))
	if c := names(recs, "old-"); len(c) != 0 {
		t.Errorf("re-list repeated already emitted Events: %v", c)
	}
	st := h2.close()
	if st.Relists != 1 || st.Duplicates < 6 {
		t.Errorf("stats %s: want one re-list that found the 6 old Events already emitted", st)
	}
	if !log.contains("410 Gone") {
		t.Error("no 410 message")
	}
}

func TestEventsAPIAndRecordTime(t *testing.T) {
	e := newEnv(t, testcluster.Options{})
	at := time.Now().UTC().Truncate(time.Microsecond).Add(-time.Minute)
	e.request(t, http.MethodPost, "/apis/events.k8s.io/v1/namespaces/default/events", map[string]any{
		"metadata":            map[string]any{"name": "new-api"},
		"eventTime":           at.Format("2006-01-02T15:04:05.000000Z07:00"),
		"reportingController": "kubetrail.test/controller",
		"reportingInstance":   "test-1",
		"action":              "Testing",
		"reason":              "Tested",
		"type":                "Warning",
		"note":                "events.k8s.io/v1 Event",
		"regarding":           map[string]any{"kind": "Node", "name": "node-1"},
	})
	e.createEvent(t, "core-api", "Created", "Normal")
	h, _ := e.start(t, map[string]string{"kube_events_api": "events.k8s.io/v1", "include": "type=Warning"})
	h.waitFor("the events.k8s.io Event", 30*time.Second, atLeast(1))
	recs := withoutBarriers(e.barrier(t, h, "Warning"))
	if len(recs) != 1 || recs[0].name() != "new-api" {
		t.Fatalf("want only new-api (include type=Warning), got %d records: %v", len(recs), names(recs, ""))
	}
	r := recs[0]
	if r.Fields["apiVersion"] != "events.k8s.io/v1" || r.Fields["note"] != "events.k8s.io/v1 Event" {
		t.Errorf("not the events.k8s.io/v1 form: %v", r.Fields)
	}
	if !r.Time.Equal(at) {
		t.Errorf("record time %v, want eventTime %v with its microseconds", r.Time.UTC(), at)
	}
	if st := h.close(); st.Filtered != 1 {
		t.Errorf("stats %s: want the core Event filtered", st)
	}
}

func TestEmitExistingOff(t *testing.T) {
	e := newEnv(t, testcluster.Options{})
	e.createEvent(t, "before", "Created", "Normal")
	h, log := e.start(t, map[string]string{"emit_existing": "off"})
	log.waitFor("listed (emit_existing off", 30*time.Second)
	e.createEvent(t, "after", "Created", "Normal")
	e.bumpEvent(t, "before")
	h.waitFor("new Event versions", 30*time.Second, atLeast(2))
	recs := withoutBarriers(e.barrier(t, h, "Normal"))
	c := names(recs, "")
	if len(recs) != 2 || c["after"] != 1 || c["before"] != 1 {
		t.Errorf("want only the new versions, got %v", c)
	}
	h.close()
	// The existing Events were marked emitted: a restart with emit_existing off does
	// not emit them either (and neither would one with it on).
	h2, _ := e.start(t, map[string]string{"emit_existing": "on"})
	if recs := withoutBarriers(e.barrier(t, h2, "Normal")); len(recs) != 0 {
		t.Errorf("restart emitted %v", names(recs, ""))
	}
}

func TestAPIServerDownAtStart(t *testing.T) {
	e := newEnv(t, testcluster.Options{})
	e.createEvent(t, "early", "Created", "Normal")
	e.c.StopAPIServer()
	h, log := e.start(t, nil)
	log.waitFor("connection refused", 30*time.Second)
	e.c.StartAPIServer(t)
	e.createEvent(t, "late", "Created", "Normal")
	h.waitFor("both Events", 60*time.Second, func(r []record) bool { c := names(r, ""); return c["early"] == 1 && c["late"] == 1 })
	if !log.contains("api: recovered") {
		t.Error("no recovery message")
	}
}

func TestBackPressureBoundsMemory(t *testing.T) {
	e := newEnv(t, testcluster.Options{})
	log := &testLogger{t: t}
	in, err := New(e.config(t, map[string]string{"buffer_max_size": "64k"}), log)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	// Fluent Bit paused: nobody collects while 200 Events (~120 KB of records) arrive.
	for i := 0; i < 200; i++ {
		e.createEvent(t, fmt.Sprintf("bp-%03d", i), "Created", "Normal")
	}
	// Wait until the queue is full (the next record, under 2 KB, does not fit): the
	// input has stopped reading and holds no more than buffer_max_size.
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, size := in.q.len()
		if size > 64<<10 {
			t.Fatalf("queue holds %d bytes, more than buffer_max_size", size)
		}
		if size > 62<<10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for the queue to fill: %d bytes", size)
		}
		time.Sleep(20 * time.Millisecond)
	}
	h := startHost(t, in, 20*time.Millisecond)
	recs := h.waitFor("all Events after resuming", 30*time.Second, func(r []record) bool { return len(names(r, "bp-")) == 200 })
	checkOnce(t, recs)
	close(h.stop)
	<-h.done
}

func TestEventTTLExpiry(t *testing.T) {
	e := newEnv(t, testcluster.Options{EventTTL: 5 * time.Second})
	h, _ := e.start(t, nil)
	e.createEvent(t, "short-lived", "Created", "Normal")
	h.waitFor("the Event", 30*time.Second, func(r []record) bool { return names(r, "short-")["short-lived"] == 1 })
	// etcd deletes it after the TTL (the watch sees DELETED: nothing to emit); the
	// same name created again is a new object (new uid) and is emitted.
	deadline := time.Now().Add(60 * time.Second)
	for {
		st, _, err := e.c.Do(http.MethodGet, "/api/v1/namespaces/default/events/short-lived", nil, e.c.AdminToken)
		if err == nil && st == http.StatusNotFound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Event did not expire (status %d, %v)", st, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	e.createEvent(t, "short-lived", "Created", "Normal")
	recs := h.waitFor("the recreated Event", 30*time.Second, func(r []record) bool { return names(r, "short-")["short-lived"] == 2 })
	seen := checkOnce(t, recs)
	uids := map[string]bool{}
	for k := range seen {
		uids[k.UID] = true
	}
	if len(uids) < 2 {
		t.Errorf("want two objects (two uids), got %v", uids)
	}
	if st := h.close(); st.APIErrors != 0 || st.Relists != 0 {
		t.Errorf("stats %s: expiry must not disturb the watch", st)
	}
}

// TestQuietStreamBookmarks shows what happens to a WATCH with no Event to deliver (a
// quiet namespace) when it ends after kube_watch_timeout. The API server's watch cache
// is off for Events by default, so such a WATCH gets no bookmarks either and its
// resourceVersion does not move: once etcd compacted past it, the next WATCH gets 410
// and the input re-lists (dedup keeps it from repeating Events). With the watch cache
// on for Events (--watch-cache-sizes), the cache serves the next WATCH from its window:
// no re-list. etcd is compacted every 10 s here (5 minutes by default).
func TestQuietStreamBookmarks(t *testing.T) {
	for _, c := range []struct {
		name   string
		args   []string
		cached bool
	}{
		{"watch cache off (default)", nil, false},
		{"watch cache on", []string{"--watch-cache-sizes=events#1000,events.events.k8s.io#1000"}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, testcluster.Options{ExtraArgs: append([]string{"--etcd-compaction-interval=10s"}, c.args...)})
			e.request(t, http.MethodPost, "/api/v1/namespaces", map[string]any{"metadata": map[string]any{"name": "quiet"}})
			h, _ := e.start(t, map[string]string{"kube_namespace": "quiet", "kube_watch_timeout": "80s"})
			// Past one watch timeout: a second WATCH (watch cache) or a re-list (none).
			// A re-list would come before the second WATCH; a bookmark before the re-list.
			waitStats(t, h.in, "the first WATCH to end", 200*time.Second, func(st Stats) bool {
				if c.cached {
					return st.Watches >= 2
				}
				return st.Relists >= 1
			})
			st := h.close()
			t.Logf("%s: %s", c.name, st)
			if c.cached && (st.Relists != 0 || st.Watches < 2) {
				t.Errorf("with the watch cache: want a second WATCH and no re-list: %s", st)
			}
			if !c.cached && (st.Bookmarks != 0 || st.Relists == 0) {
				t.Errorf("without the watch cache: want no bookmark and a re-list after compaction: %s", st)
			}
		})
	}
}

func TestTokenFileAppearsLater(t *testing.T) {
	e := newEnv(t, testcluster.Options{})
	e.createEvent(t, "tok", "Created", "Normal")
	if err := os.Remove(e.tokenFile); err != nil {
		t.Fatal(err)
	}
	h, log := e.start(t, nil)
	if !log.contains("kube_token_file") { // New warns at once
		t.Error("no warning naming kube_token_file")
	}
	log.waitFor("API client:", 30*time.Second) // and the client fails until the file exists
	if len(h.records()) != 0 {
		t.Fatalf("want nothing emitted without a token; records %d", len(h.records()))
	}
	// A projected token appears (or is rotated): client-go reads the file again.
	if err := os.WriteFile(e.tokenFile, []byte(e.c.AdminToken), 0o600); err != nil {
		t.Fatal(err)
	}
	h.waitFor("the Event once the token exists", 60*time.Second, func(r []record) bool { return names(r, "tok")["tok"] == 1 })
	if !log.contains("client: recovered") {
		t.Error("no recovery message")
	}
}

// batchBytes moves a batch into a new slice, as the plugin moves it into Fluent Bit's.
func batchBytes(b *Batch) []byte {
	buf := make([]byte, b.Size())
	b.MoveTo(buf)
	return buf
}
