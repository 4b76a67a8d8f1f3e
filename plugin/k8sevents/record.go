package k8sevents

import (
	"bytes"
	"fmt"
	"time"

	"github.com/valyala/fastjson"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubetrail/kubetrail/conf"
	"github.com/kubetrail/kubetrail/enrich/jsonmp"
	"github.com/kubetrail/kubetrail/plugin/flbchunk"
)

// api holds what differs between the two Event APIs: where the resource is and which
// fields hold the facts rules look at and the record time.
type api struct {
	gvr        schema.GroupVersionResource
	apiVersion string
	prefix     string // URL path of the API version: /api/v1 or /apis/<group>/v1
	// Paths of the rule facts, by conf.EventRule* index; the first present wins.
	factPaths [][][]string
	// Record time candidates, most precise and most recent first.
	times [][]string
}

var (
	coreAPI = api{
		gvr:        schema.GroupVersionResource{Version: "v1", Resource: "events"},
		apiVersion: "v1",
		prefix:     "/api/v1",
		factPaths: [][][]string{
			conf.EventRuleReason:    {{"reason"}},
			conf.EventRuleType:      {{"type"}},
			conf.EventRuleNamespace: {{"metadata", "namespace"}},
			conf.EventRuleKind:      {{"involvedObject", "kind"}},
			conf.EventRuleName:      {{"involvedObject", "name"}},
			conf.EventRuleSource:    {{"reportingComponent"}, {"source", "component"}},
		},
		times: [][]string{
			{"series", "lastObservedTime"}, {"eventTime"}, {"lastTimestamp"},
			{"firstTimestamp"}, {"metadata", "creationTimestamp"},
		},
	}
	eventsAPI = api{
		gvr:        schema.GroupVersionResource{Group: "events.k8s.io", Version: "v1", Resource: "events"},
		apiVersion: "events.k8s.io/v1",
		prefix:     "/apis/events.k8s.io/v1",
		factPaths: [][][]string{
			conf.EventRuleReason:    {{"reason"}},
			conf.EventRuleType:      {{"type"}},
			conf.EventRuleNamespace: {{"metadata", "namespace"}},
			conf.EventRuleKind:      {{"regarding", "kind"}},
			conf.EventRuleName:      {{"regarding", "name"}},
			conf.EventRuleSource:    {{"reportingController"}, {"deprecatedSource", "component"}},
		},
		times: [][]string{
			{"series", "lastObservedTime"}, {"eventTime"}, {"deprecatedLastTimestamp"},
			{"deprecatedFirstTimestamp"}, {"metadata", "creationTimestamp"},
		},
	}
)

// path is the URL path of the Events collection, in one namespace or all.
func (a *api) path(namespace string) string {
	if namespace == "" {
		return a.prefix + "/events"
	}
	return a.prefix + "/namespaces/" + namespace + "/events"
}

func apiFor(name string) api {
	if name == conf.EventsAPIEvents {
		return eventsAPI
	}
	return coreAPI
}

// facts appends the Event's rule facts, indexed by conf.EventRule*, to dst. They are
// views of v's bytes (rules.Set.Match keeps nothing), valid while v is.
func (a *api) facts(dst []string, v *fastjson.Value) []string {
	for _, paths := range a.factPaths {
		var fact string
		for _, path := range paths {
			if s := v.GetStringBytes(path...); len(s) > 0 {
				fact = jsonmp.B2S(s)
				break
			}
		}
		dst = append(dst, fact)
	}
	return dst
}

// recordTime is the time the Event last happened: the first of api.times that is set
// and parses (RFC 3339, with the fraction the API gives: MicroTime has microseconds),
// else the zero time.
func (a *api) recordTime(v *fastjson.Value) time.Time {
	for _, path := range a.times {
		s := v.GetStringBytes(path...)
		if len(s) == 0 {
			continue
		}
		if t, err := time.Parse(time.RFC3339Nano, string(s)); err == nil {
			return t
		}
	}
	return time.Time{}
}

// encoder turns Event objects (the API's JSON, parsed) into Fluent Bit v2 log events.
// Not safe for concurrent use: the collector goroutine owns it.
type encoder struct {
	api     *api
	cluster string
	buf     []byte
}

func newEncoder(a *api, cluster string) *encoder { return &encoder{api: a, cluster: cluster} }

// encode returns the Event as one v2 log event, [[time, {}], {fields}]: the object as
// the API returns it (kubectl get event -o json field names) without
// metadata.managedFields, with apiVersion and kind set (LIST items lack them) and
// cluster_name when configured. Values are written as the k8s_audit filter writes
// audit events (package jsonmp): integers as ints, other numbers as float64, a number
// float64 cannot hold as a string of its text. Number text that is no JSON (NaN, +1:
// fastjson lets them through, the API never sends them) is kept as a string of itself.
func (e *encoder) encode(v *fastjson.Value, t time.Time) ([]byte, error) {
	o, err := v.Object()
	if err != nil {
		return nil, fmt.Errorf("encoding Event %s: %w", describe(v), err)
	}
	b := append(e.buf[:0], 0x92, 0x92)
	b = flbchunk.AppendEventTime(b, flbchunk.Time{Sec: t.Unix(), Nsec: int64(t.Nanosecond())})
	b = append(b, 0x80) // empty metadata map

	// apiVersion, kind and cluster_name are ours; the object's own (if any) are left out.
	n := 2
	if e.cluster != "" {
		n++
	}
	o.Visit(func(k []byte, _ *fastjson.Value) {
		if !e.ownKey(k) {
			n++
		}
	})
	b = jsonmp.AppendMapLen(b, n)
	b = jsonmp.AppendString(b, "apiVersion")
	b = jsonmp.AppendString(b, e.api.apiVersion)
	b = jsonmp.AppendString(b, "kind")
	b = jsonmp.AppendString(b, "Event")
	if e.cluster != "" {
		b = jsonmp.AppendString(b, "cluster_name")
		b = jsonmp.AppendString(b, e.cluster)
	}
	o.Visit(func(k []byte, item *fastjson.Value) {
		if e.ownKey(k) {
			return
		}
		b = jsonmp.AppendStringBytes(b, k)
		if string(k) == "metadata" && item.Type() == fastjson.TypeObject {
			b = metadata(b, item)
			return
		}
		b, _ = jsonmp.AppendValue(b, item, 1)
	})
	e.buf = b
	return bytes.Clone(b), nil
}

// ownKey reports whether k is a top-level field encode writes itself.
func (e *encoder) ownKey(k []byte) bool {
	switch string(k) {
	case "apiVersion", "kind":
		return true
	case "cluster_name":
		return e.cluster != ""
	}
	return false
}

// metadata appends the object's metadata (at depth 1) without managedFields, which
// say which client owns which field: noise in an Event record, and often larger than
// the Event.
func metadata(b []byte, v *fastjson.Value) []byte {
	o, _ := v.Object()
	n := o.Len()
	if o.Get("managedFields") != nil {
		n--
	}
	b = jsonmp.AppendMapLen(b, n)
	o.Visit(func(k []byte, item *fastjson.Value) {
		if string(k) == "managedFields" {
			return
		}
		b = jsonmp.AppendStringBytes(b, k)
		b, _ = jsonmp.AppendValue(b, item, 2)
	})
	return b
}

// describe names an Event in messages: namespace/name (uid, resourceVersion).
func describe(v *fastjson.Value) string {
	return fmt.Sprintf("%s/%s (uid %s, resourceVersion %s)",
		v.GetStringBytes("metadata", "namespace"), v.GetStringBytes("metadata", "name"),
		v.GetStringBytes("metadata", "uid"), v.GetStringBytes("metadata", "resourceVersion"))
}
