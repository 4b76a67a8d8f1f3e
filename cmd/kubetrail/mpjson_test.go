package main

import (
	"bytes"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// pairs encodes key/value pairs as enrich.Record.Fields does: concatenated, no map
// header.
func pairs(t *testing.T, kv ...any) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := msgpack.NewEncoder(&b)
	enc.UseCompactInts(true)
	for _, v := range kv {
		if raw, ok := v.(msgpack.RawMessage); ok {
			b.Write(raw)
			continue
		}
		if err := enc.Encode(v); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

func TestAppendFieldsJSON(t *testing.T) {
	for _, c := range []struct {
		name   string
		fields []any
		want   string
	}{
		{"ints", []any{"a", 0, "b", -1, "c", 200, "d", int64(-1 << 40), "e", uint64(math.MaxUint64), "f", int8(-128)},
			`{"a":0,"b":-1,"c":200,"d":-1099511627776,"e":18446744073709551615,"f":-128}`},
		// Fluent Bit's msgpack2json: %.1f when integral (and within int64: 1e20 is not,
		// the C cast overflows), else %.16g.
		{"floats", []any{"a", 8.333, "b", 3.0, "c", 1e20, "d", 1.2345678901234567e-7, "e", 0.1, "f", float32(0.5), "g", math.NaN(), "h", -2.5e300},
			`{"a":8.333,"b":3.0,"c":1e+20,"d":1.234567890123457e-07,"e":0.1,"f":0.5,"g":null,"h":-2.5e+300}`},
		{"strings", []any{"s", "quote\" back\\ nl\n cr\r tab\t bs\b ff\f nul\x00 del\x7f é \xff", "empty", ""},
			`{"s":"quote\" back\\ nl\n cr\r tab\t bs\b ff\f nul\u0000 del\u007f é ` + "\xff" + `","empty":""}`},
		{"long string", []any{"s", strings.Repeat("x", 70000)}, `{"s":"` + strings.Repeat("x", 70000) + `"}`},
		{"nil bool", []any{"n", nil, "t", true, "f", false}, `{"n":null,"t":true,"f":false}`},
		{"bin", []any{"b", []byte("raw")}, `{"b":"raw"}`},
		{"nested", []any{"m", map[string]any{"x": []any{1, "y", map[string]any{}}}, "l", []any{}},
			`{"m":{"x":[1,"y",{}]},"l":[]}`},
		{"event time ext", []any{"t", msgpack.RawMessage{0xd7, 0x00, 0x5f, 0x5e, 0x10, 0x00, 0x07, 0x5b, 0xcd, 0x15}},
			`{"t":1600000000.123457}`},
		{"other ext", []any{"x", msgpack.RawMessage{0xd4, 0x05, 0xab}}, `{"x":"\\xab"}`},
		{"non-string key", []any{msgpack.RawMessage{0x81, 0x01, 0x02}, 1}, `{"{\"1\":2}":1}`},
		{"no fields", nil, `{}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := pairs(t, c.fields...)
			got, err := appendFieldsJSON(nil, b, len(c.fields)/2)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != c.want {
				t.Errorf("got  %s\nwant %s", got, c.want)
			}
		})
	}
}

func TestAppendFieldsJSONErrors(t *testing.T) {
	good := pairs(t, "a", "bc", "d", []any{1, 2})
	for i := 0; i < len(good); i++ {
		if _, err := appendFieldsJSON(nil, good[:i], 2); err == nil {
			t.Errorf("%d of %d bytes: no error", i, len(good))
		}
	}
	if _, err := appendFieldsJSON(nil, good, 1); err == nil || !strings.Contains(err.Error(), "left after") {
		t.Errorf("extra bytes: %v", err)
	}
	if _, err := appendFieldsJSON(nil, []byte{0xa1, 'k', 0xc1}, 1); err == nil || !strings.Contains(err.Error(), "0xc1") {
		t.Errorf("unknown type: %v", err)
	}
}

// TestAppendJSONStringEveryByte checks the word-at-a-time path against a byte-by-byte
// reference for every byte value at every position of a 17-byte string.
func TestAppendJSONStringEveryByte(t *testing.T) {
	ref := func(s []byte) string {
		var b strings.Builder
		b.WriteByte('"')
		for _, c := range s {
			switch {
			case c == '"':
				b.WriteString(`\"`)
			case c == '\\':
				b.WriteString(`\\`)
			case c == '\n':
				b.WriteString(`\n`)
			case c == '\r':
				b.WriteString(`\r`)
			case c == '\t':
				b.WriteString(`\t`)
			case c == '\b':
				b.WriteString(`\b`)
			case c == '\f':
				b.WriteString(`\f`)
			case c < 0x20 || c == 0x7f:
				fmt.Fprintf(&b, `\u%04x`, c)
			default:
				b.WriteByte(c)
			}
		}
		b.WriteByte('"')
		return b.String()
	}
	for pos := 0; pos < 17; pos++ {
		for c := 0; c < 256; c++ {
			s := []byte("abcdefghijklmnopq")
			s[pos] = byte(c)
			if got, want := string(appendJSONString(nil, s)), ref(s); got != want {
				t.Fatalf("byte 0x%02x at %d: got %q, want %q", c, pos, got, want)
			}
		}
	}
}
