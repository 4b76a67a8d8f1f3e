package enrich

import (
	"fmt"
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
		return a.NewNumberFloat64(f), err
	case c == msgpcode.Uint64:
		n, err := d.DecodeUint64()
		return a.NewNumberString(strconv.FormatUint(n, 10)), err
	case msgpcode.IsFixedNum(c) || (c >= msgpcode.Uint8 && c <= msgpcode.Int64):
		n, err := d.DecodeInt64()
		return a.NewNumberString(strconv.FormatInt(n, 10)), err
	default: // ext types (EventTime) inside a body: keep them, as text
		v, err := d.DecodeInterface()
		if err != nil {
			return nil, err
		}
		return a.NewString(fmt.Sprint(v)), nil
	}
}

// mapKey reads a map key; Fluent Bit keys are strings, anything else is kept as text.
func (w *Worker) mapKey() (string, error) {
	c, err := w.dec.PeekCode()
	if err != nil {
		return "", err
	}
	if msgpcode.IsString(c) || msgpcode.IsBin(c) {
		return w.dec.DecodeString()
	}
	v, err := w.dec.DecodeInterface()
	if err != nil {
		return "", err
	}
	return fmt.Sprint(v), nil
}
