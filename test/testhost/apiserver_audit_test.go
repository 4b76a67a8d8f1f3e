package testhost_test

// TestApiserverAudit runs the filter over an audit log written by a real
// kube-apiserver (test/testcluster): a mix of requests that exercises
// redaction, size limits, failures, long-running requests, impersonation and the
// derived fields, first in build/flb-testhost, then in a real Fluent Bit.

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kubetrail/kubetrail/test/testcluster"
)

const (
	e2eSecret  = "kubetrail-e2e-s3cret"         // Secret data.password, also sent as stringData
	e2eSecret2 = "kubetrail-e2e-s3cret-rotated" // data.password after the merge patch
	bigCMSize  = 100 << 10                      // data of the big ConfigMap, above max_object_size (64k)
	maxObject  = 64 << 10                       // the default max_object_size
)

// apiClient sends raw requests with arbitrary headers (Cluster.Do sets only a
// bearer token and application/json).
type apiClient struct {
	t    *testing.T
	c    *testcluster.Cluster
	http *http.Client
	n    int // requests sent
}

func newAPIClient(t *testing.T, c *testcluster.Cluster) *apiClient {
	t.Helper()
	pem, err := os.ReadFile(c.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("no certificate in %s", c.CAFile)
	}
	return &apiClient{t: t, c: c, http: &http.Client{
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		Timeout:   30 * time.Second,
	}}
}

// do sends one request and fails the test unless the status is one of want.
// headers holds pairs: name, value, ...
func (a *apiClient) do(method, path, ctype string, body []byte, token string, want []int, headers ...string) []byte {
	a.t.Helper()
	a.n++
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, a.c.URL+path, r)
	if err != nil {
		a.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", ctype)
	}
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := a.http.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatalf("%s %s: reading the response: %v", method, path, err)
	}
	if !slices.Contains(want, resp.StatusCode) {
		a.t.Fatalf("%s %s: status %d, want one of %v\n%s", method, path, resp.StatusCode, want, b)
	}
	return b
}

func jsonBody(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rec is one output record, numbers kept as json.Number (the date needs all its digits).
type rec map[string]any

// at follows a dotted path through maps.
func (r rec) at(path string) any {
	var cur any = map[string]any(r)
	for _, p := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[p]
	}
	return cur
}

func (r rec) str(path string) string {
	s, _ := r.at(path).(string)
	return s
}

func (r rec) num(path string) (float64, bool) {
	n, ok := r.at(path).(json.Number)
	if !ok {
		return 0, false
	}
	f, err := n.Float64()
	return f, err == nil
}

func (r rec) String() string {
	b, _ := json.Marshal(map[string]any(r))
	if len(b) > 3000 {
		return string(b[:3000]) + "...(" + strconv.Itoa(len(b)) + " bytes)"
	}
	return string(b)
}

func parseRecords(t *testing.T, out []byte, what string) []rec {
	t.Helper()
	var recs []rec
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.UseNumber()
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("%s: output line %d is not a JSON object: %v\n%.500s", what, len(recs)+1, err, sc.Text())
		}
		recs = append(recs, rec(m))
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return recs
}

// eachString calls f on every string (keys too) inside v.
func eachString(v any, f func(string)) {
	switch x := v.(type) {
	case string:
		f(x)
	case json.Number:
		f(string(x))
	case map[string]any:
		for k, e := range x {
			f(k)
			eachString(e, f)
		}
	case []any:
		for _, e := range x {
			eachString(e, f)
		}
	}
}

// leaked reports which of secrets appear in the output, as raw text or in any
// decoded string (catching JSON escapes such as \/ in base64).
func leaked(out []byte, recs []rec, secrets map[string]string) []string {
	var found []string
	for name, s := range secrets {
		hit := bytes.Contains(out, []byte(s))
		for _, r := range recs {
			if hit {
				break
			}
			eachString(map[string]any(r), func(v string) {
				if strings.Contains(v, s) {
					hit = true
				}
			})
		}
		if hit {
			found = append(found, name)
		}
	}
	slices.Sort(found)
	return found
}

// dateMicros reads a record's "date" (seconds as a decimal) as microseconds,
// from its digits rather than through a float.
func dateMicros(r rec) (int64, bool) {
	n, ok := r["date"].(json.Number)
	if !ok {
		return 0, false
	}
	s := string(n)
	if strings.ContainsAny(s, "eE") {
		f, err := n.Float64()
		return int64(f*1e6 + 0.5), err == nil
	}
	ip, fp, _ := strings.Cut(s, ".")
	sec, err := strconv.ParseInt(ip, 10, 64)
	if err != nil {
		return 0, false
	}
	// %.16g keeps 6 decimals for today's dates; round anything longer.
	for len(fp) < 7 {
		fp += "0"
	}
	us, err := strconv.ParseInt(fp[:6], 10, 64)
	if err != nil {
		return 0, false
	}
	if fp[6] >= '5' {
		us++
	}
	return sec*1e6 + us, true
}

func TestApiserverAudit(t *testing.T) {
	host, lib := paths(t)
	began := time.Now()

	// testcluster's default policy is what this test needs; say so explicitly so
	// that a change of the default does not silently weaken the test.
	const policy = "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages:\n- RequestReceived\nrules:\n- level: RequestResponse\n"
	c := testcluster.Start(t, testcluster.Options{AuditPolicy: policy})
	a := newAPIClient(t, c)
	admin, jane := c.AdminToken, c.JaneToken

	rnd := make([]byte, 4)
	_, _ = rand.Read(rnd)
	ns := "kt-e2e-" + hex.EncodeToString(rnd)
	nsPath := "/api/v1/namespaces/" + ns
	const appJSON = "application/json"
	ok, created := []int{200}, []int{201}
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

	// 1. namespace
	a.do("POST", "/api/v1/namespaces", appJSON, jsonBody(t, map[string]any{
		"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns}}), admin, created)

	// 2-4. Secret: create (data + stringData), get, merge patch of data.
	secretPath := nsPath + "/secrets/e2e-secret"
	a.do("POST", nsPath+"/secrets", appJSON, jsonBody(t, map[string]any{
		"apiVersion": "v1", "kind": "Secret",
		"metadata":   map[string]any{"name": "e2e-secret"},
		"data":       map[string]any{"password": b64(e2eSecret)},
		"stringData": map[string]any{"apikey": e2eSecret},
	}), admin, created)
	a.do("GET", secretPath, "", nil, admin, ok)
	// A merge patch is logged verbatim: the plain value reaches the raw log here
	// even if the apiserver folds stringData into data on create.
	a.do("PATCH", secretPath, "application/merge-patch+json", jsonBody(t, map[string]any{
		"data":       map[string]any{"password": b64(e2eSecret2)},
		"stringData": map[string]any{"apikey": e2eSecret},
	}), admin, ok)

	// 5. jane may not list secrets; 6. a bad token.
	a.do("GET", nsPath+"/secrets", "", nil, jane, []int{403})
	badTokenPath := nsPath + "/configmaps/e2e-badtoken"
	a.do("GET", badTokenPath, "", nil, "kubetrail-e2e-not-a-token", []int{401})

	// 7. ServiceAccount, TokenRequest, TokenReview.
	a.do("POST", nsPath+"/serviceaccounts", appJSON, jsonBody(t, map[string]any{
		"apiVersion": "v1", "kind": "ServiceAccount", "metadata": map[string]any{"name": "e2e-sa"}}), admin, created)
	tokenPath := nsPath + "/serviceaccounts/e2e-sa/token"
	body := a.do("POST", tokenPath, appJSON, jsonBody(t, map[string]any{
		"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
		"spec": map[string]any{"expirationSeconds": 3600}}), admin, created)
	var tr struct {
		Status struct{ Token string } `json:"status"`
	}
	if err := json.Unmarshal(body, &tr); err != nil || len(tr.Status.Token) < 20 {
		t.Fatalf("TokenRequest response has no token (%v): %s", err, body)
	}
	saToken := tr.Status.Token
	body = a.do("POST", "/apis/authentication.k8s.io/v1/tokenreviews", appJSON, jsonBody(t, map[string]any{
		"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
		"spec": map[string]any{"token": saToken}}), admin, created)
	if !bytes.Contains(body, []byte(`"authenticated":true`)) {
		t.Fatalf("TokenReview did not authenticate the TokenRequest's token: %s", body)
	}

	// 8. ConfigMaps: one above max_object_size, one small.
	a.do("POST", nsPath+"/configmaps", appJSON, jsonBody(t, map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "e2e-big"},
		"data": map[string]any{"blob": strings.Repeat("0123456789abcdef", bigCMSize/16)}}), admin, created)
	smallData := map[string]any{"greeting": "hello", "answer": "42"}
	a.do("POST", nsPath+"/configmaps", appJSON, jsonBody(t, map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "e2e-small", "labels": map[string]any{"app": "kubetrail-e2e"}},
		"data":     smallData}), admin, created)

	// 9. LIST with limit and labelSelector; 10. WATCH that ends after 1 s.
	listURI := nsPath + "/configmaps?limit=1&labelSelector=app%3Dkubetrail-e2e"
	a.do("GET", listURI, "", nil, admin, ok)
	watchURI := nsPath + "/configmaps?watch=true&timeoutSeconds=1"
	a.do("GET", watchURI, "", nil, admin, ok)

	// 11. admin impersonating jane.
	a.do("GET", secretPath, "", nil, admin, []int{200, 403}, "Impersonate-User", testcluster.JaneUser)

	// 12. invalid name: 422; 13. delete the small ConfigMap.
	a.do("POST", nsPath+"/configmaps", appJSON, jsonBody(t, map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "E2E_Invalid!"}}), admin, []int{422})
	a.do("DELETE", nsPath+"/configmaps/e2e-small", "", nil, admin, ok)

	// 14. exec on a pod that does not exist (no upgrade: refused, still audited).
	execURI := nsPath + "/pods/nope/exec?command=sh&command=-c&command=echo+hi"
	a.do("POST", execURI, "", nil, admin, []int{400, 403, 404})

	c.WaitAudit(t, func(l []byte) bool {
		var ev struct{ Stage, RequestURI string }
		return bytes.Contains(l, []byte("/pods/nope/exec")) && json.Unmarshal(l, &ev) == nil &&
			ev.RequestURI == execURI && ev.Stage == "ResponseComplete"
	}, 10*time.Second)
	requestsDone := time.Since(began)

	// A snapshot of the log (complete lines only): the apiserver keeps writing.
	rawAll, err := os.ReadFile(c.AuditLog)
	if err != nil {
		t.Fatal(err)
	}
	rawLog := rawAll[:bytes.LastIndexByte(rawAll, '\n')+1]
	auditFile := filepath.Join(t.TempDir(), "audit.log")
	if err := os.WriteFile(auditFile, rawLog, 0o644); err != nil {
		t.Fatal(err)
	}
	var rawLines [][]byte
	for _, l := range bytes.Split(rawLog, []byte("\n")) {
		if len(bytes.TrimSpace(l)) > 0 {
			rawLines = append(rawLines, l)
		}
	}

	secrets := map[string]string{
		"secret value":                   e2eSecret,
		"base64 of the secret":           b64(e2eSecret),
		"base64 of the rotated value":    b64(e2eSecret2),
		"TokenRequest/TokenReview token": saToken,
	}
	// The raw log does hold them: without redaction the test below would fail.
	for name, s := range secrets {
		if !bytes.Contains(rawLog, []byte(s)) {
			t.Errorf("raw audit log does not contain the %s %q: the absence check below would prove nothing", name, s)
		}
	}
	if !bytes.Contains(rawLog, []byte(`"managedFields"`)) {
		t.Errorf("raw audit log has no managedFields: their absence in the output would prove nothing")
	}

	cmd := exec.Command(host, "filter", "-l", lib, auditFile)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	filterStart := time.Now()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("flb-testhost filter: %v\n%s", err, stderr.String())
	}
	filterTime := time.Since(filterStart)
	recs := parseRecords(t, out, "flb-testhost")
	t.Logf("cluster + %d requests in %v; %d audit lines (%d bytes) -> %d records (%d bytes) in %v",
		a.n, requestsDone.Round(time.Millisecond), len(rawLines), len(rawLog), len(recs), len(out), filterTime.Round(time.Millisecond))

	// No loss.
	if len(recs) != len(rawLines) {
		t.Fatalf("%d records from %d audit lines (no drop rules are set)\nstderr:\n%s", len(recs), len(rawLines), stderr.String())
	}
	if want := fmt.Sprintf("records_in=%d records_out=%d", len(rawLines), len(rawLines)); !strings.Contains(stderr.String(), want) {
		t.Errorf("the filter's stop line does not say %q:\n%s", want, stderr.String())
	}

	// Every record.
	for i, r := range recs {
		var raw map[string]any
		if err := json.Unmarshal(rawLines[i], &raw); err != nil {
			t.Fatalf("audit line %d is not JSON: %v", i+1, err)
		}
		if r["auditID"] != raw["auditID"] || r["auditID"] == nil {
			t.Errorf("record %d: auditID %v, audit line %d has %v (order or content lost)", i, r["auditID"], i+1, raw["auditID"])
		}
		for _, k := range []string{"outcome", "user_type"} {
			if r.str(k) == "" {
				t.Errorf("record %d has no %s: %v", i, k, r)
			}
		}
		for _, k := range []string{"parse_error", "log"} {
			if _, has := r[k]; has {
				t.Errorf("record %d has %q: %v", i, k, r)
			}
		}
		// time_source=request_received (default): date is requestReceivedTimestamp, to the µs.
		rt, err := time.Parse(time.RFC3339Nano, r.str("requestReceivedTimestamp"))
		if err != nil {
			t.Errorf("record %d: requestReceivedTimestamp %q: %v", i, r.str("requestReceivedTimestamp"), err)
		} else if d, okd := dateMicros(r); !okd || d != rt.UnixMicro() {
			t.Errorf("record %d: date %v (%d µs), requestReceivedTimestamp %s (%d µs)", i, r["date"], d, r.str("requestReceivedTimestamp"), rt.UnixMicro())
		}
		if r.str("stage") == "ResponseComplete" {
			if d, okd := r.num("duration_ms"); !okd || d < 0 {
				t.Errorf("record %d (ResponseComplete): duration_ms %v: %v", i, r["duration_ms"], r)
			}
		}
		for _, side := range []string{"requestObject", "responseObject"} {
			if r.at(side+".metadata.managedFields") != nil {
				t.Errorf("record %d: %s.metadata.managedFields kept: %v", i, side, r)
			}
			items, _ := r.at(side + ".items").([]any)
			for j, it := range items {
				if m, _ := it.(map[string]any); m != nil && rec(m).at("metadata.managedFields") != nil {
					t.Errorf("record %d: %s.items[%d].metadata.managedFields kept", i, side, j)
				}
			}
		}
	}

	// Secrets and tokens appear nowhere in the output.
	if l := leaked(out, recs, secrets); len(l) > 0 {
		t.Errorf("the filter's output contains: %s", strings.Join(l, ", "))
	}

	// find returns the ResponseComplete record (or, with stage "", any record)
	// of verb on uri (exact, query included), failing when there is not exactly one.
	find := func(stage, verb, uri string, also func(rec) bool) rec {
		t.Helper()
		var got []rec
		for _, r := range recs {
			if (stage == "" || r.str("stage") == stage) && r.str("verb") == verb && r.str("requestURI") == uri && (also == nil || also(r)) {
				got = append(got, r)
			}
		}
		if len(got) != 1 {
			t.Fatalf("%d records with stage %q verb %q requestURI %q, want 1", len(got), stage, verb, uri)
		}
		return got[0]
	}
	const rc = "ResponseComplete"
	expect := func(what string, r rec, want map[string]any) {
		t.Helper()
		for path, v := range want {
			got := r.at(path)
			if n, isNum := got.(json.Number); isNum {
				if f, err := n.Float64(); err == nil {
					got = f
				}
			}
			if w, isInt := v.(int); isInt {
				v = float64(w)
			}
			if !reflect.DeepEqual(got, v) {
				t.Errorf("%s: %s = %#v, want %#v\nrecord: %v", what, path, got, v, r)
			}
		}
	}
	expectRedacted := func(what string, r rec, paths ...string) {
		t.Helper()
		var have []string
		for _, p := range asSlice(r["redacted"]) {
			have = append(have, fmt.Sprint(p))
		}
		for _, p := range paths {
			if !slices.Contains(have, p) {
				t.Errorf("%s: redacted = %v, want it to list %s", what, have, p)
			}
		}
	}

	// Secrets: redacted values, keys kept, listed in redacted.
	r := find(rc, "create", nsPath+"/secrets", nil)
	expect("secret create", r, map[string]any{"requestObject.data.password": "[REDACTED]",
		"responseObject.data.password": "[REDACTED]", "responseObject.data.apikey": "[REDACTED]",
		"outcome": "success", "responseStatus.code": 201})
	expectRedacted("secret create", r, "requestObject.data", "responseObject.data")
	r = find(rc, "get", secretPath, func(r rec) bool { return r.at("impersonatedUser") == nil })
	expect("secret get", r, map[string]any{"responseObject.data.password": "[REDACTED]", "outcome": "success"})
	expectRedacted("secret get", r, "responseObject.data")
	r = find(rc, "patch", secretPath, nil)
	expect("secret patch", r, map[string]any{"requestObject.data.password": "[REDACTED]",
		"requestObject.stringData.apikey": "[REDACTED]", "responseObject.data.password": "[REDACTED]"})
	expectRedacted("secret patch", r, "requestObject.data", "requestObject.stringData", "responseObject.data")

	// jane's 403 and the bad token's 401.
	r = find(rc, "list", nsPath+"/secrets", nil)
	expect("jane's list", r, map[string]any{"outcome": "failure", "authz_decision": "forbid",
		"user_type": "user", "user.username": "jane", "effective_user": "jane", "responseStatus.code": 403})
	r = find("", "get", badTokenPath, nil)
	// The apiserver writes a failed authentication at stage ResponseStarted with an empty
	// user, whatever the request: a plain GET, neither a stream nor a person.
	expect("bad token", r, map[string]any{"outcome": "failure", "responseStatus.code": 401,
		"stage": "ResponseStarted", "long_running": false, "user_type": "unauthenticated"})

	// TokenRequest and TokenReview.
	r = find(rc, "create", tokenPath, nil)
	expect("TokenRequest", r, map[string]any{"group_resource": "serviceaccounts/token",
		"objectRef.resource": "serviceaccounts", "objectRef.subresource": "token", "objectRef.name": "e2e-sa", "objectRef.namespace": ns,
		"responseObject.status.token": "[REDACTED]", "outcome": "success"})
	expectRedacted("TokenRequest", r, "responseObject.status.token")
	r = find(rc, "create", "/apis/authentication.k8s.io/v1/tokenreviews", nil)
	expect("TokenReview", r, map[string]any{"group_resource": "tokenreviews.authentication.k8s.io",
		"objectRef.apiGroup": "authentication.k8s.io", "requestObject.spec.token": "[REDACTED]",
		"responseObject.status.authenticated": true})
	expectRedacted("TokenReview", r, "requestObject.spec.token")
	if r.at("responseObject.spec.token") != nil {
		expect("TokenReview", r, map[string]any{"responseObject.spec.token": "[REDACTED]"})
		expectRedacted("TokenReview", r, "responseObject.spec.token")
	}

	// The big ConfigMap is cut to a marker, the small one is intact.
	r = find(rc, "create", nsPath+"/configmaps", func(r rec) bool { return r.str("objectRef.name") == "e2e-big" })
	expect("big ConfigMap", r, map[string]any{"truncated": true, "requestObject.truncated": true, "outcome": "success"})
	if !strings.Contains(r.str("truncation"), "max_object_size") {
		t.Errorf("big ConfigMap: truncation %q, want max_object_size in it", r.str("truncation"))
	}
	if m, _ := r["requestObject"].(map[string]any); len(m) != 2 {
		t.Errorf("big ConfigMap: requestObject %v, want exactly {truncated, size_bytes}", m)
	}
	if n, _ := r.num("requestObject.size_bytes"); n <= maxObject || n < bigCMSize {
		t.Errorf("big ConfigMap: requestObject.size_bytes %v, want > %d and >= %d", r.at("requestObject.size_bytes"), maxObject, bigCMSize)
	}
	r = find(rc, "create", nsPath+"/configmaps", func(r rec) bool { return r.str("objectRef.name") == "e2e-small" })
	expect("small ConfigMap", r, map[string]any{"truncated": nil, "requestObject.metadata.name": "e2e-small",
		"requestObject.data.greeting": "hello", "requestObject.data.answer": "42",
		"responseObject.data.greeting": "hello", "responseObject.metadata.labels.app": "kubetrail-e2e"})
	if len(asMap(r.at("requestObject.data"))) != len(smallData) {
		t.Errorf("small ConfigMap: requestObject.data %v, want %v", r.at("requestObject.data"), smallData)
	}

	// LIST and WATCH.
	r = find(rc, "list", listURI, nil)
	expect("list", r, map[string]any{"query.limit": 1, "query.label_selector": "app=kubetrail-e2e",
		"long_running": false, "query.watch": nil})
	r = find(rc, "watch", watchURI, nil)
	expect("watch", r, map[string]any{"long_running": true, "query.watch": true, "query.timeout_seconds": "1"})

	// Impersonation.
	r = find(rc, "get", secretPath, func(r rec) bool { return r.at("impersonatedUser") != nil })
	expect("impersonation", r, map[string]any{"impersonated_user": "jane", "effective_user": "jane",
		"user.username": "admin"})

	// 422, delete, exec.
	r = find(rc, "create", nsPath+"/configmaps", func(r rec) bool { return r.str("objectRef.name") == "E2E_Invalid!" })
	expect("invalid ConfigMap", r, map[string]any{"outcome": "failure", "responseStatus.code": 422})
	r = find(rc, "delete", nsPath+"/configmaps/e2e-small", nil)
	expect("delete", r, map[string]any{"outcome": "success", "objectRef.name": "e2e-small", "objectRef.resource": "configmaps"})
	r = find(rc, "create", execURI, nil)
	expect("exec", r, map[string]any{"outcome": "failure", "objectRef.subresource": "exec", "objectRef.name": "nope",
		"group_resource": "pods/exec", "request_path": nsPath + "/pods/nope/exec"})

	t.Run("RealFluentBit", func(t *testing.T) {
		fbRecs, fbOut := runFluentBitOver(t, auditFile, len(rawLines))
		if len(fbRecs) != len(rawLines) {
			t.Fatalf("Fluent Bit: %d records from %d audit lines", len(fbRecs), len(rawLines))
		}
		for i, r := range fbRecs {
			if r["auditID"] == nil || r.str("outcome") == "" || r.str("user_type") == "" || r["parse_error"] != nil || r["log"] != nil {
				t.Errorf("Fluent Bit record %d not enriched: %v", i, r)
			}
		}
		if l := leaked(fbOut, fbRecs, secrets); len(l) > 0 {
			t.Errorf("Fluent Bit's output contains: %s", strings.Join(l, ", "))
		}
		big := 0
		for _, r := range fbRecs {
			if r.str("objectRef.name") == "e2e-big" && r.str("verb") == "create" && r.at("truncated") == true {
				big++
			}
		}
		if big != 1 {
			t.Errorf("Fluent Bit: %d truncated records of the big ConfigMap's create, want 1", big)
		}
		t.Logf("Fluent Bit: %d records from %d audit lines", len(fbRecs), len(rawLines))
	})
}

func asSlice(v any) []any { s, _ := v.([]any); return s }

func asMap(v any) map[string]any { m, _ := v.(map[string]any); return m }

// runFluentBitOver runs tail -> k8s_audit (defaults) -> stdout json_lines in a real
// Fluent Bit over file, until want records came out (or 30 s), then stops it and
// returns every record it printed.
func runFluentBitOver(t *testing.T, file string, want int) ([]rec, []byte) {
	t.Helper()
	cfg := tailConfig(t, file, "")
	run := runFluentBit(t, "", cfg, want)
	var recs []rec
	var out []byte
	for _, l := range run.Lines {
		dec := json.NewDecoder(bytes.NewReader(l))
		dec.UseNumber() // microsecond timestamps must survive
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("record %s: %v", l, err)
		}
		recs = append(recs, rec(m))
		out = append(append(out, l...), '\n')
	}
	return recs, out
}
