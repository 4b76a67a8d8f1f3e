// Package testcluster starts a real Kubernetes control plane (etcd and
// kube-apiserver, nothing else) for Go tests.
//
// The binaries are built from Go modules by `make apiserver` (see
// test/k8s/apiserver.mk) into <repo root>/build/k8s; the environment variable
// KUBETRAIL_K8S_BIN names another directory holding kube-apiserver and etcd.
// A missing binary skips the test with a line saying to run `make apiserver`, and
// fails it under `make test` (test/repo: KUBETRAIL_REQUIRE_ARTEFACTS=1).
//
// There is no controller-manager, scheduler or kubelet: nobody creates a
// namespace's default ServiceAccount (the ServiceAccount admission plugin is
// disabled instead), deleted namespaces stay Terminating (use a fresh namespace
// per test) and nothing emits Events on its own.
package testcluster

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
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

	"github.com/kubetrail/kubetrail/test/repo"
)

// EnvBinDir names a directory holding kube-apiserver and etcd; it overrides
// <repo root>/build/k8s.
const EnvBinDir = "KUBETRAIL_K8S_BIN"

// Users known to the token authenticator besides the admin.
const (
	AdminUser = "admin" // in group system:masters: may do anything
	JaneUser  = "jane"  // authenticated, no RBAC bindings: 403 on nearly everything
)

// DefaultAuditPolicy logs everything at RequestResponse level, without the
// RequestReceived stage.
const DefaultAuditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages:
- RequestReceived
rules:
- level: RequestResponse
`

const (
	readyTimeout = 60 * time.Second
	stopGrace    = 10 * time.Second
	startTries   = 5 // attempts with fresh ports when one was taken meanwhile
)

// Options configures Start. The zero value is usable.
type Options struct {
	AuditPolicy string        // audit policy YAML; default DefaultAuditPolicy
	EventTTL    time.Duration // --event-ttl; default 1h
	ExtraArgs   []string      // appended to the kube-apiserver flags (later flags win)
}

// Cluster is a running etcd + kube-apiserver pair.
type Cluster struct {
	URL        string // https://127.0.0.1:<port>
	CAFile     string // CA bundle for URL (the apiserver's self-signed apiserver.crt)
	AdminToken string // bearer token of AdminUser (system:masters)
	JaneToken  string // bearer token of JaneUser (no permissions)
	Kubeconfig string // kubeconfig for AdminUser
	AuditLog   string // the apiserver's audit log (JSON lines)
	Dir        string // everything lives here; etcd.log and kube-apiserver.log hold their output
	EtcdURL    string // http://127.0.0.1:<port>

	binDir  string
	apiArgs []string
	client  *http.Client

	mu   sync.Mutex
	etcd *proc
	api  *proc
}

// Start starts etcd and kube-apiserver and waits until /readyz is ok. Both
// are stopped by t.Cleanup (and by Stop). On a test failure the tails of their
// logs are written to the test log.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	binDir, err := findBinDir()
	var missing *errMissing
	if errors.As(err, &missing) {
		// A fresh clone has no apiserver: skip there, fail under make test.
		repo.Missing(t, missing.names+" ("+missing.where+")", "`make apiserver`")
	}
	if err != nil {
		t.Fatalf("testcluster: %v", err)
	}
	dir := t.TempDir()
	c := &Cluster{
		Dir:      dir,
		AuditLog: filepath.Join(dir, "audit.log"),
		CAFile:   filepath.Join(dir, "certs", "apiserver.crt"),
		binDir:   binDir,
	}
	t.Cleanup(func() {
		if t.Failed() {
			c.logTails(t)
		}
		c.Stop()
	})

	c.AdminToken = randomHex(16)
	c.JaneToken = randomHex(16)
	tokens := fmt.Sprintf("%s,%s,%s-uid,\"system:masters\"\n%s,%s,%s-uid\n",
		c.AdminToken, AdminUser, AdminUser, c.JaneToken, JaneUser, JaneUser)
	policy := opts.AuditPolicy
	if policy == "" {
		policy = DefaultAuditPolicy
	}
	ttl := opts.EventTTL
	if ttl == 0 {
		ttl = time.Hour
	}
	saKey, saPub, err := serviceAccountKeys()
	if err != nil {
		t.Fatalf("testcluster: service-account key pair: %v", err)
	}
	for name, data := range map[string][]byte{
		"tokens.csv":        []byte(tokens),
		"audit-policy.yaml": []byte(policy),
		"sa.key":            saKey,
		"sa.pub":            saPub,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatalf("testcluster: %v", err)
		}
	}

	began := time.Now()
	if err := c.startEtcd(); err != nil {
		t.Fatalf("testcluster: etcd: %v\n%s", err, tail(filepath.Join(dir, "etcd.log"), 30))
	}
	etcdReady := time.Since(began)

	var apiErr error
	for try := 0; try < startTries; try++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("testcluster: %v", err)
		}
		c.URL = "https://127.0.0.1:" + strconv.Itoa(port)
		c.apiArgs = append([]string{
			"--etcd-servers=" + c.EtcdURL,
			"--bind-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(port),
			"--cert-dir=" + filepath.Join(dir, "certs"),
			"--token-auth-file=" + filepath.Join(dir, "tokens.csv"),
			"--authorization-mode=RBAC",
			"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
			"--service-account-key-file=" + filepath.Join(dir, "sa.pub"),
			"--service-account-signing-key-file=" + filepath.Join(dir, "sa.key"),
			"--service-cluster-ip-range=10.0.0.0/24",
			"--endpoint-reconciler-type=none", // 127.0.0.1 is not a valid endpoint address
			// Nobody creates a namespace's default ServiceAccount.
			"--disable-admission-plugins=ServiceAccount",
			"--audit-policy-file=" + filepath.Join(dir, "audit-policy.yaml"),
			"--audit-log-path=" + c.AuditLog,
			"--audit-log-format=json",
			"--audit-log-mode=blocking", // written before the response is sent
			"--audit-log-maxsize=0",     // no rotation
			"--audit-log-maxbackup=0",
			"--audit-log-maxage=0",
			"--event-ttl=" + ttl.String(),
			"--profiling=false",
		}, opts.ExtraArgs...)
		apiErr = c.startAPIServer(t)
		if apiErr == nil || !addrInUse(c.api) {
			break
		}
		c.api.stop() // the port was taken meanwhile: try another
	}
	if apiErr != nil {
		t.Fatalf("testcluster: kube-apiserver: %v\n%s", apiErr, tail(filepath.Join(dir, "kube-apiserver.log"), 40))
	}
	t.Logf("testcluster: %s ready in %v (etcd %v), dir %s", c.URL, time.Since(began).Round(time.Millisecond), etcdReady.Round(time.Millisecond), dir)

	c.Kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(c.Kubeconfig, []byte(c.kubeconfig()), 0o600); err != nil {
		t.Fatalf("testcluster: %v", err)
	}
	return c
}

// Do sends a raw HTTPS request to the apiserver. path may hold a query. An
// empty token sends no Authorization header (anonymous). A non-nil body is
// sent as application/json.
func (c *Cluster) Do(method, path string, body []byte, token string) (status int, respBody []byte, err error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, c.URL+path, r)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	respBody, err = io.ReadAll(resp.Body)
	return resp.StatusCode, respBody, err
}

// WaitAudit polls the audit log until a line satisfies match and returns it
// (without the newline). It fails the test after timeout. The whole log is
// searched, from its first line.
func (c *Cluster) WaitAudit(t testing.TB, match func(line []byte) bool, timeout time.Duration) []byte {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var off int64
	for {
		n, line, err := scanFrom(c.AuditLog, off, match)
		off += n
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("testcluster: audit log: %v", err)
		}
		if line != nil {
			return line
		}
		if time.Now().After(deadline) {
			t.Fatalf("testcluster: no matching line in %s after %v (%d bytes read)", c.AuditLog, timeout, off)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop stops kube-apiserver and etcd (SIGTERM to each process group, SIGKILL
// after 10 s) and waits for them. It is idempotent.
func (c *Cluster) Stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.api.stop()
	c.etcd.stop()
}

// StopAPIServer stops only kube-apiserver; etcd keeps the data. StartAPIServer
// starts it again on the same URL, with the same certificates and tokens.
func (c *Cluster) StopAPIServer() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.api.stop()
}

// StartAPIServer starts kube-apiserver again after StopAPIServer and waits
// until it is ready. The audit log is appended to.
func (c *Cluster) StartAPIServer(t testing.TB) {
	t.Helper()
	began := time.Now()
	if err := c.startAPIServer(t); err != nil {
		t.Fatalf("testcluster: kube-apiserver restart: %v\n%s", err, tail(filepath.Join(c.Dir, "kube-apiserver.log"), 40))
	}
	t.Logf("testcluster: kube-apiserver ready again in %v", time.Since(began).Round(time.Millisecond))
}

// Restart stops kube-apiserver and starts it again, keeping etcd.
func (c *Cluster) Restart(t testing.TB) {
	t.Helper()
	c.StopAPIServer()
	c.StartAPIServer(t)
}

func (c *Cluster) startEtcd() error {
	var lastErr error
	for range startTries {
		ports, err := FreePorts(2)
		if err != nil {
			return err
		}
		client := "http://127.0.0.1:" + strconv.Itoa(ports[0])
		peer := "http://127.0.0.1:" + strconv.Itoa(ports[1])
		args := []string{
			"--name=default",
			"--data-dir=" + filepath.Join(c.Dir, "etcd"),
			"--listen-client-urls=" + client,
			"--advertise-client-urls=" + client,
			"--listen-peer-urls=" + peer,
			"--initial-advertise-peer-urls=" + peer,
			"--initial-cluster=default=" + peer,
			"--unsafe-no-fsync",
			"--log-level=warn",
		}
		p, err := startProc("etcd", filepath.Join(c.binDir, "etcd"), args, filepath.Join(c.Dir, "etcd.log"))
		if err != nil {
			return err
		}
		c.mu.Lock()
		c.etcd = p
		c.mu.Unlock()
		plain := &http.Client{Timeout: 2 * time.Second}
		err = poll(p, readyTimeout, func() bool {
			resp, err := plain.Get(client + "/health")
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode == http.StatusOK && bytes.Contains(b, []byte(`"health":"true"`))
		})
		if err == nil {
			c.EtcdURL = client
			return nil
		}
		p.stop()
		lastErr = err
		if !addrInUse(p) {
			return err
		}
		// Another process took a port between freePorts and etcd's bind.
		os.RemoveAll(filepath.Join(c.Dir, "etcd"))
	}
	return lastErr
}

func (c *Cluster) startAPIServer(t testing.TB) error {
	c.mu.Lock()
	if c.api != nil && !c.api.exited() {
		c.mu.Unlock()
		return errors.New("already running")
	}
	p, err := startProc("kube-apiserver", filepath.Join(c.binDir, "kube-apiserver"), c.apiArgs, filepath.Join(c.Dir, "kube-apiserver.log"))
	if err != nil {
		c.mu.Unlock()
		return err
	}
	c.api = p
	c.mu.Unlock()

	var tr *http.Transport
	return poll(p, readyTimeout, func() bool {
		if tr == nil {
			// The certificate is written shortly after the process starts.
			pool, err := loadCA(c.CAFile)
			if err != nil {
				return false
			}
			tr = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
			c.client = &http.Client{Transport: tr, Timeout: 30 * time.Second}
		}
		status, body, err := c.Do(http.MethodGet, "/readyz", nil, c.AdminToken)
		return err == nil && status == http.StatusOK && string(body) == "ok"
	})
}

func (c *Cluster) kubeconfig() string {
	return fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: testcluster
  cluster:
    server: %s
    certificate-authority: %s
users:
- name: %s
  user:
    token: %s
contexts:
- name: testcluster
  context:
    cluster: testcluster
    user: %s
current-context: testcluster
`, c.URL, c.CAFile, AdminUser, c.AdminToken, AdminUser)
}

func (c *Cluster) logTails(t testing.TB) {
	for _, name := range []string{"etcd.log", "kube-apiserver.log"} {
		t.Logf("testcluster: tail of %s:\n%s", name, tail(filepath.Join(c.Dir, name), 30))
	}
}

// proc is a child process in its own process group.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	logOff  int64 // size of the log when the process started
	done    chan struct{}
	err     error // valid once done is closed
	once    sync.Once
}

func startProc(name, bin string, args []string, logPath string) (*proc, error) {
	if _, err := os.Stat(bin); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Close() // the child has its own copy
	off, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(f, "==== %s %s\n", time.Now().Format(time.RFC3339Nano), strings.Join(append([]string{bin}, args...), " "))
	cmd := exec.Command(bin, args...)
	cmd.Stdout = f
	cmd.Stderr = f
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, logOff: off, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process group, SIGKILL after stopGrace, and waits
// for the process. A nil or stopped proc is fine.
func (p *proc) stop() {
	if p == nil {
		return
	}
	p.once.Do(func() {
		pgid := p.cmd.Process.Pid
		if !p.exited() {
			_ = syscall.Kill(-pgid, syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(stopGrace):
				_ = syscall.Kill(-pgid, syscall.SIGKILL)
				<-p.done
			}
		}
		// Anything the process left behind in its group.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	})
}

// poll calls ready with backoff until it returns true, the process exits or
// timeout passes.
func poll(p *proc, timeout time.Duration, ready func() bool) error {
	deadline := time.Now().Add(timeout)
	delay := 20 * time.Millisecond
	for {
		if ready() {
			return nil
		}
		if p.exited() {
			return fmt.Errorf("%s exited before it was ready: %v (log %s)", p.name, p.err, p.logPath)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %v (log %s)", p.name, timeout, p.logPath)
		}
		select {
		case <-p.done:
		case <-time.After(delay):
		}
		delay = min(delay*2, 500*time.Millisecond)
	}
}

// errMissing says which executables findBinDir did not find, and where.
type errMissing struct{ names, dir, where string }

func (e *errMissing) Error() string {
	return fmt.Sprintf("%s missing in %s (%s): run `make apiserver` in the repository root to build them (cold build 8-15 min), or set %s",
		e.names, e.dir, e.where, EnvBinDir)
}

// findBinDir returns $KUBETRAIL_K8S_BIN, else <repo root>/build/k8s, where the
// executables names (default kube-apiserver and etcd) must be; an *errMissing when
// one is not there.
func findBinDir(names ...string) (string, error) {
	if len(names) == 0 {
		names = []string{"kube-apiserver", "etcd"}
	}
	dir := os.Getenv(EnvBinDir)
	where := "$" + EnvBinDir
	if dir == "" {
		root, err := repo.Root()
		if err != nil {
			return "", fmt.Errorf("%v; set %s to a directory with %s, or run `make apiserver` in the repository root", err, EnvBinDir, strings.Join(names, " and "))
		}
		dir = filepath.Join(root, "build", "k8s")
		where = "<repo root>/build/k8s"
	}
	var missing []string
	for _, b := range names {
		if fi, err := os.Stat(filepath.Join(dir, b)); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			missing = append(missing, b)
		}
	}
	if len(missing) > 0 {
		return "", &errMissing{strings.Join(missing, " and "), dir, where}
	}
	return dir, nil
}

// FreePorts returns n distinct free TCP ports on 127.0.0.1, by binding to :0
// and closing (all are held open until the end so they differ). Tests that start
// servers of their own beside the cluster (a Fluent Bit's HTTP or forward port) use
// it too.
func FreePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func freePort() (int, error) {
	p, err := FreePorts(1)
	if err != nil {
		return 0, err
	}
	return p[0], nil
}

func serviceAccountKeys() (keyPEM, pubPEM []byte, err error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, nil, err
	}
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	pubPEM = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})
	return keyPEM, pubPEM, nil
}

func loadCA(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("no certificate in %s", path) // possibly half written
	}
	return pool, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// scanFrom reads complete lines of path from off and returns how many bytes
// it consumed and the first line that matches.
func scanFrom(path string, off int64, match func([]byte) bool) (int64, []byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, nil, err
	}
	defer f.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return 0, nil, err
	}
	r := bufio.NewReaderSize(f, 1<<20)
	var n int64
	for {
		line, err := r.ReadBytes('\n')
		if err != nil { // io.EOF: an incomplete last line is read again later
			if errors.Is(err, io.EOF) {
				err = nil
			}
			return n, nil, err
		}
		n += int64(len(line))
		line = line[:len(line)-1]
		if match(line) {
			return n, line, nil
		}
	}
}

// addrInUse reports whether the log of p, written since it started, says
// that a port was taken.
func addrInUse(p *proc) bool {
	b, _ := os.ReadFile(p.logPath)
	return int64(len(b)) > p.logOff && bytes.Contains(b[p.logOff:], []byte("address already in use"))
}

// tail returns the last n lines of path.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Kubectl returns the kubectl that `make apiserver` builds next to kube-apiserver (the
// same release); "" with the reason when there is none.
func Kubectl() (string, error) {
	dir, err := findBinDir("kubectl")
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "kubectl"), nil
}
