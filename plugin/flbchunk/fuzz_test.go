package flbchunk

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

func fuzzSeeds(t testing.TB) [][]byte {
	body := map[string]any{"log": `{"kind":"Event","apiVersion":"audit.k8s.io/v1"}`, "stream": "stdout"}
	meta := map[string]any{"otlp": map[string]any{"k": "v"}}
	full := bytes.Join([][]byte{
		v2(t, eventTime(0xFFFFFFFF, 0), meta, map[string]any{"resource": "r"}),
		v2(t, eventTime(1700000000, 1), meta, body),
		v2(t, eventTime(0xFFFFFFFE, 0), map[string]any{}, map[string]any{}),
	}, nil)
	return [][]byte{
		v2(t, eventTime(1700000000, 123), map[string]any{}, body),
		v2(t, ext8Time(1700000000, 123), map[string]any{}, body),
		v2(t, int64(1700000000), meta, body),
		v2(t, 1700000000.5, meta, body),
		legacy(t, eventTime(1700000000, 9), body),
		legacy(t, uint32(1700000000), body),
		legacy(t, float32(17.5), body),
		v2(t, int64(-1), map[string]any{}, map[string]any{}),
		v2(t, int64(-2), map[string]any{}, map[string]any{}),
		full,
		full[:len(full)-1],
		full[:len(full)/2],
		{},
		{0x92},
		{0xc1},
	}
}

// FuzzDecode checks that decoding never panics, that the decoded events' Raw bytes are
// exactly the chunk up to the decoder's offset, that the error (if any) is at that
// offset, that vmihailenco/msgpack agrees on every event's length, and that events
// re-encoded with the Encoder decode back to the same time, metadata and body pairs.
func FuzzDecode(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, chunk []byte) {
		var d Decoder
		d.Reset(chunk)
		var joined []byte
		var enc Encoder
		var ev Event
		for {
			err := d.Next(&ev)
			if err == io.EOF {
				if d.Offset() != len(chunk) {
					t.Fatalf("EOF at %d of %d", d.Offset(), len(chunk))
				}
				break
			}
			if err != nil {
				var de *DecodeError
				if !errors.As(err, &de) || de.Offset != d.Offset() || de.Offset != len(joined) {
					t.Fatalf("error %v at decoder offset %d, joined %d", err, d.Offset(), len(joined))
				}
				break
			}
			if ev.Offset != len(joined) {
				t.Fatalf("event offset %d, joined %d", ev.Offset, len(joined))
			}
			joined = append(joined, ev.Raw...)

			// An independent implementation finds the same event length.
			r := bytes.NewReader(ev.Raw)
			if err := msgpack.NewDecoder(r).Skip(); err != nil || r.Len() != 0 {
				t.Fatalf("vmihailenco disagrees on the event: %v, %d bytes left", err, r.Len())
			}

			// Re-encode as v2 and decode again.
			if !ev.Time.Valid() && !ev.IsGroupMarker {
				continue
			}
			enc.Reset(nil)
			enc.Begin(ev.Time, ev.Meta)
			it := NewMapIter(ev.Body)
			for it.Next() {
				enc.AddRawPair(it.Key().Raw, it.Value().Raw)
			}
			if it.Err() != nil {
				t.Fatalf("body iteration: %v", it.Err())
			}
			enc.End()
			var back Event
			var d2 Decoder
			d2.Reset(enc.Bytes())
			if err := d2.Next(&back); err != nil {
				t.Fatalf("re-encoded event does not decode: %v", err)
			}
			if back.Time != ev.Time || back.IsGroupMarker != ev.IsGroupMarker {
				t.Fatalf("time %+v -> %+v", ev.Time, back.Time)
			}
			wantMeta := ev.Meta
			if wantMeta == nil {
				wantMeta = []byte{0x80}
			}
			if !bytes.Equal(back.Meta, wantMeta) {
				t.Fatal("metadata changed")
			}
			i1, i2 := NewMapIter(ev.Body), NewMapIter(back.Body)
			for i1.Next() {
				if !i2.Next() || !bytes.Equal(i1.Key().Raw, i2.Key().Raw) || !bytes.Equal(i1.Value().Raw, i2.Value().Raw) {
					t.Fatal("body pair changed")
				}
			}
			if i2.Next() {
				t.Fatal("extra body pair")
			}
		}
		if !bytes.Equal(joined, chunk[:len(joined)]) {
			t.Fatal("events' Raw bytes do not concatenate to the chunk")
		}
	})
}

func BenchmarkDecodeEncode(b *testing.B) {
	line := `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"1f5b5c1e-0c1e-4b8e-9b39-3b2c7b4e9a11","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/default/pods?limit=500","verb":"list","user":{"username":"system:admin","groups":["system:masters","system:authenticated"]},"sourceIPs":["10.0.0.1"],"userAgent":"kubectl/v1.30.0","objectRef":{"resource":"pods","namespace":"default","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":200},"requestReceivedTimestamp":"2024-05-01T10:00:00.000000Z","stageTimestamp":"2024-05-01T10:00:00.004000Z"}`
	const perChunk = 64
	var parts [][]byte
	for i := 0; i < perChunk; i++ {
		parts = append(parts, v2(b, eventTime(1700000000, uint32(i)), map[string]any{}, map[string]any{"log": line, "stream": "stdout"}))
	}
	chunk := bytes.Join(parts, nil)
	var d Decoder
	var e Encoder
	logKey := AppendString(nil, "log")
	buf := make([]byte, 0, 2*len(chunk))
	b.SetBytes(int64(len(chunk) / perChunk))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += perChunk {
		d.Reset(chunk)
		e.Reset(buf[:0])
		var ev Event
		for d.Next(&ev) == nil {
			v, _, _ := FindField(ev.Body, "log")
			e.Begin(ev.Time, ev.Meta)
			it := NewMapIter(ev.Body)
			for it.Next() {
				if string(it.Key().Payload) != "log" {
					e.AddRawPair(it.Key().Raw, it.Value().Raw)
				}
			}
			e.AddRawPair(logKey, v.Raw)
			e.End()
		}
	}
}
