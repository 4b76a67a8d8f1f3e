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
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kubetrail/kubetrail/test/fluentbit"
	"github.com/kubetrail/kubetrail/test/testcluster"
)

// steadyPolicy audits every request once, at Metadata level: enough to count them.
const steadyPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived", "ResponseStarted"]
rules:
- level: Metadata
`

// TestSteadyStateRequests measures what k8s_events costs the API server at steady
// state: LIST and WATCH requests over KUBETRAIL_STEADY (e.g. 1h), counted from the
// apiserver's audit log, while an Event is created every 10 s in namespace busy and
// none in namespace quiet. It runs, side by side against one real apiserver (default
// 5-minute etcd compaction, Events watch cache off as by default):
//
//	all     flb-testhost + k8s_events, all namespaces (an active stream)
//	quiet   flb-testhost + k8s_events, kube_namespace quiet (a stream with no Events)
//	fb-in   a real Fluent Bit's in_kubernetes_events, defaults (when one is found)
//	fb-kt   a real Fluent Bit loading kubetrail's k8s_events (when one is found)
//
// It is a measurement, not a pass/fail test: skipped unless KUBETRAIL_STEADY is set;
// `make bench-events` runs it. The counts go to the test log.
func TestSteadyStateRequests(t *testing.T) {
	d := os.Getenv("KUBETRAIL_STEADY")
	if d == "" {
		t.Skip("a long measurement: set KUBETRAIL_STEADY=1h (make bench-events)")
	}
	dur, err := time.ParseDuration(d)
	if err != nil {
		t.Fatal(err)
	}
	host, _ := paths(t)
	lib, _ := filepath.Abs("../../build/kubetrail.so")
	c := testcluster.Start(t, testcluster.Options{AuditPolicy: steadyPolicy})
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte(c.AdminToken), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{"busy", "quiet"} {
		body := fmt.Sprintf(`{"metadata":{"name":%q}}`, ns)
		if st, b, err := c.Do(http.MethodPost, "/api/v1/namespaces", []byte(body), c.AdminToken); err != nil || st != 201 {
			t.Fatalf("namespace %s: %d %v %s", ns, st, err, b)
		}
	}
	conn := []string{"kube_url=" + c.URL, "kube_ca_file=" + c.CAFile, "kube_token_file=" + token}

	type proc struct {
		name string
		cmd  *exec.Cmd
		out  string
		log  *bytes.Buffer
	}
	var procs []*proc
	start := func(name string, args ...string) {
		p := &proc{name: name, out: filepath.Join(dir, name+".out"), log: &bytes.Buffer{}}
		p.cmd = exec.Command(args[0], args[1:]...)
		p.cmd.Stderr = p.log
		if strings.HasPrefix(name, "fb-") {
			f, err := os.Create(p.out)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			p.cmd.Stdout = f
		}
		if err := p.cmd.Start(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		procs = append(procs, p)
	}
	hostArgs := func(name string, props ...string) []string {
		args := []string{host, "input", "-l", lib, "--out", filepath.Join(dir, name+".out")}
		for _, p := range append(append([]string{}, conn...), props...) {
			args = append(args, "-p", p)
		}
		return args
	}
	start("all", hostArgs("all", "db="+filepath.Join(dir, "all.db"))...)
	start("quiet", hostArgs("quiet", "db="+filepath.Join(dir, "quiet.db"), "kube_namespace=quiet")...)
	fb, err := fluentbit.Find()
	if err != nil {
		t.Fatal(err)
	}
	if fb != "" {
		start("fb-in", fb, "-i", "kubernetes_events", "-p", "kube_url="+c.URL, "-p", "kube_ca_file="+c.CAFile,
			"-p", "kube_token_file="+token, "-p", "db="+filepath.Join(dir, "fb-in.db"), "-o", "stdout", "-p", "format=json_lines", "-f", "1")
		start("fb-kt", fb, "-e", lib, "-i", "k8s_events", "-p", conn[0], "-p", conn[1], "-p", conn[2],
			"-p", "db="+filepath.Join(dir, "fb-kt.db"), "-o", "stdout", "-p", "format=json_lines", "-f", "1")
	} else {
		t.Log("no real Fluent Bit (FLUENT_BIT or PATH): measuring kubetrail only")
	}

	began := time.Now()
	created := 0
	for time.Since(began) < dur {
		body := fmt.Sprintf(`{"metadata":{"name":"tick-%d"},"involvedObject":{"kind":"Pod","name":"p","namespace":"busy"},"reason":"Tick","message":"steady","type":"Normal","count":1,"firstTimestamp":%q,"lastTimestamp":%q}`,
			created, time.Now().UTC().Format(time.RFC3339), time.Now().UTC().Format(time.RFC3339))
		if st, b, err := c.Do(http.MethodPost, "/api/v1/namespaces/busy/events", []byte(body), c.AdminToken); err != nil || st != 201 {
			t.Fatalf("event: %d %v %s", st, err, b)
		}
		created++
		time.Sleep(10 * time.Second)
	}
	time.Sleep(3 * time.Second)
	for _, p := range procs {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		_ = p.cmd.Wait()
	}

	// Count LIST and WATCH requests per consumer from the audit log.
	counts := map[string]map[string]int{}
	f, err := os.Open(c.AuditLog)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var ev struct {
			Verb, RequestURI, UserAgent string
			ObjectRef                   struct{ Resource string }
			ResponseStatus              struct{ Code int }
		}
		if json.Unmarshal(sc.Bytes(), &ev) != nil || ev.ObjectRef.Resource != "events" || (ev.Verb != "list" && ev.Verb != "watch") {
			continue
		}
		who := ev.UserAgent
		switch {
		case strings.HasPrefix(ev.UserAgent, "kubetrail") && strings.Contains(ev.RequestURI, "/namespaces/quiet/"):
			who = "kubetrail quiet namespace"
		case strings.HasPrefix(ev.UserAgent, "kubetrail"):
			who = "kubetrail all namespaces"
		}
		if counts[who] == nil {
			counts[who] = map[string]int{}
		}
		counts[who][ev.Verb]++
		if ev.ResponseStatus.Code == 410 {
			counts[who]["410"]++
		}
	}
	var whos []string
	for w := range counts {
		whos = append(whos, w)
	}
	sort.Strings(whos)
	hours := time.Since(began).Hours()
	t.Logf("steady state over %v, %d Events created in busy (1 per 10 s):", time.Since(began).Round(time.Second), created)
	for _, w := range whos {
		c := counts[w]
		t.Logf("  %-28s LIST %3d (%.1f/h)  WATCH %3d (%.1f/h)  410 %d", w, c["list"], float64(c["list"])/hours, c["watch"], float64(c["watch"])/hours, c["410"])
	}
	for _, p := range procs {
		lines := 0
		if b, err := os.ReadFile(p.out); err == nil {
			lines = bytes.Count(b, []byte("\n"))
		}
		t.Logf("  %-6s wrote %d lines; log tail:\n%s", p.name, lines, lastLines(p.log.String(), 6))
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "    " + strings.Join(lines, "\n    ")
}
