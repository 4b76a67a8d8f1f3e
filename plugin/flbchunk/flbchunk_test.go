package flbchunk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// The tests build chunks with an independent msgpack implementation
// (vmihailenco/msgpack) and check the hand-written decoder against it.

func mp(t testing.TB, vs ...any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.SetSortMapKeys(true)
	for _, v := range vs {
		if err := enc.Encode(v); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// rawTS is a pre-encoded timestamp.
type rawTS []byte

func (r rawTS) MarshalMsgpack() ([]byte, error) { return r, nil }

var _ msgpack.Marshaler = rawTS(nil)

func eventTime(sec, nsec uint32) rawTS {
	b := []byte{0xd7, 0}
	b = binary.BigEndian.AppendUint32(b, sec)
	return binary.BigEndian.AppendUint32(b, nsec)
}

// ext8Time is an EventTime in the longer ext8 form.
func ext8Time(sec, nsec uint32) rawTS {
	b := []byte{0xc7, 8, 0}
	b = binary.BigEndian.AppendUint32(b, sec)
	return binary.BigEndian.AppendUint32(b, nsec)
}

func v2(t testing.TB, ts any, meta, body map[string]any) []byte {
	return mp(t, []any{[]any{ts, meta}, body})
}

func legacy(t testing.TB, ts any, body map[string]any) []byte {
	return mp(t, []any{ts, body})
}

func decodeAll(t testing.TB, chunk []byte) ([]Event, error) {
	t.Helper()
	var evs []Event
	d := NewDecoder(chunk)
	for {
		var ev Event
		err := d.Next(&ev)
		if err == io.EOF {
			return evs, nil
		}
		if err != nil {
			return evs, err
		}
		evs = append(evs, ev)
	}
}

func TestDecodeTimestampKinds(t *testing.T) {
	body := map[string]any{"log": "x"}
	meta := map[string]any{"m": 1}
	cases := []struct {
		name   string
		ev     []byte
		want   Time
		legacy bool
		marker bool
	}{
		{"v2 fixext8", v2(t, eventTime(1700000000, 123456789), meta, body), Time{1700000000, 123456789}, false, false},
		{"v2 ext8", v2(t, ext8Time(1700000000, 5), meta, body), Time{1700000000, 5}, false, false},
		{"v2 int", v2(t, int64(1700000001), meta, body), Time{1700000001, 0}, false, false},
		{"v2 uint8", v2(t, uint8(200), meta, body), Time{200, 0}, false, false},
		{"v2 float64", v2(t, float64(1700000002.5), meta, body), Time{1700000002, 500000000}, false, false},
		{"v2 float32", v2(t, float32(1024.25), meta, body), Time{1024, 250000000}, false, false},
		{"legacy ext", legacy(t, eventTime(1700000003, 7), body), Time{1700000003, 7}, true, false},
		{"legacy int", legacy(t, uint64(1700000004), body), Time{1700000004, 0}, true, false},
		{"legacy float", legacy(t, 1700000005.25, body), Time{1700000005, 250000000}, true, false},
		{"marker start ext", v2(t, eventTime(0xFFFFFFFF, 0), meta, map[string]any{}), Time{GroupStart, 0}, false, true},
		{"marker end ext", v2(t, eventTime(0xFFFFFFFE, 0), meta, map[string]any{}), Time{GroupEnd, 0}, false, true},
		{"marker start int", v2(t, int64(-1), meta, map[string]any{}), Time{GroupStart, 0}, false, true},
		{"marker end int", v2(t, int8(-2), meta, map[string]any{}), Time{GroupEnd, 0}, false, true},
		{"not marker: ext with nsec", v2(t, eventTime(0xFFFFFFFF, 1), meta, body), Time{0xFFFFFFFF, 1}, false, false},
		{"not marker: int 0xFFFFFFFF", v2(t, uint32(0xFFFFFFFF), meta, body), Time{0xFFFFFFFF, 0}, false, false},
		{"not marker: -3", v2(t, int64(-3), meta, body), Time{-3, 0}, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			evs, err := decodeAll(t, c.ev)
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != 1 {
				t.Fatalf("got %d events", len(evs))
			}
			ev := evs[0]
			if ev.Time != c.want || ev.Legacy != c.legacy || ev.IsGroupMarker != c.marker {
				t.Fatalf("got time %+v legacy %v marker %v", ev.Time, ev.Legacy, ev.IsGroupMarker)
			}
			if !bytes.Equal(ev.Raw, c.ev) {
				t.Fatal("Raw differs from the input")
			}
			if c.legacy != (ev.Meta == nil) {
				t.Fatalf("Meta %x", ev.Meta)
			}
			if !c.legacy && !bytes.Equal(ev.Meta, mp(t, meta)) {
				t.Fatalf("Meta %x", ev.Meta)
			}
		})
	}
}

func TestDecodeSequenceAndOffsets(t *testing.T) {
	parts := [][]byte{
		v2(t, eventTime(0xFFFFFFFF, 0), map[string]any{"g": 1}, map[string]any{"attr": "a"}),
		v2(t, eventTime(10, 1), map[string]any{}, map[string]any{"log": "one"}),
		legacy(t, 11, map[string]any{"log": "two", "n": []any{1, 2, map[string]any{"x": nil}}}),
		v2(t, eventTime(0xFFFFFFFE, 0), map[string]any{}, map[string]any{}),
	}
	chunk := bytes.Join(parts, nil)
	evs, err := decodeAll(t, chunk)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != len(parts) {
		t.Fatalf("%d events", len(evs))
	}
	off := 0
	for i, ev := range evs {
		if ev.Offset != off || !bytes.Equal(ev.Raw, parts[i]) {
			t.Fatalf("event %d: offset %d want %d", i, ev.Offset, off)
		}
		off += len(parts[i])
	}
	if !evs[0].IsGroupMarker || !evs[3].IsGroupMarker || evs[1].IsGroupMarker {
		t.Fatal("markers")
	}
}

func TestDecodeErrors(t *testing.T) {
	good := v2(t, eventTime(1, 2), map[string]any{}, map[string]any{"log": "hello"})
	cases := map[string][]byte{
		"truncated":          good[:len(good)-3],
		"not array":          mp(t, "hello"),
		"array of 3":         mp(t, []any{1, map[string]any{}, 3}),
		"header of 3":        mp(t, []any{[]any{1, map[string]any{}, 3}, map[string]any{}}),
		"meta not map":       mp(t, []any{[]any{1, "m"}, map[string]any{}}),
		"body not map":       mp(t, []any{[]any{1, map[string]any{}}, "b"}),
		"string timestamp":   mp(t, []any{"now", map[string]any{}}),
		"other ext":          mp(t, []any{rawTS{0xd7, 5, 0, 0, 0, 0, 0, 0, 0, 0}, map[string]any{}}),
		"ext0 of 4 bytes":    mp(t, []any{rawTS{0xd6, 0, 0, 0, 0, 0}, map[string]any{}}),
		"nan":                mp(t, []any{math.NaN(), map[string]any{}}),
		"0xc1":               {0x92, 0xc1, 0x80},
		"huge array claim":   {0x92, 0x01, 0xdd, 0xff, 0xff, 0xff, 0xff},
		"huge string claim":  {0x92, 0x01, 0x81, 0xdb, 0xff, 0xff, 0xff, 0xff, 0x01},
		"map32 header short": {0x92, 0x01, 0xdf, 0x00},
	}
	for name, bad := range cases {
		t.Run(name, func(t *testing.T) {
			chunk := append(append([]byte{}, good...), bad...)
			evs, err := decodeAll(t, chunk)
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("want DecodeError, got %v", err)
			}
			if len(evs) != 1 || de.Offset != len(good) {
				t.Fatalf("events %d, error offset %d (%v)", len(evs), de.Offset, err)
			}
			t.Log(err)
			// The error sticks.
			d := NewDecoder(chunk)
			var ev Event
			_ = d.Next(&ev)
			e1 := d.Next(&ev)
			e2 := d.Next(&ev)
			if e1 == nil || e1 != e2 || d.Offset() != len(good) {
				t.Fatalf("error not sticky: %v %v offset %d", e1, e2, d.Offset())
			}
		})
	}
}

func TestDeepNestingNoStackGrowth(t *testing.T) {
	// 10 million nested 1-element arrays inside a body value: the iterative Skip
	// handles it in constant stack; a recursive skipper would need gigabytes.
	const depth = 10_000_000
	chunk := []byte{0x92, 0x01, 0x81, 0xa1, 'k'}
	chunk = append(chunk, bytes.Repeat([]byte{0x91}, depth)...)
	chunk = append(chunk, 0xc0)
	evs, err := decodeAll(t, chunk)
	if err != nil || len(evs) != 1 || len(evs[0].Body) != len(chunk)-2 {
		t.Fatalf("%v %d", err, len(evs))
	}
	// Truncated: the same without the final nil.
	if _, err := decodeAll(t, chunk[:len(chunk)-1]); err == nil {
		t.Fatal("want error")
	}
}

func TestFindFieldAndIter(t *testing.T) {
	body := mp(t, map[string]any{
		"a":   1,
		"log": "the line",
		"bin": []byte{1, 2, 3},
		"obj": map[string]any{"x": []any{1, "y"}},
	})
	v, ok, err := FindField(body, "log")
	if err != nil || !ok || v.Type != TypeStr || string(v.Payload) != "the line" {
		t.Fatalf("%v %v %+v", err, ok, v)
	}
	v, ok, _ = FindField(body, "bin")
	if !ok || v.Type != TypeBin || !bytes.Equal(v.Payload, []byte{1, 2, 3}) {
		t.Fatalf("%+v", v)
	}
	v, ok, _ = FindField(body, "obj")
	if !ok || v.Type != TypeMap || v.Len != 1 || !bytes.Equal(v.Raw, mp(t, map[string]any{"x": []any{1, "y"}})) {
		t.Fatalf("%+v", v)
	}
	if _, ok, err := FindField(body, "nope"); ok || err != nil {
		t.Fatal(ok, err)
	}
	// Iterating and re-encoding the pairs gives the same map.
	it := NewMapIter(body)
	n := it.Len()
	var pairs []byte
	for it.Next() {
		pairs = append(pairs, it.Key().Raw...)
		pairs = append(pairs, it.Value().Raw...)
	}
	if it.Err() != nil {
		t.Fatal(it.Err())
	}
	if got := append(AppendMapHeader(nil, n), pairs...); !bytes.Equal(got, body) {
		t.Fatalf("re-encoded map differs")
	}
	// A broken map reports its error.
	it = NewMapIter(body[:len(body)-2])
	for it.Next() {
	}
	if it.Err() == nil {
		t.Fatal("want error")
	}
	if it := NewMapIter(mp(t, "str")); it.Next() || it.Err() == nil {
		t.Fatal("want not-map error")
	}
}

func TestEncoderRoundTrip(t *testing.T) {
	var e Encoder
	e.Reset(nil)
	meta := mp(t, map[string]any{"m": "v"})
	e.Begin(Time{1700000000, 42}, meta)
	e.AddString("log", "hello")
	e.AddRawPair(mp(t, "n"), mp(t, 7))
	e.End()
	e.Begin(Time{5, 0}, nil)
	e.End()
	e.Begin(Time{6, 0}, nil)
	e.AddString("gone", "x")
	e.Cancel()

	evs, err := decodeAll(t, e.Bytes())
	if err != nil || len(evs) != 2 {
		t.Fatal(err, len(evs))
	}
	if evs[0].Time != (Time{1700000000, 42}) || !bytes.Equal(evs[0].Meta, meta) || evs[0].Legacy {
		t.Fatalf("%+v", evs[0])
	}
	var got map[string]any
	if err := msgpack.Unmarshal(evs[0].Body, &got); err != nil {
		t.Fatal(err)
	}
	if got["log"] != "hello" || got["n"] != int8(7) || len(got) != 2 {
		t.Fatalf("%v", got)
	}
	if !bytes.Equal(evs[1].Meta, []byte{0x80}) || !bytes.Equal(evs[1].Body, []byte{0xdf, 0, 0, 0, 0}) {
		t.Fatalf("%x %x", evs[1].Meta, evs[1].Body)
	}
	// vmihailenco reads the whole output as two values.
	d := msgpack.NewDecoder(bytes.NewReader(e.Bytes()))
	for i := 0; i < 2; i++ {
		if err := d.Skip(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestAppendString(t *testing.T) {
	for _, n := range []int{0, 31, 32, 255, 256, 65535, 65536} {
		s := string(bytes.Repeat([]byte{'x'}, n))
		var got string
		if err := msgpack.Unmarshal(AppendString(nil, s), &got); err != nil || got != s {
			t.Fatalf("len %d: %v", n, err)
		}
		m := AppendMapHeader(nil, n)
		d := msgpack.NewDecoder(bytes.NewReader(m))
		if l, err := d.DecodeMapLen(); err != nil || l != n {
			t.Fatalf("map %d: %v %d", n, err, l)
		}
	}
}

func TestTimeValid(t *testing.T) {
	for _, c := range []struct {
		t  Time
		ok bool
	}{{Time{0, 0}, true}, {Time{math.MaxUint32, 999999999}, true}, {Time{math.MaxUint32, 0}, false}, {Time{math.MaxUint32 - 1, 0}, false}, {Time{-1, 0}, false}, {Time{math.MaxUint32 + 1, 0}, false}, {Time{1, 1e9}, false}} {
		if c.t.Valid() != c.ok {
			t.Fatalf("%+v", c.t)
		}
	}
}

func TestDecodeNoAllocs(t *testing.T) {
	chunk := bytes.Join([][]byte{
		v2(t, eventTime(10, 1), map[string]any{}, map[string]any{"log": "one", "k": []any{1, 2}}),
		legacy(t, 11, map[string]any{"log": "two"}),
	}, nil)
	var d Decoder
	var e Encoder
	buf := make([]byte, 0, 4096)
	allocs := testing.AllocsPerRun(100, func() {
		d.Reset(chunk)
		e.Reset(buf[:0])
		var ev Event
		for d.Next(&ev) == nil {
			if _, _, err := FindField(ev.Body, "log"); err != nil {
				t.Fatal(err)
			}
			e.Begin(ev.Time, ev.Meta)
			it := NewMapIter(ev.Body)
			for it.Next() {
				e.AddRawPair(it.Key().Raw, it.Value().Raw)
			}
			e.End()
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per chunk", allocs)
	}
}
