package enrich

import (
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/valyala/fastjson"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// fromMsgpack decodes the next msgpack value into a tree built in the Worker's arena,
// so that records Fluent Bit already parsed take the same path as JSON text.
func (w *Worker) fromMsgpack(depth int) (*fastjson.Value, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("nested deeper than %d levels", maxDepth)
	}
	d, a := w.dec, &w.arena
	c, err := d.PeekCode()
	if err != nil {
		return nil, err
	}
	switch {
	case msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32:
		n, err := d.DecodeMapLen()
		if err != nil {
			return nil, err
		}
		if n > wideMap {
			return w.wideObject(n, depth)
		}
		obj := a.NewObject()
		for i := 0; i < n; i++ {
			k, err := w.mapKey()
			if err != nil {
				return nil, err
			}
			v, err := w.fromMsgpack(depth + 1)
			if err != nil {
				return nil, fmt.Errorf("field %q: %w", k, err)
			}
			obj.Set(k, v)
		}
		return obj, nil
	case msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32:
		n, err := d.DecodeArrayLen()
		if err != nil {
			return nil, err
		}
		arr := a.NewArray()
		for i := 0; i < n; i++ {
			v, err := w.fromMsgpack(depth + 1)
			if err != nil {
				return nil, err
			}
			arr.SetArrayItem(i, v)
		}
		return arr, nil
	case msgpcode.IsString(c) || msgpcode.IsBin(c):
		s, err := d.DecodeString()
		if err != nil {
			return nil, err
		}
		return w.newString(s), nil
	case c == msgpcode.Nil:
		return a.NewNull(), d.DecodeNil()
	case c == msgpcode.True || c == msgpcode.False:
		b, err := d.DecodeBool()
		if b {
			return a.NewTrue(), err
		}
		return a.NewFalse(), err
	case c == msgpcode.Float || c == msgpcode.Double:
		f, err := d.DecodeFloat64()
		if math.IsInf(f, 0) || math.IsNaN(f) {
			// Fluent Bit's JSON parser turns 1e400 into an infinite double; as a float it
			// would be printed as inf / nan, which is not JSON.
			return a.NewString(strconv.FormatFloat(f, 'g', -1, 64)), err
		}
		return a.NewNumberFloat64(f), err
	case c == msgpcode.Uint64:
		n, err := d.DecodeUint64()
		return a.NewNumberString(strconv.FormatUint(n, 10)), err
	case msgpcode.IsFixedNum(c) || (c >= msgpcode.Uint8 && c <= msgpcode.Int64):
		n, err := d.DecodeInt64()
		return a.NewNumberString(strconv.FormatInt(n, 10)), err
	case msgpcode.IsExt(c):
		return w.extValue()
	default:
		return nil, fmt.Errorf("unexpected msgpack code 0x%02x", c)
	}
}

// wideMap is the most entries of a map built with Object.Set. Set looks for the key
// among those already set (a later duplicate replaces the value, in the first one's
// place), so n entries cost n²/2 key comparisons: 40,000 keys took 3.5 s. A wider map
// is built linearly by wideObject.
const wideMap = 32

// wideObject decodes a map of n entries (after its header) into a placeholder value
// that fillWide turns into the object once the whole record is decoded: the keys are
// written as a JSON object with 0 values (the skeleton; duplicates resolved here
// with a hash map, as Set resolves them) and the values kept aside in order; fillWide
// parses every skeleton of the record in one go and puts each value in its slot. Maps
// inside finish before the one holding them, so the skeletons are in that order.
func (w *Worker) wideObject(n, depth int) (*fastjson.Value, error) {
	base := len(w.widePairs)
	for i := 0; i < n; i++ {
		k, err := w.mapKey()
		if err != nil {
			return nil, err
		}
		v, err := w.fromMsgpack(depth + 1)
		if err != nil {
			return nil, fmt.Errorf("field %q: %w", k, err)
		}
		w.widePairs = append(w.widePairs, widePair{k, v})
	}
	pairs := w.widePairs[base:]
	if w.wideSeen == nil {
		w.wideSeen = make(map[string]int)
	}
	clear(w.wideSeen)
	start := len(w.wideVals)
	if len(w.wideSkel) == 0 {
		w.wideSkel = append(w.wideSkel, '[')
	} else {
		w.wideSkel = append(w.wideSkel, ',')
	}
	w.wideSkel = append(w.wideSkel, '{')
	for _, p := range pairs {
		if j, dup := w.wideSeen[p.k]; dup {
			w.wideVals[j] = p.v
			continue
		}
		w.wideSeen[p.k] = len(w.wideVals)
		if len(w.wideVals) > start {
			w.wideSkel = append(w.wideSkel, ',')
		}
		w.wideSkel = appendJSONKey(w.wideSkel, p.k)
		w.wideSkel = append(w.wideSkel, ":0"...) // a number: the parser gives it a Value of its own (null, true, false are shared)
		w.wideVals = append(w.wideVals, p.v)
	}
	w.wideSkel = append(w.wideSkel, '}')
	clear(pairs) // no pointers kept past their use
	w.widePairs = w.widePairs[:base]
	ph := w.arena.NewObject() // a Value of its own (NewNull's is shared), overwritten by fillWide
	w.wideObjs = append(w.wideObjs, wideObj{ph: ph, start: start, end: len(w.wideVals)})
	return ph, nil
}

type widePair struct {
	k string
	v *fastjson.Value
}

// wideObj is a map decoded by wideObject: its placeholder and its values.
type wideObj struct {
	ph         *fastjson.Value
	start, end int // in wideVals
}

// fillWide builds the objects wideObject left placeholders for.
func (w *Worker) fillWide() error {
	if len(w.wideObjs) == 0 {
		return nil
	}
	w.wideSkel = append(w.wideSkel, ']')
	arr, err := w.wideP.ParseBytes(w.wideSkel)
	if err != nil {
		return fmt.Errorf("building a wide map: %w", err) // a bug: the skeleton is ours
	}
	items, _ := arr.Array()
	if len(items) != len(w.wideObjs) {
		return fmt.Errorf("building wide maps: %d of %d", len(items), len(w.wideObjs))
	}
	// Values are moved, not copied: an object or array copied would share its items
	// between the arena and the parser, each of which reuses them at the next call.
	for i, o := range w.wideObjs {
		obj, _ := items[i].Object()
		j := o.start
		obj.Visit(func(_ []byte, slot *fastjson.Value) {
			v := w.wideVals[j]
			j++
			*slot = *v
			if t := v.Type(); t == fastjson.TypeObject || t == fastjson.TypeArray {
				*v = fastjson.Value{} // null, true and false are shared, and hold nothing
			}
		})
		*o.ph = *items[i]
		*items[i] = fastjson.Value{}
	}
	return nil
}

// newString makes a string value of s. fastjson's Arena.NewString keeps a string with
// a quote, a backslash or a control character as Go's strconv.Quote writes it, and
// unescapes that text as JSON when read: "\x00", "\a", "\v", an invalid UTF-8 byte
// ("\xff") and a rune Go does not print ("\U000e0001") came out as those escapes, not
// as the bytes Fluent Bit handed over. Such strings are written as JSON (appendJSONKey)
// into one array per record, parsed by fillStrings, and moved into their place.
func (w *Worker) newString(s string) *fastjson.Value {
	special := strings.ContainsAny(s, "\"\\")
	for i := 0; i < len(s) && !special; i++ {
		special = s[i] < 0x20
	}
	if !special {
		return w.arena.NewString(s)
	}
	ph := w.arena.NewString("") // a value of its own, filled in by fillStrings
	if len(w.strSkel) == 0 {
		w.strSkel = append(w.strSkel, '[')
	} else {
		w.strSkel = append(w.strSkel, ',')
	}
	w.strSkel = appendJSONKey(w.strSkel, s)
	w.strPH = append(w.strPH, ph)
	return ph
}

// fillStrings puts the strings newString set aside into their places (before
// fillWide moves values into wide maps).
func (w *Worker) fillStrings() error {
	if len(w.strPH) == 0 {
		return nil
	}
	w.strSkel = append(w.strSkel, ']')
	arr, err := w.strP.ParseBytes(w.strSkel)
	if err != nil {
		return fmt.Errorf("building strings: %w", err) // a bug: the text is ours
	}
	items, _ := arr.Array()
	if len(items) != len(w.strPH) {
		return fmt.Errorf("building strings: %d of %d", len(items), len(w.strPH))
	}
	for i, ph := range w.strPH {
		// Type unescapes the parsed text in place, once: copies made before would
		// keep the escaped length over the unescaped bytes (fillWide copies values,
		// then asks their type).
		_ = items[i].Type()
		*ph = *items[i]
	}
	return nil
}

// appendJSONKey writes k as a JSON string: quote, backslash and control characters
// escaped, every other byte as it is (fastjson's parser takes them so).
func appendJSONKey(dst []byte, k string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(k); i++ {
		switch c := k[i]; {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}

// extValue keeps an ext value found inside a record: an EventTime (type 0, 8 bytes)
// as float seconds, anything else as hex text. The bytes are read explicitly rather
// than through DecodeInterface, which trusts declared lengths and could be made to
// allocate gigabytes by a crafted record.
func (w *Worker) extValue() (*fastjson.Value, error) {
	typ, n, err := w.dec.DecodeExtHeader()
	if err != nil {
		return nil, err
	}
	if n < 0 || n > w.rd.Len() {
		return nil, fmt.Errorf("ext value of %d bytes overruns the record", n)
	}
	b := make([]byte, n)
	if err := w.dec.ReadFull(b); err != nil {
		return nil, err
	}
	if typ == 0 && n == 8 {
		sec := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		nsec := uint32(b[4])<<24 | uint32(b[5])<<16 | uint32(b[6])<<8 | uint32(b[7])
		return w.arena.NewNumberFloat64(float64(sec) + float64(nsec)/1e9), nil
	}
	return w.arena.NewString(hex.EncodeToString(b)), nil
}

// mapKey reads a map key: Fluent Bit keys are strings; an integer key is kept as its
// decimal text, anything else makes the record undecodable (it then passes through).
func (w *Worker) mapKey() (string, error) {
	c, err := w.dec.PeekCode()
	if err != nil {
		return "", err
	}
	switch {
	case msgpcode.IsString(c) || msgpcode.IsBin(c):
		return w.dec.DecodeString()
	case c == msgpcode.Uint64:
		n, err := w.dec.DecodeUint64()
		return strconv.FormatUint(n, 10), err
	case msgpcode.IsFixedNum(c) || (c >= msgpcode.Uint8 && c <= msgpcode.Int64):
		n, err := w.dec.DecodeInt64()
		return strconv.FormatInt(n, 10), err
	}
	return "", fmt.Errorf("map key of msgpack code 0x%02x is not a string", c)
}
