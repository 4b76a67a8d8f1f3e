package enrich

import "github.com/kubetrail/kubetrail/enrich/jsonmp"

// outBuf appends msgpack to a byte slice, through enrich/jsonmp, the one msgpack
// writer both plugins use. The record path writes dozens of small values per record;
// going through msgpack.Encoder's io.Writer for each cost ~25% of the per-record
// budget (see BenchmarkText), so output is appended directly. Decoding, and the
// tests' independent decoding of every record, use github.com/vmihailenco/msgpack/v5,
// which also keeps the writer honest.
type outBuf struct{ b []byte }

func (o *outBuf) str(s []byte)    { o.b = jsonmp.AppendStringBytes(o.b, s) }
func (o *outBuf) strs(s string)   { o.b = jsonmp.AppendString(o.b, s) }
func (o *outBuf) strHeader(l int) { o.b = jsonmp.AppendStringHeader(o.b, l) }
func (o *outBuf) mapLen(l int)    { o.b = jsonmp.AppendMapLen(o.b, l) }
func (o *outBuf) arrayLen(l int)  { o.b = jsonmp.AppendArrayLen(o.b, l) }
func (o *outBuf) int(n int64)     { o.b = jsonmp.AppendInt(o.b, n) }
func (o *outBuf) uint(n uint64)   { o.b = jsonmp.AppendUint(o.b, n) }
func (o *outBuf) float(f float64) { o.b = jsonmp.AppendFloat(o.b, f) }
func (o *outBuf) boolean(v bool)  { o.b = jsonmp.AppendBool(o.b, v) }
func (o *outBuf) null()           { o.b = jsonmp.AppendNil(o.b) }
