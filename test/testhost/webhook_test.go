package testhost_test

// The audit webhook as a source: kube-apiserver (test/testcluster) posting its
// audit batches (EventList) with the flags of deploy/webhook/, captured by a small
// proxy on 127.0.0.1 that keeps each body and, with a real Fluent Bit, passes it on
// over TLS with the apiserver's client certificate to the http input of the recipe
// (-> k8s_audit -> file output), answering the apiserver with Fluent Bit's status. The
// captured batches also go through build/flb-testhost as the http input makes them:
// one map record per batch. Both must give every event once, as its own record, with
// no field of the batch or of another event, in at most twice the bytes the audit log
// spends on the same events.
//
// TestWebhookTLS checks what Fluent Bit's http input verifies of a client (Fluent Bit
// >= 5.0, tls.verify_client_cert) and that a batch above buffer_max_size is refused
// with 413.

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kubetrail/kubetrail/test/fluentbit"
	"github.com/kubetrail/kubetrail/test/testcluster"
)

// webhookFlags are the kube-apiserver flags of deploy/webhook/README.md (the config
// file is added by the test); webhookFastFlags, given after them, shorten the waits
// so that the test runs fast.
var (
	webhookFlags = []string{
		"--audit-webhook-version=audit.k8s.io/v1",
		"--audit-webhook-mode=batch",
		"--audit-webhook-batch-max-size=100",
		"--audit-webhook-batch-max-wait=5s",
		"--audit-webhook-batch-buffer-size=10000",
		"--audit-webhook-batch-throttle-qps=40",
		"--audit-webhook-batch-throttle-burst=60",
		"--audit-webhook-truncate-enabled=true",
		"--audit-webhook-initial-backoff=10s",
	}
	webhookFastFlags = []string{"--audit-webhook-batch-max-wait=1s", "--audit-webhook-initial-backoff=1s"}
)

// webhookClientName is the name in the apiserver's client certificate (deploy/webhook).
const webhookClientName = "kube-apiserver-audit"

// pki is a CA and the certificates it issued, as PEM files in dir.
type pki struct {
	dir    string
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	CAFile string
}

func newPKI(t *testing.T, dir, name string) *pki {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	p := &pki{dir: dir, ca: ca, caKey: key, CAFile: filepath.Join(dir, name+".crt")}
	writePEM(t, p.CAFile, "CERTIFICATE", der)
	return p
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// issue writes name.crt and name.key: a server certificate for 127.0.0.1, or a client
// certificate for the DNS name dns.
func (p *pki) issue(t *testing.T, name string, server bool, dns string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: dns},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		DNSNames: []string{dns},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(p.dir, name+".crt"), filepath.Join(p.dir, name+".key")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "EC PRIVATE KEY", kb)
	return certFile, keyFile
}

// tlsClient is an HTTPS client trusting serverCA, presenting the given certificate
// (none when certFile is "").
func tlsClient(t *testing.T, serverCA, certFile, keyFile string) *http.Client {
	t.Helper()
	b, err := os.ReadFile(serverCA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(b)
	cfg := &tls.Config{RootCAs: pool}
	if certFile != "" {
		c, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}, Timeout: 30 * time.Second}
}

// webhookTLS is the TLS material of the recipe: a server certificate for Fluent Bit,
// and the apiserver's client certificate from a CA of its own.
type webhookTLS struct {
	serverCA, serverCert, serverKey string
	clientCA, clientCert, clientKey string
	clientPKI                       *pki
	dir                             string
}

func newWebhookTLS(t *testing.T, dir string) *webhookTLS {
	t.Helper()
	s, c := newPKI(t, dir, "server-ca"), newPKI(t, dir, "client-ca")
	w := &webhookTLS{serverCA: s.CAFile, clientCA: c.CAFile, clientPKI: c, dir: dir}
	w.serverCert, w.serverKey = s.issue(t, "server", true, "kubetrail-webhook")
	w.clientCert, w.clientKey = c.issue(t, "apiserver-client", false, webhookClientName)
	return w
}

// fluentBitMajor returns the major version `bin --version` prints.
func fluentBitMajor(t *testing.T, bin string) int {
	t.Helper()
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		t.Fatalf("%s --version: %v", bin, err)
	}
	f := strings.Fields(string(out)) // Fluent Bit v5.1.1
	if len(f) < 3 || !strings.HasPrefix(f[2], "v") {
		t.Fatalf("%s --version: %q", bin, out)
	}
	major, err := strconv.Atoi(strings.SplitN(f[2][1:], ".", 2)[0])
	if err != nil {
		t.Fatalf("%s --version: %q", bin, out)
	}
	return major
}

// httpInput is the http input of deploy/webhook/fluent-bit.yaml as a classic
// stanza: the TLS files of w, the port given, without its processors, storage.type
// (the test has no storage.path) and the keys in without.
func (w *webhookTLS) httpInput(t *testing.T, port int, tag string, without ...string) string {
	t.Helper()
	c, err := parseExample("../../deploy/webhook/fluent-bit.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ins := c.plugins("http")
	if len(ins) != 1 || ins[0].Kind != "input" {
		t.Fatalf("deploy/webhook/fluent-bit.yaml: %d http inputs, want 1", len(ins))
	}
	s := ins[0]
	var b strings.Builder
	b.WriteString("[INPUT]\n")
	for _, k := range s.Keys {
		lk := strings.ToLower(k)
		v := strings.ReplaceAll(s.Props[lk], "/fluent-bit/webhook-tls/", w.dir+"/")
		switch {
		case lk == "storage.type" || slices.Contains(without, lk):
			continue
		case lk == "tag":
			v = tag
		case lk == "port":
			v = strconv.Itoa(port)
		}
		fmt.Fprintf(&b, "    %s %s\n", k, v)
	}
	return b.String() + "\n"
}

// recipeAuditProps returns the dedup settings of the k8s_audit processor of
// deploy/webhook/fluent-bit.yaml as key=value pairs, its dedup_file moved into dir.
// The recipe must turn dedup on: the apiserver re-sends a batch whose answer it did
// not get.
func recipeAuditProps(t *testing.T, dir string) []string {
	t.Helper()
	c, err := parseExample("../../deploy/webhook/fluent-bit.yaml")
	if err != nil {
		t.Fatal(err)
	}
	fs := c.plugins("k8s_audit")
	if len(fs) != 1 {
		t.Fatalf("deploy/webhook/fluent-bit.yaml: %d k8s_audit stanzas, want 1", len(fs))
	}
	if v := fs[0].Props["dedup"]; v != "on" {
		t.Fatalf("deploy/webhook/fluent-bit.yaml: k8s_audit has dedup %q: a re-sent batch would be emitted twice", v)
	}
	props := []string{"dedup=on"}
	for _, k := range []string{"dedup_file", "dedup_max_entries"} {
		if v, ok := fs[0].Props[k]; ok {
			if k == "dedup_file" {
				v = filepath.Join(dir, filepath.Base(v))
			}
			props = append(props, k+"="+v)
		}
	}
	return props
}

// batchTee receives the apiserver's webhook posts, keeps each body and answers
// itself (200) or with what forward (Fluent Bit) answered. The loseAnswer-th post
// with events that is accepted is answered 500 instead, as if the answer had been
// lost after Fluent Bit took the batch: kube-apiserver then sends the same batch
// again (k8s.io/apiserver/pkg/util/webhook DefaultShouldRetry retries an
// InternalError, which client-go makes of a 500), and the filter sees it twice.
type batchTee struct {
	forward    string
	client     *http.Client
	srv        *http.Server
	url        string
	loseAnswer int

	mu       sync.Mutex
	bodies   [][]byte // every body accepted (2xx from forward, or no forward)
	accepted int      // of them, those with events
	lost     []byte   // the body whose answer was replaced
	status   map[int]int
}

func startBatchTee(t *testing.T, w *webhookTLS, forward string, client *http.Client) *batchTee {
	t.Helper()
	// As the recipe's Fluent Bit: TLS with the server certificate, and only the
	// apiserver's client certificate.
	cert, err := tls.LoadX509KeyPair(w.serverCert, w.serverKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(w.clientCA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool,
		VerifyPeerCertificate: func(_ [][]byte, chains [][]*x509.Certificate) error {
			return chains[0][0].VerifyHostname(webhookClientName)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	b := &batchTee{forward: forward, client: client, status: map[int]int{}, url: "https://" + l.Addr().String() + "/"}
	b.srv = &http.Server{Handler: b, ReadHeaderTimeout: 10 * time.Second}
	go b.srv.Serve(l)
	t.Cleanup(func() { b.srv.Close() })
	return b
}

func (b *batchTee) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	code, answer := http.StatusOK, []byte("{}")
	if b.forward != "" {
		req, _ := http.NewRequest(http.MethodPost, b.forward, bytes.NewReader(body))
		req.Header.Set("Content-Type", r.Header.Get("Content-Type"))
		resp, err := b.client.Do(req)
		if err != nil {
			code, answer = http.StatusServiceUnavailable, []byte(err.Error())
		} else {
			answer, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			code = resp.StatusCode
		}
	}
	b.mu.Lock()
	if code/100 == 2 {
		b.bodies = append(b.bodies, body)
		var list struct{ Items []json.RawMessage }
		if json.Unmarshal(body, &list) == nil && len(list.Items) > 0 {
			if b.accepted++; b.accepted == b.loseAnswer {
				code, answer, b.lost = http.StatusInternalServerError, []byte("answer lost"), body
			}
		}
	}
	b.status[code]++
	b.mu.Unlock()
	w.WriteHeader(code)
	w.Write(answer)
}

// lostBatch returns the events of the batch whose answer was replaced.
func (b *batchTee) lostBatch(t *testing.T) map[string]bool {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var list struct {
		Items []struct{ AuditID, Stage string }
	}
	if err := json.Unmarshal(b.lost, &list); err != nil {
		t.Fatalf("the batch whose answer was lost: %v", err)
	}
	out := map[string]bool{}
	for _, it := range list.Items {
		out[it.AuditID+"/"+it.Stage] = true
	}
	return out
}

// delivered returns the bodies accepted, their events by (auditID, stage), and how
// many events came more than once.
func (b *batchTee) delivered(t *testing.T) (bodies [][]byte, items map[string]map[string]any, dups int) {
	t.Helper()
	b.mu.Lock()
	bodies = append([][]byte(nil), b.bodies...)
	b.mu.Unlock()
	items = map[string]map[string]any{}
	for _, body := range bodies {
		var list struct {
			Kind  string           `json:"kind"`
			Items []map[string]any `json:"items"`
		}
		if err := json.Unmarshal(body, &list); err != nil || list.Kind != "EventList" {
			t.Fatalf("a webhook post that is not an EventList: %v %.300s", err, body)
		}
		for _, it := range list.Items {
			k := fmt.Sprint(it["auditID"], "/", it["stage"])
			if _, ok := items[k]; ok {
				dups++
			}
			items[k] = it
		}
	}
	return bodies, items, dups
}

// auditLogLines returns the audit log's lines by (auditID, stage).
func auditLogLines(t *testing.T, path string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, l := range nonEmptyLines(t, path) {
		var ev struct{ AuditID, Stage string }
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("audit log: %v", err)
		}
		out[ev.AuditID+"/"+ev.Stage] = []byte(l)
	}
	return out
}

// webhookWorkload sends requests whose events cover small and large objects (some
// above the 100 KiB the apiserver truncates webhook events to), reads, lists,
// forbidden requests and a Secret.
func webhookWorkload(t *testing.T, c *testcluster.Cluster, secret string) {
	t.Helper()
	do := func(method, path, body, token string, want int) {
		t.Helper()
		var b []byte
		if body != "" {
			b = []byte(body)
		}
		st, resp, err := c.Do(method, path, b, token)
		if err != nil || st != want {
			t.Fatalf("%s %s: %d %v, want %d\n%.300s", method, path, st, err, want, resp)
		}
	}
	const ns = "webhook"
	do("POST", "/api/v1/namespaces", `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"`+ns+`"}}`, c.AdminToken, 201)
	sizes := []int{100, 10 << 10, 60 << 10, 150 << 10}
	for i := 0; i < 40; i++ {
		name := fmt.Sprintf("cm-%d", i)
		do("POST", "/api/v1/namespaces/"+ns+"/configmaps",
			fmt.Sprintf(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":%q},"data":{"d":%q}}`, name, strings.Repeat("y", sizes[i%len(sizes)])),
			c.AdminToken, 201)
		do("GET", "/api/v1/namespaces/"+ns+"/configmaps/"+name, "", c.AdminToken, 200)
		do("GET", "/api/v1/namespaces/"+ns+"/configmaps/"+name, "", c.JaneToken, 403)
	}
	do("GET", "/api/v1/namespaces/"+ns+"/configmaps", "", c.AdminToken, 200)
	do("POST", "/api/v1/namespaces/"+ns+"/secrets",
		fmt.Sprintf(`{"apiVersion":"v1","kind":"Secret","metadata":{"name":"s"},"stringData":{"password":%q}}`, secret), c.AdminToken, 201)
	do("GET", "/api/v1/namespaces/"+ns+"/secrets/s", "", c.AdminToken, 200)
	do("DELETE", "/api/v1/namespaces/"+ns+"/configmaps/cm-0", "", c.AdminToken, 200)
}

// msgpackable turns json.Number (decoding with UseNumber) into int64 or float64.
func msgpackable(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = msgpackable(e)
		}
	case []any:
		for i, e := range x {
			x[i] = msgpackable(e)
		}
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	}
	return v
}

// checkWebhookRecords checks the records made of the batches: each event of items
// once, with its own fields and none of the batch's, the secret nowhere, and the
// JSON lines (outBytes) at most twice what the audit log spends on the same events.
func checkWebhookRecords(t *testing.T, what string, recs []map[string]any, outBytes int, items map[string]map[string]any, logLines map[string][]byte, secret string) {
	t.Helper()
	seen := map[string]int{}
	bad, wrong := 0, 0
	report := func(format string, args ...any) { // the first few only
		if wrong++; wrong <= 5 {
			t.Errorf(what+": "+format, args...)
		}
	}
	for _, r := range recs {
		k := fmt.Sprint(r["auditID"], "/", r["stage"])
		it, ok := items[k]
		if !ok {
			if bad++; bad <= 3 {
				t.Errorf("%s: a record that is no event of the batches: %.300s", what, fmt.Sprint(r))
			}
			continue
		}
		seen[k]++
		if seen[k] > 1 {
			continue
		}
		for _, f := range []string{"items", "metadata"} {
			if _, ok := r[f]; ok {
				report("%s carries the batch's %q", k, f)
			}
		}
		if r["kind"] != nil && r["kind"] != "Event" {
			report("%s has kind %v", k, r["kind"])
		}
		for _, f := range []string{"requestURI", "verb", "objectRef", "user", "responseStatus", "sourceIPs", "userAgent", "requestReceivedTimestamp", "stageTimestamp"} {
			a, _ := json.Marshal(r[f])
			b, _ := json.Marshal(it[f])
			if !bytes.Equal(a, b) {
				report("%s: %s is %.100s, the event's is %.100s", k, f, a, b)
			}
		}
	}
	lost, repeated := 0, 0
	var logBytes int
	for k := range items {
		switch n := seen[k]; {
		case n == 0:
			lost++
		case n > 1:
			repeated += n - 1
		}
		line, ok := logLines[k]
		if !ok {
			t.Errorf("%s: event %s of the webhook is not in the audit log", what, k)
		}
		logBytes += len(line) + 1
	}
	t.Logf("%s: %d events in the batches, %d records, %d lost, %d repeated, %d fields wrong; %d bytes out, %d in the audit log (x%.2f)",
		what, len(items), len(recs), lost, repeated, wrong, outBytes, logBytes, float64(outBytes)/float64(max(logBytes, 1)))
	if lost > 0 || repeated > 0 || bad > 0 {
		t.Errorf("%s: %d events lost, %d repeated, %d records that are no event", what, lost, repeated, bad)
	}
	if outBytes > 2*logBytes {
		t.Errorf("%s: %d bytes out for %d bytes of audit log: more than twice", what, outBytes, logBytes)
	}
	if secret != "" {
		for _, r := range recs {
			if b, _ := json.Marshal(r); bytes.Contains(b, []byte(secret)) {
				t.Errorf("%s: the Secret's value is in a record", what)
				break
			}
		}
	}
}

func TestWebhookBatches(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real kube-apiserver")
	}
	paths(t)
	dir := t.TempDir()
	w := newWebhookTLS(t, dir)
	secret := "kubetrail-webhook-s3cret"

	// With a real Fluent Bit: the recipe's http input (TLS, client certificate) ->
	// k8s_audit -> file.
	var fb *fluentbit.Process
	var forward string
	var outFile string
	fbWhy := "no Fluent Bit: set " + fluentbit.Env + " to run the batches through its http input"
	bin, _ := fluentbit.Find()
	if bin != "" && fluentBitMajor(t, bin) < 5 {
		bin, fbWhy = "", "the recipe needs Fluent Bit >= 5.0 (tls.verify_client_cert)"
	}
	if bin != "" {
		pluginsConf, _ := filepath.Abs("../../build/plugins.conf")
		port := freeTCPPort(t)
		outDir := filepath.Join(dir, "out")
		if err := os.Mkdir(outDir, 0o755); err != nil {
			t.Fatal(err)
		}
		outFile = filepath.Join(outDir, "webhook.jsonl")
		cfg := filepath.Join(dir, "fluent-bit.conf")
		filter := "[FILTER]\n    Name k8s_audit\n    Match kube.audit\n"
		for _, p := range recipeAuditProps(t, filepath.Join(dir, "fb")) {
			k, v, _ := strings.Cut(p, "=")
			filter += "    " + k + " " + v + "\n"
		}
		if err := os.Mkdir(filepath.Join(dir, "fb"), 0o755); err != nil {
			t.Fatal(err)
		}
		err := os.WriteFile(cfg, []byte(fmt.Sprintf("[SERVICE]\n    Flush 1\n    Grace 2\n    Log_Level info\n    Plugins_File %s\n\n", pluginsConf)+
			w.httpInput(t, port, "kube.audit")+filter+
			fmt.Sprintf("\n[OUTPUT]\n    Name file\n    Match kube.audit\n    Path %s\n    File webhook.jsonl\n    Format plain\n", outDir)), 0o644)
		if err != nil {
			t.Fatal(err)
		}
		fb = fluentbit.Start(t, bin, dir, cfg)
		forward = "https://127.0.0.1:" + strconv.Itoa(port) + "/"
	}
	tee := startBatchTee(t, w, forward, tlsClient(t, w.serverCA, w.clientCert, w.clientKey))
	tee.loseAnswer = 2 // the second batch with events: taken, its answer lost, re-sent

	// deploy/webhook's kubeconfig for kube-apiserver, pointed at the tee.
	kc, err := os.ReadFile("../../deploy/webhook/audit-webhook-kubeconfig.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.NewReplacer("https://127.0.0.1:9880/", tee.url, "/etc/kubernetes/kubetrail-webhook/", dir+"/").Replace(string(kc))
	if text == string(kc) || strings.Contains(text, "/etc/") {
		t.Fatalf("deploy/webhook/audit-webhook-kubeconfig.yaml: unexpected paths:\n%s", text)
	}
	kubeconfig := filepath.Join(dir, "audit-webhook.kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	// The flags deploy/webhook/README.md gives.
	readme, err := os.ReadFile("../../deploy/webhook/README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range webhookFlags {
		if !strings.Contains(string(readme), f+"\n") {
			t.Errorf("deploy/webhook/README.md does not give %s", f)
		}
	}
	c := testcluster.Start(t, testcluster.Options{ExtraArgs: append(append([]string{"--audit-webhook-config-file=" + kubeconfig}, webhookFlags...), webhookFastFlags...)})
	webhookWorkload(t, c, secret)

	// Every event the audit log has now, in a delivered batch.
	want := auditLogLines(t, c.AuditLog)
	waitUntil(t, "the audit log's events in webhook batches", 2*time.Minute, func() (bool, string) {
		_, items, _ := tee.delivered(t)
		n := 0
		for k := range want {
			if items[k] != nil {
				n++
			}
		}
		tee.mu.Lock()
		defer tee.mu.Unlock()
		return n == len(want), fmt.Sprintf("%d of %d events; answers %v", n, len(want), tee.status)
	})
	// The batch whose answer was lost, sent again by the apiserver.
	resent := tee.lostBatch(t)
	waitUntil(t, "the apiserver to send the batch whose answer was lost again", time.Minute, func() (bool, string) {
		_, _, dups := tee.delivered(t)
		return dups >= len(resent), fmt.Sprintf("%d of %d events re-sent", dups, len(resent))
	})
	bodies, items, dups := tee.delivered(t)
	logLines := auditLogLines(t, c.AuditLog)
	sizes := make([]int, 0, len(bodies))
	for _, b := range bodies {
		sizes = append(sizes, len(b))
	}
	t.Logf("%d batches (%v bytes), %d events, %d events delivered twice (the re-sent batch has %d); answers %v",
		len(bodies), sizes, len(items), dups, len(resent), tee.status)
	if dups != len(resent) {
		t.Errorf("the apiserver delivered %d events twice, want the %d of the re-sent batch", dups, len(resent))
	}

	t.Run("testhost", func(t *testing.T) {
		var chunks [][]byte
		for _, b := range bodies {
			d := json.NewDecoder(bytes.NewReader(b))
			d.UseNumber()
			var m map[string]any
			if err := d.Decode(&m); err != nil {
				t.Fatal(err)
			}
			chunks = append(chunks, v2(t, et(uint32(time.Now().Unix()), 0), map[string]any{}, msgpackable(m).(map[string]any)))
		}
		res, stderr := runFrames(t, recipeAuditProps(t, t.TempDir()), chunks)
		var recs []map[string]any
		outBytes := 0
		for i, r := range res {
			if r.rc != modified {
				t.Fatalf("batch %d: rc %d\n%s", i, r.rc, stderr)
			}
			for _, e := range decode(t, r.out) {
				b, err := json.Marshal(e.body)
				if err != nil {
					t.Fatalf("record not JSON: %v", err)
				}
				outBytes += len(b) + 1
				recs = append(recs, e.body)
			}
		}
		checkWebhookRecords(t, "flb-testhost", recs, outBytes, items, logLines, secret)
	})

	t.Run("fluent-bit", func(t *testing.T) {
		if fb == nil {
			t.Skip(fbWhy)
		}
		// Until the file holds as many records as the batches events (or 20 s).
		count := func() int {
			b, _ := os.ReadFile(outFile)
			return bytes.Count(b, []byte("\n"))
		}
		deadline := time.Now().Add(20 * time.Second)
		for count() < len(items) && time.Now().Before(deadline) {
			time.Sleep(200 * time.Millisecond)
		}
		time.Sleep(2 * time.Second) // a repeat would show by now
		fb.Stop()
		b, err := os.ReadFile(outFile)
		if err != nil {
			t.Fatal(err)
		}
		var recs []map[string]any
		for _, l := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
			var m map[string]any
			if err := json.Unmarshal(l, &m); err != nil {
				t.Fatalf("output line not JSON: %v: %.200s", err, l)
			}
			recs = append(recs, m)
		}
		checkWebhookRecords(t, "Fluent Bit", recs, len(b), items, logLines, secret)
		if _, log := fb.Snapshot(); strings.Contains(log, "[error]") {
			t.Errorf("Fluent Bit logged errors:\n%s", log)
		}
	})
}

// TestWebhookTLS: what the recipe's http input accepts. tls.verify_client_cert (Fluent
// Bit >= 5.0) makes the handshake fail without a client certificate; the certificate
// must chain to tls.ca_file; nothing else of it is checked (any name is accepted)
// unless tls.vhost and tls.verify_hostname are set, which then require that name in
// the client certificate. A body above buffer_max_size is answered 413.
func TestWebhookTLS(t *testing.T) {
	bin := fluentbit.Require(t, "check what its http input verifies of a client")
	paths(t)
	dir := t.TempDir()
	w := newWebhookTLS(t, dir)
	if fluentBitMajor(t, bin) < 5 {
		// Measured with 4.1.2 (tls.verify_client_cert removed): a client without a
		// certificate is let in, handshakes fail now and then with "bad record MAC",
		// and a 4.8 MiB batch over TLS is never answered.
		t.Skip("the recipe needs Fluent Bit >= 5.0 (tls.verify_client_cert)")
	}
	ports, err := testcluster.FreePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	pluginsConf, _ := filepath.Abs("../../build/plugins.conf")
	cfg := filepath.Join(dir, "fluent-bit.conf")
	conf := fmt.Sprintf("[SERVICE]\n    Flush 1\n    Grace 1\n    Log_Level info\n    Plugins_File %s\n\n", pluginsConf) +
		w.httpInput(t, ports[0], "ca.only", "tls.vhost", "tls.verify_hostname") +
		w.httpInput(t, ports[1], "ca.name") +
		fmt.Sprintf("[INPUT]\n    Name http\n    Tag plain.default\n    Listen 127.0.0.1\n    Port %d\n\n", ports[2]) +
		"[OUTPUT]\n    Name null\n    Match *\n"
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	fb := fluentbit.Start(t, bin, dir, cfg)
	url := func(i int) string { return "https://127.0.0.1:" + strconv.Itoa(ports[i]) + "/" }
	waitUntil(t, "Fluent Bit listening", 20*time.Second, func() (bool, string) {
		if fb.Exited() {
			_, log := fb.Snapshot()
			t.Fatalf("Fluent Bit exited:\n%s", log)
		}
		conn, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(ports[2]))
		if err == nil {
			conn.Close()
		}
		return err == nil, fmt.Sprint(err)
	})

	rogue := newPKI(t, dir, "rogue-ca")
	rogueCert, rogueKey := rogue.issue(t, "rogue", false, webhookClientName)
	otherCert, otherKey := w.clientPKI.issue(t, "other", false, "some-other-client")
	body := []byte(`{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":[]}`)
	post := func(c *http.Client, u string, b []byte) (int, error) {
		resp, err := c.Post(u, "application/json", bytes.NewReader(b))
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, nil
	}
	for _, tc := range []struct {
		name             string
		client           *http.Client
		caOnly, withName bool // accepted by each input
	}{
		{"no client certificate", tlsClient(t, w.serverCA, "", ""), false, false},
		{"certificate of another CA", tlsClient(t, w.serverCA, rogueCert, rogueKey), false, false},
		{"the apiserver's certificate", tlsClient(t, w.serverCA, w.clientCert, w.clientKey), true, true},
		{"the CA's certificate for another name", tlsClient(t, w.serverCA, otherCert, otherKey), true, false},
	} {
		for i, want := range []bool{tc.caOnly, tc.withName} {
			st, err := post(tc.client, url(i), body)
			ok := err == nil && st/100 == 2
			t.Logf("%s -> input %d (%s): status %d, %v", tc.name, i, []string{"tls.ca_file", "tls.ca_file + tls.vhost/verify_hostname"}[i], st, err)
			if ok != want {
				t.Errorf("%s, input %d: accepted %v, want %v (status %d, %v)", tc.name, i, ok, want, st, err)
			}
		}
	}
	// Plain HTTP to the TLS port.
	if st, err := post(&http.Client{Timeout: 10 * time.Second}, strings.Replace(url(0), "https", "http", 1), body); err == nil && st/100 == 2 {
		t.Errorf("plain HTTP accepted by the TLS input: %d", st)
	}

	// 413 above buffer_max_size: a batch of 400 copies of a 12 KiB event (4.7 MiB) to
	// the default 4M, and to the recipe's 16M.
	ev := map[string]any{"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse", "stage": "ResponseComplete",
		"verb": "create", "requestURI": "/api/v1/namespaces/x/configmaps", "requestObject": map[string]any{"data": map[string]any{"d": strings.Repeat("z", 12<<10)}}}
	var items []any
	for i := 0; i < 400; i++ {
		e := map[string]any{}
		for k, v := range ev {
			e[k] = v
		}
		e["auditID"] = fmt.Sprintf("00000000-0000-0000-0000-%012d", i)
		items = append(items, e)
	}
	big, _ := json.Marshal(map[string]any{"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": map[string]any{}, "items": items})
	plain := &http.Client{Timeout: 30 * time.Second}
	st, err := post(plain, "http://127.0.0.1:"+strconv.Itoa(ports[2])+"/", big)
	t.Logf("a %d-byte batch to buffer_max_size 4M (the default): %d %v", len(big), st, err)
	if err == nil && st != http.StatusRequestEntityTooLarge {
		t.Errorf("a %d-byte batch with the default buffer_max_size: status %d, want 413", len(big), st)
	}
	st, err = post(tlsClient(t, w.serverCA, w.clientCert, w.clientKey), url(0), big)
	t.Logf("a %d-byte batch to buffer_max_size 16M: %d %v", len(big), st, err)
	if err != nil || st/100 != 2 {
		t.Errorf("a %d-byte batch with buffer_max_size 16M: %d %v", len(big), st, err)
	}
}

// TestWebhookExamplesInRealFluentBit runs conf/examples/audit-webhook.conf and .yaml as they are
// (but the port) and posts them a batch of the bundled sample's events, as
// kube-apiserver would: one record per event comes out, enriched, with the example's
// drop rule applied and nothing of the batch.
func TestWebhookExamplesInRealFluentBit(t *testing.T) {
	bin := fluentBit(t)
	paths(t)
	repo, _ := filepath.Abs("../..")
	var items []json.RawMessage
	for _, l := range nonEmptyLines(t, filepath.Join(repo, "conf/examples/sample-audit.log")) {
		items = append(items, json.RawMessage(l))
	}
	batch, _ := json.Marshal(map[string]any{"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": map[string]any{}, "items": items})
	const want = 10 // the 12 sample events but the /readyz probe and the lease renewal
	for _, f := range []string{"audit-webhook.conf", "audit-webhook.yaml"} {
		t.Run(f, func(t *testing.T) {
			c, err := parseExample(filepath.Join(repo, "conf", "examples", f))
			if err != nil {
				t.Fatal(err)
			}
			in := c.plugins("http")
			if len(in) != 1 || in[0].Props["listen"] != "127.0.0.1" {
				t.Fatalf("%s: want one http input on 127.0.0.1", f)
			}
			port := freeTCPPort(t)
			in[0].set("port", strconv.Itoa(port))
			if _, ok := c.service().Props["plugins_file"]; ok {
				c.service().set("plugins_file", filepath.Join(repo, "build/plugins.conf")) // classic: relative to the file
			}
			c.service().set("grace", "1")
			fb := fluentbit.Start(t, bin, repo, c.write(t, t.TempDir()))
			var st int
			waitUntil(t, "the http input to take the batch", 20*time.Second, func() (bool, string) {
				if fb.Exited() {
					t.Fatalf("Fluent Bit exited")
				}
				resp, err := http.Post("http://127.0.0.1:"+strconv.Itoa(port)+"/", "application/json", bytes.NewReader(batch))
				if err != nil {
					return false, err.Error()
				}
				resp.Body.Close()
				st = resp.StatusCode
				return true, ""
			})
			if st != http.StatusCreated {
				t.Fatalf("status %d", st)
			}
			waitUntil(t, "the records", 20*time.Second, func() (bool, string) {
				recs, _ := fb.Snapshot()
				return len(recs) >= want, fmt.Sprintf("%d records", len(recs))
			})
			time.Sleep(2 * time.Second) // a repeat would show by now
			fb.Stop()
			recs, log := fb.Snapshot()
			if len(recs) != want {
				t.Errorf("%d records, want %d", len(recs), want)
			}
			for i, r := range recs {
				if r["auditID"] == nil || r["outcome"] == nil || r["parse_error"] != nil || r["items"] != nil || r["kind"] == "EventList" {
					if i < 3 {
						t.Errorf("record not one enriched event (outcome %v, parse_error %v, kind %v, items: %v): %.200s",
							r["outcome"], r["parse_error"], r["kind"], r["items"] != nil, fmt.Sprint(r))
					}
				}
			}
			if strings.Contains(log, "[error]") {
				t.Errorf("errors logged:\n%s", log)
			}
		})
	}
}
