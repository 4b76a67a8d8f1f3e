package enrich

import (
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
	if len(t.auditID) == 0 {
		w.buf.b, w.keys = w.buf.b[:start], w.keys[:keys]
		return false // not an event: the parser's path finds what it is
	}
	w.derive(&t, ctx)
	if w.dropped(&t) {
		w.buf.b, w.keys = w.buf.b[:start], w.keys[:keys]
		res.Dropped++
		return true
	}
	w.redact = w.redact[:0]
	w.finishRecord(&t, &w.d, ctx, start, keys)
	res.Records = w.records
	return true
}
