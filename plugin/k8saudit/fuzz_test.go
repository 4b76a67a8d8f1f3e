package k8saudit

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/kubetrail/kubetrail/plugin/flbchunk"
)

// FuzzProcess feeds arbitrary chunks to a filter without rules: it must not panic,
// never lose the bytes it cannot decode (they end the output unchanged), write output
// that decodes wherever the input did, and give at least one record out for every
// record in (RecordsOut + Dropped >= RecordsIn in its statistics too).
func FuzzProcess(f *testing.F) {
	line := `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a","stage":"ResponseComplete","requestURI":"/api/v1/pods","verb":"list","user":{"username":"u"},"responseStatus":{"code":200},"requestReceivedTimestamp":"2025-03-04T06:22:18.819232Z","stageTimestamp":"2025-03-04T06:22:18.822532Z"}`
	good := v2(f, et(1, 0), map[string]any{}, map[string]any{"log": line, "x": 1})
	f.Add(good)
	f.Add(append(append([]byte{}, good...), good[:20]...))
	f.Add(v2(f, et(0xFFFFFFFF, 0), map[string]any{}, map[string]any{}))
	f.Add(v2(f, et(2, 0), map[string]any{}, map[string]any{"log": `{"kind":"EventList","items":[` + line + `,{"a":1}]}`}))
	f.Add(v2(f, et(3, 0), map[string]any{}, map[string]any{"log": map[string]any{"kind": "Event", "verb": "get"}}))
	// Records that are no audit events, after one that is (so that the chunk is
	// rewritten): each must still be there.
	for _, body := range []map[string]any{
		{"log": `[]`}, {"log": `{"kind":"PodList","items":[]}`}, {"items": []any{}, "msg": "x"},
		{"kind": "EventList", "items": []any{}}, {"kind": "PodList", "items": []any{map[string]any{"a": 1}}},
		{"records": []any{}}, {"messageType": "DATA_MESSAGE", "logEvents": []any{}},
	} {
		f.Add(append(append([]byte{}, good...), v2(f, et(4, 0), map[string]any{}, body)...))
	}
	cfg := baseCfg()
	cfg.AddParseError = true
	flt, _ := newFilter(f, cfg)
	f.Fuzz(func(t *testing.T, chunk []byte) {
		var d flbchunk.Decoder
		d.Reset(chunk)
		var ev flbchunk.Event
		var derr error
		in := 0
		for {
			if err := d.Next(&ev); err != nil {
				if !errors.Is(err, io.EOF) {
					derr = err
				}
				break
			}
			if !ev.IsGroupMarker {
				in++
			}
		}
		rest := chunk[d.Offset():]

		before := flt.Stats()
		o, mod := flt.Process(chunk)
		after := flt.Stats()
		if rin, rout, drop := after.RecordsIn-before.RecordsIn, after.RecordsOut-before.RecordsOut, after.Dropped-before.Dropped; rin != uint64(in) || rout+drop < rin {
			t.Fatalf("stats: %d records in (%d decoded), %d out, %d dropped", rin, in, rout, drop)
		}
		if !mod {
			return
		}
		defer o.Release()
		out := o.Bytes()
		if !bytes.HasSuffix(out, rest) {
			t.Fatal("undecodable remainder not preserved")
		}
		var d2 flbchunk.Decoder
		d2.Reset(out[:len(out)-len(rest)])
		n := 0
		for {
			err := d2.Next(&ev)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("output does not decode (input error: %v): %v", derr, err)
			}
			if !ev.IsGroupMarker {
				n++
			}
		}
		if n < in {
			t.Fatalf("%d records in, %d out: a record disappeared", in, n)
		}
	})
}
