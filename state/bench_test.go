package state

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// uid returns a UUID-shaped uid, as Kubernetes uses.
func uid(i int) string {
	return fmt.Sprintf("%08x-1c2d-4e5f-8a9b-%012x", i*2654435761&0xffffffff, i)
}

func fill(b *testing.B, s Store, n int) {
	b.Helper()
	batch := make([]Key, 0, 1000)
	for i := 0; i < n; i++ {
		batch = append(batch, Key{uid(i), fmt.Sprint(1_000_000 + i)})
		if len(batch) == cap(batch) || i == n-1 {
			if err := s.Commit(batch, fmt.Sprint(1_000_000+i), t0); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
}

// BenchmarkEmitted: one lookup on a database holding 100k rows, half hits
// and half misses (same uid, newer resourceVersion).
func BenchmarkEmitted(b *testing.B) {
	for _, impl := range []string{"sqlite", "memory"} {
		b.Run(impl, func(b *testing.B) {
			var opts Options
			if impl == "sqlite" {
				opts.Path = filepath.Join(b.TempDir(), "ev.db")
			}
			s := mustOpen(b, opts)
			defer s.Close()
			const n = 100_000
			fill(b, s, n)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				j := i % n
				rv := 1_000_000 + j
				if i&1 == 1 {
					rv += n // miss
				}
				ok, err := s.Emitted(Key{uid(j), fmt.Sprint(rv)})
				if err != nil || ok != (i&1 == 0) {
					b.Fatalf("Emitted = %v, %v", ok, err)
				}
			}
		})
	}
}

// BenchmarkCommit: cost per event, committing batches of 256 with a
// checkpoint, for each sync mode.
func BenchmarkCommit(b *testing.B) {
	for _, sync := range []string{"normal", "full", "off"} {
		b.Run(sync, func(b *testing.B) {
			s := mustOpen(b, Options{Path: filepath.Join(b.TempDir(), "ev.db"), Sync: sync})
			defer s.Close()
			batch := make([]Key, 0, 256)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				batch = append(batch, Key{uid(i), fmt.Sprint(i)})
				if len(batch) == cap(batch) || i == b.N-1 {
					if err := s.Commit(batch, fmt.Sprint(i), t0); err != nil {
						b.Fatal(err)
					}
					batch = batch[:0]
				}
			}
		})
	}
}

func fileSize(p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// BenchmarkDayOfChurn simulates one day at 20 Event updates/s (a busy
// cluster), committed once per second, pruned every minute with 1h
// retention, and reports the database size (main file + WAL) at the end.
// Sizes per simulated hour are logged to show that the size is bounded.
// Each Event object gets ~5 versions (count++) before a new uid appears.
func BenchmarkDayOfChurn(b *testing.B) {
	const (
		rate      = 20 // updates per second
		day       = 24 * 3600
		retention = time.Hour
	)
	for it := 0; it < b.N; it++ {
		path := filepath.Join(b.TempDir(), "ev.db")
		s := mustOpen(b, Options{Path: path})
		batch := make([]Key, rate)
		var rows, pruned int
		ev := 0
		for sec := 0; sec < day; sec++ {
			now := t0.Add(time.Duration(sec) * time.Second)
			for i := range batch {
				batch[i] = Key{uid(ev / 5), fmt.Sprint(10_000_000 + ev)}
				ev++
			}
			if err := s.Commit(batch, batch[rate-1].ResourceVersion, now); err != nil {
				b.Fatal(err)
			}
			rows += rate
			if sec%60 == 59 {
				n, err := s.Prune(now.Add(-retention))
				if err != nil {
					b.Fatal(err)
				}
				rows -= n
				pruned += n
			}
			if sec%3600 == 3599 && it == 0 {
				b.Logf("hour %2d: rows %6d, db %7d B, wal %7d B", sec/3600+1, rows,
					fileSize(path), fileSize(path+"-wal"))
			}
		}
		live := fileSize(path) + fileSize(path+"-wal")
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(live), "db+wal-bytes")
		b.ReportMetric(float64(fileSize(path)), "db-bytes-after-close")
		b.ReportMetric(float64(rows), "rows")
		b.ReportMetric(float64(ev), "events")
	}
}
