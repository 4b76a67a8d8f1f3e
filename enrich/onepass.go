package enrich

import (
	"bytes"
	"encoding/binary"
	"math"
	"strconv"

	"github.com/kubetrail/kubetrail/enrich/jsonmp"
)

// onePass enriches a single audit event from its JSON text without a parse tree: the
// text is written as the record's own fields in one pass (jsonmp.AppendPairs), derive
// reads them there, the derived fields follow. This is the path of a log line or a
// webhook body of one event at Metadata level, most of what k8s_audit sees; it gives
// byte for byte the record the parser's path (event) gives (TestOnePassAgrees).
//
// It declines (ok false, nothing written) what needs the tree or another reading:
// requestObject or responseObject (modify may change them), the options that rewrite
// other fields (redact_exec_command, redact_paths), a text that is no single event
// (a batch, an envelope, no auditID), and whatever AppendPairs leaves to the parser
// (a number that is not JSON, a syntax error: the parser's answer is the reference).
func (w *Worker) onePass(body []byte, ctx inputCtx, res *Result) (ok bool) {
	o := &w.e.opts
	if o.RedactExecCommand || len(w.e.redactPaths) > 0 {
		return false
	}
	start, keys := len(w.buf.b), len(w.keys)
	out, fields, err := w.tw.AppendPairs(w.buf.b, body, w.fields[:0], func(k []byte) jsonmp.Action {
		switch {
		case string(k) == "requestObject" || string(k) == "responseObject":
			return jsonmp.Stop
		case w.skipOwn(k, ctx):
			return jsonmp.Skip
		}
		return jsonmp.Write
	})
	w.fields = fields
	w.buf.b = out
	if err != nil {
		return false
	}
	var t top
	for _, f := range fields {
		k := mpv(out[f.Key:f.Value]).str()
		w.keys = append(w.keys, b2s(k))
		t.set(k, out[f.Value:f.End])
	}
	return w.onePassEvent(&t, ctx, start, keys, res)
}

// onePassEvent finishes an event whose own fields the one pass wrote at start (keys
// at keys): derive, the rules, the derived fields. False, with nothing written, for a
// document that is not an event (no auditID): the parser's path finds what it is.
func (w *Worker) onePassEvent(t *top, ctx inputCtx, start, keys int, res *Result) bool {
	if len(t.auditID) == 0 {
		w.buf.b, w.keys = w.buf.b[:start], w.keys[:keys]
		return false
	}
	w.derive(t, ctx)
	if w.dropped(t) {
		w.buf.b, w.keys = w.buf.b[:start], w.keys[:keys]
		res.Dropped++
		return true
	}
	w.redact = w.redact[:0]
	w.finishRecord(t, &w.d, ctx, start, keys)
	res.Records = w.records
	return true
}

// onePassMap is onePass for a record Fluent Bit already parsed (tail with a JSON
// parser, the http input): the map's pairs are written as the record's own fields as
// the parser's path would write them after decoding the map into a tree (fromMsgpack
// then jsonmp): integers in their smallest form, floats through the text fastjson
// gives them, strings and bin as strings. It declines what that path treats apart:
// maps wider than wideMap or with a key twice (the tree keeps one value), keys that
// are not strings, ext values, NaN and infinities, nesting deeper than 64, and the
// same events onePass declines.
func (w *Worker) onePassMap(m []byte, res *Result) (ok bool) {
	o := &w.e.opts
	if o.RedactExecCommand || len(w.e.redactPaths) > 0 {
		return false
	}
	top0 := mpv(m)
	hdr, n, isMap := top0.entries(true)
	if !isMap || n > wideMap || size(m) < 0 {
		return false
	}
	start, keys := len(w.buf.b), len(w.keys)
	decline := func() bool {
		w.buf.b, w.keys = w.buf.b[:start], w.keys[:keys]
		return false
	}
	var t top
	ctx := inputCtx{size: len(m)}
	off := hdr
	var seen [wideMap][]byte
	for i := 0; i < n; i++ {
		ks := size(m[off:])
		k := mpv(m[off : off+ks]).str()
		if k == nil || dupKey(seen[:i], k) {
			return decline()
		}
		seen[i] = k
		off += ks
		vs := size(m[off:])
		val := m[off : off+vs]
		off += vs
		if string(k) == "requestObject" || string(k) == "responseObject" {
			return decline()
		}
		skip := w.skipOwn(k, ctx)
		keyAt := len(w.buf.b)
		w.buf.str(k)
		at := len(w.buf.b)
		var good bool
		if w.buf.b, good = appendRecordValue(w.buf.b, val, 1); !good {
			return decline()
		}
		if skip {
			w.buf.b = w.buf.b[:keyAt]
			continue
		}
		kv := mpv(w.buf.b[keyAt:at]).str()
		w.keys = append(w.keys, b2s(kv))
		t.set(kv, w.buf.b[at:])
	}
	return w.onePassEvent(&t, ctx, start, keys, res)
}

// dupKey reports whether k is one of seen (the keys before it in a map of at most
// wideMap entries: a linear scan is cheaper than a hash there).
func dupKey(seen [][]byte, k []byte) bool {
	for _, s := range seen {
		if bytes.Equal(s, k) {
			return true
		}
	}
	return false
}

// appendRecordValue writes one msgpack value of a parsed record (well formed: size
// checked it) as the parser's path writes it; false for what onePassMap declines.
func appendRecordValue(dst []byte, v mpv, depth int) ([]byte, bool) {
	c := v[0]
	switch {
	case c <= 0x7f || c >= 0xe0:
		return jsonmp.AppendInt(dst, v.int64()), true
	case c&0xe0 == 0xa0 || c == 0xd9 || c == 0xda || c == 0xdb:
		return jsonmp.AppendStringBytes(dst, v.str()), true
	case c == 0xc4 || c == 0xc5 || c == 0xc6: // bin: a string, as DecodeString reads it
		h := map[byte]int{0xc4: 2, 0xc5: 3, 0xc6: 5}[c]
		return jsonmp.AppendStringBytes(dst, v[h:]), true
	case c == 0xc0 || c == 0xc2 || c == 0xc3:
		return append(dst, c), true
	case c >= 0xcc && c <= 0xd3:
		if c == 0xcf {
			if u := binary.BigEndian.Uint64(v[1:]); u > math.MaxInt64 {
				return jsonmp.AppendUint(dst, u), true
			}
		}
		return jsonmp.AppendInt(dst, v.int64()), true
	case c == 0xca || c == 0xcb:
		var f float64
		if c == 0xca {
			f = float64(math.Float32frombits(binary.BigEndian.Uint32(v[1:])))
		} else {
			f = math.Float64frombits(binary.BigEndian.Uint64(v[1:]))
		}
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return dst, false
		}
		// The tree holds the float as strconv's shortest 'g' text (fastjson's
		// NewNumberFloat64), which jsonmp writes as an integer when it has no '.' or
		// exponent: 2.0 is 2.
		start := len(dst)
		dst = strconv.AppendFloat(dst, f, 'g', -1, 64)
		dst, err := jsonmp.AppendNumberText(dst, start)
		return dst, err == nil
	}
	if depth >= 64 {
		return dst, false
	}
	if hdr, n, ok := v.entries(true); ok {
		if n > wideMap {
			return dst, false
		}
		dst = jsonmp.AppendMapLen(dst, n)
		off := hdr
		var seen [wideMap][]byte
		for i := 0; i < n; i++ {
			ks := size(v[off:])
			k := mpv(v[off : off+ks]).str()
			if k == nil || dupKey(seen[:i], k) {
				return dst, false
			}
			seen[i] = k
			dst = jsonmp.AppendStringBytes(dst, k)
			off += ks
			vs := size(v[off:])
			var ok bool
			if dst, ok = appendRecordValue(dst, v[off:off+vs], depth+1); !ok {
				return dst, false
			}
			off += vs
		}
		return dst, true
	}
	if hdr, n, ok := v.entries(false); ok {
		dst = jsonmp.AppendArrayLen(dst, n)
		off := hdr
		for i := 0; i < n; i++ {
			s := size(v[off:])
			var ok bool
			if dst, ok = appendRecordValue(dst, v[off:off+s], depth+1); !ok {
				return dst, false
			}
			off += s
		}
		return dst, true
	}
	return dst, false // ext
}
