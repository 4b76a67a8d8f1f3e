package auditfilter

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/kubetrail/kubetrail/flbchunk"
)

// FuzzProcess feeds arbitrary chunks to a filter: it must not panic, never lose the
// bytes it cannot decode (they end the output unchanged), and write output that
// decodes wherever the input did.
func FuzzProcess(f *testing.F) {
	line := `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a","stage":"ResponseComplete","requestURI":"/api/v1/pods","verb":"list","user":{"username":"u"},"responseStatus":{"code":200},"requestReceivedTimestamp":"2025-03-04T06:22:18.819232Z","stageTimestamp":"2025-03-04T06:22:18.822532Z"}`
	good := v2(f, et(1, 0), map[string]any{}, map[string]any{"log": line, "x": 1})
	f.Add(good)
	f.Add(append(append([]byte{}, good...), good[:20]...))
	f.Add(v2(f, et(0xFFFFFFFF, 0), map[string]any{}, map[string]any{}))
	f.Add(v2(f, et(2, 0), map[string]any{}, map[string]any{"log": `{"kind":"EventList","items":[` + line + `,{"a":1}]}`}))
	f.Add(v2(f, et(3, 0), map[string]any{}, map[string]any{"log": map[string]any{"kind": "Event", "verb": "get"}}))
	cfg := baseCfg()
	cfg.AddParseError = true
	flt, _ := newFilter(f, cfg)
	f.Fuzz(func(t *testing.T, chunk []byte) {
		var d flbchunk.Decoder
		d.Reset(chunk)
		var ev flbchunk.Event
		var derr error
		for {
			if err := d.Next(&ev); err != nil {
				if !errors.Is(err, io.EOF) {
					derr = err
				}
				break
			}
		}
		rest := chunk[d.Offset():]

		o, mod := flt.Process(chunk)
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
		for {
			err := d2.Next(&ev)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("output does not decode (input error: %v): %v", derr, err)
			}
		}
	})
}
