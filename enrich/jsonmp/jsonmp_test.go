package jsonmp

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/valyala/fastjson"
	"github.com/vmihailenco/msgpack/v5"
)

// reference encodes x with vmihailenco/msgpack as the k8s_events input did before it
// shared this writer (UseCompactInts): the bytes this package must keep.
func reference(t testing.TB, x any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.UseCompactInts(true)
	enc.SetSortMapKeys(true) // the cases write their keys in order
	if err := enc.Encode(x); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestPrimitivesMatchMsgpack(t *testing.T) {
	for _, n := range []int64{0, 1, 127, 128, 255, 256, 65535, 65536, 1<<32 - 1, 1 << 32, math.MaxInt64,
		-1, -32, -33, -128, -129, -32768, -32769, math.MinInt32, math.MinInt32 - 1, math.MinInt64} {
		if got, want := AppendInt(nil, n), reference(t, n); !bytes.Equal(got, want) {
			t.Errorf("int %d: % x, want % x", n, got, want)
		}
	}
	for _, n := range []uint64{0, 127, 128, 255, 256, 65535, 65536, 1<<32 - 1, 1 << 32, math.MaxUint64} {
		if got, want := AppendUint(nil, n), reference(t, n); !bytes.Equal(got, want) {
			t.Errorf("uint %d: % x, want % x", n, got, want)
		}
	}
	for _, f := range []float64{0, 1.5, -1e308, 5e-324, 1.5e300} {
		if got, want := AppendFloat(nil, f), reference(t, f); !bytes.Equal(got, want) {
			t.Errorf("float %g: % x, want % x", f, got, want)
		}
	}
	for _, l := range []int{0, 1, 31, 32, 255, 256, 65535, 65536} {
		s := strings.Repeat("x", l)
		want := reference(t, s)
		if got := AppendString(nil, s); !bytes.Equal(got, want) {
			t.Errorf("string of %d: header % x, want % x", l, got[:min(len(got), 5)], want[:min(len(want), 5)])
		}
		if got := AppendStringBytes(nil, []byte(s)); !bytes.Equal(got, want) {
			t.Errorf("string bytes of %d: header % x, want % x", l, got[:min(len(got), 5)], want[:min(len(want), 5)])
		}
	}
	for _, l := range []int{0, 15, 16, 65535, 65536} {
		var buf bytes.Buffer
		enc := msgpack.NewEncoder(&buf)
		enc.EncodeMapLen(l)
		enc.EncodeArrayLen(l)
		if got := AppendArrayLen(AppendMapLen(nil, l), l); !bytes.Equal(got, buf.Bytes()) {
			t.Errorf("headers of %d: % x, want % x", l, got, buf.Bytes())
		}
	}
	if got := AppendNil(AppendBool(AppendBool(nil, true), false)); !bytes.Equal(got, []byte{0xc3, 0xc2, 0xc0}) {
		t.Errorf("true false nil: % x", got)
	}
}

// TestAppendValue: the rules of the package comment, value by value.
func TestAppendValue(t *testing.T) {
	huge := "1" + strings.Repeat("0", 400) // an integer of 401 digits: 1e400
	for _, c := range []struct {
		json string
		want any
	}{
		{"0", int64(0)},
		{"-0", int64(0)},
		{"-1", int64(-1)},
		{"9223372036854775807", int64(math.MaxInt64)},
		{"-9223372036854775808", int64(math.MinInt64)},
		{"9223372036854775808", uint64(1 << 63)},
		{"18446744073709551615", uint64(math.MaxUint64)},
		{"18446744073709551616", float64(1 << 64)},
		{"1.5", 1.5},
		{"1e308", 1e308},
		{"1e400", "1e400"},
		{"-1e400", "-1e400"},
		{"1e-400", 0.0},
		{huge, huge},
		{"-" + huge + ".5", "-" + huge + ".5"},
		{`"\u0000\n\"\\\u00e9\ud83d\ude00"`, "\x00\n\"\\é😀"},
		{`"\ud800"`, `\ud800`},
		{`{"a":[1,"x",null,true,false],"b":{}}`, map[string]any{"a": []any{int64(1), "x", nil, true, false}, "b": map[string]any{}}},
	} {
		v := fastjson.MustParse(c.json)
		got, err := AppendValue(nil, v, 0)
		if err != nil {
			t.Errorf("%.40s: %v", c.json, err)
		}
		// The same value built as Go values, written by vmihailenco/msgpack.
		if want := reference(t, c.want); !bytes.Equal(got, want) {
			t.Errorf("%.40s:\n got % x\nwant % x", c.json, got, want)
		}
		// And the same bytes when appended after others.
		after, _ := AppendValue([]byte("prefix"), v, 0)
		if !bytes.Equal(after[6:], got) || string(after[:6]) != "prefix" {
			t.Errorf("%.40s: appended after a prefix: % x", c.json, after)
		}
	}
}

func TestNumberNotJSON(t *testing.T) {
	long := "+" + strings.Repeat("1", 300)
	for _, s := range []string{"NaN", "nan", "inf", "-inf", "+1", "012", "-01", long} {
		v, err := fastjson.Parse("[" + s + "]")
		if err != nil {
			t.Fatalf("%.20s: fastjson no longer lets it through: %v", s, err)
		}
		got, err := AppendValue(nil, v, 0)
		var ne *NumberError
		if !errors.As(err, &ne) || ne.Text != s[:min(len(s), 64)] {
			t.Errorf("%.20s: error %v, want a NumberError", s, err)
		}
		if want := reference(t, []any{s}); !bytes.Equal(got, want) {
			t.Errorf("%.20s: % x, want % x", s, got, want)
		}
	}
	// The first one is reported; the rest are written all the same.
	got, err := AppendValue(nil, fastjson.MustParse(`{"a":[1,NaN],"b":+2}`), 0)
	if ne, _ := err.(*NumberError); ne == nil || ne.Text != "NaN" {
		t.Errorf("error %v, want NaN's", err)
	}
	var m map[string]any
	if err := msgpack.Unmarshal(got, &m); err != nil || !reflect.DeepEqual(m, map[string]any{"a": []any{int8(1), "NaN"}, "b": "+2"}) {
		t.Errorf("%#v (%v)", m, err)
	}
}

func TestIsNumber(t *testing.T) {
	for _, good := range []string{"0", "-0", "0.5", "-1.25e-3", "1E+2", "1e400", "123456789012345678901234567890"} {
		if !IsNumber([]byte(good)) {
			t.Errorf("%s: not taken as a JSON number", good)
		}
	}
	for _, bad := range []string{"", "NaN", "nan", "-Inf", "inf", "+1", "012", "1.", ".5", "1e", "-", "1-2", "0x10", "1e+"} {
		if IsNumber([]byte(bad)) {
			t.Errorf("%s: taken as a JSON number", bad)
		}
	}
}

// TestDepth: what fastjson parses is written whole; a deeper value (built in an
// arena) is written down to MaxDepth, nil below.
func TestDepth(t *testing.T) {
	deepest := strings.Repeat("[", MaxDepth-1) + "1" + strings.Repeat("]", MaxDepth-1)
	v, err := fastjson.Parse(deepest)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fastjson.Parse("[" + deepest + "]"); err == nil {
		t.Fatalf("fastjson parses deeper than %d levels now: MaxDepth must follow", MaxDepth)
	}
	got, _ := AppendValue(nil, v, 0)
	if want := append(bytes.Repeat([]byte{0x91}, MaxDepth-1), 0x01); !bytes.Equal(got, want) {
		t.Errorf("the deepest JSON fastjson parses is not written whole")
	}

	var a fastjson.Arena
	deep := a.NewNumberInt(1)
	for range MaxDepth + 5 {
		arr := a.NewArray()
		arr.SetArrayItem(0, deep)
		deep = arr
	}
	for _, depth := range []int{0, 1} {
		got, _ := AppendValue(nil, deep, depth)
		// Depths depth..MaxDepth are arrays; what they hold at MaxDepth+1 is nil.
		want := append(bytes.Repeat([]byte{0x91}, MaxDepth+1-depth), 0xc0)
		if !bytes.Equal(got, want) {
			t.Errorf("from depth %d: %d bytes, want %d", depth, len(got), len(want))
		}
	}
	if got, _ := AppendValue(nil, fastjson.MustParse(`{"a":1}`), MaxDepth+1); !bytes.Equal(got, []byte{0xc0}) {
		t.Errorf("beyond MaxDepth: % x, want nil", got)
	}
}

// FuzzAppendValue: whatever fastjson parses is written as exactly one msgpack value,
// which decodes, and as the same bytes after a prefix.
func FuzzAppendValue(f *testing.F) {
	for _, s := range []string{`{"a":[1,-2,3.5,"x\u00e9",null,true,false,{}]}`, `1e400`, `NaN`, `"\ud800"`,
		`18446744073709551616`, `[[[[[]]]]]`, `{"a":1,"a":2}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := fastjson.Parse(s)
		if err != nil {
			return
		}
		got, _ := AppendValue(nil, v, 0)
		d := msgpack.NewDecoder(bytes.NewReader(got))
		if _, err := d.DecodeInterface(); err != nil {
			t.Fatalf("%q: written as undecodable % x: %v", s, got, err)
		}
		if _, err := d.PeekCode(); err == nil {
			t.Fatalf("%q: more than one value: % x", s, got)
		}
		after, _ := AppendValue([]byte{0xc0}, v, 0)
		if !bytes.Equal(after[1:], got) {
			t.Fatalf("%q: different after a prefix", s)
		}
	})
}
