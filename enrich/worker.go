package enrich

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"unsafe"

	"github.com/valyala/fastjson"
	"github.com/vmihailenco/msgpack/v5"
)

// Enricher holds validated Options and a pool of Workers. It is safe for concurrent
// use: Fluent Bit calls one filter instance from several input threads at once.
type Enricher struct {
	opts        Options
	redactPaths [][]string
	pool        sync.Pool
}

// New checks the options and returns an Enricher.
func New(opts Options) (*Enricher, error) {
	if opts.SummaryOnly {
		opts.Summary = true
	}
	e := &Enricher{opts: opts}
	for _, p := range opts.RedactPaths {
		parts, err := splitPath(p)
		if err != nil {
			return nil, err
		}
		e.redactPaths = append(e.redactPaths, parts)
	}
	if opts.MaxObjectSize < 0 {
		return nil, fmt.Errorf("max object size %d is negative", opts.MaxObjectSize)
	}
	e.pool.New = func() any { return e.NewWorker() }
	return e, nil
}

// Options returns the settings the Enricher runs with.
func (e *Enricher) Options() Options { return e.opts }

// NewWorker returns a Worker of its own (tools that run one goroutine use this).
func (e *Enricher) NewWorker() *Worker {
	w := &Worker{e: e}
	return w
}

// Get takes a Worker from the pool; Put returns it.
func (e *Enricher) Get() *Worker { return e.pool.Get().(*Worker) }

// Put returns a Worker to the pool. The Worker's last Result must not be used after.
func (e *Enricher) Put(w *Worker) { e.pool.Put(w) }

// Worker is the per-goroutine state: parsers, arena and output buffers, reused from
// call to call so that a warm Worker allocates nothing per record.
type Worker struct {
	e *Enricher

	p     fastjson.Parser // the input document
	inner fastjson.Parser // a JSON string inside it (AKS envelope)
	ann   fastjson.Parser // JSON inside annotation values
	arena fastjson.Arena  // values we create: markers, trees decoded from msgpack
	dec   *msgpack.Decoder
	rd    bytes.Reader

	buf  outBuf // record fields of every record of this call
	dbuf outBuf // derived fields of the record being built

	records []Record
	spans   []span
	keys    []string
	strs    []byte // stable copies of small strings built during a call
	num     []byte
	repair  []byte
	sizeBuf []byte
	query   queryParams
	d       derived
	hooks   []webhook
	redact  []string
}

// span locates a record's fields in buf until the call ends (buf may move as it grows).
type span struct {
	start, end int
	keys       [2]int
}

// inputCtx is what the outer form of an input tells about every event inside it.
type inputCtx struct {
	hostname   []byte
	cloudwatch bool // a CloudWatch line cut short and repaired
	size       int  // bytes of the whole input: no object inside can be larger
}

func (w *Worker) reset() {
	w.buf.b = w.buf.b[:0]
	w.records = w.records[:0]
	w.spans = w.spans[:0]
	w.keys = w.keys[:0]
	w.strs = w.strs[:0]
	w.arena.Reset()
}

// Text enriches audit JSON text: one event, an EventList or a JSON array of events
// (webhook batches), an AKS diagnostic envelope, a line with a "hostname " prefix, or a
// CloudWatch line cut short with "[Truncated...]" (repaired and flagged).
func (w *Worker) Text(line []byte) Result {
	w.reset()
	return w.finish(w.text(line, inputCtx{}))
}

func (w *Worker) text(line []byte, ctx inputCtx) Result {
	body := bytes.TrimSpace(line)
	if len(body) == 0 {
		return Result{Err: errors.New("empty input")}
	}
	if n := len(cloudwatchMarker); len(body) >= n && bytes.EqualFold(body[len(body)-n:], []byte(cloudwatchMarker)) {
		body = bytes.TrimSpace(body[:len(body)-n])
		ctx.cloudwatch = true
		if len(body) == 0 {
			return Result{Err: errors.New("empty input before " + cloudwatchMarker)}
		}
	}
	if body[0] != '{' && body[0] != '[' {
		host, rest, ok := splitPrefix(body)
		if !ok {
			return Result{Err: errors.New("not JSON: the text does not start with '{' or '['")}
		}
		ctx.hostname, body = host, rest
	}
	if ctx.cloudwatch {
		w.repair = repairJSON(w.repair[:0], body)
		body = w.repair
	}
	ctx.size = len(body)
	v, err := w.p.ParseBytes(body)
	if err != nil {
		return Result{Err: fmt.Errorf("not JSON: %w", err)}
	}
	return w.value(v, ctx)
}

const cloudwatchMarker = "[Truncated...]"

// splitPrefix accepts "host {json}" (syslog-style forwarders, must-gather audit files)
// and the CRI log format "time stream P|F {json}" that the kubelet writes when the
// apiserver audits to stdout.
func splitPrefix(b []byte) (host, rest []byte, ok bool) {
	i := bytes.IndexByte(b, '{')
	if i <= 0 {
		return nil, nil, false
	}
	fields := bytes.Fields(b[:i])
	switch {
	case len(fields) == 1:
		return fields[0], b[i:], true
	case len(fields) == 3 && (string(fields[2]) == "F" || string(fields[2]) == "P") &&
		(string(fields[1]) == "stdout" || string(fields[1]) == "stderr"):
		return nil, b[i:], true
	}
	return nil, nil, false
}

// Map enriches a record that is already a decoded audit event (in_tail with a JSON
// parser, in_http), or a decoded EventList / AKS envelope, given as one msgpack map.
func (w *Worker) Map(m []byte) Result {
	w.reset()
	if w.dec == nil {
		w.dec = msgpack.NewDecoder(&w.rd)
	}
	w.rd.Reset(m)
	w.dec.Reset(&w.rd)
	v, err := w.fromMsgpack(0)
	if err != nil {
		return w.finish(Result{Err: fmt.Errorf("undecodable msgpack record: %w", err)})
	}
	if v.Type() != fastjson.TypeObject {
		return w.finish(Result{Err: errors.New("not an audit event: the record is not a map")})
	}
	return w.finish(w.value(v, inputCtx{size: len(m)}))
}

// value classifies a parsed document by its shape, not its labels: apiVersion and
// kind are often missing or wrong in files that went through other tools.
func (w *Worker) value(v *fastjson.Value, ctx inputCtx) Result {
	switch v.Type() {
	case fastjson.TypeArray:
		items, _ := v.Array()
		return w.batch(items, ctx)
	case fastjson.TypeObject:
	default:
		return Result{Err: fmt.Errorf("not an audit event: a JSON %s", v.Type())}
	}
	if v.Exists("auditID") {
		var res Result
		if err := w.event(v, ctx, &res); err != nil {
			return Result{Err: err}
		}
		return res
	}
	if items := v.Get("items"); items != nil && items.Type() == fastjson.TypeArray {
		arr, _ := items.Array()
		return w.batch(arr, ctx)
	}
	if log := v.Get("properties", "log"); log != nil && log.Type() == fastjson.TypeString {
		// AKS diagnostic settings wrap each event as a JSON string in properties.log.
		s, _ := log.StringBytes()
		inner, err := w.inner.ParseBytes(s)
		if err != nil {
			return Result{Err: fmt.Errorf("AKS envelope: properties.log is not JSON: %w", err)}
		}
		ctx.size = len(s)
		return w.value(inner, ctx)
	}
	return Result{Err: errors.New("not an audit event: no auditID field")}
}

// batch handles webhook batches: every item becomes a record; an item that is not an
// audit event is kept as it is with a parse_error field.
func (w *Worker) batch(items []*fastjson.Value, ctx inputCtx) Result {
	var res Result
	for i, it := range items {
		var err error
		if it.Type() == fastjson.TypeObject && it.Exists("auditID") {
			err = w.event(it, ctx, &res)
		} else {
			err = fmt.Errorf("not an audit event: no auditID field")
		}
		if err != nil {
			w.passItem(it, fmt.Errorf("item %d: %w", i, err))
		}
	}
	return res
}

// passItem writes a batch item that could not be enriched as a record of its own.
func (w *Worker) passItem(it *fastjson.Value, err error) {
	start := len(w.buf.b)
	keys := len(w.keys)
	if o, _ := it.Object(); o != nil {
		o.Visit(func(k []byte, v *fastjson.Value) {
			w.key(b2s(k))
			w.encodeValue(&w.buf, v, 0)
		})
	} else {
		w.key("item")
		w.encodeValue(&w.buf, it, 0)
	}
	w.key("parse_error")
	w.buf.strs(err.Error())
	w.spans = append(w.spans, span{start: start, end: len(w.buf.b), keys: [2]int{keys, len(w.keys)}})
	w.records = append(w.records, Record{Err: err})
}

// key writes a top-level key and remembers it for Record.HasKey.
func (w *Worker) key(k string) {
	w.buf.strs(k)
	w.keys = append(w.keys, k)
}

// finish turns the spans of this call into Records over the final buffer.
func (w *Worker) finish(res Result) Result {
	if res.Err != nil {
		res.Records = nil
		return res
	}
	out := w.buf.b
	for i := range w.records {
		sp := w.spans[i]
		r := &w.records[i]
		r.Fields = out[sp.start:sp.end]
		r.keys = w.keys[sp.keys[0]:sp.keys[1]]
		r.Count = len(r.keys)
	}
	res.Records = w.records
	return res
}

// b2s views bytes as a string without copying; the string must not outlive b.
func b2s(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// stable copies b into the call's string store, so that it survives later parses.
func (w *Worker) stable(b []byte) []byte {
	start := len(w.strs)
	w.strs = append(w.strs, b...)
	return w.strs[start:len(w.strs):len(w.strs)]
}
