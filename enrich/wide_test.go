package enrich

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/valyala/fastjson"
	"github.com/vmihailenco/msgpack/v5"
)

// pair is one key/value of a msgpack map, in order.
type pair struct {
	k string
	v any // string, int64, bool, nil, []pair (a map), []any (an array)
}

func encodeOrdered(t *testing.T, enc *msgpack.Encoder, v any) {
	t.Helper()
	var err error
	switch v := v.(type) {
	case []pair:
		err = enc.EncodeMapLen(len(v))
		for _, p := range v {
			if err == nil {
				err = enc.EncodeString(p.k)
			}
			encodeOrdered(t, enc, p.v)
		}
	case []any:
		err = enc.EncodeArrayLen(len(v))
		for _, it := range v {
			encodeOrdered(t, enc, it)
		}
	default:
		err = enc.Encode(v)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// decodeOrdered reads a msgpack value keeping the order (and any duplicates) of map keys.
func decodeOrdered(t *testing.T, d *msgpack.Decoder) any {
	t.Helper()
	c, err := d.PeekCode()
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case c>>4 == 0x8 || c == 0xde || c == 0xdf:
		n, _ := d.DecodeMapLen()
		out := make([]pair, 0, n)
		for i := 0; i < n; i++ {
			k, err := d.DecodeString()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, pair{k, decodeOrdered(t, d)})
		}
		return out
	case c>>4 == 0x9 || c == 0xdc || c == 0xdd:
		n, _ := d.DecodeArrayLen()
		out := make([]any, 0, n)
		for i := 0; i < n; i++ {
			out = append(out, decodeOrdered(t, d))
		}
		return out
	}
	v, err := d.DecodeInterface()
	if err != nil {
		t.Fatal(err)
	}
	if i, ok := v.(int8); ok {
		return int64(i)
	}
	return v
}

// Maps of more than wideMap entries are built another way (linear, wideObject): the
// record must be what the Object.Set path gives: every key as it was (quotes,
// backslashes, control characters, invalid UTF-8, empty), in order, a repeated key once
// in its first place with its last value, maps within maps and arrays.
func TestMapWide(t *testing.T) {
	wide := func(n int, prefix string, extra ...pair) []pair {
		var ps []pair
		for i := 0; i < n; i++ {
			ps = append(ps, pair{fmt.Sprintf("%s%03d", prefix, i), int64(i)})
		}
		return append(ps, extra...)
	}
	odd := []pair{{`a"b`, "q"}, {`c\d`, "bs"}, {"\x01x\x1f", "ctl"}, {"\xff\xfe", "bin"}, {"", "empty"}, {"dup", "first"}, {"é", true}, {"n", nil}, {"f", false}}
	inner := wide(40, "i", pair{"dup", "inner-only"})
	obj := wide(60, "k", append(odd,
		pair{"inner", inner},
		pair{"list", []any{wide(35, "a"), "x", []pair{{"small", int64(1)}}, wide(33, "b", pair{"deep", wide(34, "c")})}},
		pair{"dup", "last"},
	)...)
	want := wide(60, "k", odd...)
	want[60+5].v = "last" // dup: first place, last value
	want = append(want, pair{"inner", inner}, pair{"list", []any{wide(35, "a"), "x", []pair{{"small", int64(1)}}, wide(33, "b", pair{"deep", wide(34, "c")})}})

	event := []pair{{"kind", "Event"}, {"auditID", "w"}, {"stage", "ResponseComplete"}, {"verb", "create"},
		{"requestURI", "/api/v1/namespaces/default/configmaps"}, {"requestObject", obj}}
	var buf bytes.Buffer
	encodeOrdered(t, msgpack.NewEncoder(&buf), event)

	e, _ := New(Options{})
	w := e.NewWorker()
	for round := 0; round < 3; round++ { // a warm Worker gives the same
		res := w.Map(buf.Bytes())
		if res.Err != nil || len(res.Records) != 1 {
			t.Fatalf("round %d: %v", round, res.Err)
		}
		r := res.Records[0]
		d := msgpack.NewDecoder(bytes.NewReader(r.Fields))
		var got any
		for i := 0; i < r.Count; i++ {
			k, _ := d.DecodeString()
			v := decodeOrdered(t, d)
			if k == "requestObject" {
				got = v
			}
		}
		if fmt.Sprintf("%#v", got) != fmt.Sprintf("%#v", want) {
			t.Fatalf("round %d: requestObject\n got %#v\nwant %#v", round, got, want)
		}
	}
	// The values fastjson shares between trees are left alone.
	var a fastjson.Arena
	if a.NewNull().Type() != fastjson.TypeNull || a.NewTrue().Type() != fastjson.TypeTrue || a.NewFalse().Type() != fastjson.TypeFalse {
		t.Fatal("a shared fastjson value was overwritten")
	}
	// A wide top level, kept by HasKey's set.
	top := wide(100, "t", event...)
	buf.Reset()
	encodeOrdered(t, msgpack.NewEncoder(&buf), top)
	res := w.Map(buf.Bytes())
	if res.Err != nil || len(res.Records) != 1 {
		t.Fatal(res.Err)
	}
	r := &res.Records[0]
	if !r.HasKey("t099") || !r.HasKey("requestObject") || r.HasKey("t100") || !r.HasKey("group_resource") {
		t.Errorf("HasKey on %d keys", r.Count)
	}
}

// A warm Worker, fed wide and narrow records in turn, gives each the bytes a fresh
// Worker gives: nothing of one record's tree is shared with the next's.
func TestMapWideReuse(t *testing.T) {
	var inputs [][]byte
	for _, n := range []int{33, 500, 40} {
		inputs = append(inputs, wideMapRecord(t, n))
	}
	for _, l := range lines(t, "testdata/metadata.log") {
		var v any
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatal(err)
		}
		p, _ := msgpack.Marshal(v)
		inputs = append(inputs, p)
	}
	e, _ := New(defaults())
	var want [][]byte
	for _, in := range inputs {
		res := e.NewWorker().Map(in)
		if res.Err != nil || len(res.Records) != 1 {
			t.Fatal(res.Err)
		}
		want = append(want, bytes.Clone(res.Records[0].Fields))
	}
	w := e.NewWorker()
	for round := 0; round < 4; round++ {
		for i, in := range inputs {
			res := w.Map(in)
			if res.Err != nil || !bytes.Equal(res.Records[0].Fields, want[i]) {
				t.Fatalf("round %d, input %d: another record (%v)", round, i, res.Err)
			}
		}
	}
}
