package k8sevents

import (
	"bytes"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fastjson"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/kubetrail/kubetrail/enrich"
)

// The two plugins write JSON values as msgpack: the k8s_audit filter an audit event's
// fields (package enrich), this input an Event's. The tests below put the same JSON
// value in a field of each, pass it through each plugin's own path (enrich.Worker.Text
// or Map; encoder.encode) and compare the field's msgpack byte for byte.

// auditLine is an audit event whose field "extra" is v (JSON text).
func auditLine(v string) []byte {
	return []byte(`{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata",` +
		`"auditID":"00000000-0000-4000-8000-000000000001","stage":"ResponseComplete",` +
		`"requestURI":"/api/v1/namespaces/default/pods/web-0","verb":"get",` +
		`"user":{"username":"admin"},"requestReceivedTimestamp":"2026-11-20T10:00:00.000100Z",` +
		`"stageTimestamp":"2026-11-20T10:00:00.002600Z","extra":` + v + `}`)
}

// auditMap is auditLine as a map record (Fluent Bit parsed the JSON): v is msgpack.
func auditMap(t *testing.T, v []byte) []byte {
	t.Helper()
	rec, err := msgpack.Marshal(map[string]any{
		"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
		"auditID": "00000000-0000-4000-8000-000000000001", "stage": "ResponseComplete",
		"requestURI": "/api/v1/namespaces/default/pods/web-0", "verb": "get",
		"user":                     map[string]any{"username": "admin"},
		"requestReceivedTimestamp": "2026-11-20T10:00:00.000100Z",
		"stageTimestamp":           "2026-11-20T10:00:00.002600Z",
		"extra":                    msgpack.RawMessage(v),
	})
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// auditExtra is the msgpack of the field "extra" of the one record k8s_audit wrote,
// or the error it gave instead.
func auditExtra(t *testing.T, res enrich.Result) ([]byte, error) {
	t.Helper()
	if res.Err != nil {
		return nil, res.Err
	}
	if len(res.Records) != 1 {
		t.Fatalf("k8s_audit: %d records, want 1", len(res.Records))
	}
	r := res.Records[0]
	return extraField(t, "k8s_audit", msgpack.NewDecoder(bytes.NewReader(r.Fields)), r.Count), nil
}

// eventExtra writes an Event whose field "extra" is v through the k8s_events path
// and returns that field's msgpack.
func eventExtra(t *testing.T, e *encoder, v *fastjson.Value) []byte {
	t.Helper()
	obj := fastjson.MustParse(`{"metadata":{"name":"e1","namespace":"web"},"reason":"BackOff"}`)
	obj.Set("extra", v)
	b, err := e.encode(obj, time.Unix(1, 0))
	if err != nil {
		t.Fatal(err)
	}
	d := msgpack.NewDecoder(bytes.NewReader(b)) // [[time, {}], {fields}]
	if n, err := d.DecodeArrayLen(); err != nil || n != 2 {
		t.Fatalf("k8s_events: record is no [header, body] (%d, %v)", n, err)
	}
	if err := d.Skip(); err != nil {
		t.Fatal(err)
	}
	n, err := d.DecodeMapLen()
	if err != nil {
		t.Fatal(err)
	}
	return extraField(t, "k8s_events", d, n)
}

// extraField finds "extra" among the next count key/value pairs of d.
func extraField(t *testing.T, who string, d *msgpack.Decoder, count int) []byte {
	t.Helper()
	for range count {
		k, err := d.DecodeString()
		if err != nil {
			t.Fatalf("%s: key: %v", who, err)
		}
		v, err := d.DecodeRaw()
		if err != nil {
			t.Fatalf("%s: field %q: %v", who, k, err)
		}
		if k == "extra" {
			return v
		}
	}
	t.Fatalf("%s: no field extra", who)
	return nil
}

// nest wraps inner in n arrays.
func nest(n int, inner string) string {
	return strings.Repeat("[", n) + inner + strings.Repeat("]", n)
}

// nestObj wraps inner in n objects {"a": ...}.
func nestObj(n int, inner string) string {
	return strings.Repeat(`{"a":`, n) + inner + strings.Repeat("}", n)
}

// TestPluginsWriteJSONAlike: every JSON value through the k8s_audit filter's path and
// through the k8s_events input's path gives the same msgpack, and the value the README
// documents: integers that fit int64/uint64 as ints, other numbers as float64, a number
// float64 cannot hold as a string of its text, strings unescaped, nesting kept down to
// the deepest value either plugin's parser accepts.
func TestPluginsWriteJSONAlike(t *testing.T) {
	e, err := enrich.New(enrich.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w := e.NewWorker()
	enc := newEncoder(&coreAPI, "")
	long := strings.Repeat("é", 150)
	cases := []struct {
		json string
		want any // as msgpack.Unmarshal gives it; nil: only agreement is checked
	}{
		{"0", int8(0)},
		{"-0", int8(0)},
		{"-1", int8(-1)},
		{"127", int8(127)},
		{"128", uint8(128)},
		{"-33", int8(-33)},
		{"9223372036854775807", uint64(math.MaxInt64)}, // 2^63-1
		{"-9223372036854775808", int64(math.MinInt64)},
		{"9223372036854775808", uint64(1 << 63)},         // 2^63
		{"18446744073709551615", uint64(math.MaxUint64)}, // 2^64-1
		{"18446744073709551616", float64(1 << 64)},       // 2^64
		{"-9223372036854775809", float64(-(1 << 63))},
		{"1.5", 1.5},
		{"1E2", 100.0},
		{"1e308", 1e308},
		{"1.7976931348623157e308", math.MaxFloat64},
		{"1.7976931348623159e308", "1.7976931348623159e308"},
		{"1e400", "1e400"},
		{"-1e400", "-1e400"},
		{"1e-400", 0.0},
		{"5e-324", 5e-324},
		{`"\u0000"`, "\x00"},
		{`"a\nb\tc\r"`, "a\nb\tc\r"},
		{`"\"\\\/"`, `"\/`},
		{`"\u00e9"`, "é"},
		{`"\ud83d\ude00"`, "😀"},
		{`"\ud800"`, `\ud800`}, // a lone surrogate: fastjson keeps the escape as written
		{`"\ud800x"`, `\ud800x`},
		{`""`, ""},
		{`"` + strings.Repeat("x", 31) + `"`, strings.Repeat("x", 31)},
		{`"` + strings.Repeat("x", 32) + `"`, strings.Repeat("x", 32)},
		{`"` + long + `"`, long},
		{"true", true},
		{"false", false},
		{"null", nil},
		{"[]", []any{}},
		{"{}", map[string]any{}},
		{`{"a":[1,{"b":null}],"c":true,"d":-1.25}`, map[string]any{"a": []any{int8(1), map[string]any{"b": nil}}, "c": true, "d": -1.25}},
		{`{"a":1,"a":2}`, nil}, // duplicate keys
		{`[` + strings.Repeat(`1,`, 15) + `1]`, nil},
		{`{` + strings.Repeat(`"k":0,`, 15) + `"k":0}`, nil},
		// Nesting: "extra" is a field, 1 level down; 298 more is the deepest value
		// fastjson parses below a field (its limit is 300 levels, the document's
		// own included), and an empty array one level deeper still.
		{nest(1, "1"), []any{int8(1)}},
		{nest(63, "1"), nil},
		{nest(64, "1"), nil},
		{nest(65, "1"), nil},
		{nest(100, `{"x":"y"}`), nil},
		{nestObj(65, "1"), nil},
		{nestObj(200, `[1,2]`), nil},
		{nest(298, "1"), nil},
		{nest(299, ""), nil},
		{nestObj(298, "1"), nil},
	}
	for _, c := range cases {
		name := c.json
		if n := len(c.json) - len(strings.TrimLeft(c.json, "[")); n > 1 {
			name = fmt.Sprintf("%d arrays deep", n)
		} else if n := strings.Count(c.json, `{"a":`); n > 1 {
			name = fmt.Sprintf("%d objects deep", n)
		} else if len(name) > 40 {
			name = fmt.Sprintf("%.24s… (%d bytes)", name, len(name))
		}
		audit, err := auditExtra(t, w.Text(auditLine(c.json)))
		if err != nil {
			t.Errorf("%s: k8s_audit: %v", name, err)
			continue
		}
		event := eventExtra(t, enc, fastjson.MustParse(c.json))
		if !bytes.Equal(audit, event) {
			t.Errorf("%s: the plugins disagree:\n k8s_audit  %s\n k8s_events %s", name, trim(audit), trim(event))
		}
		var got, want any
		if err := msgpack.Unmarshal(audit, &got); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		want = c.want
		if c.want == nil && c.json != "null" {
			// Deep values: they must come out whole, as JSON would decode them.
			want = jsonAsMsgpack(t, c.json)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: written as %#v, want %#v", name, got, want)
		}
	}

	// A map record: the deepest value k8s_audit accepts is one level deeper than in
	// JSON text (no document level of fastjson's). Here the Event is built in an arena
	// the same way.
	for _, n := range []int{64, 65, 299} {
		mp := append(bytes.Repeat([]byte{0x91}, n), 0x01)
		audit, err := auditExtra(t, w.Map(auditMap(t, mp)))
		if err != nil {
			t.Errorf("map %d deep: k8s_audit: %v", n, err)
			continue
		}
		event := eventExtra(t, enc, arenaNest(n, 1))
		if !bytes.Equal(audit, event) || !bytes.Equal(audit, mp) {
			t.Errorf("map %d deep: the plugins disagree:\n input      %s\n k8s_audit  %s\n k8s_events %s", n, trim(mp), trim(audit), trim(event))
		}
	}
}

// TestPluginsBeyondDepthLimit: a value deeper than either parser accepts never
// reaches k8s_audit's writer (the record passes through unchanged); a value built
// otherwise that deep (an arena) is written down to the limit with nil below.
func TestPluginsBeyondDepthLimit(t *testing.T) {
	e, _ := enrich.New(enrich.Options{})
	w := e.NewWorker()
	if _, err := auditExtra(t, w.Text(auditLine(nest(299, "1")))); err == nil {
		t.Error("k8s_audit wrote a value nested deeper than fastjson parses")
	}
	if _, err := auditExtra(t, w.Map(auditMap(t, append(bytes.Repeat([]byte{0x91}, 300), 0x01)))); err == nil {
		t.Error("k8s_audit wrote a map record nested deeper than 300 levels")
	}
	enc := newEncoder(&coreAPI, "")
	for _, n := range []int{300, 301, 5000} {
		got := eventExtra(t, enc, arenaNest(n, 1))
		// "extra" is at depth 1: the arrays at depths 1..300 are written, what they
		// hold at 301 is nil.
		want := append(bytes.Repeat([]byte{0x91}, 300), 0xc0)
		if !bytes.Equal(got, want) {
			t.Errorf("%d deep: written as %s, want %s", n, trim(got), trim(want))
		}
	}
}

// TestEventNumbersNotJSON: number text that is no JSON number but that fastjson lets
// through (NaN, inf, +1, 012) is written as a string of that text, never as a float
// Fluent Bit would print as nan or inf. (k8s_audit refuses such input: not JSON.)
func TestEventNumbersNotJSON(t *testing.T) {
	e, _ := enrich.New(enrich.Options{})
	w := e.NewWorker()
	enc := newEncoder(&coreAPI, "")
	for _, s := range []string{"NaN", "nan", "inf", "-inf", "+1", "012", "-01"} {
		v, err := fastjson.Parse("[" + s + "]")
		if err != nil {
			t.Logf("%s: fastjson refuses it (%v)", s, err)
			continue
		}
		if _, err := auditExtra(t, w.Text(auditLine(s))); err == nil || !strings.Contains(err.Error(), strconv.Quote(s)) {
			t.Errorf("%s: k8s_audit: %v, want it refused as not JSON, quoted", s, err)
		}
		var got any
		if err := msgpack.Unmarshal(eventExtra(t, enc, v.GetArray()[0]), &got); err != nil {
			t.Fatal(err)
		}
		if got != s {
			t.Errorf("%s: k8s_events wrote %#v, want the string %q", s, got, s)
		}
	}
}

// arenaNest is n arrays around the integer x, built without the parser's limit.
func arenaNest(n, x int) *fastjson.Value {
	var a fastjson.Arena
	v := a.NewNumberInt(x)
	for range n {
		arr := a.NewArray()
		arr.SetArrayItem(0, v)
		v = arr
	}
	return v
}

// jsonAsMsgpack is what msgpack.Unmarshal gives for s written by the rules above,
// worked out from s's fastjson tree independently of both plugins (deep cases hold
// small integers only).
func jsonAsMsgpack(t *testing.T, s string) any {
	t.Helper()
	var conv func(v *fastjson.Value) any
	conv = func(v *fastjson.Value) any {
		switch v.Type() {
		case fastjson.TypeArray:
			out := []any{}
			for _, x := range v.GetArray() {
				out = append(out, conv(x))
			}
			return out
		case fastjson.TypeObject:
			out := map[string]any{}
			v.GetObject().Visit(func(k []byte, x *fastjson.Value) { out[string(k)] = conv(x) })
			return out
		case fastjson.TypeString:
			return string(v.GetStringBytes())
		case fastjson.TypeNumber:
			if n, err := v.Int(); err == nil && n >= -32 && n < 128 {
				return int8(n)
			}
			if n, err := v.Int(); err == nil && n >= 128 && n < 256 {
				return uint8(n)
			}
			return v.GetFloat64()
		case fastjson.TypeTrue:
			return true
		case fastjson.TypeFalse:
			return false
		}
		return nil
	}
	return conv(fastjson.MustParse(s))
}

// trim shortens msgpack for a message: its length, then its first and last bytes.
func trim(b []byte) string {
	if len(b) > 24 {
		return fmt.Sprintf("(%d bytes) % x … % x", len(b), b[:8], b[len(b)-8:])
	}
	return fmt.Sprintf("(%d bytes) % x", len(b), b)
}
