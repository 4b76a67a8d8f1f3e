package main

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/kubetrail/kubetrail/cmd/kubetrail/internal/auditlog"
	"github.com/kubetrail/kubetrail/cmd/kubetrail/internal/auditquery"
	"github.com/kubetrail/kubetrail/conf"
	"github.com/kubetrail/kubetrail/enrich"
	"github.com/kubetrail/kubetrail/test/auditgen"
)

// BenchmarkProcess measures the per-line path of kubetrail audit (read, enrich,
// filter, output) on one goroutine over a generated log held in the page cache; MB/s
// is audit log read. The 1 GB figures come from make bench-audit.
//
//	go test ./cmd/kubetrail -run '^$' -bench Process -benchmem
func BenchmarkProcess(b *testing.B) {
	p := filepath.Join(b.TempDir(), "audit.log")
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	st, err := auditgen.Write(f, auditgen.Options{Seed: 1, Bytes: 32 << 20})
	f.Close()
	if err != nil {
		b.Fatal(err)
	}
	cfg, _ := conf.ParseAudit(conf.MapGetter{})
	for _, c := range []struct {
		name, output string
		spec         auditquery.Spec
	}{
		{"top", "top", auditquery.Spec{}},
		{"line", "line", auditquery.Spec{}},
		{"json", "json", auditquery.Spec{}},
		{"filtered-line", "line", auditquery.Spec{Verbs: []string{"list"}, Codes: []string{"4xx,5xx"}}},
	} {
		b.Run(c.name, func(b *testing.B) {
			opts := cfg.Enrich
			opts.Summary, opts.SummaryOnly = true, c.output != "json"
			enr, _ := enrich.New(opts)
			filter, err := auditquery.New(c.spec)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(st.Bytes)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				o := &auditOptions{output: c.output, by: "user", limit: 20}
				s, err := newSink(o, []string{p}, io.Discard)
				if err != nil {
					b.Fatal(err)
				}
				r := auditlog.NewReader([]auditlog.Input{{Path: p, Size: st.Bytes}}, auditlog.Options{})
				if _, err := process(r, enr.NewWorker(), filter, s); err != nil {
					b.Fatal(err)
				}
				if err := s.Finish(io.Discard); err != nil {
					b.Fatal(err)
				}
				s.Close()
				if r.IssueCount() != 0 {
					b.Fatal(r.Issues())
				}
			}
		})
	}
}
