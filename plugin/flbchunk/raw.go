package flbchunk

import (
	"encoding/binary"
	"math"
)

// Type is the kind of a msgpack value.
type Type uint8

// The msgpack value kinds.
const (
	TypeInvalid Type = iota
	TypeNil
	TypeBool
	TypeInt // signed (negative) integer
	TypeUint
	TypeFloat
	TypeStr
	TypeBin
	TypeArray
	TypeMap
	TypeExt
)

var typeNames = [...]string{"invalid", "nil", "bool", "int", "uint", "float", "str", "bin", "array", "map", "ext"}

func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "unknown"
}

// Value is one raw msgpack value inside a buffer. Nothing is copied: the slices point
// into the buffer the value was read from.
type Value struct {
	// Raw is the whole encoding of the value (header and content).
	Raw []byte
	// Type is its kind.
	Type Type
	// Payload is the content of a str, bin or ext value (without header).
	Payload []byte
	// Len is the item count of an array, the pair count of a map.
	Len int
	// ExtType is the type byte of an ext value.
	ExtType int8
}

// Str returns the content of a str or bin value and whether it is one.
func (v Value) Str() ([]byte, bool) {
	if v.Type == TypeStr || v.Type == TypeBin {
		return v.Payload, true
	}
	return nil, false
}

// header reads the header of the value at off. For scalars end is the end of the whole
// value; for str, bin and ext end is where the n payload bytes start (after the ext type
// byte); for arrays and maps end is where the first item starts and n is the count.
// It only checks that the header itself is inside b.
func header(b []byte, off int) (t Type, end int, n int, ext int8, err error) {
	if off >= len(b) {
		return 0, off, 0, 0, errTruncated
	}
	c := b[off]
	off++
	need := func(k int) bool { return len(b)-off >= k }
	switch {
	case c <= 0x7f:
		return TypeUint, off, 0, 0, nil
	case c >= 0xe0:
		return TypeInt, off, 0, 0, nil
	case c <= 0x8f:
		return TypeMap, off, int(c & 0x0f), 0, nil
	case c <= 0x9f:
		return TypeArray, off, int(c & 0x0f), 0, nil
	case c <= 0xbf:
		return TypeStr, off, int(c & 0x1f), 0, nil
	}
	switch c {
	case 0xc0:
		return TypeNil, off, 0, 0, nil
	case 0xc2, 0xc3:
		return TypeBool, off, 0, 0, nil
	case 0xcc, 0xcd, 0xce, 0xcf, 0xd0, 0xd1, 0xd2, 0xd3, 0xca, 0xcb:
		k := scalarSize(c)
		if !need(k) {
			return 0, off, 0, 0, errTruncated
		}
		t = TypeUint
		switch {
		case c >= 0xd0:
			t = TypeInt
		case c == 0xca || c == 0xcb:
			t = TypeFloat
		}
		return t, off + k, 0, 0, nil
	case 0xc4, 0xd9: // bin8, str8
		if !need(1) {
			return 0, off, 0, 0, errTruncated
		}
		return strOrBin(c), off + 1, int(b[off]), 0, nil
	case 0xc5, 0xda: // bin16, str16
		if !need(2) {
			return 0, off, 0, 0, errTruncated
		}
		return strOrBin(c), off + 2, int(binary.BigEndian.Uint16(b[off:])), 0, nil
	case 0xc6, 0xdb: // bin32, str32
		if !need(4) {
			return 0, off, 0, 0, errTruncated
		}
		return strOrBin(c), off + 4, int(binary.BigEndian.Uint32(b[off:])), 0, nil
	case 0xdc: // array16
		if !need(2) {
			return 0, off, 0, 0, errTruncated
		}
		return TypeArray, off + 2, int(binary.BigEndian.Uint16(b[off:])), 0, nil
	case 0xdd: // array32
		if !need(4) {
			return 0, off, 0, 0, errTruncated
		}
		return TypeArray, off + 4, int(binary.BigEndian.Uint32(b[off:])), 0, nil
	case 0xde: // map16
		if !need(2) {
			return 0, off, 0, 0, errTruncated
		}
		return TypeMap, off + 2, int(binary.BigEndian.Uint16(b[off:])), 0, nil
	case 0xdf: // map32
		if !need(4) {
			return 0, off, 0, 0, errTruncated
		}
		return TypeMap, off + 4, int(binary.BigEndian.Uint32(b[off:])), 0, nil
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1, 2, 4, 8, 16
		if !need(1) {
			return 0, off, 0, 0, errTruncated
		}
		return TypeExt, off + 1, 1 << (c - 0xd4), int8(b[off]), nil
	case 0xc7: // ext8
		if !need(2) {
			return 0, off, 0, 0, errTruncated
		}
		return TypeExt, off + 2, int(b[off]), int8(b[off+1]), nil
	case 0xc8: // ext16
		if !need(3) {
			return 0, off, 0, 0, errTruncated
		}
		return TypeExt, off + 3, int(binary.BigEndian.Uint16(b[off:])), int8(b[off+2]), nil
	case 0xc9: // ext32
		if !need(5) {
			return 0, off, 0, 0, errTruncated
		}
		return TypeExt, off + 5, int(binary.BigEndian.Uint32(b[off:])), int8(b[off+4]), nil
	}
	return 0, off - 1, 0, 0, errBadCode // 0xc1, never used
}

func scalarSize(c byte) int {
	switch c {
	case 0xcc, 0xd0:
		return 1
	case 0xcd, 0xd1:
		return 2
	case 0xce, 0xd2, 0xca:
		return 4
	}
	return 8 // 0xcf, 0xd3, 0xcb
}

func strOrBin(c byte) Type {
	if c >= 0xd9 {
		return TypeStr
	}
	return TypeBin
}

// Skip returns the offset just past the value that starts at off. It is iterative (a
// hostile chunk of deeply nested arrays cannot exhaust the stack) and copies nothing.
func Skip(b []byte, off int) (int, error) {
	pending := 1
	for pending > 0 {
		t, end, n, _, err := header(b, off)
		if err != nil {
			return off, err
		}
		pending--
		switch t {
		case TypeStr, TypeBin, TypeExt:
			if n > len(b)-end {
				return off, errTruncated
			}
			end += n
		case TypeArray:
			pending += n
		case TypeMap:
			pending += 2 * n
		}
		off = end
		// Every pending value needs at least one byte: fail early on absurd counts.
		if pending > len(b)-off {
			return off, errTruncated
		}
	}
	return off, nil
}

// ReadValue reads the value that starts at off and returns it with the offset just past
// it.
func ReadValue(b []byte, off int) (Value, int, error) {
	t, end, n, ext, err := header(b, off)
	if err != nil {
		return Value{}, off, err
	}
	v := Value{Type: t, ExtType: ext}
	switch t {
	case TypeStr, TypeBin, TypeExt:
		if n > len(b)-end {
			return Value{}, off, errTruncated
		}
		v.Payload = b[end : end+n : end+n]
		end += n
	case TypeArray, TypeMap:
		v.Len = n
		end, err = Skip(b, off)
		if err != nil {
			return Value{}, off, err
		}
	}
	v.Raw = b[off:end:end]
	return v, end, nil
}

// MapIter walks the key/value pairs of a raw map without decoding them.
//
//	it := flbchunk.NewMapIter(body)
//	for it.Next() { k, v := it.Key(), it.Value() ... }
//	if err := it.Err(); err != nil { ... }
type MapIter struct {
	b        []byte
	off      int
	left     int
	key, val Value
	err      error
}

// NewMapIter starts an iteration over the map m (one msgpack map, as Event.Body).
func NewMapIter(m []byte) MapIter {
	t, end, n, _, err := header(m, 0)
	if err == nil && t != TypeMap {
		err = errNotMap
	}
	if err != nil {
		return MapIter{err: err}
	}
	return MapIter{b: m, off: end, left: n}
}

// Len is the number of pairs the map header announces.
func (it *MapIter) Len() int { return it.left }

// Next advances to the next pair; false at the end or on error.
func (it *MapIter) Next() bool {
	if it.err != nil || it.left <= 0 {
		return false
	}
	var err error
	it.key, it.off, err = ReadValue(it.b, it.off)
	if err == nil {
		it.val, it.off, err = ReadValue(it.b, it.off)
	}
	if err != nil {
		it.err = err
		return false
	}
	it.left--
	return true
}

// Key is the current pair's key.
func (it *MapIter) Key() Value { return it.key }

// Value is the current pair's value.
func (it *MapIter) Value() Value { return it.val }

// Err is the error that stopped the iteration, if any.
func (it *MapIter) Err() error { return it.err }

// FindField looks up the first pair of map m whose key is the string (or bin) key, and
// returns its value. Values of other pairs are skipped, not decoded.
func FindField(m []byte, key string) (Value, bool, error) {
	it := NewMapIter(m)
	for it.Next() {
		if k, ok := it.key.Str(); ok && string(k) == key {
			return it.val, true, nil
		}
	}
	return Value{}, false, it.Err()
}

// readTime decodes a log event timestamp at off: EventTime (ext type 0, 8 bytes), a
// positive or negative integer, or a float.
func readTime(b []byte, off int) (Time, int, error) {
	t, end, n, ext, err := header(b, off)
	if err != nil {
		return Time{}, off, err
	}
	switch t {
	case TypeExt:
		if ext != 0 || n != 8 {
			return Time{}, off, errTimeType
		}
		if len(b)-end < 8 {
			return Time{}, off, errTruncated
		}
		sec := binary.BigEndian.Uint32(b[end:])
		nsec := binary.BigEndian.Uint32(b[end+4:])
		return Time{Sec: int64(sec), Nsec: int64(nsec)}, end + 8, nil
	case TypeUint, TypeInt:
		return Time{Sec: intAt(b, off)}, end, nil
	case TypeFloat:
		var f float64
		if b[off] == 0xca {
			f = float64(math.Float32frombits(binary.BigEndian.Uint32(b[off+1:])))
		} else {
			f = math.Float64frombits(binary.BigEndian.Uint64(b[off+1:]))
		}
		if math.IsNaN(f) || f < -(1<<62) || f > 1<<62 {
			return Time{}, off, errTimeRange
		}
		sec := int64(f)
		nsec := int64((f - float64(sec)) * 1e9)
		return Time{Sec: sec, Nsec: nsec}, end, nil
	}
	return Time{}, off, errTimeType
}

// intAt decodes the integer whose (already validated) header starts at off. A uint64
// above MaxInt64 wraps to a negative value.
func intAt(b []byte, off int) int64 {
	c := b[off]
	p := b[off+1:]
	switch {
	case c <= 0x7f:
		return int64(c)
	case c >= 0xe0:
		return int64(int8(c))
	}
	switch c {
	case 0xcc:
		return int64(p[0])
	case 0xcd:
		return int64(binary.BigEndian.Uint16(p))
	case 0xce:
		return int64(binary.BigEndian.Uint32(p))
	case 0xcf:
		return int64(binary.BigEndian.Uint64(p))
	case 0xd0:
		return int64(int8(p[0]))
	case 0xd1:
		return int64(int16(binary.BigEndian.Uint16(p)))
	case 0xd2:
		return int64(int32(binary.BigEndian.Uint32(p)))
	}
	return int64(binary.BigEndian.Uint64(p)) // 0xd3
}
