package k8sevents

import (
	"encoding/json"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/valyala/fastjson"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/kubetrail/kubetrail/plugin/flbchunk"

	"github.com/kubetrail/kubetrail/conf"
)

func TestRecordTimeOrder(t *testing.T) {
	cases := []struct {
		api  api
		obj  map[string]any
		want string
	}{
		{coreAPI, map[string]any{
			"series":         map[string]any{"lastObservedTime": "2026-11-23T10:00:03.123456Z"},
			"eventTime":      "2026-11-23T10:00:02.000001Z",
			"lastTimestamp":  "2026-11-23T10:00:01Z",
			"firstTimestamp": "2026-11-23T10:00:00Z",
		}, "2026-11-23T10:00:03.123456Z"},
		{coreAPI, map[string]any{"eventTime": nil, "lastTimestamp": "2026-11-23T10:00:01Z", "firstTimestamp": "2026-11-23T10:00:00Z"}, "2026-11-23T10:00:01Z"},
		{coreAPI, map[string]any{"lastTimestamp": "not a time", "firstTimestamp": "2026-11-23T10:00:00Z"}, "2026-11-23T10:00:00Z"},
		{coreAPI, map[string]any{"metadata": map[string]any{"creationTimestamp": "2026-11-23T09:00:00Z"}}, "2026-11-23T09:00:00Z"},
		{eventsAPI, map[string]any{"deprecatedLastTimestamp": "2026-11-23T10:00:01Z", "lastTimestamp": "2026-11-23T11:00:00Z"}, "2026-11-23T10:00:01Z"},
		{coreAPI, map[string]any{}, ""},
	}
	for i, c := range cases {
		got := c.api.recordTime(parse(t, c.obj))
		if c.want == "" {
			if !got.IsZero() {
				t.Errorf("%d: %v, want zero", i, got)
			}
			continue
		}
		want, _ := time.Parse(time.RFC3339Nano, c.want)
		if !got.Equal(want) {
			t.Errorf("%d: %v, want %v", i, got, want)
		}
	}
}

// TestFactsBothAPIs checks each of the six rule facts of each API at its own path
// (every value is distinct, so a swapped or wrong path shows), and which source wins
// when both are set.
func TestFactsBothAPIs(t *testing.T) {
	want := func(t *testing.T, got []string, reason, typ, ns, kind, name, source string) {
		t.Helper()
		w := make([]string, len(conf.EventRuleSchema))
		w[conf.EventRuleReason], w[conf.EventRuleType], w[conf.EventRuleNamespace] = reason, typ, ns
		w[conf.EventRuleKind], w[conf.EventRuleName], w[conf.EventRuleSource] = kind, name, source
		if !reflect.DeepEqual(got, w) {
			t.Errorf("facts %q, want %q", got, w)
		}
	}
	core := map[string]any{
		"reason": "BackOff", "type": "Warning",
		"metadata":           map[string]any{"namespace": "web", "name": "ev-name"},
		"involvedObject":     map[string]any{"kind": "Pod", "name": "web-1", "namespace": "obj-ns"},
		"reportingComponent": "kubelet-new",
		"source":             map[string]any{"component": "kubelet-old", "host": "node-1"},
		// events.k8s.io field names: not the core API's
		"regarding": map[string]any{"kind": "Node", "name": "wrong"}, "reportingController": "wrong",
	}
	t.Run("core/v1", func(t *testing.T) {
		want(t, coreAPI.facts(nil, parse(t, core)), "BackOff", "Warning", "web", "Pod", "web-1", "kubelet-new")
		delete(core, "reportingComponent")
		want(t, coreAPI.facts(nil, parse(t, core)), "BackOff", "Warning", "web", "Pod", "web-1", "kubelet-old")
		core["reportingComponent"] = "" // as the API lists old Events: empty, not absent
		want(t, coreAPI.facts(nil, parse(t, core)), "BackOff", "Warning", "web", "Pod", "web-1", "kubelet-old")
		want(t, coreAPI.facts(nil, parse(t, map[string]any{})), "", "", "", "", "", "")
	})
	ev := map[string]any{
		"reason": "Scheduled", "type": "Normal",
		"metadata":            map[string]any{"namespace": "batch", "name": "ev-name"},
		"regarding":           map[string]any{"kind": "Job", "name": "nightly", "namespace": "obj-ns"},
		"reportingController": "default-scheduler",
		"deprecatedSource":    map[string]any{"component": "old-scheduler"},
		// core field names: not the events.k8s.io API's
		"involvedObject": map[string]any{"kind": "Pod", "name": "wrong"}, "reportingComponent": "wrong",
		"source": map[string]any{"component": "wrong"},
	}
	t.Run("events.k8s.io/v1", func(t *testing.T) {
		want(t, eventsAPI.facts(nil, parse(t, ev)), "Scheduled", "Normal", "batch", "Job", "nightly", "default-scheduler")
		delete(ev, "reportingController")
		want(t, eventsAPI.facts(nil, parse(t, ev)), "Scheduled", "Normal", "batch", "Job", "nightly", "old-scheduler")
		want(t, eventsAPI.facts(nil, parse(t, map[string]any{})), "", "", "", "", "", "")
	})
}

// TestRecordTimePrecedence: each time field wins over the ones after it, in both APIs,
// and the other API's field names are not read.
func TestRecordTimePrecedence(t *testing.T) {
	const (
		series   = "2026-11-23T10:00:04.123456Z"
		evTime   = "2026-11-23T10:00:03.000001Z"
		last     = "2026-11-23T10:00:02Z"
		first    = "2026-11-23T10:00:01Z"
		creation = "2026-11-23T10:00:00Z"
		other    = "2030-01-01T00:00:00Z" // the other API's field: never the record time
	)
	for _, c := range []struct {
		name        string
		api         api
		last, first string // the API's field names
		otherLast   string // the other API's
	}{
		{"core/v1", coreAPI, "lastTimestamp", "firstTimestamp", "deprecatedLastTimestamp"},
		{"events.k8s.io/v1", eventsAPI, "deprecatedLastTimestamp", "deprecatedFirstTimestamp", "lastTimestamp"},
	} {
		t.Run(c.name, func(t *testing.T) {
			obj := map[string]any{
				"series":    map[string]any{"lastObservedTime": series, "count": 2},
				"eventTime": evTime, c.last: last, c.first: first,
				"metadata":  map[string]any{"creationTimestamp": creation},
				c.otherLast: other,
			}
			// Remove the winner one at a time: the next one must win.
			for _, step := range []struct {
				want   string
				remove func()
			}{
				{series, func() { delete(obj, "series") }},
				{evTime, func() { obj["eventTime"] = nil }}, // core/v1 lists it as null
				{last, func() { delete(obj, c.last) }},
				{first, func() { delete(obj, c.first) }},
				{creation, func() { delete(obj, "metadata") }},
			} {
				got := c.api.recordTime(parse(t, obj))
				want, _ := time.Parse(time.RFC3339Nano, step.want)
				if !got.Equal(want) {
					t.Errorf("with %v: record time %v, want %v", keys(obj), got.UTC(), want)
				}
				step.remove()
			}
			if got := c.api.recordTime(parse(t, obj)); !got.IsZero() {
				t.Errorf("only the other API's %s: record time %v, want zero", c.otherLast, got)
			}
		})
	}
}

func keys(m map[string]any) []string {
	var out []string
	for k, v := range m {
		if v != nil {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// TestWantedIncludeExclude applies include and exclude to parsed Events: exclude wins
// over include, and each works alone.
func TestWantedIncludeExclude(t *testing.T) {
	evs := map[string]map[string]any{
		"pod-warning": {"reason": "BackOff", "type": "Warning", "metadata": map[string]any{"namespace": "web"},
			"involvedObject": map[string]any{"kind": "Pod", "name": "web-1"}, "source": map[string]any{"component": "kubelet"}},
		"pod-pulled": {"reason": "Pulled", "type": "Normal", "metadata": map[string]any{"namespace": "web"},
			"involvedObject": map[string]any{"kind": "Pod", "name": "web-1"}, "source": map[string]any{"component": "kubelet"}},
		"node-warning": {"reason": "Rebooted", "type": "Warning", "metadata": map[string]any{"namespace": "default"},
			"involvedObject": map[string]any{"kind": "Node", "name": "node-1"}, "reportingComponent": "kubelet"},
		"system": {"reason": "LeaderElection", "type": "Normal", "metadata": map[string]any{"namespace": "kube-system"},
			"involvedObject": map[string]any{"kind": "Lease", "name": "kube-scheduler"}, "source": map[string]any{"component": "default-scheduler"}},
	}
	for _, c := range []struct {
		include, exclude string
		want             []string
	}{
		{"", "", []string{"node-warning", "pod-pulled", "pod-warning", "system"}},
		{"type=Warning", "", []string{"node-warning", "pod-warning"}},
		{"", "reason=Pulled", []string{"node-warning", "pod-warning", "system"}},
		{"", "namespace=kube-*; kind=Node", []string{"pod-pulled", "pod-warning"}},
		{"", "source=kubelet", []string{"system"}},
		{"source=kubelet", "type=Warning kind=Node", []string{"pod-pulled", "pod-warning"}},
		{"namespace=web", "name=web-*", nil},
	} {
		cfg, err := conf.ParseEvents(conf.MapGetter{"include": c.include, "exclude": c.exclude})
		if err != nil {
			t.Fatal(err)
		}
		in := &Input{cfg: cfg, api: coreAPI}
		var got []string
		for name, obj := range evs {
			if in.wanted(parse(t, obj)) {
				got = append(got, name)
			}
		}
		sort.Strings(got)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("include %q exclude %q: wanted %q, want %q", c.include, c.exclude, got, c.want)
		}
	}
}

// parse turns a test object into the parsed JSON the input works on.
func parse(t *testing.T, obj map[string]any) *fastjson.Value {
	t.Helper()
	b, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	v, err := fastjson.ParseBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestEncodeRecord(t *testing.T) {
	in := `{"metadata":{"name":"e1","namespace":"web","uid":"u1","resourceVersion":"7",
		"managedFields":[{"manager":"kubelet"}],"labels":{"a":"b"}},
		"involvedObject":{"kind":"Pod","name":"web-1"},"reason":"BackOff","count":3,
		"big":18446744073709551615,"ratio":0.5,"ok":true,"none":null,"kind":"Wrong",
		"lastTimestamp":"2026-11-23T10:00:01Z","series":{"count":2,"list":[1,"x"]}}`
	v := fastjson.MustParse(in)
	e := newEncoder(&coreAPI, "prod-1")
	at := time.Date(2026, 11, 23, 10, 0, 1, 123456000, time.UTC)
	b, err := e.encode(v, at)
	if err != nil {
		t.Fatal(err)
	}
	d := flbchunk.NewDecoder(b)
	var ev flbchunk.Event
	if err := d.Next(&ev); err != nil {
		t.Fatal(err)
	}
	if got := time.Unix(ev.Time.Sec, ev.Time.Nsec); !got.Equal(at) {
		t.Errorf("time %v, want %v", got, at)
	}
	var got map[string]any
	if err := msgpack.Unmarshal(ev.Body, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"apiVersion": "v1", "kind": "Event", "cluster_name": "prod-1",
		"metadata":       map[string]any{"name": "e1", "namespace": "web", "uid": "u1", "resourceVersion": "7", "labels": map[string]any{"a": "b"}},
		"involvedObject": map[string]any{"kind": "Pod", "name": "web-1"},
		"reason":         "BackOff", "count": int8(3), "big": uint64(18446744073709551615), "ratio": 0.5,
		"ok": true, "none": nil, "lastTimestamp": "2026-11-23T10:00:01Z",
		"series": map[string]any{"count": int8(2), "list": []any{int8(1), "x"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("record\n got %#v\nwant %#v", got, want)
	}
}

// BenchmarkEncode: one Event as the API lists it (~0.7 KB of JSON), parsed and written
// as a record, as the LIST path does per Event.
func BenchmarkEncode(b *testing.B) {
	js := []byte(`{"metadata":{"name":"web-7d4b9.1879a2c3","namespace":"default","uid":"6f0c2a5e-1c1e-4c55-9d0e-3b0f6f3c9d11","resourceVersion":"48213","creationTimestamp":"2026-11-23T10:00:00Z","managedFields":[{"manager":"kubelet","operation":"Update","apiVersion":"v1","time":"2026-11-23T10:00:00Z","fieldsType":"FieldsV1","fieldsV1":{"f:count":{},"f:message":{}}}]},"involvedObject":{"kind":"Pod","namespace":"default","name":"web-7d4b9","uid":"4a1b1f4e-2c4e-4f7e-9a55-000000000001","apiVersion":"v1","resourceVersion":"12345","fieldPath":"spec.containers{web}"},"reason":"BackOff","message":"Back-off restarting failed container web in pod web-7d4b9_default","source":{"component":"kubelet","host":"node-1"},"firstTimestamp":"2026-11-23T10:00:00Z","lastTimestamp":"2026-11-23T10:05:00Z","count":7,"type":"Warning","eventTime":null,"reportingComponent":"kubelet","reportingInstance":"node-1"}`)
	e := newEncoder(&coreAPI, "prod-1")
	var p fastjson.Parser
	b.SetBytes(int64(len(js)))
	b.ReportAllocs()
	for b.Loop() {
		v, err := p.ParseBytes(js)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := e.encode(v, coreAPI.recordTime(v)); err != nil {
			b.Fatal(err)
		}
	}
}
