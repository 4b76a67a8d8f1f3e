package enrich

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/valyala/fastjson"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/kubetrail/kubetrail/enrich/jsonmp"
	"github.com/kubetrail/kubetrail/test/repo"
)

func defaults() Options {
	return Options{Redact: true, DropManagedFields: true, MaxObjectSize: 64 << 10}
}

// fields decodes a record with vmihailenco/msgpack, independently of the writer.
func fields(t testing.TB, r Record) map[string]any {
	t.Helper()
	b := binary.BigEndian.AppendUint32([]byte{0xdf}, uint32(r.Count))
	b = append(b, r.Fields...)
	var m map[string]any
	dec := msgpack.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("record does not decode as a msgpack map: %v", err)
	}
	if len(m) != r.Count {
		t.Fatalf("record has %d distinct keys, Count says %d (duplicate keys?)", len(m), r.Count)
	}
	return m
}

func enrichText(t testing.TB, opts Options, line string) ([]map[string]any, Result) {
	t.Helper()
	e, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	res := e.NewWorker().Text([]byte(line))
	var out []map[string]any
	for _, r := range res.Records {
		out = append(out, fields(t, r))
	}
	return out, res
}

func one(t testing.TB, opts Options, line string) map[string]any {
	t.Helper()
	recs, res := enrichText(t, opts, line)
	if res.Err != nil {
		t.Fatalf("unexpected error: %v", res.Err)
	}
	if len(recs) != 1 {
		t.Fatalf("got %d records, want 1", len(recs))
	}
	return recs[0]
}

func lines(t testing.TB, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) != "" {
			out = append(out, sc.Text())
		}
	}
	return out
}

// get follows a dotted path through decoded maps.
func get(m map[string]any, path string) any {
	var cur any = m
	for _, p := range strings.Split(path, ".") {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[p]
	}
	return cur
}

func expect(t *testing.T, m map[string]any, want map[string]any) {
	t.Helper()
	for k, v := range want {
		got := get(m, k)
		if v == nil {
			if got != nil {
				t.Errorf("%s = %#v, want absent", k, got)
			}
			continue
		}
		if !reflect.DeepEqual(normalize(got), normalize(v)) {
			t.Errorf("%s = %#v, want %#v", k, got, v)
		}
	}
}

// normalize makes numbers comparable whatever msgpack width they came in.
func normalize(v any) any {
	switch n := v.(type) {
	case int:
		return float64(n)
	case int8:
		return float64(n)
	case int16:
		return float64(n)
	case int32:
		return float64(n)
	case int64:
		return float64(n)
	case uint8:
		return float64(n)
	case uint16:
		return float64(n)
	case uint32:
		return float64(n)
	case uint64:
		return float64(n)
	case []any:
		out := make([]any, len(n))
		for i := range n {
			out[i] = normalize(n[i])
		}
		return out
	case []string:
		out := make([]any, len(n))
		for i := range n {
			out[i] = n[i]
		}
		return out
	}
	return v
}

func TestSharedTestdataEveryLine(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(repo.SharedAudit(t), "*"))
	if len(files) == 0 {
		t.Fatalf("no test data in %s", repo.SharedAudit(t))
	}
	e, _ := New(defaults())
	w := e.NewWorker()
	events, notAudit := 0, 0
	for _, f := range files {
		if strings.HasSuffix(f, ".md") {
			continue
		}
		for i, l := range lines(t, f) {
			res := w.Text([]byte(l))
			if res.Err != nil {
				notAudit++
				if !strings.Contains(l, "protoPayload") {
					t.Errorf("%s:%d: %v", filepath.Base(f), i+1, res.Err)
				}
				continue
			}
			for _, r := range res.Records {
				m := fields(t, r)
				if m["auditID"] == nil || m["outcome"] == nil || m["user_type"] == nil {
					t.Errorf("%s:%d: missing fields in %v", filepath.Base(f), i+1, m)
				}
				events++
			}
		}
	}
	// 37 audit2rbac + 3 elastic events + 8 falco events; the GKE LogEntry is not an audit event.
	if events != 48 || notAudit != 1 {
		t.Errorf("events = %d, not audit = %d; want 48 and 1", events, notAudit)
	}
}

func TestDerivedFromRealApiserverLines(t *testing.T) {
	el := lines(t, filepath.Join(repo.SharedAudit(t), "elastic-test-audit.log"))
	expect(t, one(t, defaults(), el[0]), map[string]any{
		"duration_ms": 3.3, "outcome": "success", "authz_decision": "allow", "authz_reason": "",
		"user_type": "system", "effective_user": "system:serviceaccounts:default:default",
		"group_resource": "pods", "objectRef.namespace": "default", "objectRef.name": "my-pod",
		"namespace": nil, "name": nil, // objectRef has them: not repeated
		"user_agent_product": "kubectl", "user_agent_version": "v1.26.1", "client_ip": "67.43.156.1",
		"long_running": false, "verb": "get", "responseStatus.code": 200,
	})
	m := one(t, defaults(), el[1])
	expect(t, m, map[string]any{
		"duration_ms": 38.04, "user_type": "serviceaccount", "sa_namespace": "kube-system",
		"sa_name": "elastic-agent", "group_resource": "leases.coordination.k8s.io",
		"objectRef.apiGroup": "coordination.k8s.io", "user_agent_product": "elastic-agent",
		"authz_reason": `RBAC: allowed by RoleBinding "elastic-agent/kube-system" of Role "elastic-agent" to ServiceAccount "elastic-agent/kube-system"`,
	})

	// audit2rbac: v1beta1 fields under a v1 label, impersonation, 403s, no stage times.
	ar := lines(t, filepath.Join(repo.SharedAudit(t), "audit2rbac-demo-v1-relabeled.log"))
	recs, res := enrichText(t, defaults(), ar[0])
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	expect(t, recs[0], map[string]any{
		"impersonated_user": "bob", "effective_user": "bob", "user_type": "system",
		"outcome": "failure", "duration_ms": nil, "responseStatus.reason": "Forbidden",
	})
	if got := res.Records[0].Time.Go().Format("2006-01-02T15:04:05Z"); got != "2017-09-11T19:55:05Z" {
		t.Errorf("v1beta1 record time = %s, want the event's timestamp", got)
	}

	anon := lines(t, filepath.Join(repo.SharedAudit(t), "falco-anonymous_creates_namespace_foo.json"))
	expect(t, one(t, defaults(), anon[0]), map[string]any{"user_type": "anonymous", "duration_ms": 5.553})
}

func TestBoundTokenPSAWebhooksLatency(t *testing.T) {
	md := lines(t, "testdata/metadata.log")
	expect(t, one(t, defaults(), md[1]), map[string]any{
		"token_pod_name": "prometheus-k8s-0", "token_pod_uid": "5a6b7c8d-9e0f-4a1b-2c3d-4e5f6a7b8c9d",
		"token_node_name": "worker-3", "credential_id": "JTI=2f8e4c1a-7b3d-4e9f-a6c5-1d2e3f4a5b6c",
		"query.limit": 500, "query.resource_version": "0", "query.watch": nil,
	})
	expect(t, one(t, defaults(), md[2]), map[string]any{
		"outcome": "failure", "authz_decision": "forbid", "client_ip": "203.0.113.7", "peer_ip": "10.0.0.4",
		"user_type": "user",
	})
	m := one(t, defaults(), md[3])
	expect(t, m, map[string]any{
		"latency_ms.etcd": 3.481, "latency_ms.mutating_webhook": 598.2, "latency_ms.total": 612.345,
		"latency_ms.response_write":   0.001,
		"pod_security.enforce_policy": "restricted:latest", "pod_security.enforce_level": "restricted",
		"pod_security.enforce_version": "latest",
		"duration_ms":                  612.345,
	})
	hooks, _ := m["admission_webhooks"].([]any)
	if len(hooks) != 1 {
		t.Fatalf("admission_webhooks = %#v", m["admission_webhooks"])
	}
	expect(t, hooks[0].(map[string]any), map[string]any{
		"round": 0, "index": 0, "configuration": "istio-sidecar-injector",
		"webhook": "sidecar-injector.istio.io", "mutated": true, "patch_type": "JSONPatch",
	})
	if v, _ := get(m, "pod_security.audit_violations").(string); !strings.Contains(v, "runAsNonRoot") {
		t.Errorf("pod_security.audit_violations = %q", v)
	}
}

// ev builds a minimal audit event line with overrides.
func ev(over map[string]any) string {
	base := map[string]any{
		"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
		"auditID": "00000000-0000-4000-8000-000000000001", "stage": "ResponseComplete",
		"requestURI": "/api/v1/namespaces/default/pods/web-0", "verb": "get",
		"user":                     map[string]any{"username": "admin", "groups": []string{"system:masters", "system:authenticated"}},
		"sourceIPs":                []string{"192.0.2.10"},
		"userAgent":                "kubectl/v1.34.4 (linux/amd64) kubernetes/abc",
		"objectRef":                map[string]any{"resource": "pods", "namespace": "default", "name": "web-0", "apiVersion": "v1"},
		"responseStatus":           map[string]any{"metadata": map[string]any{}, "code": 200},
		"requestReceivedTimestamp": "2026-11-20T10:00:00.000100Z",
		"stageTimestamp":           "2026-11-20T10:00:00.002600Z",
	}
	for k, v := range over {
		if v == nil {
			delete(base, k)
		} else {
			base[k] = v
		}
	}
	b, _ := json.Marshal(base)
	return string(b)
}

func TestUserTypes(t *testing.T) {
	for _, c := range []struct {
		user string
		want map[string]any
	}{
		{"system:serviceaccount:ns1:builder", map[string]any{"user_type": "serviceaccount", "sa_namespace": "ns1", "sa_name": "builder"}},
		{"system:node:worker-1", map[string]any{"user_type": "node", "node_name": "worker-1", "sa_name": nil}},
		{"system:anonymous", map[string]any{"user_type": "anonymous"}},
		{"system:kube-controller-manager", map[string]any{"user_type": "system"}},
		{"jane", map[string]any{"user_type": "user", "effective_user": "jane"}},
		{"", map[string]any{"user_type": "unauthenticated", "effective_user": nil}},
	} {
		expect(t, one(t, defaults(), ev(map[string]any{"user": map[string]any{"username": c.user}})), c.want)
	}
}

func TestOutcomeAndDuration(t *testing.T) {
	for _, c := range []struct {
		over map[string]any
		want map[string]any
	}{
		{map[string]any{}, map[string]any{"outcome": "success", "duration_ms": 2.5}},
		{map[string]any{"responseStatus": map[string]any{"code": 422}}, map[string]any{"outcome": "failure"}},
		{map[string]any{"responseStatus": map[string]any{"code": 401}}, map[string]any{"outcome": "failure"}},
		{map[string]any{"responseStatus": map[string]any{"code": 500}}, map[string]any{"outcome": "failure"}},
		{map[string]any{"responseStatus": map[string]any{"code": 201}}, map[string]any{"outcome": "success"}},
		{map[string]any{"responseStatus": nil, "stage": "RequestReceived", "stageTimestamp": "2026-11-20T10:00:00.000100Z"},
			map[string]any{"outcome": "unknown", "duration_ms": 0}},
		{map[string]any{"responseStatus": nil, "annotations": map[string]any{"authorization.k8s.io/decision": "forbid"}},
			map[string]any{"outcome": "failure", "authz_decision": "forbid"}},
		{map[string]any{"stage": "Panic", "responseStatus": nil}, map[string]any{"outcome": "failure"}},
		{map[string]any{"stageTimestamp": "2026-11-20T09:59:59.000100Z"},
			map[string]any{"duration_ms": -1000.0, "duration_negative": true}},
		{map[string]any{"stageTimestamp": nil}, map[string]any{"duration_ms": nil}},
		{map[string]any{"stageTimestamp": "garbage"}, map[string]any{"duration_ms": nil}},
	} {
		expect(t, one(t, defaults(), ev(c.over)), c.want)
	}
}

func TestLongRunning(t *testing.T) {
	for _, c := range []struct {
		over map[string]any
		want bool
	}{
		{map[string]any{}, false},
		{map[string]any{"verb": "watch"}, true},
		{map[string]any{"verb": "list", "requestURI": "/api/v1/pods?watch=true"}, true},
		{map[string]any{"verb": "list", "requestURI": "/api/v1/pods?watch=1&resourceVersion=5"}, true},
		{map[string]any{"verb": "list", "requestURI": "/api/v1/pods?watch=false"}, false},
		{map[string]any{"objectRef": map[string]any{"resource": "pods", "subresource": "exec"}}, true},
		{map[string]any{"objectRef": map[string]any{"resource": "pods", "subresource": "portforward"}}, true},
		{map[string]any{"objectRef": map[string]any{"resource": "services", "subresource": "proxy"}}, true},
		{map[string]any{"objectRef": map[string]any{"resource": "pods", "subresource": "log"}, "requestURI": "/api/v1/namespaces/d/pods/p/log?follow=true"}, true},
		{map[string]any{"objectRef": map[string]any{"resource": "pods", "subresource": "log"}, "requestURI": "/api/v1/namespaces/d/pods/p/log"}, false},
		{map[string]any{"stage": "ResponseStarted"}, true},
		// The apiserver writes every failed authentication at ResponseStarted, whatever the request.
		{map[string]any{"stage": "ResponseStarted", "user": map[string]any{}, "responseStatus": map[string]any{"code": 401}}, false},
		{map[string]any{"responseStatus": map[string]any{"code": 101}}, true},
	} {
		m := one(t, defaults(), ev(c.over))
		if m["long_running"] != c.want {
			t.Errorf("%v: long_running = %v, want %v", c.over, m["long_running"], c.want)
		}
	}
}

func TestObjectFromURIWhenNoObjectRef(t *testing.T) {
	for _, c := range []struct {
		uri  string
		want map[string]any
	}{
		{"/api/v1/namespaces/ns/pods/p/log?follow=true&container=c", map[string]any{
			"namespace": "ns", "resource": "pods", "name": "p", "subresource": "log", "group_resource": "pods/log",
			"long_running": true, "request_path": "/api/v1/namespaces/ns/pods/p/log", "api_version": "v1"}},
		{"/apis/apps/v1/namespaces/ns/deployments/d/scale", map[string]any{
			"api_group": "apps", "group_resource": "deployments.apps/scale", "name": "d"}},
		{"/api/v1/namespaces/foo", map[string]any{"resource": "namespaces", "name": "foo", "namespace": nil}},
		{"/api/v1/namespaces/foo/finalize", map[string]any{"resource": "namespaces", "name": "foo", "subresource": "finalize"}},
		{"/api/v1/namespaces/foo/configmaps", map[string]any{"resource": "configmaps", "namespace": "foo", "name": nil}},
		{"/api/v1/watch/namespaces/ns/pods?resourceVersion=10", map[string]any{"resource": "pods", "namespace": "ns", "query.resource_version": "10"}},
		{"/api/v1/nodes/n1/status", map[string]any{"resource": "nodes", "name": "n1", "subresource": "status"}},
		{"/healthz", map[string]any{"resource": nil, "group_resource": nil, "request_path": "/healthz"}},
		{"/apis/apps/v1", map[string]any{"resource": nil, "request_path": "/apis/apps/v1"}},
		{"/openapi/v3/apis/apps/v1", map[string]any{"resource": nil}},
	} {
		m := one(t, defaults(), ev(map[string]any{"objectRef": nil, "requestURI": c.uri}))
		t.Run(c.uri, func(t *testing.T) { expect(t, m, c.want) })
	}
}

func TestQueryParameters(t *testing.T) {
	m := one(t, defaults(), ev(map[string]any{"verb": "list",
		"requestURI": "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-1&labelSelector=app+in+(a,b)&limit=250&resourceVersionMatch=NotOlderThan&resourceVersion=123&timeoutSeconds=30&dryRun=All&fieldManager=kubectl"}))
	expect(t, m, map[string]any{
		"query.field_selector": "spec.nodeName=node-1", "query.label_selector": "app in (a,b)",
		"query.limit": 250, "query.resource_version_match": "NotOlderThan", "query.resource_version": "123",
		"query.timeout_seconds": "30", "query.dry_run": "All", "query.field_manager": "kubectl",
	})
	if m := one(t, defaults(), ev(nil)); m["query"] != nil {
		t.Errorf("query present without parameters: %v", m["query"])
	}
}

func TestAnnotationsDeprecatedTruncated(t *testing.T) {
	m := one(t, defaults(), ev(map[string]any{"annotations": map[string]any{
		"k8s.io/deprecated": "true", "k8s.io/removed-release": "1.25", "audit.k8s.io/truncated": "true",
		"pod-security.kubernetes.io/exempt": "namespace",
		"apiserver.latency.k8s.io/etcd":     "not-a-duration",
	}}))
	expect(t, m, map[string]any{
		"deprecated_api": true, "removed_release": "1.25", "truncated": true, "truncation": "apiserver",
		"pod_security.exempt": "namespace", "latency_ms": nil,
	})
}

func TestBatches(t *testing.T) {
	a := ev(map[string]any{"auditID": "a", "requestReceivedTimestamp": "2026-11-20T10:00:01Z"})
	b := ev(map[string]any{"auditID": "b", "requestReceivedTimestamp": "2026-11-20T10:00:02Z"})
	for _, input := range []string{
		`{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":[` + a + `,{"no":"audit"},` + b + `]}`,
		`[` + a + `,{"no":"audit"},` + b + `]`,
	} {
		recs, res := enrichText(t, defaults(), input)
		if res.Err != nil || len(recs) != 3 {
			t.Fatalf("got %d records, err %v; want 3", len(recs), res.Err)
		}
		if recs[0]["auditID"] != "a" || recs[2]["auditID"] != "b" {
			t.Errorf("order lost: %v, %v", recs[0]["auditID"], recs[2]["auditID"])
		}
		if res.Records[0].Time.Sec+1 != res.Records[2].Time.Sec {
			t.Errorf("items must keep their own times: %v %v", res.Records[0].Time, res.Records[2].Time)
		}
		if pe, _ := recs[1]["parse_error"].(string); !strings.Contains(pe, "item 1") || recs[1]["no"] != "audit" {
			t.Errorf("bad item must be kept with a parse_error: %v", recs[1])
		}
	}
	// A 400-event batch, the webhook backend's default maximum.
	var items []string
	for i := 0; i < 400; i++ {
		items = append(items, a)
	}
	recs, _ := enrichText(t, defaults(), `{"kind":"EventList","items":[`+strings.Join(items, ",")+`]}`)
	if len(recs) != 400 {
		t.Errorf("400-item EventList gave %d records", len(recs))
	}
}

func TestWrappers(t *testing.T) {
	line := ev(nil)
	aks, _ := json.Marshal(map[string]any{"operationName": "Microsoft.ContainerService/managedClusters/diagnosticLogs/Read",
		"category": "kube-audit", "properties": map[string]any{"log": line, "stream": "stdout", "pod": "kube-apiserver-abc"}})
	expect(t, one(t, defaults(), string(aks)), map[string]any{"auditID": "00000000-0000-4000-8000-000000000001", "outcome": "success"})
	expect(t, one(t, defaults(), "master-0.example.internal "+line), map[string]any{"hostname": "master-0.example.internal", "verb": "get"})
	expect(t, one(t, defaults(), "2026-11-20T10:00:00.1Z stdout F "+line), map[string]any{"hostname": nil, "verb": "get"})

	// CloudWatch cut a large event; what came before the cut is kept and flagged.
	big := ev(map[string]any{"level": "RequestResponse", "verb": "update",
		"requestObject": map[string]any{"kind": "ConfigMap", "data": map[string]any{"blob": strings.Repeat("x", 300000)}}})
	cut := big[:256*1024] + "[Truncated...]"
	m := one(t, defaults(), cut)
	expect(t, m, map[string]any{"truncated": true, "auditID": "00000000-0000-4000-8000-000000000001"})
	if tr, _ := m["truncation"].(string); !strings.Contains(tr, "cloudwatch") {
		t.Errorf("truncation = %q, want cloudwatch", tr)
	}
	// A list without a single audit event is no batch of them: the caller passes it
	// through as it came.
	for _, bad := range []string{"", "   ", "hello world", "{not json", "42", `"str"`, "a b c {}", "[1,2]", "[]",
		`{"kind":"PodList","items":[{"metadata":{}}]}`, `{"items":[],"msg":"x"}`, `{"kind":"EventList","items":[]}`} {
		_, res := enrichText(t, defaults(), bad)
		if res.Err == nil {
			t.Errorf("%q: accepted as an audit event", bad)
		}
	}
}

func TestShapeNotLabel(t *testing.T) {
	// v1beta1, a wrong label and no label at all: all are audit events by shape.
	for _, over := range []map[string]any{
		{"apiVersion": "audit.k8s.io/v1beta1", "timestamp": "2026-11-20T10:00:00Z", "requestReceivedTimestamp": nil, "stageTimestamp": nil},
		{"apiVersion": "v1", "kind": "Something"},
		{"apiVersion": nil, "kind": nil},
	} {
		recs, res := enrichText(t, defaults(), ev(over))
		if res.Err != nil || len(recs) != 1 {
			t.Errorf("%v: %v", over, res.Err)
		}
	}
}

func TestRedaction(t *testing.T) {
	secret := map[string]any{"kind": "Secret", "apiVersion": "v1",
		"metadata": map[string]any{"name": "s", "annotations": map[string]any{lastApplied: `{"data":{"password":"aHVudGVyMg=="}}`}},
		"data":     map[string]any{"password": "aHVudGVyMg=="}, "stringData": map[string]any{"token": "plain"}}
	line := ev(map[string]any{"level": "RequestResponse", "verb": "create",
		"objectRef":     map[string]any{"resource": "secrets", "namespace": "default", "name": "s", "apiVersion": "v1"},
		"requestObject": secret, "responseObject": secret})
	m := one(t, defaults(), line)
	expect(t, m, map[string]any{
		"requestObject.data.password": redactedValue, "requestObject.stringData.token": redactedValue,
		"responseObject.data.password": redactedValue,
	})
	if a, _ := get(m, "requestObject.metadata.annotations").(map[string]any); a[lastApplied] != redactedValue {
		t.Errorf("last-applied annotation not redacted: %v", a)
	}
	red := normalize(m["redacted"]).([]any)
	if len(red) != 6 { // data, stringData and the annotation, on both sides
		t.Errorf("redacted = %v", red)
	}
	raw, _ := json.Marshal(m)
	if bytes.Contains(raw, []byte("aHVudGVyMg")) || bytes.Contains(raw, []byte("plain")) {
		t.Errorf("secret material left in the record: %s", raw)
	}

	off := defaults()
	off.Redact = false
	if m := one(t, off, line); get(m, "requestObject.data.password") != "aHVudGVyMg==" || m["redacted"] != nil {
		t.Errorf("redact off still redacted: %v", m["redacted"])
	}

	list := ev(map[string]any{"level": "RequestResponse", "verb": "list", "requestURI": "/api/v1/secrets",
		"objectRef":      map[string]any{"resource": "secrets", "apiVersion": "v1"},
		"responseObject": map[string]any{"kind": "SecretList", "items": []any{secret, secret}}})
	raw, _ = json.Marshal(one(t, defaults(), list))
	if bytes.Contains(raw, []byte("aHVudGVyMg")) {
		t.Errorf("SecretList items not redacted: %s", raw)
	}

	patch := ev(map[string]any{"level": "Request", "verb": "patch",
		"objectRef":     map[string]any{"resource": "secrets", "namespace": "default", "name": "s", "apiVersion": "v1"},
		"requestObject": []any{map[string]any{"op": "replace", "path": "/data/password", "value": "c2VjcmV0"}, map[string]any{"op": "add", "path": "/metadata/labels/x", "value": "y"}}})
	m = one(t, defaults(), patch)
	ops := m["requestObject"].([]any)
	if ops[0].(map[string]any)["value"] != redactedValue || ops[1].(map[string]any)["value"] != "y" {
		t.Errorf("JSON patch redaction: %v", ops)
	}

	tokenRequest := ev(map[string]any{"level": "RequestResponse", "verb": "create",
		"objectRef":      map[string]any{"resource": "serviceaccounts", "subresource": "token", "namespace": "d", "name": "sa", "apiVersion": "v1"},
		"responseObject": map[string]any{"kind": "TokenRequest", "status": map[string]any{"token": "eyJhbGciOi", "expirationTimestamp": "2026-11-20T11:00:00Z"}}})
	expect(t, one(t, defaults(), tokenRequest), map[string]any{"responseObject.status.token": redactedValue,
		"responseObject.status.expirationTimestamp": "2026-11-20T11:00:00Z"})

	tokenReview := ev(map[string]any{"level": "RequestResponse", "verb": "create",
		"objectRef":      map[string]any{"resource": "tokenreviews", "apiGroup": "authentication.k8s.io", "apiVersion": "v1"},
		"requestObject":  map[string]any{"kind": "TokenReview", "spec": map[string]any{"token": "eyJhbGciOi"}},
		"responseObject": map[string]any{"kind": "TokenReview", "spec": map[string]any{"token": "eyJhbGciOi"}, "status": map[string]any{"authenticated": true}}})
	expect(t, one(t, defaults(), tokenReview), map[string]any{"requestObject.spec.token": redactedValue,
		"responseObject.spec.token": redactedValue, "responseObject.status.authenticated": true})

	exec := ev(map[string]any{"verb": "create", "requestURI": "/api/v1/namespaces/d/pods/p/exec?command=sh&command=-c&command=echo+s3cr3t&container=c&stdin=true",
		"objectRef": map[string]any{"resource": "pods", "subresource": "exec", "namespace": "d", "name": "p", "apiVersion": "v1"}})
	if m := one(t, defaults(), exec); !strings.Contains(m["requestURI"].(string), "s3cr3t") {
		t.Errorf("exec command redacted although redact_exec_command is off")
	}
	withExec := defaults()
	withExec.RedactExecCommand = true
	m = one(t, withExec, exec)
	expect(t, m, map[string]any{"requestURI": "/api/v1/namespaces/d/pods/p/exec?command=REDACTED&command=REDACTED&command=REDACTED&container=c&stdin=true"})

	paths := defaults()
	paths.RedactPaths = []string{"requestObject.spec.containers.env", "responseObject.metadata.labels.*"}
	pod := ev(map[string]any{"level": "RequestResponse", "verb": "create",
		"requestObject":  map[string]any{"spec": map[string]any{"containers": []any{map[string]any{"name": "a", "env": []any{"x"}}, map[string]any{"name": "b", "env": []any{"y"}}}}},
		"responseObject": map[string]any{"metadata": map[string]any{"labels": map[string]any{"team": "t", "tier": "db"}}}})
	m = one(t, paths, pod)
	cs := get(m, "requestObject.spec.containers").([]any)
	if cs[0].(map[string]any)["env"] != redactedValue || cs[1].(map[string]any)["env"] != redactedValue || cs[1].(map[string]any)["name"] != "b" {
		t.Errorf("user path redaction: %v", cs)
	}
	expect(t, m, map[string]any{"responseObject.metadata.labels.team": redactedValue, "responseObject.metadata.labels.tier": redactedValue})
	if _, err := New(Options{RedactPaths: []string{"requestObject..x"}}); err == nil {
		t.Error("a path with an empty element was accepted")
	}
}

func TestManagedFieldsAndSizeLimit(t *testing.T) {
	rr := lines(t, "testdata/requestresponse.log")[0]
	m := one(t, defaults(), rr)
	if get(m, "responseObject.metadata.managedFields") != nil {
		t.Error("managedFields kept although drop_managed_fields is on")
	}
	if get(m, "responseObject.metadata.name") != "cart" || m["truncated"] != nil {
		t.Errorf("object under the size limit changed: truncated=%v", m["truncated"])
	}
	keep := defaults()
	keep.DropManagedFields = false
	if mf, _ := get(one(t, keep, rr), "responseObject.metadata.managedFields").([]any); len(mf) != 2 {
		t.Error("managedFields dropped although drop_managed_fields is off")
	}

	for _, size := range []int{100 << 10, 2 << 20} { // > 64 KiB and > 1 MiB lines
		big := ev(map[string]any{"level": "RequestResponse", "verb": "create",
			"objectRef":      map[string]any{"resource": "configmaps", "namespace": "d", "name": "big", "apiVersion": "v1"},
			"requestObject":  map[string]any{"kind": "ConfigMap", "data": map[string]any{"blob": strings.Repeat("b", size)}},
			"responseObject": map[string]any{"kind": "Status", "code": 201}})
		m := one(t, defaults(), big)
		expect(t, m, map[string]any{"truncated": true, "truncation": "max_object_size",
			"requestObject.truncated": true, "responseObject.kind": "Status", "objectRef.name": "big"})
		if n, _ := normalize(get(m, "requestObject.size_bytes")).(float64); n < float64(size) {
			t.Errorf("size_bytes = %v, want >= %d", n, size)
		}
		unlimited := defaults()
		unlimited.MaxObjectSize = 0
		if got := get(one(t, unlimited, big), "requestObject.data.blob").(string); len(got) != size {
			t.Errorf("with no limit the %d-byte value came out as %d bytes", size, len(got))
		}
	}
}

func TestTimeSourceAndDerivedKey(t *testing.T) {
	line := ev(nil)
	for src, want := range map[TimeSource]int64{TimeRequestReceived: 100000, TimeStage: 2600000, TimeKeep: -1} {
		o := defaults()
		o.TimeSource = src
		_, res := enrichText(t, o, line)
		r := res.Records[0]
		if want < 0 {
			if !r.Time.IsZero() {
				t.Errorf("keep: time = %v, want zero (caller keeps the incoming time)", r.Time)
			}
		} else if r.Time.Nsec != want {
			t.Errorf("source %d: nsec = %d, want %d", src, r.Time.Nsec, want)
		}
	}
	o := defaults()
	o.DerivedKey = "kubetrail"
	recs, res := enrichText(t, o, line)
	m := recs[0]
	if m["outcome"] != nil || get(m, "kubetrail.outcome") != "success" || get(m, "kubetrail.duration_ms") != 2.5 {
		t.Errorf("derived fields not nested: %v", m)
	}
	if !res.Records[0].HasKey("kubetrail") || res.Records[0].HasKey("outcome") || !res.Records[0].HasKey("verb") {
		t.Error("HasKey does not reflect the top-level keys")
	}
}

func TestMapInputMatchesText(t *testing.T) {
	e, _ := New(defaults())
	for _, l := range append(lines(t, "testdata/metadata.log"), lines(t, "testdata/requestresponse.log")...) {
		var generic map[string]any
		if err := json.Unmarshal([]byte(l), &generic); err != nil {
			t.Fatal(err)
		}
		packed, err := msgpack.Marshal(generic)
		if err != nil {
			t.Fatal(err)
		}
		w := e.NewWorker()
		fromText := fields(t, w.Text([]byte(l)).Records[0])
		res := w.Map(packed)
		if res.Err != nil {
			t.Fatal(res.Err)
		}
		fromMap := fields(t, res.Records[0])
		// msgpack.Marshal of float64 JSON numbers makes every number a float: compare as floats.
		a, _ := json.Marshal(normalizeDeep(fromText))
		b, _ := json.Marshal(normalizeDeep(fromMap))
		if !bytes.Equal(a, b) {
			t.Errorf("Map and Text disagree:\ntext %s\nmap  %s", a, b)
		}
	}
	w := e.NewWorker()
	if res := w.Map([]byte{0x93, 1, 2, 3}); res.Err == nil {
		t.Error("a msgpack array was accepted as a record")
	}
	if res := w.Map([]byte{0x81, 0xa1}); res.Err == nil {
		t.Error("a truncated msgpack map was accepted")
	}
	notAudit, _ := msgpack.Marshal(map[string]any{"log": "hello"})
	if res := w.Map(notAudit); res.Err == nil {
		t.Error("a record without auditID was accepted")
	}
}

func normalizeDeep(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, vv := range x {
			out[k] = normalizeDeep(vv)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i := range x {
			out[i] = normalizeDeep(x[i])
		}
		return out
	}
	return normalize(v)
}

func TestNumbersKeepTheirValue(t *testing.T) {
	m := one(t, defaults(), ev(map[string]any{"level": "RequestResponse",
		"requestObject": json.RawMessage(`{"a":-5,"b":18446744073709551615,"c":1.5,"d":1e3,"e":-9223372036854775808,"f":123456789012,"g":1e400}`)}))
	o := m["requestObject"].(map[string]any)
	if normalize(o["a"]) != -5.0 || o["b"] != uint64(18446744073709551615) || o["c"] != 1.5 || o["d"] != 1000.0 ||
		o["e"] != int64(-9223372036854775808) || normalize(o["f"]) != 123456789012.0 {
		t.Errorf("numbers changed: %#v", o)
	}
	// Out of float64's range: the number's text, as a string (an infinite float would
	// be printed as inf by Fluent Bit's JSON outputs).
	if o["g"] != "1e400" {
		t.Errorf("1e400 = %#v, want the string \"1e400\"", o["g"])
	}
	// Text that is no JSON number makes the text no JSON, so no audit event.
	for _, bad := range []string{"NaN", "nan", "-Inf", "inf", "+1", "012", "1.", ".5", "1e", "-", "1-2", "0x10"} {
		line := strings.Replace(ev(map[string]any{"level": "RequestResponse", "requestObject": "HERE"}), `"HERE"`, `{"x":`+bad+`}`, 1)
		if _, res := enrichText(t, defaults(), line); res.Err == nil || !strings.Contains(res.Err.Error(), "not JSON") {
			t.Errorf("%s: err %v, want not JSON", bad, res.Err)
		}
	}
	for _, good := range []string{"0", "-0", "0.5", "-1.25e-3", "1E+2", "123456789012345678901234567890"} {
		if !jsonmp.IsNumber([]byte(good)) {
			t.Errorf("%s: not taken as a JSON number", good)
		}
	}
}

// TestEnvelopeSummaries: with Summary on, every item of an Event Hub body or CloudWatch
// Logs payload keeps its own Summary (each is parsed on its own), and HasKey its keys.
func TestEnvelopeSummaries(t *testing.T) {
	var recs, les []any
	for i, id := range []string{"e1", "e2", "e3"} {
		// Fields of different sizes, so that the items' keys lie at different offsets.
		line := ev(map[string]any{"auditID": id, "verb": "get-" + id, "aaa": strings.Repeat("a", 5*(3-i))})
		recs = append(recs, map[string]any{"category": "kube-audit", "properties": map[string]any{"log": line}})
		les = append(les, map[string]any{"id": id, "timestamp": 1, "message": line})
	}
	eh, _ := json.Marshal(map[string]any{"records": recs})
	cw, _ := json.Marshal(map[string]any{"messageType": "DATA_MESSAGE", "logGroup": "g", "logEvents": les})
	for _, summary := range []bool{false, true} {
		opts := defaults()
		opts.Summary = summary
		e, _ := New(opts)
		w := e.NewWorker()
		for name, in := range map[string][]byte{"Event Hub": eh, "CloudWatch": cw} {
			res := w.Text(in)
			if res.Err != nil || len(res.Records) != 3 || !res.Batch {
				t.Fatalf("%s: %v, %d records, batch %v", name, res.Err, len(res.Records), res.Batch)
			}
			for i, r := range res.Records {
				id := fmt.Sprintf("e%d", i+1)
				m := fields(t, r)
				if m["auditID"] != id || r.HasKey("properties") {
					t.Errorf("%s: record %d: %v", name, i, m)
				}
				for k := range m {
					if !r.HasKey(k) {
						t.Errorf("%s: record %d: HasKey(%q) false", name, i, k)
					}
				}
				if summary && (string(r.Summary.AuditID) != id || string(r.Summary.Verb) != "get-"+id) {
					t.Errorf("%s: record %d: summary of %s / %s", name, i, r.Summary.AuditID, r.Summary.Verb)
				}
			}
		}
	}
}

func TestWorkerReuseDoesNotLeakBetweenCalls(t *testing.T) {
	e, _ := New(defaults())
	w := e.NewWorker()
	small := ev(nil)
	want := fields(t, e.NewWorker().Text([]byte(small)).Records[0])
	w.Text([]byte(lines(t, "testdata/requestresponse.log")[0]))
	w.Text([]byte(`[` + small + `,` + small + `]`))
	got := fields(t, w.Text([]byte(small)).Records[0])
	if !reflect.DeepEqual(got, want) {
		t.Errorf("a reused worker gives a different record:\n%v\n%v", got, want)
	}
}

func TestRepairJSON(t *testing.T) {
	for in, want := range map[string]string{
		`{"a":1,"b":{"c":[1,2`:    `{"a":1,"b":{"c":[1]}}`,
		`{"a":"x,y","b":"unfin`:   `{"a":"x,y"}`,
		`{"a":{"b":"q\"uo,te"},"`: `{"a":{"b":"q\"uo,te"}}`,
		`{"a":1}`:                 `{"a":1}`,
		`{"a":[`:                  `{"a":[]}`,
		`{`:                       `{}`,
		`{"a":1,"b":{"c":2}`:      `{"a":1,"b":{"c":2}}`, // a container that ended is complete
		`[[1,[2]],[`:              `[[1,[2]],[]]`,
	} {
		if got := string(repairJSON(nil, []byte(in))); got != want {
			t.Errorf("repairJSON(%s) = %s, want %s", in, got, want)
		}
	}
	// Cut anywhere, a valid document repairs to a valid one.
	for _, l := range append(lines(t, "testdata/requestresponse.log"), lines(t, "testdata/metadata.log")[:3]...) {
		for cut := 1; cut < len(l); cut++ {
			if got := repairJSON(nil, []byte(l[:cut])); fastjson.ValidateBytes(got) != nil {
				t.Fatalf("cut at %d of %d: repaired to invalid JSON: ...%s", cut, len(l), got[max(0, len(got)-80):])
			}
		}
	}
}

func TestReprocessedRecordHasNoDuplicateFields(t *testing.T) {
	// The output of one k8s_audit (as a decoded map) fed to another.
	first := one(t, defaults(), "host-a "+ev(nil))
	packed, _ := msgpack.Marshal(first)
	e, _ := New(defaults())
	res := e.NewWorker().Map(packed)
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	second := fields(t, res.Records[0]) // fails on duplicate keys
	if second["hostname"] != "host-a" || second["outcome"] != "success" || second["duration_ms"] != 2.5 {
		t.Errorf("re-enriched record lost fields: %v", second)
	}
}

func TestKeepDropRulesThroughWorker(t *testing.T) {
	sample := lines(t, "../conf/examples/sample-audit.log")
	run := func(keep, drop string) (kept []map[string]any, dropped int) {
		o := defaults()
		var err error
		if o.Keep, err = ParseRules(keep); err != nil {
			t.Fatal(err)
		}
		if o.Drop, err = ParseRules(drop); err != nil {
			t.Fatal(err)
		}
		e, _ := New(o)
		w := e.NewWorker()
		for _, l := range sample {
			res := w.Text([]byte(l))
			if res.Err != nil {
				t.Fatal(res.Err)
			}
			dropped += res.Dropped
			for _, r := range res.Records {
				kept = append(kept, fields(t, r))
			}
		}
		return kept, dropped
	}
	all, d := run("", "")
	if d != 0 || len(all) != len(sample) {
		t.Fatalf("no rules: %d kept, %d dropped of %d", len(all), d, len(sample))
	}
	// The recommended drop rule: probes and lease renewals by system components.
	kept, d := run("", "nonresource=/healthz*,/readyz*,/livez*; verb=get,update resource=leases.coordination.k8s.io user=system:*")
	if d != 2 || len(kept) != len(sample)-2 {
		t.Errorf("drop rule: %d kept, %d dropped", len(kept), d)
	}
	for _, m := range kept {
		if m["request_path"] == "/readyz" || m["group_resource"] == "leases.coordination.k8s.io" {
			t.Errorf("dropped record kept: %v", m["requestURI"])
		}
	}
	// Keep only failures, then drop the anonymous ones.
	kept, _ = run("code=4*,5*", "user_type=anonymous")
	var codes []any
	for _, m := range kept {
		codes = append(codes, normalize(get(m, "responseStatus.code")))
	}
	if !reflect.DeepEqual(codes, []any{403.0, 422.0}) {
		t.Errorf("keep failures minus anonymous: codes %v", codes)
	}
}

func TestMapInputExtAndKeys(t *testing.T) {
	e, _ := New(defaults())
	base := map[string]any{}
	if err := json.Unmarshal([]byte(ev(nil)), &base); err != nil {
		t.Fatal(err)
	}
	packed, _ := msgpack.Marshal(base)
	// Append two fields by hand: an EventTime ext and an integer key.
	n := len(base) + 2
	body := binary.BigEndian.AppendUint32([]byte{0xdf}, uint32(n))
	body = append(body, packed[1:]...) // drop the original map16/fixmap header below
	if packed[0] == 0xde {
		body = append(binary.BigEndian.AppendUint32([]byte{0xdf}, uint32(n)), packed[3:]...)
	} else if packed[0]&0xf0 != 0x80 {
		t.Fatalf("unexpected header 0x%x", packed[0])
	}
	body = append(body, 0xa2, 't', 's', 0xd7, 0x00, 0x69, 0x1e, 0xe9, 0x80, 0x1d, 0xcd, 0x65, 0x00) // 1763633536.5
	body = append(body, 0x07, 0xa5, 's', 'e', 'v', 'e', 'n')
	res := e.NewWorker().Map(body)
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	m := fields(t, res.Records[0])
	if m["ts"] != 1763633536.5 || m["7"] != "seven" {
		t.Errorf("ext or integer key lost: ts=%v 7=%v", m["ts"], m["7"])
	}
	// A map key that is itself a map cannot be a field name: the record is refused
	// (and passes through unchanged), it does not crash.
	bad := []byte{0x81, 0x81, 0xa1, 'a', 0x01, 0x01}
	if res := e.NewWorker().Map(bad); res.Err == nil {
		t.Error("a map with a map key was accepted")
	}
}
