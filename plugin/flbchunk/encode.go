package flbchunk

import (
	"encoding/binary"
	"math"
)

// emptyMap is a msgpack map with no pairs: the metadata of a re-encoded legacy event.
var emptyMap = []byte{0x80}

// Encoder appends Fluent Bit v2 events to a reusable buffer:
//
//	[[EventTime(sec, nsec), metadata], {pairs...}]
//
// The body map gets a map32 header (0xdf + big-endian uint32) that End patches with the
// pair count, so pairs can be added before their number is known.
//
//	e.Reset(buf[:0])
//	e.Begin(t, meta)
//	e.AddRawPair(k, v) ...
//	e.End()
//	out := e.Bytes()
type Encoder struct {
	buf    []byte
	mapAt  int // offset of the open body's map32 header
	count  int
	evAt   int // offset of the open event
	active bool
}

// Reset makes the Encoder append to dst (usually a reused buffer truncated to 0).
func (e *Encoder) Reset(dst []byte) {
	*e = Encoder{buf: dst}
}

// Bytes returns everything appended so far.
func (e *Encoder) Bytes() []byte { return e.buf }

// Len is the number of bytes appended so far.
func (e *Encoder) Len() int { return len(e.buf) }

// Truncate drops everything after the first n bytes, and any open event.
func (e *Encoder) Truncate(n int) {
	e.buf = e.buf[:n]
	e.active = false
}

// AppendRaw appends bytes as they are (a whole event passed through).
func (e *Encoder) AppendRaw(b []byte) {
	e.buf = append(e.buf, b...)
}

// Begin opens an event with timestamp t and the raw metadata map meta (nil: an empty
// map). Seconds are written as uint32, as EventTime requires. An event already open is
// ended first.
func (e *Encoder) Begin(t Time, meta []byte) {
	if e.active {
		e.End()
	}
	if meta == nil {
		meta = emptyMap
	}
	e.evAt = len(e.buf)
	e.buf = append(e.buf, 0x92, 0x92)
	e.buf = AppendEventTime(e.buf, t)
	e.buf = append(e.buf, meta...)
	e.mapAt = len(e.buf)
	e.buf = append(e.buf, 0xdf, 0, 0, 0, 0)
	e.count = 0
	e.active = true
}

// Cancel removes the open event.
func (e *Encoder) Cancel() {
	if e.active {
		e.buf = e.buf[:e.evAt]
		e.active = false
	}
}

// AddRawPair adds one key/value pair, each given as a whole msgpack value.
func (e *Encoder) AddRawPair(key, val []byte) {
	e.buf = append(e.buf, key...)
	e.buf = append(e.buf, val...)
	e.count++
}

// AddPairs adds n pairs already encoded back to back in pairs.
func (e *Encoder) AddPairs(pairs []byte, n int) {
	e.buf = append(e.buf, pairs...)
	e.count += n
}

// AddString adds a pair of string key and string value.
func (e *Encoder) AddString(key, val string) {
	e.buf = AppendString(e.buf, key)
	e.buf = AppendString(e.buf, val)
	e.count++
}

// Count is the number of pairs in the open event.
func (e *Encoder) Count() int { return e.count }

// End closes the open event: it writes the pair count into the map header.
func (e *Encoder) End() {
	if !e.active {
		return
	}
	binary.BigEndian.PutUint32(e.buf[e.mapAt+1:], uint32(e.count))
	e.active = false
}

// Valid reports whether t is an ordinary time that an EventTime can carry: seconds in
// uint32, nanoseconds below 1e9, and not one of the two values that mean a group
// marker (0xFFFFFFFF or 0xFFFFFFFE seconds with 0 nanoseconds).
func (t Time) Valid() bool {
	if t.Nsec == 0 && (t.Sec == 0xFFFFFFFF || t.Sec == 0xFFFFFFFE) {
		return false
	}
	return t.Sec >= 0 && t.Sec <= math.MaxUint32 && t.Nsec >= 0 && t.Nsec < 1e9
}

// AppendEventTime appends t as an EventTime (ext type 0, fixext8).
func AppendEventTime(b []byte, t Time) []byte {
	b = append(b, 0xd7, 0x00)
	b = binary.BigEndian.AppendUint32(b, uint32(t.Sec))
	return binary.BigEndian.AppendUint32(b, uint32(t.Nsec))
}

// AppendString appends s as a msgpack str.
func AppendString(b []byte, s string) []byte {
	n := len(s)
	switch {
	case n < 32:
		b = append(b, 0xa0|byte(n))
	case n <= math.MaxUint8:
		b = append(b, 0xd9, byte(n))
	case n <= math.MaxUint16:
		b = append(b, 0xda)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 0xdb)
		b = binary.BigEndian.AppendUint32(b, uint32(n))
	}
	return append(b, s...)
}

// AppendMapHeader appends the header of a map with n pairs.
func AppendMapHeader(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x80|byte(n))
	case n <= math.MaxUint16:
		b = append(b, 0xde)
		return binary.BigEndian.AppendUint16(b, uint16(n))
	}
	b = append(b, 0xdf)
	return binary.BigEndian.AppendUint32(b, uint32(n))
}
