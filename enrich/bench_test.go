package enrich

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// BenchmarkText measures one warm Worker on realistic events: ns/op is per record.
// Reproduce: go test ./enrich -run '^$' -bench . -benchmem
func BenchmarkText(b *testing.B) {
	for _, c := range []struct{ name, file string }{
		{"apiserver", "testdata/apiserver-metadata.log"}, // written by a real kube-apiserver v1.34.4
		{"metadata", "testdata/metadata.log"},
		{"requestresponse", "testdata/requestresponse.log"},
	} {
		b.Run(c.name, func(b *testing.B) {
			var ls [][]byte
			total := 0
			for _, l := range lines(b, c.file) {
				ls = append(ls, []byte(l))
				total += len(l)
			}
			e, _ := New(defaults())
			w := e.NewWorker()
			b.SetBytes(int64(total / len(ls)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if res := w.Text(ls[i%len(ls)]); res.Err != nil || len(res.Records) != 1 {
					b.Fatal(res.Err)
				}
			}
		})
	}
}

// BenchmarkMap is the path of records that Fluent Bit already parsed from JSON.
func BenchmarkMap(b *testing.B) {
	ls := lines(b, "testdata/metadata.log")
	var packed [][]byte
	for _, l := range ls {
		var v any
		json.Unmarshal([]byte(l), &v)
		p, _ := msgpack.Marshal(v)
		packed = append(packed, p)
	}
	e, _ := New(defaults())
	w := e.NewWorker()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if res := w.Map(packed[i%len(packed)]); res.Err != nil {
			b.Fatal(res.Err)
		}
	}
}

// BenchmarkTextSummaryOnly is BenchmarkText's apiserver case without encoding the
// records (Options.SummaryOnly, kubetrail audit's outputs other than json).
func BenchmarkTextSummaryOnly(b *testing.B) {
	var ls [][]byte
	total := 0
	for _, l := range lines(b, "testdata/apiserver-metadata.log") {
		ls = append(ls, []byte(l))
		total += len(l)
	}
	opts := defaults()
	opts.SummaryOnly = true
	e, _ := New(opts)
	w := e.NewWorker()
	b.SetBytes(int64(total / len(ls)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if res := w.Text(ls[i%len(ls)]); res.Err != nil || len(res.Records) != 1 {
			b.Fatal(res.Err)
		}
	}
}

// BenchmarkRepairHostile is the CloudWatch repair on a crafted line, "["×n then ","×n
// and the "[Truncated...]" marker: the worst case for a repair that copied the stack of
// open containers at every comma (quadratic). ns/op should grow with n, not n².
// Reproduce: go test ./enrich -run '^$' -bench RepairHostile
func BenchmarkRepairHostile(b *testing.B) {
	for _, kib := range []int{16, 64, 256, 1024} {
		n := kib << 10 / 2
		line := append(append(bytesOf('[', n), bytesOf(',', n)...), "[Truncated...]"...)
		b.Run(fmt.Sprintf("%dKiB", kib), func(b *testing.B) {
			var dst []byte
			b.SetBytes(int64(len(line)))
			for i := 0; i < b.N; i++ {
				dst = repairJSON(dst[:0], line[:2*n])
			}
		})
	}
}

func bytesOf(c byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = c
	}
	return b
}

// BenchmarkMapWide is a map record whose requestObject has n keys (a ConfigMap with
// many entries, or a crafted record): the time per key must not grow with n.
// Reproduce: go test ./enrich -run '^$' -bench MapWide
func BenchmarkMapWide(b *testing.B) {
	for _, n := range []int{1000, 4000, 16000, 64000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			packed := wideMapRecord(b, n)
			e, _ := New(Options{})
			w := e.NewWorker()
			b.SetBytes(int64(len(packed)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if res := w.Map(packed); res.Err != nil || len(res.Records) != 1 {
					b.Fatal(res.Err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/key")
		})
	}
}

// wideMapRecord is an audit event as a msgpack map whose requestObject.data has n keys.
func wideMapRecord(t testing.TB, n int) []byte {
	data := make(map[string]any, n)
	for i := 0; i < n; i++ {
		data[fmt.Sprintf("key-%07d", i)] = "v"
	}
	p, err := msgpack.Marshal(map[string]any{
		"kind": "Event", "auditID": "wide", "stage": "ResponseComplete", "verb": "create",
		"requestURI":    "/api/v1/namespaces/default/configmaps",
		"requestObject": map[string]any{"kind": "ConfigMap", "data": data},
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}
