// Package dedup remembers which audit events the k8s_audit filter already emitted, so
// that an event read twice (in_tail reading a rotated audit log file again, the
// apiserver re-sending a webhook batch whose answer timed out) is emitted once.
//
// A Set holds the keyed 64-bit hashes of the last MaxEntries event IDs, in insertion
// order (a ring) with a hash index; the oldest is forgotten first. Memory is bounded:
// 8 bytes in the ring and 16 to 32 in the index per entry (an open-addressing table of
// a power of two slots, at least twice MaxEntries): 24 MiB for 1,000,000 (TestMemory). With a Path, new hashes are appended to a file every FlushInterval and
// at Close, and loaded at Open: a restart remembers what was emitted before it. A crash
// forgets at most the last two intervals, which can then be emitted again; it never
// makes the Set remember an event that was not emitted, so nothing is lost.
//
// The file: a 32-byte header ("KTDEDUP1", the 16-byte SipHash key, a CRC-32C of the
// first 24 bytes, 4 zero bytes), then blocks, each a little-endian uint32 count n, a
// CRC-32C of the count's and the hashes' bytes, and n 8-byte hashes. A file holding more
// than twice MaxEntries hashes is rewritten (to a temporary file renamed over it) with
// the Set's entries. Reading stops at the first block that is cut short or fails its
// CRC: what comes before it is kept, a warning says what was skipped, and the file is
// rewritten. A file whose header is unreadable is moved aside (to <file>.corrupt) and a
// new one started.
package dedup

import (
	"bufio"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Logger receives the Set's messages.
type Logger interface {
	Warnf(format string, args ...any)
	Infof(format string, args ...any)
}

// Options configure a Set.
type Options struct {
	// MaxEntries is how many events are remembered (at least 1).
	MaxEntries int
	// Path is the file that keeps the hashes across restarts; "" keeps them in memory
	// only.
	Path string
	// FlushInterval is how often new hashes are appended to Path (default 1 s).
	FlushInterval time.Duration
	// Log receives warnings (a corrupt file, a failed write) and the load summary.
	Log Logger
}

const (
	magic      = "KTDEDUP1"
	headerSize = 32
	blockHead  = 8
	// maxBlock is the most hashes written in one block: a damaged block loses no more.
	maxBlock = 1 << 16
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Set is safe for concurrent use.
type Set struct {
	opts   Options
	k0, k1 uint64

	mu    sync.Mutex
	ring  []uint64
	n     int    // entries held, at most len(ring)
	total uint64 // entries ever inserted; entry number s is at ring[s%len(ring)]
	idx   table
	// Entries below flushed are in the file; mark is total at the previous flush: a
	// flush writes [flushed, mark), so that an entry reaches the file one interval
	// after the record it stands for was handed to Fluent Bit, never before.
	flushed, mark uint64

	dups atomic.Uint64

	// File state, used by the flusher (and Close after it stopped) only.
	f           *os.File
	lock        *os.File
	size        int64 // bytes of the file that are good
	fileEntries int   // hashes in the file
	buf         []byte
	failing     bool // the last write failed (logged once until one succeeds)

	stop chan struct{}
	done chan struct{}
	once sync.Once
	err  error
}

// Open creates a Set; with Options.Path it loads the file (creating it if needed)
// and starts the flusher. The error says why the file cannot be used (its directory
// missing, not writable, locked by another instance); a damaged file is not an error.
func Open(o Options) (*Set, error) {
	if o.MaxEntries < 1 {
		return nil, fmt.Errorf("dedup: max entries %d: must be at least 1", o.MaxEntries)
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = time.Second
	}
	if o.Log == nil {
		o.Log = nopLogger{}
	}
	s := &Set{opts: o, ring: make([]uint64, o.MaxEntries), idx: newTable(o.MaxEntries)}
	if o.Path == "" {
		var key [16]byte
		if _, err := rand.Read(key[:]); err != nil {
			return nil, fmt.Errorf("dedup: random key: %w", err)
		}
		s.k0, s.k1 = binary.LittleEndian.Uint64(key[:8]), binary.LittleEndian.Uint64(key[8:])
		return s, nil
	}
	if err := s.openFile(); err != nil {
		if s.lock != nil {
			s.lock.Close()
		}
		if s.f != nil {
			s.f.Close()
		}
		return nil, err
	}
	s.stop, s.done = make(chan struct{}), make(chan struct{})
	go s.flusher()
	return s, nil
}

type nopLogger struct{}

func (nopLogger) Warnf(string, ...any) {}
func (nopLogger) Infof(string, ...any) {}

// Add reports whether id was already added (a duplicate); if not, it adds it. The
// check and the insertion are one step: of two concurrent Adds of one id, exactly one
// returns false.
func (s *Set) Add(id []byte) (duplicate bool) {
	h := sipHash(s.k0, s.k1, id)
	s.mu.Lock()
	if s.idx.contains(h) {
		s.mu.Unlock()
		s.dups.Add(1)
		return true
	}
	s.insert(h)
	s.mu.Unlock()
	return false
}

// insert adds h, forgetting the oldest entry when full; s.mu is held.
func (s *Set) insert(h uint64) {
	i := int(s.total % uint64(len(s.ring)))
	if s.n == len(s.ring) {
		s.idx.remove(s.ring[i])
	} else {
		s.n++
	}
	s.ring[i] = h
	s.idx.add(h)
	s.total++
}

// Len is the number of entries remembered.
func (s *Set) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// Duplicates is the number of Adds that found their id.
func (s *Set) Duplicates() uint64 { return s.dups.Load() }

// Close stops the flusher, writes every entry not yet in the file and closes it. It
// returns the first write error of the Set's life, if any. The Set must not be used
// after.
func (s *Set) Close() error {
	s.once.Do(func() {
		if s.f == nil {
			return
		}
		close(s.stop)
		<-s.done
		s.mu.Lock()
		s.mark = s.total
		s.mu.Unlock()
		s.flush()
		if err := s.f.Close(); err != nil && s.err == nil {
			s.err = err
		}
		s.lock.Close() // releases the flock
	})
	return s.err
}

func (s *Set) flusher() {
	defer close(s.done)
	t := time.NewTicker(s.opts.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.flush()
		}
	}
}

// flush appends entries [flushed, mark) to the file and moves mark to total; it
// rewrites the file when it holds more than twice MaxEntries.
func (s *Set) flush() {
	s.mu.Lock()
	from, to := s.flushed, s.mark
	if oldest := s.total - uint64(s.n); from < oldest {
		from = oldest // forgotten before they were written: nothing to keep
	}
	s.mark = s.total
	s.buf = s.buf[:0]
	for q := from; q < to; q++ {
		s.buf = binary.LittleEndian.AppendUint64(s.buf, s.ring[q%uint64(len(s.ring))])
	}
	s.mu.Unlock()
	if from >= to {
		return
	}
	if err := s.appendBlocks(s.buf); err != nil {
		s.fail(fmt.Errorf("appending %d hashes: %w", to-from, err))
		return // flushed stays: the next flush retries them
	}
	s.ok()
	s.mu.Lock()
	s.flushed = to
	s.mu.Unlock()
	if s.fileEntries > 2*s.opts.MaxEntries {
		if err := s.rewrite(); err != nil {
			s.fail(fmt.Errorf("rewriting: %w", err))
		}
	}
}

func (s *Set) fail(err error) {
	if s.err == nil {
		s.err = err
	}
	if !s.failing {
		s.failing = true
		s.opts.Log.Warnf("dedup_file %s: %v (a restart may emit these events again; retrying)", s.opts.Path, err)
	}
}

func (s *Set) ok() {
	if s.failing {
		s.failing = false
		s.opts.Log.Infof("dedup_file %s: writing again", s.opts.Path)
	}
}

// appendBlocks writes hashes (8 bytes each) as blocks at the end of the good part of
// the file; on an error the file is cut back to it.
func (s *Set) appendBlocks(hashes []byte) error {
	out := encodeBlocks(nil, hashes)
	if _, err := s.f.WriteAt(out, s.size); err != nil {
		_ = s.f.Truncate(s.size)
		return err
	}
	s.size += int64(len(out))
	s.fileEntries += len(hashes) / 8
	return nil
}

func encodeBlocks(dst, hashes []byte) []byte {
	for len(hashes) > 0 {
		n := min(len(hashes)/8, maxBlock)
		body := hashes[:n*8]
		var head [blockHead]byte
		binary.LittleEndian.PutUint32(head[:4], uint32(n))
		crc := crc32.Update(crc32.Checksum(head[:4], castagnoli), castagnoli, body)
		binary.LittleEndian.PutUint32(head[4:], crc)
		dst = append(append(dst, head[:]...), body...)
		hashes = hashes[n*8:]
	}
	return dst
}

func (s *Set) header() []byte {
	h := make([]byte, headerSize)
	copy(h, magic)
	binary.LittleEndian.PutUint64(h[8:], s.k0)
	binary.LittleEndian.PutUint64(h[16:], s.k1)
	binary.LittleEndian.PutUint32(h[24:], crc32.Checksum(h[:24], castagnoli))
	return h
}

// rewrite replaces the file with the header and the entries already flushed.
func (s *Set) rewrite() error {
	s.mu.Lock()
	from := s.total - uint64(s.n)
	to := s.flushed
	if to < from {
		to = from
	}
	hashes := make([]byte, 0, (to-from)*8)
	for q := from; q < to; q++ {
		hashes = binary.LittleEndian.AppendUint64(hashes, s.ring[q%uint64(len(s.ring))])
	}
	s.mu.Unlock()

	tmp := s.opts.Path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	data := encodeBlocks(s.header(), hashes)
	if _, err = f.Write(data); err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = os.Rename(tmp, s.opts.Path)
	}
	if err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	syncDir(filepath.Dir(s.opts.Path))
	s.f.Close()
	s.f = f
	s.size = int64(len(data))
	s.fileEntries = len(hashes) / 8
	return nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// openFile locks, reads or creates the file.
func (s *Set) openFile() error {
	p := s.opts.Path
	lock, err := os.OpenFile(p+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("dedup_file %s: %w", p, err)
	}
	s.lock = lock
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("dedup_file %s is in use by another k8s_audit instance (%s is locked): give each instance its own file", p, p+".lock")
		}
		return fmt.Errorf("dedup_file %s: locking %s: %w", p, p+".lock", err)
	}
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("dedup_file %s: %w", p, err)
	}
	s.f = f
	loaded, damaged, err := s.load()
	if err != nil {
		return fmt.Errorf("dedup_file %s: %w", p, err)
	}
	if loaded || damaged != "" {
		s.opts.Log.Infof("dedup_file %s: %d events remembered", p, s.n)
	}
	if damaged != "" || s.fileEntries > 2*s.opts.MaxEntries {
		// Drop the damaged part (or the excess) now, so that appends follow good blocks.
		if err := s.rewrite(); err != nil {
			return fmt.Errorf("dedup_file %s: rewriting: %w", p, err)
		}
	}
	return nil
}

// load reads the file into the Set. loaded says a valid header was found; damaged
// describes what could not be read (and was skipped). A file whose header is damaged
// is moved aside and a new file with a new key is started.
func (s *Set) load() (loaded bool, damaged string, err error) {
	fi, err := s.f.Stat()
	if err != nil {
		return false, "", err
	}
	if fi.Size() == 0 {
		return false, "", s.newFile()
	}
	r := bufio.NewReaderSize(s.f, 1<<20)
	h := make([]byte, headerSize)
	if _, err := io.ReadFull(r, h); err != nil || string(h[:8]) != magic ||
		binary.LittleEndian.Uint32(h[24:]) != crc32.Checksum(h[:24], castagnoli) {
		aside := s.opts.Path + ".corrupt"
		s.opts.Log.Warnf("dedup_file %s: not a dedup file or its header is damaged (%d bytes): moved to %s, starting empty (events read again may be emitted twice)", s.opts.Path, fi.Size(), aside)
		s.f.Close()
		s.f = nil
		if err := os.Rename(s.opts.Path, aside); err != nil {
			return false, "", fmt.Errorf("moving the damaged file aside: %w", err)
		}
		f, err := os.OpenFile(s.opts.Path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return false, "", err
		}
		s.f = f
		return false, "", s.newFile()
	}
	s.k0, s.k1 = binary.LittleEndian.Uint64(h[8:]), binary.LittleEndian.Uint64(h[16:])
	off := int64(headerSize)
	var head [blockHead]byte
	var body []byte
	for {
		if _, err := io.ReadFull(r, head[:]); err != nil {
			if err != io.EOF {
				damaged = fmt.Sprintf("a block header cut short at byte %d", off)
			}
			break
		}
		n := int(binary.LittleEndian.Uint32(head[:4]))
		if n == 0 || n > maxBlock || int64(n)*8 > fi.Size()-off-blockHead {
			damaged = fmt.Sprintf("a block of %d hashes at byte %d cut short or damaged", n, off)
			break
		}
		if cap(body) < n*8 {
			body = make([]byte, n*8)
		}
		body = body[:n*8]
		if _, err := io.ReadFull(r, body); err != nil {
			damaged = fmt.Sprintf("a block at byte %d cut short", off)
			break
		}
		if crc32.Update(crc32.Checksum(head[:4], castagnoli), castagnoli, body) != binary.LittleEndian.Uint32(head[4:]) {
			damaged = fmt.Sprintf("a block at byte %d failing its checksum", off)
			break
		}
		for i := 0; i < n; i++ {
			h := binary.LittleEndian.Uint64(body[i*8:])
			if !s.idx.contains(h) {
				s.insert(h)
			}
		}
		s.fileEntries += n
		off += blockHead + int64(n)*8
	}
	s.size = off
	s.flushed, s.mark = s.total, s.total
	if damaged != "" {
		s.opts.Log.Warnf("dedup_file %s: %s: kept the %d hashes before it, skipped the last %d bytes (events they stood for may be emitted again)",
			s.opts.Path, damaged, s.fileEntries, fi.Size()-off)
	}
	return true, damaged, nil
}

// newFile writes a header with a new random key to the empty file.
func (s *Set) newFile() error {
	var key [16]byte
	if _, err := rand.Read(key[:]); err != nil {
		return fmt.Errorf("random key: %w", err)
	}
	s.k0, s.k1 = binary.LittleEndian.Uint64(key[:8]), binary.LittleEndian.Uint64(key[8:])
	h := s.header()
	if _, err := s.f.WriteAt(h, 0); err != nil {
		return err
	}
	if err := s.f.Sync(); err != nil {
		return err
	}
	syncDir(filepath.Dir(s.opts.Path))
	s.size = headerSize
	return nil
}
