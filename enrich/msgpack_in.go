package enrich

import (
	"encoding/hex"
	"fmt"
	"math"
	"strconv"

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
		return a.NewString(s), nil
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
