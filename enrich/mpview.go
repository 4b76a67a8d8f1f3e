package enrich

import (
	"encoding/binary"
	"math"
)

// mpv is a view of one msgpack value as enrich/jsonmp writes it (compact, well formed:
// the record's own fields, written before the derived fields are computed from them).
// The derived fields read the event through these views whichever path wrote it
// (JSON text in one pass, or the fastjson tree of a batch, an envelope or a map
// record), so that one derive serves all of them. nil is an absent value. Reading
// goes no further than the view: a view cut short reads as absent, never panics.
type mpv []byte

// size returns the bytes of the value at the start of b, or -1 if b is cut short.
func size(b []byte) int {
	if len(b) == 0 {
		return -1
	}
	c := b[0]
	switch {
	case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
		return 1
	case c&0xe0 == 0xa0:
		return within(b, 1+int(c&0x1f))
	case c&0xf0 == 0x80:
		return container(b, 1, int(c&0x0f), 2)
	case c&0xf0 == 0x90:
		return container(b, 1, int(c&0x0f), 1)
	}
	switch c {
	case 0xcc, 0xd0:
		return within(b, 2)
	case 0xcd, 0xd1:
		return within(b, 3)
	case 0xce, 0xd2, 0xca:
		return within(b, 5)
	case 0xcf, 0xd3, 0xcb:
		return within(b, 9)
	case 0xd9:
		if len(b) < 2 {
			return -1
		}
		return within(b, 2+int(b[1]))
	case 0xda:
		if len(b) < 3 {
			return -1
		}
		return within(b, 3+int(binary.BigEndian.Uint16(b[1:])))
	case 0xdb:
		if len(b) < 5 {
			return -1
		}
		return within(b, 5+int(binary.BigEndian.Uint32(b[1:])))
	case 0xdc, 0xde:
		if len(b) < 3 {
			return -1
		}
		return container(b, 3, int(binary.BigEndian.Uint16(b[1:])), 1+int(c-0xdc)/2)
	case 0xdd, 0xdf:
		if len(b) < 5 {
			return -1
		}
		return container(b, 5, int(binary.BigEndian.Uint32(b[1:])), 1+int(c-0xdd)/2)
	case 0xc4: // bin: in records Fluent Bit parsed, never in jsonmp's
		if len(b) < 2 {
			return -1
		}
		return within(b, 2+int(b[1]))
	case 0xc5:
		if len(b) < 3 {
			return -1
		}
		return within(b, 3+int(binary.BigEndian.Uint16(b[1:])))
	case 0xc6:
		if len(b) < 5 {
			return -1
		}
		return within(b, 5+int(binary.BigEndian.Uint32(b[1:])))
	}
	return -1 // ext: a record holding one takes the parser's path
}

func within(b []byte, n int) int {
	if n > len(b) {
		return -1
	}
	return n
}

// container sizes a map (per 2) or array (per 1) of n entries after a header of hdr.
func container(b []byte, hdr, n, per int) int {
	off := hdr
	for i := 0; i < n*per; i++ {
		k := size(b[off:])
		if k < 0 {
			return -1
		}
		off += k
	}
	return off
}

// str returns a string's bytes, nil for anything else (as str does for fastjson).
func (v mpv) str() []byte {
	if len(v) == 0 {
		return nil
	}
	c := v[0]
	var off, n int
	switch {
	case c&0xe0 == 0xa0:
		off, n = 1, int(c&0x1f)
	case c == 0xd9 && len(v) >= 2:
		off, n = 2, int(v[1])
	case c == 0xda && len(v) >= 3:
		off, n = 3, int(binary.BigEndian.Uint16(v[1:]))
	case c == 0xdb && len(v) >= 5:
		off, n = 5, int(binary.BigEndian.Uint32(v[1:]))
	default:
		return nil
	}
	if off+n > len(v) {
		return nil
	}
	return v[off : off+n : off+n]
}

// int64 returns an integer that fits int64, 0 for anything else: fastjson's GetInt64
// gives 0 for a float, a string or a larger integer too.
func (v mpv) int64() int64 {
	if len(v) == 0 {
		return 0
	}
	c := v[0]
	switch {
	case c <= 0x7f:
		return int64(c)
	case c >= 0xe0:
		return int64(int8(c))
	}
	if size(v) < 0 {
		return 0
	}
	switch c {
	case 0xcc:
		return int64(v[1])
	case 0xcd:
		return int64(binary.BigEndian.Uint16(v[1:]))
	case 0xce:
		return int64(binary.BigEndian.Uint32(v[1:]))
	case 0xcf:
		if u := binary.BigEndian.Uint64(v[1:]); u <= math.MaxInt64 {
			return int64(u)
		}
	case 0xd0:
		return int64(int8(v[1]))
	case 0xd1:
		return int64(int16(binary.BigEndian.Uint16(v[1:])))
	case 0xd2:
		return int64(int32(binary.BigEndian.Uint32(v[1:])))
	case 0xd3:
		return int64(binary.BigEndian.Uint64(v[1:]))
	}
	return 0
}

// entries returns the header size and entry count of a map (per 2) or array (per 1),
// or ok false for any other value.
func (v mpv) entries(isMap bool) (hdr, n int, ok bool) {
	if len(v) == 0 {
		return 0, 0, false
	}
	c := v[0]
	fix, c16, c32 := byte(0x90), byte(0xdc), byte(0xdd)
	if isMap {
		fix, c16, c32 = 0x80, 0xde, 0xdf
	}
	switch {
	case c&0xf0 == fix:
		return 1, int(c & 0x0f), true
	case c == c16 && len(v) >= 3:
		return 3, int(binary.BigEndian.Uint16(v[1:])), true
	case c == c32 && len(v) >= 5:
		return 5, int(binary.BigEndian.Uint32(v[1:])), true
	}
	return 0, 0, false
}

// visit calls f with each key (a string key's bytes; nil for another kind) and value
// of a map, in order; nothing for any other value.
func (v mpv) visit(f func(k []byte, val mpv)) {
	off, n, ok := v.entries(true)
	if !ok {
		return
	}
	for i := 0; i < n; i++ {
		ks := size(v[off:])
		if ks < 0 {
			return
		}
		k := mpv(v[off : off+ks]).str()
		off += ks
		vs := size(v[off:])
		if vs < 0 {
			return
		}
		f(k, v[off:off+vs:off+vs])
		off += vs
	}
}

// get returns the value of the first pair with key k (fastjson's Get), nil if none.
func (v mpv) get(k string) mpv {
	off, n, ok := v.entries(true)
	if !ok {
		return nil
	}
	for i := 0; i < n; i++ {
		ks := size(v[off:])
		if ks < 0 {
			return nil
		}
		key := mpv(v[off : off+ks]).str()
		off += ks
		vs := size(v[off:])
		if vs < 0 {
			return nil
		}
		if string(key) == k {
			return v[off : off+vs : off+vs]
		}
		off += vs
	}
	return nil
}

// items calls f with each item of an array; nothing for any other value.
func (v mpv) items(f func(item mpv)) {
	off, n, ok := v.entries(false)
	if !ok {
		return
	}
	for i := 0; i < n; i++ {
		s := size(v[off:])
		if s < 0 {
			return
		}
		f(v[off : off+s : off+s])
		off += s
	}
}
