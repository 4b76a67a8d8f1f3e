package dedup

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

type testLog struct {
	mu   sync.Mutex
	msgs []string
}

func (l *testLog) Warnf(f string, a ...any) { l.add("warn: " + fmt.Sprintf(f, a...)) }
func (l *testLog) Infof(f string, a ...any) { l.add("info: " + fmt.Sprintf(f, a...)) }
func (l *testLog) add(m string) {
	l.mu.Lock()
	l.msgs = append(l.msgs, m)
	l.mu.Unlock()
}
func (l *testLog) all() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.msgs, "\n")
}

func id(i int) []byte {
	return []byte(fmt.Sprintf("\x24%08d-0000-4000-8000-000000000000\x10ResponseComplete2026-01-02T03:04:05.%06dZ", i, i%1000000))
}

func open(t testing.TB, o Options) *Set {
	t.Helper()
	s, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The reference vectors of the SipHash paper (key 00..0f, messages 00, 00 01, ...).
func TestSipHashVectors(t *testing.T) {
	k0, k1 := uint64(0x0706050403020100), uint64(0x0f0e0d0c0b0a0908)
	msg := make([]byte, 16)
	for i := range msg {
		msg[i] = byte(i)
	}
	for n, want := range map[int]uint64{0: 0x726fdb47dd0e0e31, 1: 0x74f839c593dc67fd, 15: 0xa129ca6149be45e5} {
		if got := sipHash(k0, k1, msg[:n]); got != want {
			t.Errorf("SipHash-2-4 of %d bytes = %#x, want %#x", n, got, want)
		}
	}
}

func TestAddAndEvict(t *testing.T) {
	s := open(t, Options{MaxEntries: 100})
	for i := 0; i < 150; i++ {
		if s.Add(id(i)) {
			t.Fatalf("event %d taken for a duplicate", i)
		}
	}
	if s.Len() != 100 {
		t.Fatalf("Len %d, want 100", s.Len())
	}
	// The 100 most recent are remembered, the 50 oldest forgotten (emitted again, never
	// dropped).
	for i := 50; i < 150; i++ {
		if !s.Add(id(i)) {
			t.Errorf("event %d not remembered", i)
		}
	}
	if s.Duplicates() != 100 {
		t.Errorf("Duplicates %d, want 100", s.Duplicates())
	}
	for i := 0; i < 50; i++ {
		if s.Add(id(i)) {
			t.Errorf("event %d remembered beyond MaxEntries", i)
		}
	}
	// Re-adding the 50 evicted the 50 oldest of the rest: 100..149 and 0..49 are held.
	if s.Len() != 100 || !s.Add(id(149)) || !s.Add(id(0)) || !s.Add(id(100)) || s.Add(id(99)) {
		t.Errorf("eviction order: Len %d", s.Len())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestPersistAcrossRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dedup")
	l := &testLog{}
	s := open(t, Options{MaxEntries: 1000, Path: path, Log: l})
	for i := 0; i < 700; i++ {
		s.Add(id(i))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, Options{MaxEntries: 1000, Path: path, Log: l})
	if s.Len() != 700 {
		t.Fatalf("reloaded %d entries, want 700", s.Len())
	}
	for i := 0; i < 700; i++ {
		if !s.Add(id(i)) {
			t.Fatalf("event %d not remembered across the restart", i)
		}
	}
	for i := 700; i < 1500; i++ {
		if s.Add(id(i)) {
			t.Fatalf("event %d taken for a duplicate", i)
		}
	}
	s.Close()
	// A smaller MaxEntries keeps the most recent.
	s = open(t, Options{MaxEntries: 100, Path: path, Log: l})
	if s.Len() != 100 || !s.Add(id(1499)) || s.Add(id(1399)) {
		t.Errorf("reload into 100 entries: Len %d", s.Len())
	}
	s.Close()
	if strings.Contains(l.all(), "warn") {
		t.Errorf("warnings: %s", l.all())
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode: %v %v", fi, err)
	}
}

// A crash (no Close) forgets at most the entries of the last two flush intervals;
// what the file holds are only entries added at least one interval before.
func TestCrashKeepsFlushed(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "dedup")
	s := open(t, Options{MaxEntries: 1000, Path: path, FlushInterval: 20 * time.Millisecond})
	defer s.Close()
	for i := 0; i < 300; i++ {
		s.Add(id(i))
	}
	time.Sleep(200 * time.Millisecond) // several intervals
	for i := 300; i < 310; i++ {
		s.Add(id(i))
	}
	// What a kill -9 now would leave: the file as it is.
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	crash := filepath.Join(dir, "crash")
	if err := os.WriteFile(crash, b, 0o600); err != nil {
		t.Fatal(err)
	}
	c := open(t, Options{MaxEntries: 1000, Path: crash})
	defer c.Close()
	if c.Len() < 300 || c.Len() > 310 {
		t.Fatalf("after a crash %d entries, want the 300 added intervals before", c.Len())
	}
	for i := 0; i < 300; i++ {
		if !c.Add(id(i)) {
			t.Fatalf("event %d forgotten by the crash", i)
		}
	}
}

func writeEntries(t *testing.T, path string, n int) {
	t.Helper()
	s := open(t, Options{MaxEntries: 10 * n, Path: path})
	for i := 0; i < n; i++ {
		s.Add(id(i))
		if i == n/2 {
			s.mu.Lock()
			s.mark = s.total
			s.mu.Unlock()
			s.flush() // two blocks
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestDamagedFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	writeEntries(t, good, 100)
	orig, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	firstBlock := int(binary.LittleEndian.Uint32(orig[headerSize:])) // hashes in block 1
	if firstBlock != 51 || len(orig) != headerSize+2*blockHead+100*8 {
		t.Fatalf("file layout: %d bytes, first block %d", len(orig), firstBlock)
	}
	flip := func(b []byte, i int) []byte { c := bytes.Clone(b); c[i] ^= 0x40; return c }
	for _, tc := range []struct {
		name  string
		data  []byte
		keep  int    // entries kept
		warn  string // in the warning
		aside bool   // moved to .corrupt
	}{
		{"cut in the last block", orig[:len(orig)-5], firstBlock, "cut short", false},
		{"cut in a block header", orig[:headerSize+blockHead+firstBlock*8+3], firstBlock, "cut short", false},
		{"a flipped bit in the last block", flip(orig, len(orig)-1), firstBlock, "checksum", false},
		{"a flipped bit in the first block", flip(orig, headerSize+blockHead+1), 0, "checksum", false},
		{"a huge count", flip(orig, headerSize+3), 0, "damaged", false},
		{"cut in the header", orig[:20], 0, "header is damaged", true},
		{"a flipped bit in the key", flip(orig, 10), 0, "header is damaged", true},
		{"not a dedup file", []byte("{\"kind\":\"Event\"}\n"), 0, "not a dedup file", true},
		{"zeros", make([]byte, 4096), 0, "not a dedup file", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "dedup")
			if err := os.WriteFile(path, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			l := &testLog{}
			s := open(t, Options{MaxEntries: 1000, Path: path, Log: l})
			if s.Len() != tc.keep {
				t.Errorf("kept %d entries, want %d", s.Len(), tc.keep)
			}
			for i := 0; i < tc.keep; i++ {
				if !s.Add(id(i)) {
					t.Fatalf("event %d of the readable part forgotten", i)
				}
			}
			if !strings.Contains(l.all(), "warn: dedup_file "+path) || !strings.Contains(l.all(), tc.warn) {
				t.Errorf("log: %s", l.all())
			}
			if _, err := os.Stat(path + ".corrupt"); (err == nil) != tc.aside {
				t.Errorf("moved aside: %v, want %v", err == nil, tc.aside)
			}
			// Appends after the damage are readable at the next start.
			for i := 1000; i < 1010; i++ {
				s.Add(id(i))
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			l2 := &testLog{}
			s = open(t, Options{MaxEntries: 1000, Path: path, Log: l2})
			defer s.Close()
			if s.Len() != tc.keep+10 || strings.Contains(l2.all(), "warn") {
				t.Errorf("after the repair: %d entries, want %d; log %s", s.Len(), tc.keep+10, l2.all())
			}
		})
	}
}

func TestFileBounded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dedup")
	s := open(t, Options{MaxEntries: 100, Path: path, FlushInterval: time.Hour})
	for round := 0; round < 20; round++ {
		for i := 0; i < 50; i++ {
			s.Add(id(round*50 + i))
		}
		s.mu.Lock()
		s.mark = s.total
		s.mu.Unlock()
		s.flush()
	}
	s.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if max := int64(headerSize + 2*100*8 + 50*8 + 20*blockHead); fi.Size() > max {
		t.Errorf("file of %d bytes for 100 entries, want at most %d", fi.Size(), max)
	}
	s = open(t, Options{MaxEntries: 100, Path: path})
	defer s.Close()
	if s.Len() != 100 || !s.Add(id(999)) || !s.Add(id(900)) || s.Add(id(899)) {
		t.Errorf("after rewrites: Len %d", s.Len())
	}
}

func TestLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dedup")
	s := open(t, Options{MaxEntries: 10, Path: path})
	if _, err := Open(Options{MaxEntries: 10, Path: path}); err == nil || !strings.Contains(err.Error(), "in use by another") {
		t.Errorf("second Open of one file: %v", err)
	}
	s.Close()
	s2 := open(t, Options{MaxEntries: 10, Path: path}) // released by Close
	s2.Close()
	if _, err := Open(Options{MaxEntries: 10, Path: filepath.Join(t.TempDir(), "no", "such", "dir")}); err == nil {
		t.Error("a file in a missing directory opened")
	}
	if _, err := Open(Options{MaxEntries: 0}); err == nil {
		t.Error("MaxEntries 0 accepted")
	}
}

// Several input threads call one filter instance: of concurrent Adds of one event
// exactly one is the first. Run with -race.
func TestConcurrentAdd(t *testing.T) {
	s := open(t, Options{MaxEntries: 10000, Path: filepath.Join(t.TempDir(), "dedup"), FlushInterval: time.Millisecond})
	const goroutines, events = 8, 2000
	var firsts [events]int32
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < events; i++ {
				if !s.Add(id(i)) {
					mu.Lock()
					firsts[i]++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	for i, n := range firsts {
		if n != 1 {
			t.Fatalf("event %d emitted %d times", i, n)
		}
	}
	if s.Duplicates() != (goroutines-1)*events {
		t.Errorf("Duplicates %d", s.Duplicates())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestMemory measures the heap of a full Set of 1M entries (the default
// dedup_max_entries), for the README.
func TestMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("1M entries")
	}
	const n = 1 << 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s := open(t, Options{MaxEntries: n})
	var b [8]byte
	for i := 0; i < n+n/2; i++ { // full, and evicting
		binary.LittleEndian.PutUint64(b[:], uint64(i))
		s.Add(b[:])
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("%d entries: %.1f MiB of heap, %.1f bytes per entry", s.Len(), float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), per)
	if per > 26 {
		t.Errorf("%.1f bytes per entry", per)
	}
	runtime.KeepAlive(s)
}

func BenchmarkAdd(b *testing.B) {
	s := open(b, Options{MaxEntries: 1 << 20})
	ids := make([][]byte, 4096)
	for i := range ids {
		ids[i] = id(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		x := ids[i%len(ids)]
		binary.LittleEndian.PutUint32(x[1:], uint32(i)) // a new event every time
		s.Add(x)
	}
}

// The table against a map, under the ring's churn, with hashes that collide in their
// low bits (long probe runs that wrap around the end) and the hash 0.
func TestTableAgainstMap(t *testing.T) {
	for _, spread := range []uint64{1 << 40, 1} {
		tb := newTable(50)
		ref := map[uint64]bool{}
		var ring []uint64
		rnd := uint64(1)
		for step := 0; step < 200000; step++ {
			rnd = rnd*6364136223846793005 + 1442695040888963407
			h := (rnd >> 33 % 300) * spread // few distinct values: many hits
			if h == 1 {
				h = 2 // 0 is stored as 1: the two are one entry
			}
			if step%1000 == 0 {
				h = 0
			}
			if tb.contains(h) != ref[h] {
				t.Fatalf("step %d: contains(%#x) = %v, want %v", step, h, !ref[h], ref[h])
			}
			if ref[h] {
				continue
			}
			if len(ring) == 50 {
				tb.remove(ring[0])
				delete(ref, ring[0])
				ring = ring[1:]
			}
			tb.add(h)
			ref[h] = true
			ring = append(ring, h)
		}
		for h := range ref {
			if !tb.contains(h) {
				t.Fatalf("%#x lost", h)
			}
		}
	}
}
