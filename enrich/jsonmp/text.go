package jsonmp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/bits"
	"slices"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// This file is the writer's second entry: JSON text straight to msgpack, in one pass,
// without a parse tree. Building fastjson's tree and walking it again to write each
// value was most of the k8s_audit filter's cost per record (callgrind: fastjson's
// parse ~35% of the instructions, the walk and writing ~25%); here each byte of the
// text is read once. The output is, byte for byte, what AppendValue writes for the
// tree fastjson parses from the same text (TestAppendPairsAgrees, FuzzAppendPairs):
// strings unescaped as fastjson unescapes them, numbers through the same AppendNumberText.
// What this writer does not take on it refuses with ErrFallback rather than guess
// (a number that is not JSON, nesting deeper than fallbackDepth, any syntax error): the
// caller then parses the text with fastjson, whose answer (a record, or the error) is
// the reference.

// ErrFallback is returned by AppendPairs for a text it leaves to the tree-based path.
var ErrFallback = errors.New("jsonmp: text left to the parser")

// ErrStop is returned by AppendPairs when its key function said Stop.
var ErrStop = errors.New("jsonmp: stopped at a key")

// Action is what AppendPairs does with a top-level pair.
type Action uint8

const (
	// Write writes the pair.
	Write Action = iota
	// Skip reads the value but leaves the pair out.
	Skip
	// Stop ends the call with ErrStop.
	Stop
)

// Field locates one written top-level pair in dst: its key's msgpack at Key, its
// value's at Value, up to End. Offsets, not slices: dst may move as it grows.
type Field struct{ Key, Value, End int }

// fallbackDepth is the deepest nesting AppendPairs writes itself (audit events nest a
// few levels; fastjson takes up to MaxDepth).
const fallbackDepth = 64

// TextWriter keeps AppendPairs' scratch memory from call to call (strings with
// escapes are unescaped there first, containers' headers are tracked there), so that
// a warm one allocates nothing. Not safe for concurrent use; the zero value is ready.
type TextWriter struct {
	tmp   []byte
	stack []frame
}

// frame is an open map or array: where its one-byte header was reserved, how many
// entries it has so far.
type frame struct {
	hdr, n int
	isMap  bool
}

// AppendPairs writes the pairs of the JSON object that text holds (whitespace around
// it allowed, nothing else) to dst, without a map header, calling key with each
// top-level key (unescaped; a view valid until dst changes) to ask whether to write
// the pair. It returns dst and the fields written (appended to fields). On any error
// dst comes back at its original length.
//
// The state (dst, the position in text) goes from function to function as arguments
// and results, and nesting is a stack, not recursion: with the state in a struct
// reached through a pointer, loading and storing it around every token took a third
// of the instructions (callgrind).
func (tw *TextWriter) AppendPairs(dst, text []byte, fields []Field, key func(k []byte) Action) ([]byte, []Field, error) {
	start := len(dst)
	i := ws(text, 0)
	if i >= len(text) || text[i] != '{' {
		return dst[:start], fields, ErrFallback
	}
	i = ws(text, i+1)
	if i < len(text) && text[i] == '}' {
		i++
	} else {
		for {
			if i >= len(text) || text[i] != '"' {
				return dst[:start], fields, ErrFallback
			}
			f := Field{Key: len(dst)}
			var ok bool
			if dst, i, ok = tw.str(dst, text, i); !ok {
				return dst[:start], fields, ErrFallback
			}
			act := key(keyBytes(dst[f.Key:]))
			if act == Stop {
				return dst[:start], fields, ErrStop
			}
			if i = colon(text, i); i < 0 {
				return dst[:start], fields, ErrFallback
			}
			f.Value = len(dst)
			if dst, i, ok = tw.value(dst, text, i); !ok {
				return dst[:start], fields, ErrFallback
			}
			if act == Skip {
				dst = dst[:f.Key]
			} else {
				f.End = len(dst)
				fields = append(fields, f)
			}
			var more bool
			if i, more, ok = next(text, i, '}'); !ok {
				return dst[:start], fields, ErrFallback
			}
			if !more {
				break
			}
		}
	}
	if ws(text, i) != len(text) {
		return dst[:start], fields, ErrFallback // fastjson: "unexpected tail"
	}
	return dst, fields, nil
}

// keyBytes returns the bytes of the msgpack string at the start of b.
func keyBytes(b []byte) []byte {
	switch c := b[0]; {
	case c&0xe0 == 0xa0:
		return b[1 : 1+int(c&0x1f)]
	case c == 0xd9:
		return b[2 : 2+int(b[1])]
	case c == 0xda:
		return b[3 : 3+int(binary.BigEndian.Uint16(b[1:]))]
	default:
		return b[5 : 5+int(binary.BigEndian.Uint32(b[1:]))]
	}
}

// ws skips JSON whitespace from i (fastjson's skipWS: space, \t, \n, \r).
func ws(s []byte, i int) int {
	for i < len(s) && s[i] <= ' ' {
		switch s[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// colon reads the ':' after a key and the whitespace around it; -1 if absent.
func colon(s []byte, i int) int {
	i = ws(s, i)
	if i >= len(s) || s[i] != ':' {
		return -1
	}
	return ws(s, i+1)
}

// next reads what follows a member or element: ',' (more, then whitespace) or end.
func next(s []byte, i int, end byte) (int, bool, bool) {
	i = ws(s, i)
	if i >= len(s) {
		return i, false, false
	}
	switch s[i] {
	case ',':
		return ws(s, i+1), true, true
	case end:
		return i + 1, false, true
	}
	return i, false, false
}

// value writes the JSON value at s[i] (after whitespace); it returns the position
// after it.
func (tw *TextWriter) value(dst, s []byte, i int) ([]byte, int, bool) {
	// (No defer or closure here: a variable one captures lives in memory, and dst and
	// i are touched at every token.)
	stack := tw.stack[:0]
	var ok bool
	for {
		// A value starts at i.
		if i >= len(s) {
			return dst, i, false
		}
		switch c := s[i]; c {
		case '"':
			if dst, i, ok = tw.str(dst, s, i); !ok {
				return dst, i, false
			}
		case '{', '[':
			if len(stack) >= fallbackDepth-1 {
				return dst, i, false
			}
			isMap := c == '{'
			hdr := len(dst)
			end := byte(']')
			if isMap {
				dst, end = append(dst, 0x80), '}'
			} else {
				dst = append(dst, 0x90)
			}
			i = ws(s, i+1)
			if i < len(s) && s[i] == end {
				i++ // empty: the header is right as it is
				break
			}
			stack = append(stack, frame{hdr: hdr, isMap: isMap})
			if isMap {
				if dst, i, ok = tw.key(dst, s, i); !ok {
					return dst, i, false
				}
			}
			continue
		case 't':
			if dst, i, ok = literal(dst, s, i, "true", 0xc3); !ok {
				return dst, i, false
			}
		case 'f':
			if dst, i, ok = literal(dst, s, i, "false", 0xc2); !ok {
				return dst, i, false
			}
		case 'n':
			if dst, i, ok = literal(dst, s, i, "null", 0xc0); !ok {
				return dst, i, false
			}
		default:
			if c != '-' && (c < '0' || c > '9') {
				return dst, i, false
			}
			if dst, i, ok = number(dst, s, i); !ok {
				return dst, i, false
			}
		}
		// A value ended at i: close what it ends, or go on to the next entry.
		for {
			if len(stack) == 0 {
				tw.stack = stack // keep what it grew to
				return dst, i, true
			}
			top := &stack[len(stack)-1]
			top.n++
			end := byte(']')
			if top.isMap {
				end = '}'
			}
			var more bool
			if i, more, ok = next(s, i, end); !ok {
				return dst, i, false
			}
			if more {
				if top.isMap {
					if dst, i, ok = tw.key(dst, s, i); !ok {
						return dst, i, false
					}
				}
				break
			}
			if top.isMap {
				dst = header(dst, top.hdr, top.n, 0x80, 0xde, 0xdf)
			} else {
				dst = header(dst, top.hdr, top.n, 0x90, 0xdc, 0xdd)
			}
			stack = stack[:len(stack)-1]
		}
	}
}

// key writes the key at s[i] of a map's entry and reads the ':' after it.
func (tw *TextWriter) key(dst, s []byte, i int) ([]byte, int, bool) {
	if i >= len(s) || s[i] != '"' {
		return dst, i, false
	}
	dst, i, ok := tw.str(dst, s, i)
	if !ok {
		return dst, i, false
	}
	if i = colon(s, i); i < 0 {
		return dst, i, false
	}
	return dst, i, true
}

func literal(dst, s []byte, i int, word string, code byte) ([]byte, int, bool) {
	if !bytes.HasPrefix(s[i:], []byte(word)) {
		return dst, i, false
	}
	return append(dst, code), i + len(word), true
}

// number writes the number as AppendValue does: its text through AppendNumberText. A
// text that is no JSON number goes to the parser, which says so.
func number(dst, s []byte, i int) ([]byte, int, bool) {
	j := i
	for j < len(s) {
		c := s[j]
		if c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
			j++
			continue
		}
		break
	}
	raw := s[i:j]
	if !IsNumber(raw) {
		return dst, i, false
	}
	start := len(dst)
	dst, err := AppendNumberText(append(dst, raw...), start)
	return dst, j, err == nil
}

// str writes the string that starts at s[i] (a '"'), unescaped as fastjson does, and
// returns the position after its closing quote.
func (tw *TextWriter) str(dst, s []byte, i int) ([]byte, int, bool) {
	rest := s[i+1:]
	// Room for the rest of the text: a string's msgpack is never longer than its JSON
	// plus three bytes, and copyText stores whole words.
	if cap(dst)-len(dst) < len(rest)+16 {
		dst = slices.Grow(dst, len(rest)+16)
	}
	h := len(dst)
	out := dst[:cap(dst)]
	n := copyText(out[h+1:], rest)
	if n < len(rest) && rest[n] == '"' {
		if n < 32 {
			out[h] = 0xa0 | byte(n)
			return out[:h+1+n], i + n + 2, true
		}
		// A longer header: move the text up behind it.
		var hb [5]byte
		hdr := AppendStringHeader(hb[:0], n)
		copy(out[h+len(hdr):], out[h+1:h+1+n])
		copy(out[h:], hdr)
		return out[:h+len(hdr)+n], i + n + 2, true
	}
	raw, used, ok := rawString(rest)
	if !ok {
		return dst, i, false
	}
	tw.tmp = unescape(tw.tmp[:0], raw)
	return AppendStringBytes(dst, tw.tmp), i + 1 + used, true
}

// copyText copies src to dst up to the first '"' or '\\' and returns its index
// (len(src) if none). It finds and copies in the same pass, eight bytes at a time
// (SWAR: a byte equal to c is a zero byte of x^c, and (v-0x01..)&^v&0x80.. marks the
// lowest zero byte exactly): audit events are ~50 short strings, and a search then a
// copy (two bytes.IndexByte calls and a memmove per string) took three times the
// instructions. Whole words are stored, so dst may be written up to 7 bytes past the
// index: it must have room for len(src)+8 bytes.
func copyText(dst, src []byte) int {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	dst = dst[:len(src)+8]
	// Shrinking both slices as the words go lets the compiler drop the bounds checks
	// of the loads and stores (an indexed form kept two per word).
	s, d := src, dst
	for len(s) >= 8 && len(d) >= 8 {
		x := binary.LittleEndian.Uint64(s)
		binary.LittleEndian.PutUint64(d, x)
		q, bs := x^(lo*'"'), x^(lo*'\\')
		if t := ((q-lo)&^q | (bs-lo)&^bs) & hi; t != 0 {
			return len(src) - len(s) + bits.TrailingZeros64(t)/8
		}
		s, d = s[8:], d[8:]
	}
	i := len(src) - len(s)
	for ; i < len(src); i++ {
		c := src[i]
		if c == '"' || c == '\\' {
			return i
		}
		dst[i] = c
	}
	return i
}

// rawString finds the end of a string whose text s follows the opening quote: a quote
// after an even number of backslashes (fastjson's parseRawString). It returns the
// text and how many bytes it and the closing quote take.
func rawString(s []byte) ([]byte, int, bool) {
	off := 0
	for {
		q := bytes.IndexByte(s[off:], '"')
		if q < 0 {
			return nil, 0, false
		}
		q += off
		bs := 0
		for k := q - 1; k >= 0 && s[k] == '\\'; k-- {
			bs++
		}
		if bs%2 == 0 {
			return s[:q], q + 1, true
		}
		off = q + 1
	}
}

// unescape is fastjson's unescapeStringBestEffort, appending to dst: the JSON escapes
// are decoded, a \u escape that is too short or not hex, a lone surrogate and an
// unknown escape are kept as written, and a surrogate pair whose second half is not a
// low surrogate becomes U+FFFD (utf16.DecodeRune).
func unescape(dst, s []byte) []byte {
	for {
		n := bytes.IndexByte(s, '\\')
		if n < 0 {
			return append(dst, s...)
		}
		dst = append(dst, s[:n]...)
		s = s[n+1:]
		if len(s) == 0 {
			return dst // fastjson: a trailing backslash is dropped
		}
		ch := s[0]
		s = s[1:]
		switch ch {
		case '"', '\\', '/':
			dst = append(dst, ch)
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			if len(s) < 4 {
				dst = append(dst, `\u`...)
				break
			}
			xs := s[:4]
			x, err := strconv.ParseUint(B2S(xs), 16, 16)
			if err != nil {
				dst = append(dst, `\u`...)
				break
			}
			s = s[4:]
			if !utf16.IsSurrogate(rune(x)) {
				dst = utf8.AppendRune(dst, rune(x))
				break
			}
			if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
				dst = append(append(dst, `\u`...), xs...)
				break
			}
			x1, err := strconv.ParseUint(B2S(s[2:6]), 16, 16)
			if err != nil {
				dst = append(append(dst, `\u`...), xs...)
				break
			}
			dst = utf8.AppendRune(dst, utf16.DecodeRune(rune(x), rune(x1)))
			s = s[6:]
		default:
			dst = append(dst, '\\', ch)
		}
	}
}

// header fills in the one byte reserved at hdr for a map or array of n entries, as
// AppendMapLen and AppendArrayLen write it: a fix header when n < 16, else the 16- or
// 32-bit form, the entries moved up to make room.
func header(dst []byte, hdr, n int, fix, h16, h32 byte) []byte {
	if n < 16 {
		dst[hdr] = fix | byte(n)
		return dst
	}
	extra := 2
	if n > 0xffff {
		extra = 4
	}
	end := len(dst)
	dst = append(dst, make([]byte, extra)...)
	copy(dst[hdr+1+extra:], dst[hdr+1:end])
	if extra == 2 {
		dst[hdr] = h16
		binary.BigEndian.PutUint16(dst[hdr+1:], uint16(n))
	} else {
		dst[hdr] = h32
		binary.BigEndian.PutUint32(dst[hdr+1:], uint32(n))
	}
	return dst
}
