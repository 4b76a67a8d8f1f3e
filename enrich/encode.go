package enrich

import (
	"bytes"
	"encoding/binary"
	"strings"
	"time"

	"github.com/valyala/fastjson"

	"github.com/kubetrail/kubetrail/enrich/jsonmp"
)

// maxDepth is the deepest a map record may nest (fromMsgpack refuses deeper ones, so
// they pass through unchanged): the writer's limit, so that all it is given is written.
const maxDepth = jsonmp.MaxDepth

// encodeOwn writes the event's own fields (as modified) from the tree; with capture,
// derive's fields are taken from what it wrote (top.set).
func (w *Worker) encodeOwn(t *top, ctx inputCtx, capture bool) {
	t.o.Visit(func(k []byte, v *fastjson.Value) {
		if w.skipOwn(k, ctx) {
			return
		}
		w.key(b2s(k))
		at := len(w.buf.b)
		w.encodeValue(&w.buf, v, 0)
		if capture {
			t.set(k, w.buf.b[at:])
		}
	})
}

// skipOwn says which of the event's own top-level fields the record leaves out. A
// record that went through k8s_audit before (an edge Fluent Bit forwarding to an
// aggregator that runs it too) already has derived fields: they are recomputed, so
// the old ones are left out rather than duplicated.
func (w *Worker) skipOwn(k []byte, ctx inputCtx) bool {
	if dk := w.e.opts.DerivedKey; dk != "" {
		return string(k) == dk
	}
	return isDerivedName(k) && (string(k) != "hostname" || ctx.hostname != nil)
}

// finishRecord writes the derived fields after the event's own, which start at start
// in buf (keys at keys), at top level or under Options.DerivedKey, and adds the record.
func (w *Worker) finishRecord(t *top, d *derived, ctx inputCtx, start, keys int) {
	if w.e.opts.SummaryOnly {
		// No fields: what the own fields' writing left in buf (the views derive and
		// the summary read) stays there, outside every span.
		w.spans = append(w.spans, span{start: start, end: start, keys: [2]int{keys, keys}})
		w.keys = w.keys[:keys]
		w.records = append(w.records, Record{Time: d.time, ID: w.eventID(t), Summary: w.summary(t, d)})
		return
	}
	if dk := w.e.opts.DerivedKey; dk == "" {
		w.encodeDerived(&w.buf, t, d, ctx)
	} else {
		// Nested: the map header needs the count first, so write them aside.
		w.dbuf.b = w.dbuf.b[:0]
		n := w.encodeDerived(&w.dbuf, t, d, ctx)
		w.key(dk)
		w.buf.mapLen(n)
		w.buf.b = append(w.buf.b, w.dbuf.b...)
	}
	w.spans = append(w.spans, span{start: start, end: len(w.buf.b), keys: [2]int{keys, len(w.keys)}})
	r := Record{Time: d.time, ID: w.eventID(t)}
	if w.e.opts.Summary {
		r.Summary = w.summary(t, d)
	}
	w.records = append(w.records, r)
}

// eventID writes Record.ID into the call's string store: auditID and stage, each
// after its length as a uvarint, then stageTimestamp (v1beta1 without one: timestamp),
// as written in the event. Equal IDs mean the same three values.
func (w *Worker) eventID(t *top) []byte {
	ts := t.stageTS
	if ts == nil {
		ts = t.legacyTS
	}
	start := len(w.strs)
	b := binary.AppendUvarint(w.strs, uint64(len(t.auditID)))
	b = append(b, t.auditID...)
	b = binary.AppendUvarint(b, uint64(len(t.stage)))
	b = append(b, t.stage...)
	b = append(b, ts...)
	w.strs = b
	return b[start:len(b):len(b)]
}

// isDerivedName reports whether k is the name of a derived field. Audit fields are
// camelCase and never collide with these.
func isDerivedName(k []byte) bool {
	switch string(k) {
	case "duration_ms", "duration_negative", "long_running", "outcome", "authz_decision",
		"authz_reason", "user_type", "sa_namespace", "sa_name", "node_name", "token_pod_name",
		"token_pod_uid", "token_node_name", "credential_id", "impersonated_user",
		"effective_user", "client_ip", "peer_ip", "user_agent_product", "user_agent_version",
		"hostname", "group_resource", "namespace", "resource", "name", "subresource",
		"api_group", "api_version", "request_path", "query", "latency_ms", "pod_security",
		"admission_webhooks", "deprecated_api", "removed_release", "truncated", "truncation",
		"redacted", "metrics", "user_top":
		return true
	}
	return false
}

// encodeValue writes a JSON value of the event (a top-level field at depth 0, the
// record's own level not counted) with the writer k8s_events shares, jsonmp. A number
// that is not JSON (NaN, inf, +1, 012: fastjson's parser lets them through) is
// written as a string of its text and sets w.badNum: the text it came from is not
// JSON, so the input passes through unchanged.
func (w *Worker) encodeValue(enc *outBuf, v *fastjson.Value, depth int) {
	var err error
	enc.b, err = jsonmp.AppendValue(enc.b, v, depth+1)
	if ne, ok := err.(*jsonmp.NumberError); ok && !w.badNum {
		w.badNum = true
		w.badNumText = append(w.badNumText[:0], ne.Text[:min(len(ne.Text), 40)]...)
	}
}

// derivedWriter writes derived fields and counts them.
type derivedWriter struct {
	w   *Worker
	enc *outBuf
	n   int
}

func (dw *derivedWriter) key(k string) {
	dw.n++
	if dw.w.e.opts.DerivedKey == "" {
		dw.w.keys = append(dw.w.keys, k)
	}
	dw.enc.strs(k)
}

func (dw *derivedWriter) str(k string, v []byte) {
	if len(v) > 0 {
		dw.key(k)
		dw.enc.str(v)
	}
}

func (dw *derivedWriter) boolean(k string, v bool) {
	if v {
		dw.key(k)
		dw.enc.boolean(true)
	}
}

// encodeDerived writes the derived fields into out and returns how many it wrote.
// Absent facts are left out rather than written empty.
func (w *Worker) encodeDerived(out *outBuf, t *top, d *derived, ctx inputCtx) int {
	dw := derivedWriter{w: w, enc: out}
	if d.hasDuration {
		dw.key("duration_ms")
		dw.enc.float(d.durationMs)
		dw.boolean("duration_negative", d.negative)
	}
	dw.key("long_running")
	dw.enc.boolean(d.longRunning)
	dw.key("outcome")
	dw.enc.strs(d.outcome)
	dw.str("authz_decision", d.authzDecision)
	if len(d.authzDecision) > 0 {
		dw.key("authz_reason") // "" is meaningful: allowed by no named rule
		dw.enc.str(d.authzReason)
	}

	dw.key("user_type")
	dw.enc.strs(d.userType)
	dw.str("sa_namespace", d.saNamespace)
	dw.str("sa_name", d.saName)
	dw.str("node_name", d.nodeName)
	dw.str("token_pod_name", d.tokenPodName)
	dw.str("token_pod_uid", d.tokenPodUID)
	dw.str("token_node_name", d.tokenNode)
	dw.str("credential_id", d.credentialID)
	dw.str("impersonated_user", d.impersonatedUser)
	dw.str("effective_user", d.effectiveUser)

	dw.str("client_ip", d.clientIP)
	dw.str("peer_ip", d.peerIP)
	dw.str("user_agent_product", d.uaProduct)
	dw.str("user_agent_version", d.uaVersion)
	dw.str("hostname", ctx.hostname)

	dw.str("group_resource", d.groupResource)
	if d.fromURI {
		// Only without an objectRef: otherwise these would repeat objectRef's own
		// fields in every record, and Fluent Bit pays for every byte it stores.
		dw.str("namespace", d.namespace)
		dw.str("resource", d.resource)
		dw.str("name", d.name)
		dw.str("subresource", d.subresource)
		dw.str("api_group", d.apiGroup)
		dw.str("api_version", d.apiVersion)
	}
	dw.str("request_path", d.requestPath)
	w.encodeQuery(&dw)

	w.encodeAnnotations(&dw, t.annotations)
	dw.boolean("deprecated_api", d.deprecated)
	dw.str("removed_release", d.removedRelease)

	if len(d.truncation) > 0 {
		dw.key("truncated")
		dw.enc.boolean(true)
		dw.key("truncation")
		dw.enc.strs(strings.Join(d.truncation, ","))
	}
	if len(w.redact) > 0 {
		dw.key("redacted")
		dw.enc.arrayLen(len(w.redact))
		for _, p := range w.redact {
			dw.enc.strs(p)
		}
	}
	if w.e.opts.Metrics {
		w.encodeMetrics(&dw, t, d)
	}
	return dw.n
}

// encodeMetrics writes the fields log_to_metrics counts (conf/examples/audit-metrics.conf):
// "metrics" on the one record that counts its request, and "user_top".
func (w *Worker) encodeMetrics(dw *derivedWriter, t *top, d *derived) {
	if !FinalStage(t.stage, d.code, d.username) {
		return
	}
	dw.key("metrics")
	if d.longRunning || !d.hasDuration || d.negative {
		dw.enc.strs("counted")
	} else {
		dw.enc.strs("timed")
	}
	if w.e.top == nil || len(d.username) == 0 {
		return
	}
	dw.key("user_top")
	if w.e.top.isNamed(d.username) {
		dw.enc.str(d.username)
	} else {
		dw.enc.strs(otherUser)
	}
}

// FinalStage reports whether a record of stage (with status code, by user) is the last
// the apiserver writes for its request, which counts the request once. RequestReceived
// is not. ResponseStarted is written for a long-running request (a watch, exec, logs
// -f), whose ResponseComplete follows whatever its status, even a 403 or a 429
// (k8s.io/apiserver pkg/endpoints/filters/audit.go, WithAudit: decorateResponseWriter,
// then the deferred ResponseComplete), so it is not final either, but for one case: a
// failed authentication is written at ResponseStarted and at no other stage, without a
// user (filters/authn_audit.go, WithFailedAuthenticationAudit). Leaving out every
// ResponseStarted (as kubectl-dev_tool does) would hide every 401.
func FinalStage(stage []byte, code int64, user []byte) bool {
	switch string(stage) {
	case "RequestReceived":
		return false
	case "ResponseStarted":
		return code >= 400 && len(user) == 0
	}
	return true
}

// encodeQuery writes the query parameters that matter as a map "query".
func (w *Worker) encodeQuery(dw *derivedWriter) {
	q := &w.query
	n := 0
	for _, set := range [...]bool{q.watchSet, q.limitSet, q.rvSet, q.rvmSet, q.fsSet, q.lsSet, q.fmSet, q.drSet, q.tsSet} {
		if set {
			n++
		}
	}
	if n == 0 {
		return
	}
	dw.key("query")
	e := dw.enc
	e.mapLen(n)
	if q.watchSet {
		e.strs("watch")
		e.boolean(q.watch)
	}
	if q.limitSet {
		e.strs("limit")
		e.int(q.limit)
	}
	pairs := [...]struct {
		set bool
		k   string
		v   []byte
	}{
		{q.rvSet, "resource_version", q.resourceVersion},
		{q.rvmSet, "resource_version_match", q.resourceVersionMatch},
		{q.fsSet, "field_selector", q.fieldSelector},
		{q.lsSet, "label_selector", q.labelSelector},
		{q.fmSet, "field_manager", q.fieldManager},
		{q.drSet, "dry_run", q.dryRun},
		{q.tsSet, "timeout_seconds", q.timeoutSeconds},
	}
	for _, p := range pairs {
		if p.set {
			e.strs(p.k)
			e.str(p.v)
		}
	}
}

const (
	latencyPrefix  = "apiserver.latency.k8s.io/"
	psaPrefix      = "pod-security.kubernetes.io/"
	mutationPrefix = "mutation.webhook.admission.k8s.io/"
	patchPrefix    = "patch.webhook.admission.k8s.io/"
)

// webhook is one admission webhook call, merged from its mutation and patch
// annotations (round_R_index_I).
type webhook struct {
	round, index           int64
	configuration, webhook []byte
	mutated, hasMutated    bool
	patchType              []byte
}

// scanAnnotations reads, in one pass, the annotations that derived fields come from:
// authorization, deprecation, truncation, and how many latency, pod-security and
// admission-webhook entries there are to write.
func (w *Worker) scanAnnotations(ann mpv) {
	d := &w.d
	w.hooks = w.hooks[:0]
	ann.visit(func(k []byte, v mpv) {
		switch {
		case string(k) == "authorization.k8s.io/decision":
			d.authzDecision = v.str()
		case string(k) == "authorization.k8s.io/reason":
			d.authzReason = v.str()
		case string(k) == "k8s.io/deprecated":
			d.deprecated = string(v.str()) == "true"
		case string(k) == "k8s.io/removed-release":
			d.removedRelease = v.str()
		case string(k) == "audit.k8s.io/truncated":
			if string(v.str()) == "true" {
				d.truncation = append(d.truncation, "apiserver")
			}
		case bytes.HasPrefix(k, []byte(latencyPrefix)):
			if _, ok := latencyMs(v.str()); ok {
				d.nLatency++
			}
		case bytes.HasPrefix(k, []byte(psaPrefix)):
			d.nPSA++
			if string(k[len(psaPrefix):]) == "enforce-policy" {
				d.nPSA += 2 // enforce_level and enforce_version
			}
		case bytes.HasPrefix(k, []byte(mutationPrefix)):
			w.webhookAnnotation(k[len(mutationPrefix):], v.str(), false)
		case bytes.HasPrefix(k, []byte(patchPrefix)):
			w.webhookAnnotation(k[len(patchPrefix):], v.str(), true)
		}
	})
}

// encodeAnnotations writes latency_ms, pod_security and admission_webhooks.
func (w *Worker) encodeAnnotations(dw *derivedWriter, ann mpv) {
	nLatency, nPSA := w.d.nLatency, w.d.nPSA
	if nLatency > 0 {
		dw.key("latency_ms")
		dw.enc.mapLen(nLatency)
		ann.visit(func(k []byte, v mpv) {
			if bytes.HasPrefix(k, []byte(latencyPrefix)) {
				if ms, ok := latencyMs(v.str()); ok {
					w.encodeSnakeKey(dw.enc, k[len(latencyPrefix):])
					dw.enc.float(ms)
				}
			}
		})
	}
	if nPSA > 0 {
		dw.key("pod_security")
		dw.enc.mapLen(nPSA)
		ann.visit(func(k []byte, v mpv) {
			if !bytes.HasPrefix(k, []byte(psaPrefix)) {
				return
			}
			name := k[len(psaPrefix):]
			val := v.str()
			w.encodeSnakeKey(dw.enc, name)
			dw.enc.str(val)
			if string(name) == "enforce-policy" { // "restricted:latest"
				level, version := val, []byte(nil)
				if i := bytes.IndexByte(val, ':'); i >= 0 {
					level, version = val[:i], val[i+1:]
				}
				dw.enc.strs("enforce_level")
				dw.enc.str(level)
				dw.enc.strs("enforce_version")
				dw.enc.str(version)
			}
		})
	}
	if len(w.hooks) > 0 {
		dw.key("admission_webhooks")
		dw.enc.arrayLen(len(w.hooks))
		for i := range w.hooks {
			h := &w.hooks[i]
			n := 4
			if h.hasMutated {
				n++
			}
			if len(h.patchType) > 0 {
				n++
			}
			e := dw.enc
			e.mapLen(n)
			e.strs("round")
			e.int(h.round)
			e.strs("index")
			e.int(h.index)
			e.strs("configuration")
			e.str(h.configuration)
			e.strs("webhook")
			e.str(h.webhook)
			if h.hasMutated {
				e.strs("mutated")
				e.boolean(h.mutated)
			}
			if len(h.patchType) > 0 {
				e.strs("patch_type")
				e.str(h.patchType)
			}
		}
	}
}

// webhookAnnotation records a mutation or patch annotation. The name is
// round_<R>_index_<I>; the value is JSON written by the apiserver.
func (w *Worker) webhookAnnotation(name, value []byte, patch bool) {
	var round, index int64
	rest, ok := bytes.CutPrefix(name, []byte("round_"))
	if !ok {
		return
	}
	r, rest, ok := bytes.Cut(rest, []byte("_index_"))
	if !ok {
		return
	}
	if round, ok = atoi(r); !ok {
		return
	}
	if index, ok = atoi(rest); !ok {
		return
	}
	v, err := w.ann.ParseBytes(value)
	if err != nil || v.Type() != fastjson.TypeObject {
		return
	}
	var h *webhook
	for i := range w.hooks {
		if w.hooks[i].round == round && w.hooks[i].index == index {
			h = &w.hooks[i]
		}
	}
	if h == nil {
		w.hooks = append(w.hooks, webhook{round: round, index: index})
		h = &w.hooks[len(w.hooks)-1]
	}
	// The annotation parser is reused: keep copies of what we need.
	h.configuration = w.stable(v.GetStringBytes("configuration"))
	h.webhook = w.stable(v.GetStringBytes("webhook"))
	if patch {
		h.patchType = w.stable(v.GetStringBytes("patchType"))
	} else if m := v.Get("mutated"); m != nil {
		h.hasMutated = true
		h.mutated = m.Type() == fastjson.TypeTrue
	}
}

// latencyMs reads an apiserver.latency.k8s.io value ("2.95486ms", "1.2s", "250µs").
func latencyMs(v []byte) (float64, bool) {
	if len(v) == 0 {
		return 0, false
	}
	d, err := time.ParseDuration(b2s(v))
	if err != nil {
		return 0, false
	}
	return float64(d.Microseconds()) / 1000, true
}

// encodeSnakeKey writes an annotation suffix as a snake_case key.
func (w *Worker) encodeSnakeKey(enc *outBuf, k []byte) {
	w.num = append(w.num[:0], k...)
	for i, c := range w.num {
		if c == '-' || c == '.' || c == '/' {
			w.num[i] = '_'
		}
	}
	enc.str(w.num)
}
