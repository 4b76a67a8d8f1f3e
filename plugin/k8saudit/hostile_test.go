package k8saudit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand"
	"strconv"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"

	"github.com/kubetrail/kubetrail/plugin/flbchunk"
)

// auditJSON is a small audit event as the apiserver writes it, with extra fields
// spliced in before the closing brace (`,"k":v` text).
func auditJSON(id, extra string) string {
	return `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"` + id +
		`","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/ns/pods","verb":"list",` +
		`"user":{"username":"alice","groups":["system:authenticated"]},"sourceIPs":["10.0.0.1"],` +
		`"objectRef":{"resource":"pods","namespace":"ns","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":200},` +
		`"requestReceivedTimestamp":"2026-01-02T03:04:05.000001Z","stageTimestamp":"2026-01-02T03:04:05.002001Z"` + extra + `}`
}

// auditMap is auditJSON decoded as Fluent Bit's JSON parser would hand it over.
func auditMap(t testing.TB, id string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(auditJSON(id, "")), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// renderJSON writes a msgpack value as Fluent Bit's json_lines output does
// (src/flb_pack.c: msgpack2json), keeping duplicate keys and key order, and fails where
// that output would not be JSON: a float that is infinite or NaN, which Fluent Bit
// prints as inf / nan.
func renderJSON(dst []byte, d *msgpack.Decoder) ([]byte, error) {
	c, err := d.PeekCode()
	if err != nil {
		return dst, err
	}
	switch {
	case msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32:
		n, err := d.DecodeMapLen()
		if err != nil {
			return dst, err
		}
		dst = append(dst, '{')
		for i := 0; i < n; i++ {
			if i > 0 {
				dst = append(dst, ',')
			}
			if dst, err = renderJSON(dst, d); err != nil {
				return dst, err
			}
			dst = append(dst, ':')
			if dst, err = renderJSON(dst, d); err != nil {
				return dst, err
			}
		}
		return append(dst, '}'), nil
	case msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32:
		n, err := d.DecodeArrayLen()
		if err != nil {
			return dst, err
		}
		dst = append(dst, '[')
		for i := 0; i < n; i++ {
			if i > 0 {
				dst = append(dst, ',')
			}
			if dst, err = renderJSON(dst, d); err != nil {
				return dst, err
			}
		}
		return append(dst, ']'), nil
	case c == msgpcode.Float || c == msgpcode.Double:
		f, err := d.DecodeFloat64()
		if err != nil {
			return dst, err
		}
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return dst, fmt.Errorf("float %v: Fluent Bit would print %s, which is not JSON", f, strings.ToLower(strconv.FormatFloat(f, 'g', -1, 64)))
		}
		return strconv.AppendFloat(dst, f, 'g', 16, 64), nil
	case msgpcode.IsExt(c):
		if _, err := d.DecodeInterface(); err != nil {
			return dst, err
		}
		return append(dst, `"ext"`...), nil
	}
	v, err := d.DecodeInterface()
	if err != nil {
		return dst, err
	}
	b, err := json.Marshal(v) // strings (invalid UTF-8 replaced, as Fluent Bit does), ints, bools, nil
	if err != nil {
		return dst, err
	}
	return append(dst, b...), nil
}

// checkJSON asserts that every record of an output chunk prints as valid JSON.
func checkJSON(t *testing.T, name string, evs []flbchunk.Event) {
	t.Helper()
	for i := range evs {
		d := msgpack.NewDecoder(bytes.NewReader(evs[i].Body))
		js, err := renderJSON(nil, d)
		if err != nil {
			t.Errorf("%s: record %d: %v", name, i, err)
			continue
		}
		if !json.Valid(js) {
			t.Errorf("%s: record %d prints as invalid JSON: %.200s", name, i, js)
		}
	}
}

// events decodes an output chunk into its events (no map decoding: duplicate keys the
// input had are allowed here).
func events(t *testing.T, chunk []byte) []flbchunk.Event {
	t.Helper()
	var d flbchunk.Decoder
	d.Reset(chunk)
	var out []flbchunk.Event
	for {
		var ev flbchunk.Event
		if err := d.Next(&ev); err != nil {
			if d.Offset() != len(chunk) {
				t.Fatalf("output does not decode at byte %d: %v", d.Offset(), err)
			}
			return out
		}
		out = append(out, ev)
	}
}

func bodyMap(t *testing.T, ev flbchunk.Event) map[string]any {
	t.Helper()
	var m map[string]any
	if err := msgpack.Unmarshal(ev.Body, &m); err != nil {
		t.Fatalf("body: %v", err)
	}
	return m
}

// deepMsgpack is a map nested n levels deep, written by hand: {"a":{"a":...{}}}.
func deepMsgpack(n int) []byte {
	var b []byte
	for i := 0; i < n; i++ {
		b = append(b, 0x81, 0xa1, 'a')
	}
	return append(b, 0x80)
}

type rawMsgpack []byte

func (r rawMsgpack) MarshalMsgpack() ([]byte, error) { return r, nil }

// TestHostileInputs runs each input through the filter after one audit event (so that
// the chunk is always rewritten and nothing can hide behind NOTOUCH), with and without
// add_parse_error: at least one record out for every record in, every record printable
// as JSON, and each input's outcome exactly: passed through byte for byte, or these
// audit events in this order.
func TestHostileInputs(t *testing.T) {
	ev := func(id string) string { return auditJSON(id, "") }
	rng := rand.New(rand.NewSource(14))
	binary := make([]byte, 64<<10)
	rng.Read(binary)
	klog := `I0102 03:04:05.123456       1 controller.go:615] quota admission added evaluator for: leases.coordination.k8s.io`
	aks := func(log string) map[string]any {
		return map[string]any{"time": "2026-01-02T03:04:05Z", "resourceId": "/SUBSCRIPTIONS/X/MANAGEDCLUSTERS/C",
			"category": "kube-audit", "operationName": "Microsoft.ContainerService/managedClusters/diagnosticLogs/Read",
			"properties": map[string]any{"log": log, "stream": "stdout", "pod": "kube-apiserver-abc"}}
	}
	cw := func(msgType string, msgs ...string) map[string]any {
		var les []any
		for i, m := range msgs {
			les = append(les, map[string]any{"id": strconv.Itoa(i), "timestamp": 1767323045000 + i, "message": m})
		}
		return map[string]any{"messageType": msgType, "owner": "123456789012", "logGroup": "/aws/eks/c/cluster",
			"logStream": "kube-apiserver-audit-0123", "subscriptionFilters": []any{"f"}, "logEvents": les}
	}
	deepJSON := strings.Repeat(`{"a":`, 5000) + `1` + strings.Repeat(`}`, 5000)
	big := auditJSON("big", `,"requestObject":{"kind":"ConfigMap","data":{"blob":"`+strings.Repeat("x", 3<<20)+`"}}`)
	invalidUTF8 := auditJSON("utf8", `,"requestObject":{"note":"\xff\xfe\xc3(","\xe2\x28\xa1":"key"}`)

	type tc struct {
		name string
		body map[string]any // the record body; text inputs go under "log"
		raw  []byte         // or the body as msgpack
		ids  []string       // the audit events expected out, in order; nil: passed through
		// check, when set, looks at the records out.
		check func(t *testing.T, out []map[string]any)
	}
	text := func(s string) map[string]any { return map[string]any{"log": s, "stream": "stdout"} }
	cases := []tc{
		{name: "empty JSON array", body: text(`[]`)},
		{name: "PodList without items", body: text(`{"kind":"PodList","items":[]}`)},
		{name: "PodList without items as a map", body: map[string]any{"kind": "PodList", "items": []any{}}},
		{name: "items and msg", body: text(`{"items":[],"msg":"x"}`)},
		{name: "items and msg as a map", body: map[string]any{"items": []any{}, "msg": "x"}},
		{name: "empty EventList", body: text(`{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":[]}`)},
		{name: "empty EventList as a map", body: map[string]any{"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": map[string]any{}, "items": []any{}}},
		{name: "PodList with items", body: text(`{"kind":"PodList","items":[{"metadata":{"name":"a"}},{"metadata":{"name":"b"}}]}`)},
		{name: "PodList with items as a map", body: map[string]any{"kind": "PodList", "items": []any{map[string]any{"metadata": map[string]any{"name": "a"}}, "x"}}},
		{name: "array of non-events", body: text(`[1,"two",{"three":3}]`)},
		{name: "NaN", body: text(auditJSON("nan", `,"requestObject":{"x":NaN}`))},
		{name: "nan", body: text(auditJSON("nan", `,"requestObject":{"x":nan}`))},
		{name: "Infinity", body: text(auditJSON("inf", `,"requestObject":{"x":Infinity}`))},
		{name: "-inf", body: text(auditJSON("inf", `,"requestObject":{"x":-inf}`))},
		{name: "+1", body: text(auditJSON("plus", `,"requestObject":{"x":+1}`))},
		{name: "leading zero", body: text(auditJSON("zero", `,"requestObject":{"x":012}`))},
		{name: "NaN in a batch", body: text(`[` + ev("a") + `,` + auditJSON("nan", `,"requestObject":{"x":NaN}`) + `]`)},
		{name: "1e400", body: text(auditJSON("big-number", `,"requestObject":{"x":1e400,"y":-1e400,"z":1.5}`)), ids: []string{"big-number"},
			check: func(t *testing.T, out []map[string]any) {
				ro, _ := out[0]["requestObject"].(map[string]any)
				if ro["x"] != "1e400" || ro["y"] != "-1e400" || ro["z"] != 1.5 {
					t.Errorf("out-of-range numbers: %#v, want the strings \"1e400\", \"-1e400\" and 1.5", ro)
				}
			}},
		{name: "infinite float in a map", body: func() map[string]any {
			m := auditMap(t, "inf-map")
			m["requestObject"] = map[string]any{"x": math.Inf(1), "y": math.Inf(-1), "z": math.NaN()}
			return m
		}(), ids: []string{"inf-map"}, check: func(t *testing.T, out []map[string]any) {
			ro, _ := out[0]["requestObject"].(map[string]any)
			if ro["x"] != "+Inf" || ro["y"] != "-Inf" || ro["z"] != "NaN" {
				t.Errorf("non-finite floats: %#v, want the strings +Inf, -Inf, NaN", ro)
			}
		}},
		{name: "deep nesting", body: text(deepJSON)},
		{name: "deep nesting in an event", body: text(auditJSON("deep", `,"requestObject":`+deepJSON))},
		{name: "deep nesting as a map", body: map[string]any{"auditID": "deep", "requestObject": rawMsgpack(deepMsgpack(2000))}},
		{name: "deep truncated", body: text(strings.Repeat("[", 1<<19) + strings.Repeat(",", 1<<19) + "[Truncated...]")},
		{name: "3 MiB event", body: text(big), ids: []string{"big"}},
		{name: "3 MiB of text", body: text(strings.Repeat("not json ", 3<<20/9))},
		{name: "binary", body: text(string(binary))},
		{name: "binary as bin", body: map[string]any{"log": binary}},
		{name: "binary after a brace", body: text("{" + string(binary))},
		{name: "invalid UTF-8", body: text(invalidUTF8), ids: []string{"utf8"}},
		{name: "duplicate keys", body: text(`{"auditID":"dup","auditID":"dup","verb":"get","verb":"list","stage":"ResponseComplete"}`), ids: []string{"dup"}},
		{name: "duplicate keys as a map", raw: bytes.Join([][]byte{{0x84}, mp(t, "auditID"), mp(t, "dupm"), mp(t, "auditID"), mp(t, "dupm"),
			mp(t, "verb"), mp(t, "get"), mp(t, "verb"), mp(t, "list")}, nil), ids: []string{"dupm"}},
		{name: "klog line", body: text(klog)},
		{name: "AKS envelope", body: aks(ev("aks")), ids: []string{"aks"}, check: func(t *testing.T, out []map[string]any) {
			if out[0]["properties"] != nil || out[0]["category"] != "kube-audit" {
				t.Errorf("AKS envelope: properties (the event's text) must go, the other envelope fields stay: %v", out[0])
			}
		}},
		{name: "AKS envelope of a klog line", body: aks(klog)},
		{name: "AKS placeholder", body: text(auditJSON("aks-big", `,"level":"RequestResponse","requestObject":"skipped-too-big-size-object","responseObject":"skipped-too-big-size-object"`)),
			ids: []string{"aks-big"}, check: func(t *testing.T, out []map[string]any) {
				if out[0]["truncated"] != true || !strings.Contains(fmt.Sprint(out[0]["truncation"]), "aks") {
					t.Errorf("AKS placeholder: truncated %v, truncation %v; want true, aks", out[0]["truncated"], out[0]["truncation"])
				}
			}},
		{name: "Event Hub body", body: map[string]any{"records": []any{aks(ev("eh1")), aks(klog), aks(ev("eh2"))}}, ids: []string{"eh1", "", "eh2"},
			check: func(t *testing.T, out []map[string]any) {
				p, _ := out[1]["properties"].(map[string]any)
				if p["log"] != klog || out[1]["category"] != "kube-audit" {
					t.Errorf("a klog record of an Event Hub body must come out as it was: %v", out[1])
				}
			}},
		{name: "Event Hub body as text", body: text(`{"records":[` + mustJSON(t, aks(ev("eh1"))) + `,` + mustJSON(t, aks(ev("eh2"))) + `]}`), ids: []string{"eh1", "eh2"}},
		{name: "Event Hub body of klog lines", body: map[string]any{"records": []any{aks(klog), aks(klog)}}},
		{name: "Event Hub body, empty", body: map[string]any{"records": []any{}}},
		{name: "CloudWatch subscription", body: cw("DATA_MESSAGE", ev("cw1"), klog, ev("cw2")[:200]+"[Truncated...]"), ids: []string{"cw1", "", "cw2"},
			check: func(t *testing.T, out []map[string]any) {
				if out[1]["message"] != klog || out[2]["truncated"] != true {
					t.Errorf("CloudWatch: klog line %v, truncated %v", out[1], out[2]["truncated"])
				}
				for _, r := range out {
					if r["logEvents"] != nil || r["messageType"] != nil {
						t.Errorf("CloudWatch: the payload's own keys in a record: %v", r)
					}
				}
			}},
		{name: "CloudWatch subscription as text", body: text(mustJSON(t, cw("DATA_MESSAGE", ev("cw1"), ev("cw2")))), ids: []string{"cw1", "cw2"}},
		{name: "CloudWatch subscription of klog lines", body: cw("DATA_MESSAGE", klog, klog)},
		{name: "CloudWatch control message", body: cw("CONTROL_MESSAGE", "CWL CONTROL MESSAGE: Checking health of destination Firehose.")},
		{name: "CloudWatch control message with an event", body: cw("CONTROL_MESSAGE", ev("x"))},
		{name: "webhook EventList as a map", body: map[string]any{"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": map[string]any{},
			"items": []any{auditMap(t, "w1"), auditMap(t, "w2"), auditMap(t, "w3")}, "REMOTE_ADDR": "127.0.0.1"}, ids: []string{"w1", "w2", "w3"},
			check: func(t *testing.T, out []map[string]any) {
				for _, r := range out {
					if r["kind"] != "Event" || r["items"] != nil || r["metadata"] != nil || r["REMOTE_ADDR"] != "127.0.0.1" {
						t.Errorf("EventList item carries the batch or lost the added key: kind %v items %v metadata %v REMOTE_ADDR %v",
							r["kind"], r["items"] != nil, r["metadata"], r["REMOTE_ADDR"])
					}
				}
			}},
	}

	lead := v2(t, et(1, 0), map[string]any{}, map[string]any{"log": ev("lead")})
	for _, addParseError := range []bool{false, true} {
		cfg := baseCfg()
		cfg.AddParseError = addParseError
		f, _ := newFilter(t, cfg)
		for _, c := range cases {
			name := fmt.Sprintf("%s (add_parse_error %v)", c.name, addParseError)
			var in []byte
			if c.raw != nil {
				in = mp(t, []any{[]any{et(2, 0), map[string]any{"m": 1}}, rawMsgpack(c.raw)})
			} else {
				in = v2(t, et(2, 0), map[string]any{"m": 1}, c.body)
			}
			out, mod := process(t, f, append(append([]byte{}, lead...), in...))
			if !mod {
				t.Errorf("%s: chunk with an audit event not modified", name)
				continue
			}
			evs := events(t, out)
			checkJSON(t, name, evs)
			if len(evs) < 2 {
				t.Errorf("%s: the record disappeared (%d records out for 2 in)", name, len(evs))
				continue
			}
			evs = evs[1:]
			var recs []map[string]any
			for _, e := range evs {
				recs = append(recs, bodyMap(t, e))
			}
			if c.ids == nil {
				if len(evs) != 1 {
					t.Errorf("%s: %d records out, want the record passed through", name, len(evs))
					continue
				}
				if !addParseError && !bytes.Equal(evs[0].Raw, in) {
					t.Errorf("%s: not passed through byte for byte: %.300v", name, recs[0])
				}
				if addParseError {
					pe, _ := recs[0]["parse_error"].(string)
					orig := bodyMap(t, events(t, in)[0])
					delete(recs[0], "parse_error")
					if pe == "" || fmt.Sprint(recs[0]) != fmt.Sprint(orig) {
						t.Errorf("%s: want the record with a parse_error, got parse_error %q", name, pe)
					}
				}
				continue
			}
			var got []string
			for _, r := range recs {
				id, _ := r["auditID"].(string)
				got = append(got, id)
			}
			if fmt.Sprint(got) != fmt.Sprint(c.ids) {
				t.Errorf("%s: audit IDs out %q, want %q", name, got, c.ids)
				continue
			}
			for i, r := range recs {
				if c.ids[i] == "" { // an item that is not an audit event, as it was
					if _, has := r["parse_error"]; has != addParseError {
						t.Errorf("%s: record %d: parse_error present %v with add_parse_error %v", name, i, has, addParseError)
					}
				} else if r["outcome"] == nil {
					t.Errorf("%s: record %d not enriched: %.300v", name, i, r)
				}
			}
			if c.check != nil {
				c.check(t, recs)
			}
		}
		st := f.Stats()
		if st.RecordsOut+st.Dropped < st.RecordsIn || st.RecordsIn != uint64(2*len(cases)) {
			t.Errorf("stats %v: records out + dropped < records in", st)
		}
	}
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestWebhookBatchSize is kube-apiserver's webhook batch as Fluent Bit's http input hands
// it over: the EventList as one map record, with the key http adds (add_remote_addr).
// Each event comes out once, in order, carrying nothing of the batch: the output is
// about the size of the events, not events × batch (it was ×250 for batches of 400).
func TestWebhookBatchSize(t *testing.T) {
	var items []any
	var want []string
	eventBytes := 0
	for i := 0; i < 400; i++ {
		id := fmt.Sprintf("w%03d", i)
		items = append(items, auditMap(t, id))
		want = append(want, id)
		eventBytes += len(mp(t, auditMap(t, id)))
	}
	body := map[string]any{"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": map[string]any{},
		"items": items, "REMOTE_ADDR": "127.0.0.1"}
	for _, preserveKey := range []bool{false, true} {
		cfg := baseCfg()
		cfg.PreserveKey = preserveKey
		f, _ := newFilter(t, cfg)
		for _, in := range [][]byte{
			v2(t, et(1, 0), map[string]any{}, body),
			v2(t, et(1, 0), map[string]any{}, map[string]any{"log": body, "REMOTE_ADDR": "127.0.0.1"}), // under key, decoded
			v2(t, et(1, 0), map[string]any{}, map[string]any{"log": mustJSON(t, body), "REMOTE_ADDR": "127.0.0.1"}),
		} {
			out, mod := process(t, f, in)
			if !mod {
				t.Fatal("not modified")
			}
			evs := events(t, out)
			checkJSON(t, "webhook batch", evs)
			var got []string
			for _, e := range evs {
				r := bodyMap(t, e)
				id, _ := r["auditID"].(string)
				got = append(got, id)
				if r["items"] != nil || r["metadata"] != nil || r["log"] != nil || r["kind"] != "Event" || r["REMOTE_ADDR"] != "127.0.0.1" {
					t.Fatalf("preserve_key %v: record %s carries the batch (items %v, metadata %v, log %v, kind %v) or lost REMOTE_ADDR",
						preserveKey, id, r["items"] != nil, r["metadata"], r["log"] != nil, r["kind"])
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("preserve_key %v: events out %v, want w000..w399 once each in order", preserveKey, got)
			}
			if len(out) > 3*eventBytes {
				t.Fatalf("preserve_key %v: %d bytes out for %d bytes of events", preserveKey, len(out), eventBytes)
			}
			t.Logf("preserve_key %v: %d bytes out for %d bytes of events (%.2f×)", preserveKey, len(out), eventBytes, float64(len(out))/float64(eventBytes))
		}
	}
}

// TestPanicPassesRecordThrough reaches the per-record recover: a record that makes the
// processing panic comes out unchanged, the others are enriched, Panics counts it.
func TestPanicPassesRecordThrough(t *testing.T) {
	marker := []byte("kubetrail-test-panic")
	testHook = func(body []byte) {
		if bytes.Contains(body, marker) {
			panic("test panic")
		}
	}
	defer func() { testHook = nil }()
	good := v2(t, et(1, 0), map[string]any{}, map[string]any{"log": auditJSON("a", "")})
	bad := v2(t, et(2, 0), map[string]any{"m": 1}, map[string]any{"log": auditJSON("b", `,"note":"`+string(marker)+`"`)})
	f, l := newFilter(t, baseCfg())
	out, mod := process(t, f, bytes.Join([][]byte{good, bad, good}, nil))
	if !mod {
		t.Fatal("not modified")
	}
	evs := events(t, out)
	if len(evs) != 3 {
		t.Fatalf("%d records out, want 3", len(evs))
	}
	if !bytes.Equal(evs[1].Raw, bad) || bodyMap(t, evs[0])["outcome"] == nil || bodyMap(t, evs[2])["outcome"] == nil {
		t.Fatalf("want the panicking record passed through byte for byte between two enriched ones; got %v", bodyMap(t, evs[1]))
	}
	if st := f.Stats(); st.Panics != 1 || st.RecordsIn != 3 || st.RecordsOut != 3 {
		t.Fatalf("stats %v, want panics=1, 3 in, 3 out", st)
	}
	if !strings.Contains(l.all(), "passed through unchanged: panic: test panic") {
		t.Fatalf("log: %q", l.all())
	}
}
