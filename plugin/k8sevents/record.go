package k8sevents

import (
	"bytes"
	"fmt"
	"strconv"
	"time"
	"unsafe"

	"github.com/valyala/fastjson"
	"github.com/vmihailenco/msgpack/v5"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubetrail/kubetrail/conf"
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
				fact = b2s(s)
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

// maxDepth bounds the nesting an Event may have; deeper values become nil. Events are
// shallow (4 levels); this only guards the recursion.
const maxDepth = 64

// encoder turns Event objects (the API's JSON, parsed) into Fluent Bit v2 log events.
// Not safe for concurrent use: the collector goroutine owns it.
type encoder struct {
	api     *api
	cluster string
	buf     bytes.Buffer
	enc     *msgpack.Encoder
	num     []byte
}

func newEncoder(a *api, cluster string) *encoder {
	e := &encoder{api: a, cluster: cluster}
	e.enc = msgpack.NewEncoder(&e.buf)
	e.enc.UseCompactInts(true)
	return e
}

// encode returns the Event as one v2 log event, [[time, {}], {fields}]: the object as
// the API returns it (kubectl get event -o json field names, JSON numbers as integers
// where they are integers) without metadata.managedFields, with apiVersion and kind set
// (LIST items lack them) and cluster_name when configured.
func (e *encoder) encode(v *fastjson.Value, t time.Time) ([]byte, error) {
	o, err := v.Object()
	if err != nil {
		return nil, fmt.Errorf("encoding Event %s: %w", describe(v), err)
	}
	e.buf.Reset()
	head := []byte{0x92, 0x92}
	head = flbchunk.AppendEventTime(head, flbchunk.Time{Sec: t.Unix(), Nsec: int64(t.Nanosecond())})
	head = append(head, 0x80) // empty metadata map
	e.buf.Write(head)

	// apiVersion, kind and cluster_name are ours; the object's own (if any) are left out.
	own := 2
	if e.cluster != "" {
		own++
	}
	n := own
	o.Visit(func(k []byte, _ *fastjson.Value) {
		if !e.ownKey(k) {
			n++
		}
	})
	var werr error
	try := func(err error) {
		if werr == nil {
			werr = err
		}
	}
	try(e.enc.EncodeMapLen(n))
	try(e.enc.EncodeString("apiVersion"))
	try(e.enc.EncodeString(e.api.apiVersion))
	try(e.enc.EncodeString("kind"))
	try(e.enc.EncodeString("Event"))
	if e.cluster != "" {
		try(e.enc.EncodeString("cluster_name"))
		try(e.enc.EncodeString(e.cluster))
	}
	o.Visit(func(k []byte, item *fastjson.Value) {
		if e.ownKey(k) {
			return
		}
		try(e.enc.EncodeString(b2s(k)))
		if string(k) == "metadata" && item.Type() == fastjson.TypeObject {
			try(e.metadata(item))
			return
		}
		try(e.value(item, 1))
	})
	if werr != nil {
		return nil, fmt.Errorf("encoding Event %s: %w", describe(v), werr)
	}
	return bytes.Clone(e.buf.Bytes()), nil
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

// b2s views b as a string without copying, for the encoder, which copies what it
// writes: the record path encodes every key and string of every Event.
func b2s(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// metadata writes the object's metadata without managedFields, which say which client
// owns which field: noise in an Event record, and often larger than the Event.
func (e *encoder) metadata(v *fastjson.Value) error {
	o, _ := v.Object()
	n := o.Len()
	if o.Get("managedFields") != nil {
		n--
	}
	if err := e.enc.EncodeMapLen(n); err != nil {
		return err
	}
	var werr error
	o.Visit(func(k []byte, item *fastjson.Value) {
		if werr != nil || string(k) == "managedFields" {
			return
		}
		if werr = e.enc.EncodeString(b2s(k)); werr == nil {
			werr = e.value(item, 2)
		}
	})
	return werr
}

// value transcodes a JSON value: objects to maps, arrays to arrays, integers to ints
// (uint64 above int64), other numbers to float64.
func (e *encoder) value(v *fastjson.Value, depth int) error {
	if depth > maxDepth {
		return e.enc.EncodeNil()
	}
	switch v.Type() {
	case fastjson.TypeObject:
		o, _ := v.Object()
		if err := e.enc.EncodeMapLen(o.Len()); err != nil {
			return err
		}
		var werr error
		o.Visit(func(k []byte, item *fastjson.Value) {
			if werr == nil {
				if werr = e.enc.EncodeString(b2s(k)); werr == nil {
					werr = e.value(item, depth+1)
				}
			}
		})
		return werr
	case fastjson.TypeArray:
		a, _ := v.Array()
		if err := e.enc.EncodeArrayLen(len(a)); err != nil {
			return err
		}
		for _, item := range a {
			if err := e.value(item, depth+1); err != nil {
				return err
			}
		}
		return nil
	case fastjson.TypeString:
		return e.enc.EncodeString(b2s(v.GetStringBytes()))
	case fastjson.TypeNumber:
		e.num = v.MarshalTo(e.num[:0])
		if bytes.IndexAny(e.num, ".eE") < 0 {
			if i, err := strconv.ParseInt(b2s(e.num), 10, 64); err == nil {
				return e.enc.EncodeInt(i)
			}
			if u, err := strconv.ParseUint(b2s(e.num), 10, 64); err == nil {
				return e.enc.EncodeUint(u)
			}
		}
		f, err := strconv.ParseFloat(b2s(e.num), 64)
		if err != nil {
			return e.enc.EncodeString(b2s(e.num)) // keep what cannot be a float64
		}
		return e.enc.EncodeFloat64(f)
	case fastjson.TypeTrue:
		return e.enc.EncodeBool(true)
	case fastjson.TypeFalse:
		return e.enc.EncodeBool(false)
	}
	return e.enc.EncodeNil()
}

// describe names an Event in messages: namespace/name (uid, resourceVersion).
func describe(v *fastjson.Value) string {
	return fmt.Sprintf("%s/%s (uid %s, resourceVersion %s)",
		v.GetStringBytes("metadata", "namespace"), v.GetStringBytes("metadata", "name"),
		v.GetStringBytes("metadata", "uid"), v.GetStringBytes("metadata", "resourceVersion"))
}
