package enrich

import (
	"bytes"
	"errors"
	"fmt"
	"sync"

	"github.com/valyala/fastjson"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/kubetrail/kubetrail/enrich/jsonmp"
)

// Enricher holds validated Options and a pool of Workers. It is safe for concurrent
// use: Fluent Bit calls one filter instance from several input threads at once.
type Enricher struct {
	opts        Options
	redactPaths [][]string
	pool        sync.Pool
	top         *topUsers // user_top's names, with Options.Metrics and TopUsers > 0
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
	if opts.TopUsers < 0 {
		return nil, fmt.Errorf("top users %d is negative", opts.TopUsers)
	}
	if opts.Metrics && opts.TopUsers > 0 {
		e.top = newTopUsers(opts.TopUsers)
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
	inner fastjson.Parser // a JSON text inside it (properties.log, a CloudWatch message)
	// inners are one parser per envelope item when Options.Summary asks for views into
	// every item's tree at once (inner serves them all otherwise).
	inners []*fastjson.Parser
	ann    fastjson.Parser // JSON inside annotation values
	arena  fastjson.Arena  // values we create: markers, trees decoded from msgpack
	// Maps of more than wideMap entries decoded from msgpack (wideObject, fillWide).
	wideP     fastjson.Parser
	wideSkel  []byte
	wideVals  []*fastjson.Value
	widePairs []widePair
	wideObjs  []wideObj
	wideSeen  map[string]int
	// Strings of a map record that fastjson's arena would spoil (newString).
	strP    fastjson.Parser
	strSkel []byte
	strPH   []*fastjson.Value
	dec     *msgpack.Decoder
	rd      bytes.Reader

	buf  outBuf // record fields of every record of this call
	dbuf outBuf // derived fields of the record being built
	// scratch holds, for an event whose fields are written after modify, a copy of
	// the fields derive reads; kept for the whole call (summaries view it).
	scratch outBuf
	tw      jsonmp.TextWriter
	fields  []jsonmp.Field // the one-pass writer's top-level fields

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

	// badNum is set when a number written since it was last cleared is not JSON (NaN,
	// Infinity, +1, 012: fastjson's parser lets them through); badNumText is that number.
	badNum     bool
	badNumText []byte
	// parserOnly turns the one-pass path off: tests compare the two paths.
	parserOnly bool
	// copyKeys makes key keep copies: the names of a document parsed with inner, which
	// the next item's parse overwrites.
	copyKeys bool
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
	// nested is set inside an envelope (properties.log, a CloudWatch message): only a
	// single audit event is accepted there, no further batch or envelope.
	nested bool
}

// The top-level keys of each envelope that are the envelope's own: they hold or describe
// the batch, never one of its events (Result.EnvelopeKeys).
var (
	eventListKeys  = []string{"kind", "apiVersion", "metadata", "items"}
	eventHubKeys   = []string{"records"}
	cloudwatchKeys = []string{"messageType", "subscriptionFilters", "logEvents"}
	aksKeys        = []string{"properties"}
)

func (w *Worker) reset() {
	w.buf.b = w.buf.b[:0]
	w.scratch.b = w.scratch.b[:0]
	w.records = w.records[:0]
	w.spans = w.spans[:0]
	w.keys = w.keys[:0]
	w.strs = w.strs[:0]
	w.arena.Reset()
	if len(w.wideVals)+len(w.widePairs) > 0 {
		clear(w.wideVals)
		clear(w.widePairs)
	}
	w.wideVals, w.widePairs, w.wideObjs, w.wideSkel = w.wideVals[:0], w.widePairs[:0], w.wideObjs[:0], w.wideSkel[:0]
	clear(w.strPH)
	w.strSkel, w.strPH = w.strSkel[:0], w.strPH[:0]
	w.badNum = false
	w.copyKeys = false
}

// Text enriches audit JSON text: one event, an EventList or a JSON array of events
// (webhook batches), an AKS diagnostic envelope or an Azure Event Hub body of them, a
// CloudWatch Logs subscription payload, a line with a "hostname " prefix, or a
// CloudWatch line cut short with "[Truncated...]" (repaired and flagged).
func (w *Worker) Text(line []byte) Result {
	w.reset()
	return w.finish(w.text(&w.p, line, inputCtx{}))
}

// text parses one JSON text with p and enriches what it holds.
func (w *Worker) text(p *fastjson.Parser, line []byte, ctx inputCtx) Result {
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
	if body[0] == '{' && !w.parserOnly && !hasObjects(body) {
		var res Result
		if w.onePass(body, ctx, &res) {
			return res
		}
	}
	v, err := p.ParseBytes(body)
	if err != nil {
		return Result{Err: fmt.Errorf("not JSON: %w", err)}
	}
	return w.value(v, ctx)
}

// hasObjects reports, for a large text, whether it holds a requestObject or
// responseObject: the one pass would stop there (modify needs the tree) and what it
// had written would be thrown away (in the 9.5 KB RequestResponse event of testdata,
// the 1 KB of fields before requestObject). A text under 2 KiB is not searched: most
// Metadata-level events are that small, and the search would cost each of them more
// than the rare stop it saves.
func hasObjects(body []byte) bool {
	return len(body) >= 2048 &&
		(bytes.Contains(body, []byte(`"requestObject"`)) || bytes.Contains(body, []byte(`"responseObject"`)))
}

// errBadNumber says that a JSON text held a number JSON does not allow: such a text is
// not JSON, so not an audit event.
var errBadNumber = errors.New("not JSON: a number JSON does not allow")

func (w *Worker) badNumberError() error {
	return fmt.Errorf("%w: %q", errBadNumber, w.badNumText)
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
	if !w.parserOnly {
		var res Result
		if w.onePassMap(m, &res) {
			return w.finish(res)
		}
	}
	if w.dec == nil {
		w.dec = msgpack.NewDecoder(&w.rd)
	}
	w.rd.Reset(m)
	w.dec.Reset(&w.rd)
	v, err := w.fromMsgpack(0)
	if err == nil {
		err = w.fillStrings()
	}
	if err == nil {
		err = w.fillWide()
	}
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
		if ctx.nested {
			return Result{Err: errors.New("not an audit event: a JSON array")}
		}
		items, _ := v.Array()
		return w.batch(items, ctx, "JSON array", (*Worker).plainItem, nil)
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
	if ctx.nested {
		return Result{Err: errNoAuditField}
	}
	if items := v.Get("items"); items != nil && items.Type() == fastjson.TypeArray {
		// An EventList (webhook batches), or any other list: only events count.
		arr, _ := items.Array()
		return w.batch(arr, ctx, "list", (*Worker).plainItem, eventListKeys)
	}
	if recs := v.Get("records"); recs != nil && recs.Type() == fastjson.TypeArray {
		// An Azure Event Hub body: diagnostic log records, each an AKS envelope.
		arr, _ := recs.Array()
		return w.batch(arr, ctx, "Event Hub body", (*Worker).envelopeItem, eventHubKeys)
	}
	if les := v.Get("logEvents"); les != nil && les.Type() == fastjson.TypeArray && v.Exists("messageType") {
		// A CloudWatch Logs subscription payload (decompressed): each logEvents[].message
		// is one line of the log stream.
		if mt := v.GetStringBytes("messageType"); string(mt) != "DATA_MESSAGE" {
			return Result{Err: fmt.Errorf("not an audit event: a CloudWatch Logs %q message, not DATA_MESSAGE", mt)}
		}
		arr, _ := les.Array()
		return w.batch(arr, ctx, "CloudWatch Logs payload", (*Worker).cloudwatchItem, cloudwatchKeys)
	}
	if log := v.Get("properties", "log"); log != nil && log.Type() == fastjson.TypeString {
		// AKS diagnostic settings wrap each event as a JSON string in properties.log.
		s, _ := log.StringBytes()
		var res Result
		if err := w.nested(0, s, ctx, &res); err != nil {
			return Result{Err: fmt.Errorf("AKS envelope: properties.log: %w", err)}
		}
		res.EnvelopeKeys = aksKeys
		return res
	}
	return Result{Err: errNoAuditField}
}

// nested enriches the JSON text found inside an envelope item (number i of its batch):
// it must be a single audit event. Errors about the text are returned as text of their
// own (not wrapping errBadNumber: a bad number there spoils that item, not the input).
func (w *Worker) nested(i int, text []byte, ctx inputCtx, res *Result) error {
	p := &w.inner
	if w.e.opts.Summary {
		// Summaries are views into every item's tree: one parser per item.
		for len(w.inners) <= i {
			w.inners = append(w.inners, new(fastjson.Parser))
		}
		p = w.inners[i]
	}
	ctx.nested, ctx.hostname, ctx.cloudwatch = true, nil, false
	copyKeys := w.copyKeys
	w.copyKeys = true
	r := w.text(p, text, ctx)
	w.copyKeys = copyKeys
	if r.Err != nil {
		return errors.New(r.Err.Error())
	}
	res.Dropped += r.Dropped
	res.Records = w.records
	return nil
}

// An itemFunc enriches one batch item, appending its record to res (or counting it
// dropped); an error says the item is not an audit event.
type itemFunc func(w *Worker, i int, it *fastjson.Value, ctx inputCtx, res *Result) error

var errNoAuditField = errors.New("not an audit event: no auditID field")

func (w *Worker) plainItem(_ int, it *fastjson.Value, ctx inputCtx, res *Result) error {
	if it.Type() != fastjson.TypeObject || !it.Exists("auditID") {
		return errNoAuditField
	}
	return w.event(it, ctx, res)
}

// envelopeItem is an Event Hub record: an AKS envelope (or an audit event as such).
func (w *Worker) envelopeItem(i int, it *fastjson.Value, ctx inputCtx, res *Result) error {
	if it.Type() == fastjson.TypeObject && it.Exists("auditID") {
		return w.event(it, ctx, res)
	}
	log := it.Get("properties", "log")
	if log == nil || log.Type() != fastjson.TypeString {
		return errors.New("not an audit event: no auditID field, no properties.log string")
	}
	s, _ := log.StringBytes()
	if err := w.nested(i, s, ctx, res); err != nil {
		return fmt.Errorf("properties.log: %w", err)
	}
	return nil
}

// cloudwatchItem is a CloudWatch Logs event: its message is the line.
func (w *Worker) cloudwatchItem(i int, it *fastjson.Value, ctx inputCtx, res *Result) error {
	msg := it.Get("message")
	if msg == nil || msg.Type() != fastjson.TypeString {
		return errors.New("not an audit event: no message string")
	}
	s, _ := msg.StringBytes()
	if err := w.nested(i, s, ctx, res); err != nil {
		return fmt.Errorf("message: %w", err)
	}
	return nil
}

// batch handles the lists of events (webhook batches, Event Hub bodies, CloudWatch Logs
// payloads): every audit event becomes a record; an item that is not one is kept as it
// is with a parse_error field. A batch without a single audit event is not an audit
// input at all: the caller passes it through as it came. own are the envelope's keys
// (Result.EnvelopeKeys).
func (w *Worker) batch(items []*fastjson.Value, ctx inputCtx, what string, item itemFunc, own []string) Result {
	if len(items) == 0 {
		return Result{Err: fmt.Errorf("not an audit event: an empty %s", what)}
	}
	var res Result
	events := 0
	var first error
	for i, it := range items {
		err := item(w, i, it, ctx, &res)
		if err == nil {
			events++
			continue
		}
		err = fmt.Errorf("item %d: %w", i, err)
		if errors.Is(err, errBadNumber) {
			return Result{Err: err} // the input itself is not JSON
		}
		if first == nil {
			first = err
		}
		w.badNum = false
		w.passItem(it, err)
		if w.badNum {
			return Result{Err: fmt.Errorf("item %d: %w", i, w.badNumberError())}
		}
	}
	if events == 0 {
		return Result{Err: fmt.Errorf("not an audit event: a %s of %d items, none an audit event (%w)", what, len(items), first)}
	}
	res.Records = w.records
	res.Batch = true
	if !ctx.nested {
		res.EnvelopeKeys = own
	}
	return res
}

// passItem writes a batch item that could not be enriched as a record of its own: its
// fields as they were, then parse_error (Record.ItemFields leaves that out).
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
	errAt := len(w.buf.b) - start
	w.key("parse_error")
	w.buf.strs(err.Error())
	w.spans = append(w.spans, span{start: start, end: len(w.buf.b), keys: [2]int{keys, len(w.keys)}})
	w.records = append(w.records, Record{Err: err, errAt: errAt})
}

// dropLast takes back the last record written (an event that turned out not to be one).
func (w *Worker) dropLast() {
	sp := w.spans[len(w.spans)-1]
	w.buf.b = w.buf.b[:sp.start]
	w.keys = w.keys[:sp.keys[0]]
	w.spans = w.spans[:len(w.spans)-1]
	w.records = w.records[:len(w.records)-1]
}

// key writes a top-level key and remembers it for Record.HasKey.
func (w *Worker) key(k string) {
	w.buf.strs(k)
	if w.copyKeys {
		k = b2s(w.stable([]byte(k)))
	}
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
func b2s(b []byte) string { return jsonmp.B2S(b) }

// stable copies b into the call's string store, so that it survives later parses.
func (w *Worker) stable(b []byte) []byte {
	start := len(w.strs)
	w.strs = append(w.strs, b...)
	return w.strs[start:len(w.strs):len(w.strs)]
}
