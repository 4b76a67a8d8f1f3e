package k8sevents

import (
	"bytes"
	"fmt"
	"time"

	"github.com/vmihailenco/msgpack/v5"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubetrail/kubetrail/conf"
	"github.com/kubetrail/kubetrail/flbchunk"
)

// api holds what differs between the two Event APIs: where the resource is and which
// fields hold the facts rules look at and the record time.
type api struct {
	gvr        schema.GroupVersionResource
	apiVersion string
	// Paths of the rule facts, by conf.EventRule* index; the first present wins.
	factPaths [][][]string
	// Record time candidates, most precise and most recent first.
	times [][]string
}

var (
	coreAPI = api{
		gvr:        schema.GroupVersionResource{Version: "v1", Resource: "events"},
		apiVersion: "v1",
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

func apiFor(name string) api {
	if name == conf.EventsAPIEvents {
		return eventsAPI
	}
	return coreAPI
}

// facts returns the Event's rule facts, indexed by conf.EventRule*.
func (a *api) facts(obj map[string]any) []string {
	out := make([]string, len(a.factPaths))
	for field, paths := range a.factPaths {
		for _, path := range paths {
			if s, ok, _ := unstructured.NestedString(obj, path...); ok && s != "" {
				out[field] = s
				break
			}
		}
	}
	return out
}

// recordTime is the time the Event last happened: the first of api.times that is set
// and parses (RFC 3339, with the fraction the API gives: MicroTime has microseconds),
// else the zero time.
func (a *api) recordTime(obj map[string]any) time.Time {
	for _, path := range a.times {
		s, ok, _ := unstructured.NestedString(obj, path...)
		if !ok || s == "" {
			continue
		}
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t
		}
	}
	return time.Time{}
}

// encoder turns Event objects into Fluent Bit v2 log events. Not safe for concurrent
// use: the collector goroutine owns it.
type encoder struct {
	api     *api
	cluster string
	buf     bytes.Buffer
	enc     *msgpack.Encoder
}

func newEncoder(a *api, cluster string) *encoder {
	e := &encoder{api: a, cluster: cluster}
	e.enc = msgpack.NewEncoder(&e.buf)
	e.enc.UseCompactInts(true)
	e.enc.UseCompactFloats(true)
	return e
}

// encode returns the Event as one v2 log event, [[time, {}], {fields}]: the object as
// the API returns it (kubectl get event -o json field names) without
// metadata.managedFields, with apiVersion and kind set (LIST items lack them) and
// cluster_name when configured. It modifies obj (managedFields removed).
func (e *encoder) encode(obj map[string]any, t time.Time) ([]byte, error) {
	unstructured.RemoveNestedField(obj, "metadata", "managedFields")
	obj["apiVersion"] = e.api.apiVersion
	obj["kind"] = "Event"
	if e.cluster != "" {
		obj["cluster_name"] = e.cluster
	}
	e.buf.Reset()
	head := []byte{0x92, 0x92}
	head = flbchunk.AppendEventTime(head, flbchunk.Time{Sec: t.Unix(), Nsec: int64(t.Nanosecond())})
	head = append(head, 0x80) // empty metadata map
	e.buf.Write(head)
	if err := e.enc.Encode(obj); err != nil {
		return nil, fmt.Errorf("encoding Event %s: %w", describeObj(obj), err)
	}
	return bytes.Clone(e.buf.Bytes()), nil
}

// describeObj names an Event in messages: namespace/name uid rv.
func describeObj(obj map[string]any) string {
	u := unstructured.Unstructured{Object: obj}
	return fmt.Sprintf("%s/%s (uid %s, resourceVersion %s)", u.GetNamespace(), u.GetName(), u.GetUID(), u.GetResourceVersion())
}
