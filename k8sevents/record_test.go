package k8sevents

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/valyala/fastjson"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/kubetrail/kubetrail/flbchunk"

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

func TestFactsBothAPIs(t *testing.T) {
	core := map[string]any{
		"reason": "BackOff", "type": "Warning",
		"metadata":       map[string]any{"namespace": "web"},
		"involvedObject": map[string]any{"kind": "Pod", "name": "web-1"},
		"source":         map[string]any{"component": "kubelet"},
	}
	f := coreAPI.facts(nil, parse(t, core))
	if f[conf.EventRuleKind] != "Pod" || f[conf.EventRuleName] != "web-1" || f[conf.EventRuleSource] != "kubelet" || f[conf.EventRuleNamespace] != "web" {
		t.Errorf("core facts %q", f)
	}
	ev := map[string]any{
		"reason": "Scheduled", "type": "Normal", "reportingController": "default-scheduler",
		"regarding":        map[string]any{"kind": "Pod", "name": "web-2"},
		"deprecatedSource": map[string]any{"component": "old"},
	}
	f = eventsAPI.facts(nil, parse(t, ev))
	if f[conf.EventRuleKind] != "Pod" || f[conf.EventRuleName] != "web-2" || f[conf.EventRuleSource] != "default-scheduler" {
		t.Errorf("events.k8s.io facts %q", f)
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
