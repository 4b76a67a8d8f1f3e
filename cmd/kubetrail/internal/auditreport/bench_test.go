package auditreport

import (
	"bytes"
	"testing"

	"github.com/kubetrail/kubetrail/enrich"
	"github.com/kubetrail/kubetrail/test/auditgen"
)

// summaries enriches a generated log as one JSON array (a webhook batch), so that all
// its records' Summaries stay valid together, outside the timed loop.
func summaries(b *testing.B) []*enrich.Summary {
	data, _ := generated(b, auditgen.Options{Seed: 99, Records: 5000, Nodes: 2500})
	arr := append([]byte{'['}, bytes.ReplaceAll(bytes.TrimSpace(data), []byte("\n"), []byte(","))...)
	arr = append(arr, ']')
	e, err := enrich.New(enrich.Options{Summary: true})
	if err != nil {
		b.Fatal(err)
	}
	res := e.NewWorker().Text(arr)
	if res.Err != nil || len(res.Records) != 5000 {
		b.Fatalf("batch: %v, %d records", res.Err, len(res.Records))
	}
	out := make([]*enrich.Summary, len(res.Records))
	for i := range res.Records {
		out[i] = &res.Records[i].Summary
	}
	return out
}

// benchAdd reports the cost of Add per record (ns/op and allocs/op are per record).
func benchAdd(b *testing.B, a Aggregate) {
	ss := summaries(b)
	// Warm the aggregate: the steady state of a long log has seen its keys.
	for _, s := range ss {
		a.Add(s)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		a.Add(ss[i])
		if i++; i == len(ss) {
			i = 0
		}
	}
}

func BenchmarkTopUserAdd(b *testing.B) {
	t, _ := NewTop("user", 20)
	benchAdd(b, t)
}

func BenchmarkTopGroupAdd(b *testing.B) {
	t, _ := NewTop("group", 20)
	benchAdd(b, t)
}

func BenchmarkTopResourceAdd(b *testing.B) {
	t, _ := NewTop("resource", 20)
	benchAdd(b, t)
}

func BenchmarkStatsAdd(b *testing.B) { benchAdd(b, NewStats()) }

func BenchmarkReportAdd(b *testing.B) { benchAdd(b, NewReport(ReportOptions{})) }
