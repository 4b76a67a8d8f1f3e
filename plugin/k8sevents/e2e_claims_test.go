package k8sevents

import (
	"fmt"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kubetrail/kubetrail/state"
	"github.com/kubetrail/kubetrail/test/testcluster"
)

// These tests check, against a real kube-apiserver, behaviour the README claims:
// include/exclude rules, the watch_idle_timeout restart, retention, the restart of a
// LIST whose continue token expired, and the re-list when the checkpoint belongs to
// another configuration.

// sortedNames returns the distinct names of recs without barriers, sorted.
func sortedNames(recs []record) []string {
	var out []string
	for n := range names(madeByTest(withoutBarriers(recs)), "") {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// madeByTest keeps the Events postEvent made (message, events.k8s.io/v1's note,
// "test event <name>"): the
// apiserver writes some of its own in default now and then (kubernetes.<id>), which a
// test of what was emitted must not count.
func madeByTest(recs []record) []record {
	var out []record
	for _, r := range recs {
		if m := "test event " + r.name(); r.Fields["message"] == m || r.Fields["note"] == m {
			out = append(out, r)
		}
	}
	return out
}

func TestExcludeEndToEnd(t *testing.T) {
	e := newEnv(t, testcluster.Options{})
	// Each phase's Events: listed (created before the input starts), then watched.
	create := func(phase string) {
		e.postEvent(t, "default", phase+"-keep", nil)
		e.postEvent(t, "default", phase+"-pulled", map[string]any{"reason": "Pulled"})
		e.postEvent(t, "default", phase+"-node-warning", map[string]any{"type": "Warning",
			"involvedObject": map[string]any{"kind": "Node", "name": "node-1"}})
		e.postEvent(t, "default", phase+"-node-normal", map[string]any{
			"involvedObject": map[string]any{"kind": "Node", "name": "node-1"}})
		e.postEvent(t, "default", phase+"-pod-warning", map[string]any{"type": "Warning"})
		// reportingComponent is the source; source.component only when it is empty.
		e.postEvent(t, "default", phase+"-noisy", map[string]any{"reportingComponent": "noisy-ctl", "reportingInstance": "i-1"})
		e.postEvent(t, "default", phase+"-noisy-old", map[string]any{"reportingComponent": "kubetrail-test", "reportingInstance": "i-1",
			"source": map[string]any{"component": "noisy-old"}})
		e.postEvent(t, "default", phase+"-noisy-source", map[string]any{"source": map[string]any{"component": "noisy-src"}})
	}
	create("list")
	h, _ := e.start(t, map[string]string{"exclude": "reason=Pulled; type=Warning kind=Node; source=noisy-*"})
	h.waitFor("the listed Events", 30*time.Second, func(r []record) bool { return names(r, "list-")["list-keep"] == 1 })
	create("watch")
	recs := e.barrier(t, h, "Normal")
	checkOnce(t, recs)
	var want []string
	for _, phase := range []string{"list", "watch"} {
		for _, n := range []string{"keep", "node-normal", "noisy-old", "pod-warning"} {
			want = append(want, phase+"-"+n)
		}
	}
	sort.Strings(want)
	if got := sortedNames(recs); !reflect.DeepEqual(got, want) {
		t.Errorf("emitted %q\nwant     %q", got, want)
	}
	if st := h.close(); st.Filtered != 8 {
		t.Errorf("stats %s: want 8 Events filtered (4 listed, 4 watched)", st)
	}
}

func TestWatchIdleTimeoutRestarts(t *testing.T) {
	e := newEnv(t, testcluster.Options{})
	e.request(t, http.MethodPost, "/api/v1/namespaces", map[string]any{"metadata": map[string]any{"name": "idle"}})
	// A namespace without Events: the WATCH delivers nothing (no watch cache for
	// Events, so no bookmarks either) and the server would keep it open 10 minutes.
	h, log := e.start(t, map[string]string{"kube_namespace": "idle", "watch_idle_timeout": "2s", "kube_watch_timeout": "10m"})
	waitStats(t, h.in, "WATCHes restarted after 2s idle", 60*time.Second, func(st Stats) bool { return st.Watches >= 3 })
	if line := log.find("delivered nothing for 2s: restarting it"); line == "" {
		t.Error("no message about the idle WATCH")
	}
	// The restarted WATCH still delivers.
	e.postEvent(t, "idle", "after-idle", nil)
	h.waitFor("an Event after the restarts", 30*time.Second, func(r []record) bool { return names(r, "after-")["after-idle"] == 1 })
	if st := h.close(); st.Lists != 1 || st.Relists != 0 || st.APIErrors != 0 {
		t.Errorf("stats %s: an idle restart resumes the WATCH: no LIST, no error", st)
	}
}

func TestRetentionSkipAndPrune(t *testing.T) {
	e := newEnv(t, testcluster.Options{})
	// Rows of the database: two emitted long ago (pruned), one just now (kept).
	db := e.config(t, nil).DB
	st, _, err := state.Open(state.Options{Path: db})
	if err != nil {
		t.Fatal(err)
	}
	old := []state.Key{{UID: "seed-old-1", ResourceVersion: "1"}, {UID: "seed-old-2", ResourceVersion: "2"}}
	fresh := state.Key{UID: "seed-fresh", ResourceVersion: "3"}
	if err := st.Commit(old, "", time.Now().Add(-2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := st.Commit([]state.Key{fresh}, "", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	past := time.Now().Add(-2 * time.Minute).UTC().Format(time.RFC3339)
	oldEvent := func(name string) {
		e.postEvent(t, "default", name, map[string]any{"firstTimestamp": past, "lastTimestamp": past})
	}
	oldEvent("ret-old-listed")
	e.createEvent(t, "ret-new-listed", "Created", "Normal")
	h, _ := e.start(t, map[string]string{"kube_retention_time": "1m"})
	h.waitFor("the listed Event", 30*time.Second, func(r []record) bool { return names(r, "ret-")["ret-new-listed"] == 1 })
	oldEvent("ret-old-watched")
	e.createEvent(t, "ret-new-watched", "Created", "Normal")
	recs := e.barrier(t, h, "Normal")
	if got, want := sortedNames(recs), []string{"ret-new-listed", "ret-new-watched"}; !reflect.DeepEqual(got, want) {
		t.Errorf("emitted %q, want %q: Events last seen before the retention time are skipped", got, want)
	}
	// Pruning runs every retention/4 (15 s): the seeded old rows go, nothing else.
	waitStats(t, h.in, "the old rows pruned", 60*time.Second, func(st Stats) bool { return st.Pruned >= 2 })
	stats := h.close()
	if stats.Expired != 2 || stats.Pruned != 2 {
		t.Errorf("stats %s: want 2 expired, 2 pruned", stats)
	}
	st, _, err = state.Open(state.Options{Path: db})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, k := range append(old, fresh) {
		done, err := st.Emitted(k)
		if err != nil {
			t.Fatal(err)
		}
		if want := k == fresh; done != want {
			t.Errorf("after pruning, %s emitted = %v, want %v", k.UID, done, want)
		}
	}
	for _, r := range recs {
		if done, err := st.Emitted(r.key()); err != nil || !done {
			t.Errorf("%s: emitted %v, %v: an Event emitted now was pruned", r.name(), done, err)
		}
	}
}

func TestExpiredContinueTokenRestartsList(t *testing.T) {
	e := newEnv(t, testcluster.Options{})
	const n = 300
	for i := 0; i < n; i++ {
		e.createEvent(t, fmt.Sprintf("page-%03d", i), "Created", "Normal")
	}
	log := &testLogger{t: t}
	// Pages of 10, a queue of about 100 records and nobody collecting: the LIST stops
	// in its first pages (the reader waits for space, the fetcher at most two pages
	// ahead of it).
	in, err := New(e.config(t, map[string]string{"kube_request_limit": "10", "buffer_max_size": "64k"}), log)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, size := in.q.len(); size > 60<<10 {
			break
		}
		if time.Now().After(deadline) {
			in.Close()
			t.Fatal("the queue did not fill")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if log.contains("listed ") {
		in.Close()
		t.Fatal("the LIST finished before the queue filled")
	}
	// The LIST's resourceVersion is compacted away: its continue token expires (410).
	e.request(t, http.MethodPost, "/api/v1/namespaces/default/configmaps", map[string]any{"metadata": map[string]any{"name": "advance"}})
	e.compactEtcd(t)
	h := startHost(t, in, 20*time.Millisecond)
	h.waitFor("every Event", 60*time.Second, func(r []record) bool { return len(names(r, "page-")) == n })
	recs := e.barrier(t, h, "Normal")
	checkOnce(t, recs)
	st := h.close()
	if !log.contains("expired (410): listing again from the start") {
		t.Error("no message about the expired continue token")
	}
	// One LIST pass that started over, not a failed LIST retried; what it had
	// queued before is deduplicated.
	if st.Lists != 1 || st.APIErrors != 0 || st.Duplicates == 0 {
		t.Errorf("stats %s: want one LIST, restarted within, no API error, duplicates", st)
	}
}

func TestOtherConfigurationCheckpointRelists(t *testing.T) {
	e := newEnv(t, testcluster.Options{})
	for i := 0; i < 4; i++ {
		e.createEvent(t, fmt.Sprintf("cfg-%d", i), "Created", "Normal")
	}
	h, _ := e.start(t, nil)
	h.waitFor("the first Events", 30*time.Second, func(r []record) bool { return len(names(r, "cfg-")) == 4 })
	first := e.barrier(t, h, "Normal")
	h.close()
	e.createEvent(t, "cfg-late", "Created", "Normal")
	// Another API: the checkpoint in the database is not this configuration's.
	h2, log := e.start(t, map[string]string{"kube_events_api": "events.k8s.io/v1"})
	h2.waitFor("the Event created while down", 30*time.Second, func(r []record) bool { return names(r, "cfg-")["cfg-late"] == 1 })
	recs := e.barrier(t, h2, "Normal")
	checkOnce(t, append(first, recs...))
	if got := sortedNames(recs); !reflect.DeepEqual(got, []string{"cfg-late"}) {
		t.Errorf("after the re-list, emitted %q: want only cfg-late (both APIs serve the same objects)", got)
	}
	for _, r := range recs {
		if r.Fields["apiVersion"] != "events.k8s.io/v1" {
			t.Errorf("%s: apiVersion %v", r.name(), r.Fields["apiVersion"])
		}
	}
	st := h2.close()
	if st.Lists != 1 || st.Duplicates < 5 {
		t.Errorf("stats %s: want one LIST that found the 5 emitted Events", st)
	}
	if line := log.find("is for another configuration"); !strings.Contains(line, "v1||") {
		t.Errorf("no message about the other configuration's checkpoint: %q", line)
	}
}
