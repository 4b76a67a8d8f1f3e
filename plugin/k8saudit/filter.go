// Package k8saudit is the logic of one k8s_audit filter instance: it decodes a
// Fluent Bit chunk, runs every record through the enrich Worker and encodes the
// resulting records as a new chunk. It is pure Go; package plugin (cgo) only adapts it
// to Fluent Bit's C callbacks.
//
// Nothing is ever lost: a record that is not an audit event, an event with a timestamp
// that cannot be re-encoded, a group marker, and the bytes after a decoding error all
// pass through byte for byte.
package k8saudit

import (
	"fmt"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/kubetrail/kubetrail/conf"
	"github.com/kubetrail/kubetrail/enrich"
	"github.com/kubetrail/kubetrail/plugin/flbchunk"
	"github.com/kubetrail/kubetrail/plugin/flblog"
	"github.com/kubetrail/kubetrail/plugin/k8saudit/dedup"
)

// Stats counts what an instance did over its life.
type Stats struct {
	// Chunks is the number of Process calls.
	Chunks uint64
	// RecordsIn counts input records (group markers excluded).
	RecordsIn uint64
	// RecordsOut counts output records (an event list gives several).
	RecordsOut uint64
	// Dropped counts audit events removed by the keep/drop rules.
	Dropped uint64
	// NotAudit counts records passed through because they are not audit events.
	NotAudit uint64
	// Skipped counts records passed through unchanged because their timestamp cannot be
	// written back as an EventTime (negative, after 2106).
	Skipped uint64
	// DecodeErrors counts chunks that could not be decoded to the end (the rest was
	// passed through unchanged).
	DecodeErrors uint64
	// Panics counts records whose processing panicked (passed through unchanged).
	Panics uint64
	// Duplicates counts audit events left out by dedup: already emitted.
	Duplicates uint64
}

func (s Stats) String() string {
	return fmt.Sprintf("chunks=%d records_in=%d records_out=%d dropped=%d not_audit=%d skipped=%d decode_errors=%d panics=%d duplicates=%d",
		s.Chunks, s.RecordsIn, s.RecordsOut, s.Dropped, s.NotAudit, s.Skipped, s.DecodeErrors, s.Panics, s.Duplicates)
}

// maxPooledBuffer is the largest output buffer kept for reuse; bigger ones (a huge
// chunk) are left to the garbage collector.
const maxPooledBuffer = 8 << 20

// Filter is one filter instance. It is safe for concurrent use.
type Filter struct {
	cfg  conf.Audit
	enr  *enrich.Enricher
	log  flblog.Logger
	pool sync.Pool // *Output
	// dedup, when on, remembers the events emitted (nil: off).
	dedup     *dedup.Set
	closeOnce sync.Once

	chunks, in, out, dropped, notAudit, skipped, decodeErrs, panics, dups atomic.Uint64
}

// New creates a filter instance from its validated configuration.
func New(cfg conf.Audit, log flblog.Logger) (*Filter, error) {
	if log == nil {
		return nil, fmt.Errorf("k8saudit: nil logger")
	}
	enr, err := enrich.New(cfg.Enrich)
	if err != nil {
		return nil, err
	}
	f := &Filter{cfg: cfg, enr: enr, log: log}
	f.pool.New = func() any { return &Output{f: f} }
	if cfg.Dedup {
		if f.dedup, err = dedup.Open(dedup.Options{MaxEntries: cfg.DedupMaxEntries, Path: cfg.DedupFile, Log: log}); err != nil {
			return nil, err
		}
		if cfg.DedupFile == "" {
			log.Warnf("dedup without dedup_file: the events emitted are remembered in memory only, a restart emits again those read again")
		}
	}
	return f, nil
}

// Output is the result of one Process call: a pooled buffer. Bytes is valid until
// Release; call Release exactly once, after copying the bytes (into C memory).
type Output struct {
	f   *Filter
	dec flbchunk.Decoder
	enc flbchunk.Encoder
	buf []byte
}

// Bytes is the output chunk.
func (o *Output) Bytes() []byte { return o.buf }

// Release returns the buffer for reuse.
func (o *Output) Release() {
	if cap(o.buf) > maxPooledBuffer {
		o.buf = nil
	}
	o.buf = o.buf[:0]
	o.dec.Reset(nil)
	o.enc.Reset(nil)
	o.f.pool.Put(o)
}

// Process filters one chunk. When nothing changed (no record parsed, no parse_error
// added, nothing dropped) it returns (nil, false) and the caller keeps the chunk as it
// was. Otherwise it returns the new chunk (possibly empty: everything dropped), which
// the caller copies and then releases.
func (f *Filter) Process(chunk []byte) (*Output, bool) {
	f.chunks.Add(1)
	o := f.pool.Get().(*Output)
	o.dec.Reset(chunk)
	o.enc.Reset(o.buf[:0])
	w := f.enr.Get()

	changed := false
	var st counts
	var ev flbchunk.Event
	for {
		err := o.dec.Next(&ev)
		if err != nil {
			if off := o.dec.Offset(); off < len(chunk) {
				f.decodeErrs.Add(1)
				f.log.Warnf("chunk of %d bytes: %v; passing the last %d bytes through unchanged", len(chunk), err, len(chunk)-off)
				o.enc.AppendRaw(chunk[off:])
			}
			break
		}
		if ev.IsGroupMarker {
			o.enc.AppendRaw(ev.Raw)
			continue
		}
		st.in++
		if !ev.Time.Valid() {
			st.skipped++
			st.out++
			o.enc.AppendRaw(ev.Raw)
			continue
		}
		c, panicked := f.event(w, o, &ev, &st)
		if panicked {
			w = f.enr.Get() // the old Worker's state is suspect: leave it to the GC
		}
		changed = changed || c
	}
	f.enr.Put(w)
	st.add(f)
	o.buf = o.enc.Bytes()
	if !changed {
		o.Release()
		return nil, false
	}
	return o, true
}

// counts are one call's statistics, added to the Filter's once at the end.
type counts struct {
	in, out, dropped, notAudit, skipped, panics, dups uint64
}

func (c *counts) add(f *Filter) {
	f.in.Add(c.in)
	f.out.Add(c.out)
	f.dropped.Add(c.dropped)
	f.notAudit.Add(c.notAudit)
	f.skipped.Add(c.skipped)
	f.panics.Add(c.panics)
	f.dups.Add(c.dups)
}

// event handles one record. On a panic (a bug in enrich) the record passes through
// unchanged and the chunk goes on.
func (f *Filter) event(w *enrich.Worker, o *Output, ev *flbchunk.Event, st *counts) (changed, panicked bool) {
	mark := o.enc.Len()
	defer func() {
		if r := recover(); r != nil {
			o.enc.Truncate(mark)
			o.enc.AppendRaw(ev.Raw)
			st.panics++
			st.out++
			changed, panicked = false, true
			f.log.Errorf("record at byte %d passed through unchanged: panic: %v\n%s", ev.Offset, r, debug.Stack())
		}
	}()

	if testHook != nil {
		testHook(ev.Body)
	}
	var res enrich.Result
	var keyVal flbchunk.Value
	found, whole := false, false
	if f.cfg.Key != "" {
		keyVal, found, _ = flbchunk.FindField(ev.Body, f.cfg.Key)
	}
	switch {
	case found && (keyVal.Type == flbchunk.TypeStr || keyVal.Type == flbchunk.TypeBin):
		res = w.Text(keyVal.Payload)
	case found && keyVal.Type == flbchunk.TypeMap:
		res = w.Map(keyVal.Raw)
	default:
		res = w.Map(ev.Body)
		whole = true // the record is the event, or the batch (in_http hands an EventList over as one map)
	}

	if res.Err != nil {
		st.notAudit++
		st.out++
		if !f.cfg.AddParseError {
			o.enc.AppendRaw(ev.Raw)
			return false, false
		}
		o.enc.Begin(ev.Time, ev.Meta)
		it := flbchunk.NewMapIter(ev.Body)
		for it.Next() {
			if k, ok := it.Key().Str(); ok && string(k) == "parse_error" {
				continue
			}
			o.enc.AddRawPair(it.Key().Raw, it.Value().Raw)
		}
		o.enc.AddString("parse_error", res.Err.Error())
		o.enc.End()
		return true, false
	}

	st.dropped += uint64(res.Dropped)
	for i := range res.Records {
		rec := &res.Records[i]
		if f.dedup != nil && rec.Err == nil && len(rec.ID) > 0 && f.dedup.Add(rec.ID) {
			st.dups++ // emitted before: a file read again, a webhook batch re-sent
			continue
		}
		t := ev.Time
		if !rec.Time.IsZero() {
			if rt := (flbchunk.Time{Sec: rec.Time.Sec, Nsec: rec.Time.Nsec}); rt.Valid() {
				t = rt
			}
		}
		o.enc.Begin(t, ev.Meta)
		if f.cfg.ReserveData {
			it := flbchunk.NewMapIter(ev.Body)
			for it.Next() {
				k, isStr := it.Key().Str()
				if isStr {
					ks := unsafe.String(unsafe.SliceData(k), len(k))
					// The raw field only next to a single event: every record of a batch
					// would carry the whole batch.
					if ks == f.cfg.Key && (!f.cfg.PreserveKey || res.Batch) {
						continue
					}
					if whole && slices.Contains(res.EnvelopeKeys, ks) || rec.HasKey(ks) {
						continue
					}
				}
				o.enc.AddRawPair(it.Key().Raw, it.Value().Raw)
			}
		}
		if rec.Err != nil && !f.cfg.AddParseError {
			o.enc.AddPairs(rec.ItemFields()) // a batch item that is not an audit event, as it was
		} else {
			o.enc.AddPairs(rec.Fields, rec.Count)
		}
		o.enc.End()
		st.out++
	}
	return len(res.Records) > 0 || res.Dropped > 0, false
}

// testHook, when set (by this package's tests only), is called with every record's body
// before it is processed: a test makes it panic to reach the per-record recover.
var testHook func(body []byte)

// Close writes the dedup state and returns the instance's statistics. The Filter must
// not be used after.
func (f *Filter) Close() Stats {
	f.closeOnce.Do(func() {
		if f.dedup != nil {
			if err := f.dedup.Close(); err != nil {
				f.log.Errorf("dedup_file %s: %v: a restart may emit again events read again", f.cfg.DedupFile, err)
			}
		}
	})
	return f.Stats()
}

// Stats returns the statistics so far.
func (f *Filter) Stats() Stats {
	return Stats{
		Chunks:       f.chunks.Load(),
		RecordsIn:    f.in.Load(),
		RecordsOut:   f.out.Load(),
		Dropped:      f.dropped.Load(),
		NotAudit:     f.notAudit.Load(),
		Skipped:      f.skipped.Load(),
		DecodeErrors: f.decodeErrs.Load(),
		Panics:       f.panics.Load(),
		Duplicates:   f.dups.Load(),
	}
}
