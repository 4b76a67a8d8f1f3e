package testcluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kubetrail/kubetrail/test/repo"
)

// auditEvent is the part of an audit.k8s.io/v1 Event the tests look at.
type auditEvent struct {
	Stage      string `json:"stage"`
	Verb       string `json:"verb"`
	RequestURI string `json:"requestURI"`
	User       struct {
		Username string `json:"username"`
	} `json:"user"`
	ObjectRef struct {
		Name string `json:"name"`
	} `json:"objectRef"`
	ResponseStatus struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
}

// auditLine matches the audit line of the request verb uri on the object
// named name ("": any; the apiserver itself creates namespaces on start-up).
func auditLine(verb, uri, name string) func([]byte) bool {
	return func(line []byte) bool {
		var ev auditEvent
		return json.Unmarshal(line, &ev) == nil && ev.Verb == verb && ev.RequestURI == uri &&
			(name == "" || ev.ObjectRef.Name == name)
	}
}

func checkAudit(t *testing.T, c *Cluster, verb, uri, name, user string, code int) {
	t.Helper()
	line := c.WaitAudit(t, auditLine(verb, uri, name), 10*time.Second)
	var ev auditEvent
	if err := json.Unmarshal(line, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.ResponseStatus.Code != code || ev.User.Username != user {
		t.Errorf("audit %s %s: code %d user %q, want %d %q\n%s", verb, uri, ev.ResponseStatus.Code, ev.User.Username, code, user, line)
	}
}

func TestCluster(t *testing.T) {
	c := Start(t, Options{})

	// The server reports the version it was built as (ldflags in apiserver.mk).
	status, body, err := c.Do(http.MethodGet, "/version", nil, c.AdminToken)
	if err != nil || status != http.StatusOK {
		t.Fatalf("GET /version: %d %v %s", status, err, body)
	}
	var v struct{ GitVersion string }
	if err := json.Unmarshal(body, &v); err != nil || v.GitVersion != "v1.34.4" {
		t.Errorf("GET /version: gitVersion %q (%v), want v1.34.4", v.GitVersion, err)
	}

	ns := "kt-" + randomHex(4)
	status, body, err = c.Do(http.MethodPost, "/api/v1/namespaces",
		fmt.Appendf(nil, `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":%q}}`, ns), c.AdminToken)
	if err != nil || status != http.StatusCreated {
		t.Fatalf("create namespace: %d %v %s", status, err, body)
	}

	now := time.Now().UTC().Format(time.RFC3339)
	eventsURI := "/api/v1/namespaces/" + ns + "/events"
	status, body, err = c.Do(http.MethodPost, eventsURI, fmt.Appendf(nil, `{
		"apiVersion": "v1", "kind": "Event",
		"metadata": {"name": "demo.1"},
		"involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": "demo", "namespace": %q},
		"reason": "Testing", "message": "hello from testcluster", "type": "Normal",
		"source": {"component": "kubetrail-test"},
		"firstTimestamp": %q, "lastTimestamp": %q, "count": 1}`, ns, now, now), c.AdminToken)
	if err != nil || status != http.StatusCreated {
		t.Fatalf("create event: %d %v %s", status, err, body)
	}

	secretsURI := "/api/v1/namespaces/" + ns + "/secrets"
	if status, body, err = c.Do(http.MethodGet, secretsURI, nil, c.JaneToken); err != nil || status != http.StatusForbidden {
		t.Errorf("jane lists secrets: %d %v %s, want 403", status, err, body)
	}
	badURI := "/api/v1/namespaces/" + ns + "/configmaps"
	if status, body, err = c.Do(http.MethodGet, badURI, nil, "not-a-token"); err != nil || status != http.StatusUnauthorized {
		t.Errorf("bad token: %d %v %s, want 401", status, err, body)
	}

	checkAudit(t, c, "get", "/version", "", AdminUser, 200)
	checkAudit(t, c, "create", "/api/v1/namespaces", ns, AdminUser, 201)
	checkAudit(t, c, "create", eventsURI, "demo.1", AdminUser, 201)
	checkAudit(t, c, "list", secretsURI, "", JaneUser, 403)
	checkAudit(t, c, "list", badURI, "", "", 401) // failed authentication: no user

	// The kubeconfig names the CA and the admin token.
	kc, err := os.ReadFile(c.Kubeconfig)
	if err != nil || !strings.Contains(string(kc), c.URL) || !strings.Contains(string(kc), c.CAFile) {
		t.Errorf("kubeconfig: %v\n%s", err, kc)
	}

	// Restart keeps etcd: the namespace is still there.
	etcdPID := c.etcd.cmd.Process.Pid
	apiPID := c.api.cmd.Process.Pid
	t.Logf("peak RSS before restart: kube-apiserver %s, etcd %s", vmHWM(apiPID), vmHWM(etcdPID))
	c.Restart(t)
	if c.api.cmd.Process.Pid == apiPID || c.etcd.cmd.Process.Pid != etcdPID {
		t.Errorf("Restart: apiserver pid %d -> %d, etcd pid %d -> %d", apiPID, c.api.cmd.Process.Pid, etcdPID, c.etcd.cmd.Process.Pid)
	}
	if !gone(apiPID) {
		t.Errorf("old kube-apiserver %d still there after Restart", apiPID)
	}
	if status, body, err = c.Do(http.MethodGet, "/api/v1/namespaces/"+ns, nil, c.AdminToken); err != nil || status != http.StatusOK {
		t.Errorf("namespace after restart: %d %v %s", status, err, body)
	}

	pids := []int{c.api.cmd.Process.Pid, c.etcd.cmd.Process.Pid}
	began := time.Now()
	c.Stop()
	t.Logf("Stop took %v", time.Since(began).Round(time.Millisecond))
	c.Stop() // idempotent
	for _, pid := range pids {
		if !gone(pid) {
			t.Errorf("process %d (or its group) still there after Stop", pid)
		}
	}
	if _, _, err := c.Do(http.MethodGet, "/readyz", nil, c.AdminToken); err == nil {
		t.Errorf("apiserver still answers after Stop")
	}
}

// gone reports whether neither the process pid nor any member of its process
// group exists.
func gone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) && errors.Is(syscall.Kill(-pid, 0), syscall.ESRCH)
}

func vmHWM(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "?"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

// fatalTB records Fatalf instead of failing the real test.
type fatalTB struct {
	testing.TB
	mu  sync.Mutex
	msg string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) { f.end("fatal", format, args...) }

func (f *fatalTB) Skipf(format string, args ...any) { f.end("skip", format, args...) }

func (f *fatalTB) end(how, format string, args ...any) {
	f.mu.Lock()
	f.msg = how + ": " + fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}

// Missing binaries skip the test with a message saying how to build them, and fail
// it under make test (repo.RequireEnv).
func TestStartMissingBinaries(t *testing.T) {
	t.Setenv(EnvBinDir, t.TempDir())
	for _, tc := range []struct{ require, how string }{{"", "skip"}, {"1", "fatal"}} {
		t.Setenv(repo.RequireEnv, tc.require)
		f := &fatalTB{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			Start(f, Options{})
			t.Error("Start returned without binaries")
		}()
		<-done
		if !strings.HasPrefix(f.msg, tc.how+": ") || !strings.Contains(f.msg, "make apiserver") || !strings.Contains(f.msg, "kube-apiserver and etcd") {
			t.Errorf("%s=%q: message %q does not %s saying to run make apiserver", repo.RequireEnv, tc.require, f.msg, tc.how)
		}
	}
}
