// Command genaudit writes a realistic kube-apiserver audit log of a given size with
// test/auditgen, for `make bench-audit` (kubetrail audit over ~1 GB).
//
//	go run ./cmd/kubetrail/internal/genaudit -bytes 1g -o build/bench-audit/audit.log
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/kubetrail/kubetrail/conf"
	"github.com/kubetrail/kubetrail/test/auditgen"
)

func main() {
	size := flag.String("bytes", "1g", "size of the log to write (k, m, g suffixes)")
	out := flag.String("o", "", "file to write (required)")
	seed := flag.Int64("seed", 1, "generator seed")
	span := flag.Duration("span", time.Hour, "time the requests cover")
	nodes := flag.Int("nodes", 0, "cluster nodes (kubelets); 0 for the generator's default")
	flag.Parse()
	n, err := conf.ParseSize(*size)
	if err != nil || *out == "" {
		fmt.Fprintln(os.Stderr, "genaudit: -o FILE and -bytes SIZE are required")
		os.Exit(2)
	}
	f, err := os.Create(*out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "genaudit:", err)
		os.Exit(1)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	st, err := auditgen.Write(w, auditgen.Options{Seed: *seed, Bytes: int64(n), Duration: *span, Nodes: *nodes})
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = f.Close()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "genaudit:", err)
		os.Exit(1)
	}
	fmt.Printf("genaudit: %s: %d records, %d bytes, %s to %s\n", *out, st.Records, st.Bytes,
		st.First.Format(time.RFC3339), st.Last.Format(time.RFC3339))
}
