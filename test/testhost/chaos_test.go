package testhost_test

// TestChaos: k8s_events under kill -9 and leader kills, while Events are created and
// updated at a steady rate against the real kube-apiserver, through flb-testhost
// (threaded, as Fluent Bit runs a Go input by default, and threaded off) and, when
// FLUENT_BIT names one, through a real Fluent Bit (storage.type filesystem, file
// output). It prints the Event versions the API server acknowledged, how many never
// reached an output (lost) and how many came more than once (repeated).
//
// `make test` runs a short version; `make chaos` a long one (KUBETRAIL_CHAOS_KILLS,
// KUBETRAIL_CHAOS_LEADER_KILLS, KUBETRAIL_CHAOS_RATE, KUBETRAIL_CHAOS_SEED,
// KUBETRAIL_CHAOS_RUNNERS).

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func chaosEnv(name string, def int) int {
	if v := os.Getenv(name); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 {
			return n
		}
	}
	return def
}

// chaosRunner starts one Fluent Bit-like process running k8s_events with props,
// writing records to out: run id of instance inst (whose storage its runs share).
type chaosRunner struct {
	name  string
	start func(t *testing.T, dir, inst, id string, props []string, out string) *chaosProc
}

type chaosProc struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func (p *chaosProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *chaosProc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop sends SIGTERM and waits (SIGKILL after 60 s, which fails the test).
func (p *chaosProc) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		p.kill()
		t.Errorf("%s did not stop within 60 s of SIGTERM", p.log)
	}
}

func startChaosProc(t *testing.T, logPath string, bin string, args ...string) *chaosProc {
	t.Helper()
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	p := &chaosProc{cmd: exec.Command(bin, args...), log: logPath, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.exited() {
			p.kill()
		}
	})
	return p
}

func testhostRunner(threaded bool) chaosRunner {
	name := "flb-testhost"
	if !threaded {
		name += "/threaded-off"
	}
	return chaosRunner{name: name, start: func(t *testing.T, dir, _, id string, props []string, out string) *chaosProc {
		host, lib := inputPaths(t)
		args := []string{"input", "-l", lib, "--out", out} // the callback every 1 s, as Fluent Bit
		if !threaded {
			props = append(props, "threaded=off")
		}
		for _, p := range props {
			args = append(args, "-p", p)
		}
		return startChaosProc(t, filepath.Join(dir, id+".log"), host, args...)
	}}
}

// fluentBitRunner runs a real Fluent Bit: k8s_events with filesystem storage into a
// file output (format plain: one JSON record a line), appended to across restarts.
func fluentBitRunner(bin string, threaded bool) chaosRunner {
	name := "fluent-bit"
	if !threaded {
		name += "/threaded-off"
	}
	return chaosRunner{name: name, start: func(t *testing.T, dir, inst, id string, props []string, out string) *chaosProc {
		_, lib := inputPaths(t)
		var in strings.Builder
		for _, p := range props {
			k, v, _ := strings.Cut(p, "=")
			fmt.Fprintf(&in, "    %s %s\n", k, v)
		}
		if !threaded {
			in.WriteString("    threaded off\n")
		}
		cfg := fmt.Sprintf(`[SERVICE]
    flush        1
    log_level    info
    storage.path %s
    http_server  off

[INPUT]
    name         k8s_events
    tag          events
    storage.type filesystem
%s
[OUTPUT]
    name   file
    match  *
    path   %s
    file   %s
    format plain
`, filepath.Join(dir, inst+".storage"), in.String(), filepath.Dir(out), filepath.Base(out))
		cfgPath := filepath.Join(dir, id+".conf")
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		return startChaosProc(t, filepath.Join(dir, id+".log"), bin, "-e", lib, "-c", cfgPath)
	}}
}

func chaosRunners(t *testing.T) []chaosRunner {
	all := []chaosRunner{testhostRunner(true), testhostRunner(false)}
	if fb := os.Getenv("FLUENT_BIT"); fb != "" {
		all = append(all, fluentBitRunner(fb, true), fluentBitRunner(fb, false))
	}
	only := os.Getenv("KUBETRAIL_CHAOS_RUNNERS")
	if only == "" {
		return all
	}
	var out []chaosRunner
	for _, r := range all {
		for _, want := range strings.Split(only, ",") {
			if r.name == strings.TrimSpace(want) {
				out = append(out, r)
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("KUBETRAIL_CHAOS_RUNNERS=%q names none of the runners here", only)
	}
	return out
}

// streamer creates and updates Events at about rate versions a second until stopped:
// each new Event is updated twice, so that re-lists, watches and dedup meet both.
type streamer struct {
	stopc chan struct{}
	done  chan struct{}
	errs  int
}

func (e *evCluster) startStreamer(prefix string, rate int) *streamer {
	s := &streamer{stopc: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-s.stopc:
				return
			case <-tick.C:
			}
			var err error
			if i%3 == 0 {
				_, err = e.create(fmt.Sprintf("%s-%05d", prefix, i/3))
			} else {
				err = e.update(fmt.Sprintf("%s-%05d", prefix, i/3))
			}
			if err != nil {
				s.errs++ // an apiserver hiccup: that version was not acknowledged
			}
		}
	}()
	return s
}

func (s *streamer) stop() {
	select {
	case <-s.stopc:
	default:
		close(s.stopc)
	}
	<-s.done
}

// update is bump without failing the test: a new version of the Event, acknowledged
// when the API server answers.
func (e *evCluster) update(name string) error {
	path := "/api/v1/namespaces/default/events/" + name
	ev, err := e.request(http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	c, _ := ev["count"].(float64)
	ev["count"] = c + 1
	ev["lastTimestamp"] = time.Now().UTC().Format(time.RFC3339)
	if ev, err = e.request(http.MethodPut, path, ev); err != nil {
		return err
	}
	_, err = e.note(ev)
	return err
}

// readKeys reads the records of out files: whole lines that are JSON objects with
// metadata.uid and resourceVersion (the test host's and the file output's formats
// alike); broken lines (a kill in the middle of a write) are counted.
func readKeys(t *testing.T, paths ...string) (map[evKey]int, int) {
	t.Helper()
	keys := make(map[evKey]int)
	broken := 0
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(nil, 64<<20)
		for sc.Scan() {
			var r struct {
				Metadata struct {
					UID             string `json:"uid"`
					ResourceVersion string `json:"resourceVersion"`
				} `json:"metadata"`
			}
			if json.Unmarshal(sc.Bytes(), &r) != nil || r.Metadata.UID == "" {
				broken++
				continue
			}
			keys[evKey{r.Metadata.UID, r.Metadata.ResourceVersion}]++
		}
	}
	return keys, broken
}

type chaosResult struct {
	acked, lost, repeated, broken int
	lostAt                        []time.Time // when the lost versions were acknowledged
}

// tally compares what the API server acknowledged with what reached the outputs.
func (e *evCluster) tally(t *testing.T, outs ...string) chaosResult {
	t.Helper()
	want := e.expected()
	got, broken := readKeys(t, outs...)
	r := chaosResult{acked: len(want), broken: broken}
	for k := range want {
		switch n := got[k]; {
		case n == 0:
			r.lost++
			r.lostAt = append(r.lostAt, want[k])
		case n > 1:
			r.repeated += n - 1
		}
	}
	return r
}

// waitAll waits until every acknowledged version is in outs (or the deadline).
func (e *evCluster) waitAll(t *testing.T, timeout time.Duration, outs ...string) chaosResult {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		r := e.tally(t, outs...)
		if r.lost == 0 || time.Now().After(deadline) {
			return r
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// grown waits until out has grown past size (the run emits), or the process exits.
func grown(t *testing.T, p *chaosProc, out string, size int64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if fi, err := os.Stat(out); err == nil && fi.Size() > size {
			return
		}
		if p.exited() {
			b, _ := os.ReadFile(p.log)
			t.Fatalf("the run exited by itself:\n%s", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	b, _ := os.ReadFile(p.log)
	t.Fatalf("no records within %v:\n%s", timeout, b)
}

func fileSize(p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func TestChaos(t *testing.T) {
	kills := chaosEnv("KUBETRAIL_CHAOS_KILLS", 6)
	leaderKills := chaosEnv("KUBETRAIL_CHAOS_LEADER_KILLS", 2)
	rate := chaosEnv("KUBETRAIL_CHAOS_RATE", 30)
	seed := uint64(chaosEnv("KUBETRAIL_CHAOS_SEED", int(time.Now().UnixNano()%1e9)))
	t.Logf("chaos: seed %d (KUBETRAIL_CHAOS_SEED), %d kills, %d leader kills, %d versions/s", seed, kills, leaderKills, rate)
	for _, r := range chaosRunners(t) {
		t.Run(r.name, func(t *testing.T) {
			if kills > 0 {
				t.Run("kill-9", func(t *testing.T) { chaosKills(t, r, kills, rate, seed) })
			}
			if leaderKills > 0 {
				t.Run("leader", func(t *testing.T) { chaosLeader(t, r, leaderKills, rate, seed) })
			}
		})
	}
}

// chaosKills: one instance killed with SIGKILL at random moments and restarted on the
// same database, storage and output, then a clean run: nothing acknowledged may be
// missing.
func chaosKills(t *testing.T, r chaosRunner, kills, rate int, seed uint64) {
	e := newEvCluster(t)
	rnd := rand.New(rand.NewPCG(seed, 1))
	out := filepath.Join(e.dir, "out.jsonl")
	props := e.props(e.tokenFile, filepath.Join(e.dir, "events.db"))
	for i := 0; i < 10; i++ {
		e.mustCreate(t, fmt.Sprintf("pre-%02d", i))
	}
	var s *streamer
	defer func() {
		if s != nil {
			s.stop()
		}
	}()
	began := time.Now()
	for i := 0; i < kills; i++ {
		p := r.start(t, e.dir, "node", fmt.Sprintf("run%02d", i), props, out)
		grown(t, p, out, fileSize(out), inputWait)
		if s == nil {
			// Only once the first LIST is done (the pre- Events are out): a version
			// replaced before any collector ever listed is in no LIST or WATCH, not
			// even Kubernetes' own (a LIST shows the last version only).
			s = e.startStreamer("chaos", rate)
		}
		// anywhere in the next two callback periods: before, during and after appends,
		// drains and commits
		time.Sleep(time.Duration(rnd.Int64N(int64(2500 * time.Millisecond))))
		p.kill()
	}
	final := r.start(t, e.dir, "node", "final", props, out)
	time.Sleep(3 * time.Second)
	s.stop()
	res := e.waitAll(t, inputWait, out)
	time.Sleep(3 * time.Second) // what a late repeat would add
	final.stop(t)
	res = e.tally(t, out)
	t.Logf("chaos %s: %d kill -9 in %v: %d versions acknowledged by the API server, %d lost, %d repeated, %d broken lines (%d create/update errors)",
		r.name, kills, time.Since(began).Round(time.Second), res.acked, res.lost, res.repeated, res.broken, s.errs)
	if res.lost > 0 {
		t.Errorf("%d of %d acknowledged Event versions never reached the output", res.lost, res.acked)
		keepChaos(t, e.dir)
	}
}

// keepChaos copies a failed run's folder (logs, configurations, databases, outputs)
// to $KUBETRAIL_CHAOS_KEEP.
func keepChaos(t *testing.T, dir string) {
	if to := os.Getenv("KUBETRAIL_CHAOS_KEEP"); to != "" {
		to = filepath.Join(to, strings.ReplaceAll(t.Name(), "/", "_"))
		if err := exec.Command("cp", "-a", dir, to).Run(); err != nil {
			t.Logf("keeping %s: %v", dir, err)
		} else {
			t.Logf("kept in %s", to)
		}
	}
}

// chaosLeader: two instances share a Lease; the leader is killed with SIGKILL and
// restarted, alternately within the lease duration and after it.
func chaosLeader(t *testing.T, r chaosRunner, kills, rate int, seed uint64) {
	e := newEvCluster(t)
	rnd := rand.New(rand.NewPCG(seed, 2))
	const lease = "chaos-lease"
	id := []string{"node-a", "node-b"}
	props := func(i int) []string {
		return append(e.props(e.tokenFile, filepath.Join(e.dir, id[i]+".db")),
			"leader_election=on", "leader_election_namespace=default", "leader_election_name="+lease,
			"leader_election_identity="+id[i], "leader_election_lease_duration=4s",
			"leader_election_renew_deadline=3s", "leader_election_retry_period=0.5s",
			"checkpoint_interval=1s")
	}
	outs := []string{filepath.Join(e.dir, id[0]+".jsonl"), filepath.Join(e.dir, id[1]+".jsonl")}
	procs := make([]*chaosProc, 2)
	var mu sync.Mutex
	run := 0
	start := func(i int) {
		mu.Lock()
		run++
		n := run
		mu.Unlock()
		procs[i] = r.start(t, e.dir, id[i], fmt.Sprintf("%s-%02d", id[i], n), props(i), outs[i])
	}
	for i := 0; i < 10; i++ {
		e.mustCreate(t, fmt.Sprintf("pre-%02d", i))
	}
	start(0)
	start(1)
	holder := func() int {
		obj, err := e.request(http.MethodGet, "/apis/coordination.k8s.io/v1/namespaces/default/leases/"+lease, nil)
		if err != nil {
			return -1
		}
		spec, _ := obj["spec"].(map[string]any)
		h, _ := spec["holderIdentity"].(string)
		for i := range id {
			if h == id[i] {
				return i
			}
		}
		return -1
	}
	// The stream begins once the first leader has listed (the pre- Events are out):
	// a version replaced before any collector ever listed is in no LIST or WATCH.
	waitUntil(t, "a first leader that lists", inputWait, func() (bool, string) {
		l := holder()
		return l >= 0 && fileSize(outs[l]) > 0, fmt.Sprintf("holder %d", l)
	})
	s := e.startStreamer("lead", rate)
	defer s.stop()
	began := time.Now()
	for k := 0; k < kills; k++ {
		var l int
		waitUntil(t, "a leader that emits", inputWait, func() (bool, string) {
			l = holder()
			return l >= 0 && !procs[l].exited(), fmt.Sprintf("holder %d", l)
		})
		grown(t, procs[l], outs[l], fileSize(outs[l]), inputWait)
		time.Sleep(time.Duration(1000+rnd.Int64N(2000)) * time.Millisecond)
		procs[l].kill()
		if k%2 == 0 {
			time.Sleep(time.Second) // back within the lease: it may win it again
		} else {
			time.Sleep(6 * time.Second) // the lease expired: the other took over
		}
		start(l)
	}
	time.Sleep(3 * time.Second)
	s.stop()
	res := e.waitAll(t, inputWait, outs...)
	time.Sleep(3 * time.Second)
	for _, p := range procs {
		p.stop(t)
	}
	res = e.tally(t, outs...)
	t.Logf("chaos %s leader election: %d leader kills in %v: %d versions acknowledged, %d lost, %d repeated, %d broken lines (%d create/update errors)",
		r.name, kills, time.Since(began).Round(time.Second), res.acked, res.lost, res.repeated, res.broken, s.errs)
	if res.lost > 0 {
		t.Errorf("%d of %d acknowledged Event versions never reached an output", res.lost, res.acked)
		keepChaos(t, e.dir)
	}
}
