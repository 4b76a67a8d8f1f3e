package enrich

// Derived describes one field k8s_audit derives from an audit event and adds to its
// record (the same values Summary carries, where it has them).
type Derived struct {
	// Name is the record key.
	Name string
	// Type is the value's type as the docs name it: bool, float, string, map or array.
	Type string
	// Doc says what it means, for the field table of docs/k8s-audit.md. A field with
	// no Doc shares the row of the field before it.
	Doc string
}

// DerivedFields are the derived fields, in the order a record holds them. It is the one
// table of them: TestDerivedFields checks that encodeDerived writes only these, in this
// order and with these types, that isDerivedName knows each, that Summary's `derived`
// tags name them, and that docs/k8s-audit.md's table is the one FieldTable makes of it
// (`go test ./enrich -run TestDerivedFields -update` rewrites it).
var DerivedFields = []Derived{
	{"duration_ms", "float", "`stageTimestamp - requestReceivedTimestamp`, µs precision; absent when either is missing (v1beta1 events)"},
	{"duration_negative", "bool", "set when that difference is negative (clock trouble)"},
	{"long_running", "bool", "watch (verb, or `watch=true`), exec/attach/portforward/proxy, logs with `follow=true`, stage `ResponseStarted` (unless it failed: the apiserver writes every 401 at that stage), code 101: the duration is how long a stream lived, not how slow the server was"},
	{"outcome", "string", "`success` (1xx-3xx), `failure` (4xx/5xx, stage `Panic`, or an authorizer's `forbid`), `unknown` (no status yet)"},
	{"authz_decision", "string", "from the `authorization.k8s.io/*` annotations: **why** it was allowed or denied"},
	{"authz_reason", "string", ""},
	{"user_type", "string", "of the authenticated user: `serviceaccount`, `node`, `system` (other `system:` names), `anonymous`, `user`, or `unauthenticated` (authentication failed: 401, no user name)"},
	{"sa_namespace", "string", "for `system:serviceaccount:NS:NAME`"},
	{"sa_name", "string", ""},
	{"node_name", "string", "for `system:node:NAME`"},
	{"token_pod_name", "string", "the pod, node and token ID a bound service-account token was issued for (`user.extra`)"},
	{"token_pod_uid", "string", ""},
	{"token_node_name", "string", ""},
	{"credential_id", "string", ""},
	{"impersonated_user", "string", "`impersonatedUser.username`"},
	{"effective_user", "string", "the identity authorization used: the impersonated user, else the user"},
	{"client_ip", "string", "the **first** `sourceIPs` entry: the client as claimed through `X-Forwarded-For` (can be forged)"},
	{"peer_ip", "string", "the **last** `sourceIPs` entry: the address of the connection that reached the apiserver"},
	{"user_agent_product", "string", "`kubectl` / `v1.34.2` from the User-Agent"},
	{"user_agent_version", "string", ""},
	{"hostname", "string", "the prefix of a `hostname {json}` line"},
	{"group_resource", "string", "`resource[.group][/subresource]`: `pods/exec`, `leases.coordination.k8s.io`"},
	{"namespace", "string", "only when the event has no `objectRef`: parsed from the request URI (with an `objectRef`, query `objectRef.namespace` etc.; `group_resource` is always there)"},
	{"resource", "string", ""},
	{"name", "string", ""},
	{"subresource", "string", ""},
	{"api_group", "string", ""},
	{"api_version", "string", ""},
	{"request_path", "string", "the request URI without its query"},
	{"query", "map", "the parameters that change what a request costs or does: `watch`, `limit`, `resource_version`, `resource_version_match`, `field_selector`, `label_selector`, `field_manager`, `dry_run`, `timeout_seconds`"},
	{"latency_ms", "map", "the `apiserver.latency.k8s.io/*` annotations as numbers: `etcd`, `total`, `mutating_webhook`, `response_write`, ..."},
	{"pod_security", "map", "the `pod-security.kubernetes.io/*` annotations, with `enforce_level`/`enforce_version` split out"},
	{"admission_webhooks", "array", "one entry per webhook call (`round`, `index`, `configuration`, `webhook`, `mutated`, `patch_type`) from the mutation/patch annotations"},
	{"deprecated_api", "bool", "the apiserver's `k8s.io/deprecated` markers"},
	{"removed_release", "string", ""},
	{"truncated", "bool", "cut by the apiserver (`apiserver`), by CloudWatch (`cloudwatch`), by AKS (`aks`: `skipped-too-big-size-object`) or by `max_object_size`"},
	{"truncation", "string", ""},
	{"redacted", "array", "the paths kubetrail redacted in this record"},
	{"metrics", "string", "with `metrics on`, on the one record that counts its request (its last stage: not `RequestReceived`, nor `ResponseStarted` but for a failed authentication, which has no other): `timed` when `duration_ms` is the server's latency, `counted` when the request is long-running or has no (or a negative) duration; what log_to_metrics selects ([metrics.md](metrics.md))"},
	{"user_top", "string", "there, the user's name for the `metrics_top_users` users making the most requests, `other` for everyone else: a bounded label"},
}

// FieldTable returns the Markdown table of DerivedFields that docs/k8s-audit.md shows:
// one row per field with a Doc and the fields without one that follow it.
func FieldTable() string {
	b := []byte("| field | type | meaning |\n|---|---|---|\n")
	for i := 0; i < len(DerivedFields); {
		j := i + 1
		for j < len(DerivedFields) && DerivedFields[j].Doc == "" {
			j++
		}
		var names, types []byte
		same := true
		for k := i; k < j; k++ {
			if k > i {
				names = append(names, ", "...)
				types = append(types, ", "...)
			}
			names = append(append(append(names, '`'), DerivedFields[k].Name...), '`')
			types = append(types, DerivedFields[k].Type...)
			same = same && DerivedFields[k].Type == DerivedFields[i].Type
		}
		if same {
			types = []byte(DerivedFields[i].Type)
		}
		b = append(append(append(append(append(append(append(b, "| "...), names...), " | "...), types...), " | "...), DerivedFields[i].Doc...), " |\n"...)
		i = j
	}
	return string(b)
}
