// Package jsonmp writes JSON values, as github.com/valyala/fastjson parses them, as
// msgpack. It is kubetrail's one JSON→msgpack writer: the k8s_audit filter (package
// enrich) writes audit events with it, the k8s_events input Kubernetes Events, so that
// the same JSON gives the same record fields in both.
//
// Objects become maps (keys in order, duplicates kept), arrays arrays, strings strings
// (as fastjson unescapes them: a lone surrogate such as \ud800 stays as written),
// true, false and null themselves. An integer that fits int64 or uint64 becomes the
// smallest msgpack int that holds it, any other number a float64, and a number
// float64 cannot hold (1e400, -1e400) a string of its text: as a float it would be
// infinite, which Fluent Bit's JSON outputs print as inf, not JSON. (1e-400 is 0, as
// for any JSON decoder.)
//
// Output is appended to a byte slice: the record paths write dozens of small values
// per record, and going through msgpack.Encoder's io.Writer for each cost ~25% of the
// k8s_audit filter's per-record budget. The bytes are those vmihailenco/msgpack/v5
// writes with UseCompactInts: the tests decode every record with it. (The other
// direction, msgpack to JSON as Fluent Bit prints it, is the C test host's mpjson.c.)
package jsonmp

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"unsafe"

	"github.com/valyala/fastjson"
)

// MaxDepth is the deepest value AppendValue writes; depth counts the arrays and
// objects around a value (a field of a record is at depth 1), and a value deeper is
// written as nil. It is fastjson's own limit (fastjson.MaxDepth, 300), which counts
// the document itself as one level: a value of any document fastjson parses is at
// most 299 deep, so it is always written whole. The k8s_audit filter's map records
// (Fluent Bit parsed the JSON) are decoded by enrich against this constant too and
// refused beyond it (the record passes through unchanged), so they are written whole
// as well. The limit is thus no policy on input, only a bound on AppendValue's
// recursion for a value built otherwise (in a fastjson.Arena): a level of objects
// takes ~0.55 KB of goroutine stack (AppendValue, Object.Visit and its callback), so
// 300 take ~165 KB, far below the 1 GB a goroutine stack may grow to.
const MaxDepth = fastjson.MaxDepth

// B2S views b as a string without copying: the string must not outlive b, nor b
// change while the string is in use. For keys, facts and numbers read in place on the
// per-record paths, which copy what they keep.
func B2S(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// NumberError is returned by AppendValue for a number whose text is no JSON number
// (RFC 8259) but that fastjson's parser lets through: NaN, inf, +1, 012. The number is
// written as a string of its text all the same; the caller decides whether the input
// was JSON at all.
type NumberError struct {
	// Text is the number's text, cut to 64 bytes.
	Text string
}

func (e *NumberError) Error() string { return fmt.Sprintf("number %q is not JSON", e.Text) }

// AppendValue appends v, depth arrays and objects deep, as msgpack to dst. The
// error, a *NumberError for the first number that is not JSON, never stops the
// writing: dst always gets one whole msgpack value.
func AppendValue(dst []byte, v *fastjson.Value, depth int) ([]byte, error) {
	if depth > MaxDepth {
		return AppendNil(dst), nil
	}
	var err error
	switch v.Type() {
	case fastjson.TypeObject:
		o, _ := v.Object()
		dst = AppendMapLen(dst, o.Len())
		o.Visit(func(k []byte, item *fastjson.Value) {
			dst = AppendStringBytes(dst, k)
			var e error
			if dst, e = AppendValue(dst, item, depth+1); e != nil && err == nil {
				err = e
			}
		})
	case fastjson.TypeArray:
		a, _ := v.Array()
		dst = AppendArrayLen(dst, len(a))
		for _, item := range a {
			var e error
			if dst, e = AppendValue(dst, item, depth+1); e != nil && err == nil {
				err = e
			}
		}
	case fastjson.TypeString:
		s, _ := v.StringBytes()
		dst = AppendStringBytes(dst, s)
	case fastjson.TypeNumber:
		// The number's text goes where its msgpack goes, then is replaced by it: no
		// scratch buffer, no state.
		start := len(dst)
		dst = v.MarshalTo(dst)
		return AppendNumberText(dst, start)
	case fastjson.TypeTrue:
		dst = AppendBool(dst, true)
	case fastjson.TypeFalse:
		dst = AppendBool(dst, false)
	default:
		dst = AppendNil(dst)
	}
	return dst, err
}

// AppendNumberText replaces the number text at dst[start:] by its msgpack: an
// integer that fits int64 or uint64 in the smallest form, any other JSON number as a
// float64, one out of float64's range as a string of its text; a text that is no JSON
// number is written as a string too, with a *NumberError.
func AppendNumberText(dst []byte, start int) ([]byte, error) {
	raw := dst[start:]
	if !IsNumber(raw) {
		err := &NumberError{Text: string(raw[:min(len(raw), 64)])} // before raw moves
		return textAsString(dst, start), err
	}
	s := B2S(raw) // read before dst[start:] is overwritten
	if bytes.IndexAny(raw, ".eE") < 0 {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return AppendInt(dst[:start], n), nil
		}
		if n, err := strconv.ParseUint(s, 10, 64); err == nil {
			return AppendUint(dst[:start], n), nil
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) {
		// Out of float64's range: keep the text rather than write an infinity.
		return textAsString(dst, start), nil
	}
	return AppendFloat(dst[:start], f), nil
}

// textAsString makes the text at dst[start:] a msgpack string: its header goes in
// front, the text moves up.
func textAsString(dst []byte, start int) []byte {
	n := len(dst) - start
	var h [5]byte
	hdr := AppendStringHeader(h[:0], n)
	dst = append(dst, hdr...)
	copy(dst[start+len(hdr):], dst[start:start+n])
	copy(dst[start:], hdr)
	return dst
}

// IsNumber reports whether b is a number as JSON (RFC 8259) writes one:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func IsNumber(b []byte) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		j := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == j {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == j {
			return false
		}
	}
	return i == len(b)
}

// AppendString and AppendStringBytes append a string; the fixstr header of short
// ones (most keys and values) is written inline.
func AppendString(dst []byte, s string) []byte {
	if len(s) < 32 {
		return append(append(dst, 0xa0|byte(len(s))), s...)
	}
	return append(AppendStringHeader(dst, len(s)), s...)
}

func AppendStringBytes(dst, s []byte) []byte {
	if len(s) < 32 {
		return append(append(dst, 0xa0|byte(len(s))), s...)
	}
	return append(AppendStringHeader(dst, len(s)), s...)
}

// AppendStringHeader appends the header of a string of l bytes.
func AppendStringHeader(dst []byte, l int) []byte {
	switch {
	case l < 32:
		return append(dst, 0xa0|byte(l))
	case l < 1<<8:
		return append(dst, 0xd9, byte(l))
	case l < 1<<16:
		return append(dst, 0xda, byte(l>>8), byte(l))
	default:
		return binary.BigEndian.AppendUint32(append(dst, 0xdb), uint32(l))
	}
}

// AppendMapLen appends the header of a map of l pairs.
func AppendMapLen(dst []byte, l int) []byte { return appendHeader(dst, l, 0x80, 0xde, 0xdf) }

// AppendArrayLen appends the header of an array of l items.
func AppendArrayLen(dst []byte, l int) []byte { return appendHeader(dst, l, 0x90, 0xdc, 0xdd) }

func appendHeader(dst []byte, l int, fix, c16, c32 byte) []byte {
	switch {
	case l < 16:
		return append(dst, fix|byte(l))
	case l < 1<<16:
		return append(dst, c16, byte(l>>8), byte(l))
	default:
		return binary.BigEndian.AppendUint32(append(dst, c32), uint32(l))
	}
}

// AppendInt appends n in the fewest bytes: a fixint, else the smallest int, or uint
// when n is not negative.
func AppendInt(dst []byte, n int64) []byte {
	switch {
	case n >= 0:
		return AppendUint(dst, uint64(n))
	case n >= -32:
		return append(dst, byte(n))
	case n >= math.MinInt8:
		return append(dst, 0xd0, byte(n))
	case n >= math.MinInt16:
		return binary.BigEndian.AppendUint16(append(dst, 0xd1), uint16(n))
	case n >= math.MinInt32:
		return binary.BigEndian.AppendUint32(append(dst, 0xd2), uint32(n))
	default:
		return binary.BigEndian.AppendUint64(append(dst, 0xd3), uint64(n))
	}
}

// AppendUint appends n in the fewest bytes.
func AppendUint(dst []byte, n uint64) []byte {
	switch {
	case n < 128:
		return append(dst, byte(n))
	case n < 1<<8:
		return append(dst, 0xcc, byte(n))
	case n < 1<<16:
		return binary.BigEndian.AppendUint16(append(dst, 0xcd), uint16(n))
	case n < 1<<32:
		return binary.BigEndian.AppendUint32(append(dst, 0xce), uint32(n))
	default:
		return binary.BigEndian.AppendUint64(append(dst, 0xcf), n)
	}
}

// AppendFloat appends f as a float64 (never float32: the value is kept exactly).
func AppendFloat(dst []byte, f float64) []byte {
	return binary.BigEndian.AppendUint64(append(dst, 0xcb), math.Float64bits(f))
}

// AppendBool appends true or false.
func AppendBool(dst []byte, v bool) []byte {
	if v {
		return append(dst, 0xc3)
	}
	return append(dst, 0xc2)
}

// AppendNil appends nil.
func AppendNil(dst []byte) []byte { return append(dst, 0xc0) }
