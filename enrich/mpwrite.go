package enrich

import (
	"encoding/binary"
	"math"
)

// outBuf appends msgpack to a byte slice. The record path writes dozens of small
// values per record; going through msgpack.Encoder's io.Writer for each cost ~25% of
// the per-record budget (see BenchmarkText), so output is appended directly here.
// Decoding, and the tests' independent decoding of every record, use
// github.com/vmihailenco/msgpack/v5, which also keeps this writer honest.
type outBuf struct{ b []byte }

// str and strs write the fixstr header inline: most keys and values are short.
func (o *outBuf) str(s []byte) {
	if len(s) < 32 {
		o.b = append(append(o.b, 0xa0|byte(len(s))), s...)
		return
	}
	o.strHeader(len(s))
	o.b = append(o.b, s...)
}

func (o *outBuf) strs(s string) {
	if len(s) < 32 {
		o.b = append(append(o.b, 0xa0|byte(len(s))), s...)
		return
	}
	o.strHeader(len(s))
	o.b = append(o.b, s...)
}

func (o *outBuf) strHeader(l int) {
	switch {
	case l < 32:
		o.b = append(o.b, 0xa0|byte(l))
	case l < 1<<8:
		o.b = append(o.b, 0xd9, byte(l))
	case l < 1<<16:
		o.b = append(o.b, 0xda, byte(l>>8), byte(l))
	default:
		o.b = binary.BigEndian.AppendUint32(append(o.b, 0xdb), uint32(l))
	}
}

func (o *outBuf) mapLen(l int) { o.header(l, 0x80, 0xde, 0xdf) }

func (o *outBuf) arrayLen(l int) { o.header(l, 0x90, 0xdc, 0xdd) }

func (o *outBuf) header(l int, fix, c16, c32 byte) {
	switch {
	case l < 16:
		o.b = append(o.b, fix|byte(l))
	case l < 1<<16:
		o.b = append(o.b, c16, byte(l>>8), byte(l))
	default:
		o.b = binary.BigEndian.AppendUint32(append(o.b, c32), uint32(l))
	}
}

func (o *outBuf) int(n int64) {
	switch {
	case n >= 0:
		o.uint(uint64(n))
	case n >= -32:
		o.b = append(o.b, byte(n))
	case n >= math.MinInt8:
		o.b = append(o.b, 0xd0, byte(n))
	case n >= math.MinInt16:
		o.b = binary.BigEndian.AppendUint16(append(o.b, 0xd1), uint16(n))
	case n >= math.MinInt32:
		o.b = binary.BigEndian.AppendUint32(append(o.b, 0xd2), uint32(n))
	default:
		o.b = binary.BigEndian.AppendUint64(append(o.b, 0xd3), uint64(n))
	}
}

func (o *outBuf) uint(n uint64) {
	switch {
	case n < 128:
		o.b = append(o.b, byte(n))
	case n < 1<<8:
		o.b = append(o.b, 0xcc, byte(n))
	case n < 1<<16:
		o.b = binary.BigEndian.AppendUint16(append(o.b, 0xcd), uint16(n))
	case n < 1<<32:
		o.b = binary.BigEndian.AppendUint32(append(o.b, 0xce), uint32(n))
	default:
		o.b = binary.BigEndian.AppendUint64(append(o.b, 0xcf), n)
	}
}

func (o *outBuf) float(f float64) {
	o.b = binary.BigEndian.AppendUint64(append(o.b, 0xcb), math.Float64bits(f))
}

func (o *outBuf) boolean(v bool) {
	if v {
		o.b = append(o.b, 0xc3)
	} else {
		o.b = append(o.b, 0xc2)
	}
}

func (o *outBuf) null() { o.b = append(o.b, 0xc0) }
