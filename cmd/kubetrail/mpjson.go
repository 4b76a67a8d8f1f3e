package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
)

// appendFieldsJSON appends the record {k1:v1,...} of count msgpack key/value pairs
// (enrich.Record.Fields) as one JSON object, in key order, written as Fluent Bit's
// stdout output with format json_lines writes records (src/flb_pack.c msgpack2json;
// the test host's mpjson.c does the same): floats as %.16g (%.1f when integral),
// strings escaped for quotes, backslashes and control characters only, bin as a
// string, an EventTime ext as float seconds, another ext as "\\xNN" text.
func appendFieldsJSON(dst, fields []byte, count int) ([]byte, error) {
	dst = append(dst, '{')
	var err error
	for i := 0; i < count; i++ {
		if i > 0 {
			dst = append(dst, ',')
		}
		if dst, fields, err = appendKey(dst, fields); err != nil {
			return dst, err
		}
		dst = append(dst, ':')
		if dst, fields, err = appendValue(dst, fields, 0); err != nil {
			return dst, err
		}
	}
	if len(fields) != 0 {
		return dst, fmt.Errorf("msgpack record: %d bytes left after %d fields", len(fields), count)
	}
	return append(dst, '}'), nil
}

var errShort = errors.New("msgpack record: truncated")

// appendKey writes a map key: a string as itself, anything else as the JSON string of
// its JSON text (as Fluent Bit does).
func appendKey(dst, b []byte) ([]byte, []byte, error) {
	if len(b) == 0 {
		return dst, b, errShort
	}
	c := b[0]
	if c>>5 == 0x5 || c == 0xd9 || c == 0xda || c == 0xdb || c == 0xc4 || c == 0xc5 || c == 0xc6 {
		return appendValue(dst, b, 0)
	}
	tmp, rest, err := appendValue(nil, b, 0)
	if err != nil {
		return dst, rest, err
	}
	return appendJSONString(dst, tmp), rest, nil
}

func need(b []byte, n int) error {
	if len(b) < n {
		return errShort
	}
	return nil
}

// appendValue converts the msgpack value at the start of b and returns the rest.
func appendValue(dst, b []byte, depth int) ([]byte, []byte, error) {
	if depth > 10000 {
		return dst, b, errors.New("msgpack record: nested too deep")
	}
	if len(b) == 0 {
		return dst, b, errShort
	}
	c := b[0]
	b = b[1:]
	switch {
	case c <= 0x7f:
		return strconv.AppendUint(dst, uint64(c), 10), b, nil
	case c >= 0xe0:
		return strconv.AppendInt(dst, int64(int8(c)), 10), b, nil
	case c>>4 == 0x8:
		return appendMap(dst, b, int(c&0x0f), depth)
	case c>>4 == 0x9:
		return appendArray(dst, b, int(c&0x0f), depth)
	case c>>5 == 0x5:
		return appendStr(dst, b, int(c&0x1f))
	}
	switch c {
	case 0xc0:
		return append(dst, "null"...), b, nil
	case 0xc2:
		return append(dst, "false"...), b, nil
	case 0xc3:
		return append(dst, "true"...), b, nil
	case 0xcc, 0xcd, 0xce, 0xcf:
		n := 1 << (c - 0xcc)
		if err := need(b, n); err != nil {
			return dst, b, err
		}
		return strconv.AppendUint(dst, beUint(b[:n]), 10), b[n:], nil
	case 0xd0, 0xd1, 0xd2, 0xd3:
		n := 1 << (c - 0xd0)
		if err := need(b, n); err != nil {
			return dst, b, err
		}
		v := beUint(b[:n])
		var i int64
		switch n {
		case 1:
			i = int64(int8(v))
		case 2:
			i = int64(int16(v))
		case 4:
			i = int64(int32(v))
		default:
			i = int64(v)
		}
		if i >= 0 {
			return strconv.AppendUint(dst, uint64(i), 10), b[n:], nil
		}
		return strconv.AppendInt(dst, i, 10), b[n:], nil
	case 0xca:
		if err := need(b, 4); err != nil {
			return dst, b, err
		}
		return appendDouble(dst, float64(math.Float32frombits(binary.BigEndian.Uint32(b)))), b[4:], nil
	case 0xcb:
		if err := need(b, 8); err != nil {
			return dst, b, err
		}
		return appendDouble(dst, math.Float64frombits(binary.BigEndian.Uint64(b))), b[8:], nil
	case 0xd9, 0xda, 0xdb, 0xc4, 0xc5, 0xc6:
		var n int
		switch c {
		case 0xd9, 0xc4:
			n = 1
		case 0xda, 0xc5:
			n = 2
		default:
			n = 4
		}
		if err := need(b, n); err != nil {
			return dst, b, err
		}
		return appendStr(dst, b[n:], int(beUint(b[:n])))
	case 0xdc, 0xdd, 0xde, 0xdf:
		n := 2
		if c == 0xdd || c == 0xdf {
			n = 4
		}
		if err := need(b, n); err != nil {
			return dst, b, err
		}
		l := int(beUint(b[:n]))
		if c == 0xdc || c == 0xdd {
			return appendArray(dst, b[n:], l, depth)
		}
		return appendMap(dst, b[n:], l, depth)
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8:
		return appendExt(dst, b, 1<<(c-0xd4))
	case 0xc7, 0xc8, 0xc9:
		n := 1 << (c - 0xc7)
		if err := need(b, n); err != nil {
			return dst, b, err
		}
		return appendExt(dst, b[n:], int(beUint(b[:n])))
	}
	return dst, b, fmt.Errorf("msgpack record: unknown type byte 0x%02x", c)
}

func beUint(b []byte) uint64 {
	var v uint64
	for _, x := range b {
		v = v<<8 | uint64(x)
	}
	return v
}

func appendStr(dst, b []byte, n int) ([]byte, []byte, error) {
	if err := need(b, n); err != nil {
		return dst, b, err
	}
	return appendJSONString(dst, b[:n]), b[n:], nil
}

func appendMap(dst, b []byte, n int, depth int) ([]byte, []byte, error) {
	dst = append(dst, '{')
	var err error
	for i := 0; i < n; i++ {
		if i > 0 {
			dst = append(dst, ',')
		}
		if dst, b, err = appendKey(dst, b); err != nil {
			return dst, b, err
		}
		dst = append(dst, ':')
		if dst, b, err = appendValue(dst, b, depth+1); err != nil {
			return dst, b, err
		}
	}
	return append(dst, '}'), b, nil
}

func appendArray(dst, b []byte, n int, depth int) ([]byte, []byte, error) {
	dst = append(dst, '[')
	var err error
	for i := 0; i < n; i++ {
		if i > 0 {
			dst = append(dst, ',')
		}
		if dst, b, err = appendValue(dst, b, depth+1); err != nil {
			return dst, b, err
		}
	}
	return append(dst, ']'), b, nil
}

// appendExt writes an ext of n data bytes (b starts at its type byte).
func appendExt(dst, b []byte, n int) ([]byte, []byte, error) {
	if err := need(b, n+1); err != nil {
		return dst, b, err
	}
	typ, data := int8(b[0]), b[1:n+1]
	if typ == 0 && n == 8 { // EventTime: seconds and nanoseconds
		sec, nsec := binary.BigEndian.Uint32(data), binary.BigEndian.Uint32(data[4:])
		return appendDouble(dst, float64(sec)+float64(nsec)/1e9), b[n+1:], nil
	}
	dst = append(dst, '"')
	for _, x := range data {
		dst = append(dst, '\\', '\\', 'x', hex[x>>4], hex[x&15])
	}
	return append(dst, '"'), b[n+1:], nil
}

// appendDouble writes a float as Fluent Bit does: %.1f when integral, else %.16g.
func appendDouble(dst []byte, d float64) []byte {
	switch {
	case math.IsNaN(d) || math.IsInf(d, 0):
		return append(dst, "null"...)
	case d == math.Trunc(d) && math.Abs(d) < 1<<63:
		return strconv.AppendFloat(dst, d, 'f', 1, 64)
	}
	return strconv.AppendFloat(dst, d, 'g', 16, 64)
}

const hex = "0123456789abcdef"

// needsEscape marks the bytes appendJSONString escapes: '"', '\\' and controls.
var needsEscape = func() (t [256]bool) {
	for c := 0; c < 0x20; c++ {
		t[c] = true
	}
	t['"'], t['\\'], t[0x7f] = true, true, true
	return t
}()

// Word-at-a-time tests (Hacker's Delight, "find a zero byte"): exact as to whether
// some byte of the word matches, which is all the fast path asks.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

func hasZeroByte(v uint64) bool { return (v-ones)&^v&highs != 0 }

// special8 reports whether one of 8 bytes needs escaping: < 0x20, '"', '\\', 0x7f.
func special8(x uint64) bool {
	return (x-ones*0x20)&^x&highs != 0 || hasZeroByte(x^(ones*'"')) ||
		hasZeroByte(x^(ones*'\\')) || hasZeroByte(x^(ones*0x7f))
}

// appendJSONString escapes '"', '\\' and control characters; other bytes, invalid
// UTF-8 included, pass as they are (as Fluent Bit's msgpack2json does). Runs of bytes
// that need nothing are skipped 8 at a time and copied at once: string escaping is
// most of -o json's own time.
func appendJSONString(dst, s []byte) []byte {
	dst = append(dst, '"')
	start, i := 0, 0
	for i < len(s) {
		for i+8 <= len(s) && !special8(binary.LittleEndian.Uint64(s[i:])) {
			i += 8
		}
		for end := min(i+8, len(s)); i < end; i++ {
			c := s[i]
			if !needsEscape[c] {
				continue
			}
			dst = append(dst, s[start:i]...)
			start = i + 1
			switch c {
			case '"':
				dst = append(dst, '\\', '"')
			case '\\':
				dst = append(dst, '\\', '\\')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
			}
		}
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
