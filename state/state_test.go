package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func mustOpen(t testing.TB, opts Options) Store {
	t.Helper()
	s, _, err := Open(opts)
	if err != nil {
		t.Fatalf("Open(%+v): %v", opts, err)
	}
	return s
}

// impls runs f against both implementations, each with a fresh store.
func impls(t *testing.T, f func(t *testing.T, s Store)) {
	t.Run("memory", func(t *testing.T) {
		s := mustOpen(t, Options{})
		defer s.Close()
		f(t, s)
	})
	t.Run("sqlite", func(t *testing.T) {
		s := mustOpen(t, Options{Path: filepath.Join(t.TempDir(), "ev.db")})
		defer s.Close()
		f(t, s)
	})
}

func wantEmitted(t *testing.T, s Store, k Key, want bool) {
	t.Helper()
	got, err := s.Emitted(k)
	if err != nil {
		t.Fatalf("Emitted(%v): %v", k, err)
	}
	if got != want {
		t.Fatalf("Emitted(%v) = %v, want %v", k, got, want)
	}
}

func wantCheckpoint(t *testing.T, s Store, want string) {
	t.Helper()
	got, err := s.Checkpoint()
	if err != nil {
		t.Fatalf("Checkpoint: %v", err)
	}
	if got != want {
		t.Fatalf("Checkpoint = %q, want %q", got, want)
	}
}

func TestDedup(t *testing.T) {
	impls(t, func(t *testing.T, s Store) {
		a1 := Key{"uid-a", "100"}
		wantEmitted(t, s, a1, false)
		if err := s.Commit([]Key{a1}, "100", t0); err != nil {
			t.Fatal(err)
		}
		wantEmitted(t, s, a1, true)
		// Same uid, new resourceVersion (count++): not a duplicate.
		wantEmitted(t, s, Key{"uid-a", "101"}, false)
		// Same resourceVersion, other uid: not a duplicate.
		wantEmitted(t, s, Key{"uid-b", "100"}, false)
		// Re-committing (a repeated batch after a crash) is accepted.
		if err := s.Commit([]Key{a1, {"uid-a", "101"}}, "101", t0); err != nil {
			t.Fatal(err)
		}
		wantEmitted(t, s, Key{"uid-a", "101"}, true)
		// resourceVersion is opaque: "0100" is not "100".
		wantEmitted(t, s, Key{"uid-a", "0100"}, false)
	})
}

func TestCheckpoint(t *testing.T) {
	impls(t, func(t *testing.T, s Store) {
		wantCheckpoint(t, s, "")
		if err := s.Commit(nil, "5", t0); err != nil {
			t.Fatal(err)
		}
		wantCheckpoint(t, s, "5")
		// Not compared as a number: a "smaller" value still replaces it.
		if err := s.Commit([]Key{{"u", "1"}}, "10", t0); err != nil {
			t.Fatal(err)
		}
		if err := s.Commit([]Key{{"u", "2"}}, "9", t0); err != nil {
			t.Fatal(err)
		}
		wantCheckpoint(t, s, "9")
		// "" leaves the checkpoint alone.
		if err := s.Commit([]Key{{"u", "3"}}, "", t0); err != nil {
			t.Fatal(err)
		}
		wantCheckpoint(t, s, "9")
		wantEmitted(t, s, Key{"u", "3"}, true)
	})
}

// A batch whose last row is rejected (by the CHECK constraint inside the
// SQLite transaction, after the first rows were inserted) stores nothing:
// neither its rows nor its checkpoint.
func TestCommitAtomicFailingRow(t *testing.T) {
	impls(t, func(t *testing.T, s Store) {
		if err := s.Commit([]Key{{"u0", "1"}}, "1", t0); err != nil {
			t.Fatal(err)
		}
		batch := []Key{{"u1", "2"}, {"u2", "3"}, {"u3", ""}}
		if err := s.Commit(batch, "3", t0); err == nil {
			t.Fatal("Commit with an empty resourceVersion succeeded")
		} else {
			t.Logf("error: %v", err)
		}
		wantEmitted(t, s, Key{"u1", "2"}, false)
		wantEmitted(t, s, Key{"u2", "3"}, false)
		wantEmitted(t, s, Key{"u0", "1"}, true)
		wantCheckpoint(t, s, "1")
		// The store is still usable.
		if err := s.Commit(batch[:2], "3", t0); err != nil {
			t.Fatal(err)
		}
		wantEmitted(t, s, Key{"u2", "3"}, true)
		wantCheckpoint(t, s, "3")
	})
}

func TestClosed(t *testing.T) {
	impls(t, func(t *testing.T, s Store) {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Commit([]Key{{"u", "1"}}, "1", t0); !errors.Is(err, ErrClosed) {
			t.Fatalf("Commit after Close: %v, want ErrClosed", err)
		}
		if _, err := s.Emitted(Key{"u", "1"}); !errors.Is(err, ErrClosed) {
			t.Fatalf("Emitted after Close: %v", err)
		}
		if _, err := s.Checkpoint(); !errors.Is(err, ErrClosed) {
			t.Fatalf("Checkpoint after Close: %v", err)
		}
		if _, err := s.Prune(t0); !errors.Is(err, ErrClosed) {
			t.Fatalf("Prune after Close: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	})
}

func TestPrune(t *testing.T) {
	impls(t, func(t *testing.T, s Store) {
		old := []Key{{"a", "1"}, {"b", "2"}, {"c", "3"}}
		edge := Key{"d", "4"}
		recent := Key{"e", "5"}
		mustCommit := func(b []Key, cp string, at time.Time) {
			t.Helper()
			if err := s.Commit(b, cp, at); err != nil {
				t.Fatal(err)
			}
		}
		mustCommit(old, "3", t0)
		mustCommit([]Key{edge}, "4", t0.Add(time.Hour))
		mustCommit([]Key{recent}, "5", t0.Add(2*time.Hour))
		// Re-committing an old key keeps its original emitted time.
		mustCommit([]Key{old[0]}, "", t0.Add(2*time.Hour))

		n, err := s.Prune(t0.Add(time.Hour)) // strictly before
		if err != nil {
			t.Fatal(err)
		}
		if n != 3 {
			t.Fatalf("Prune removed %d rows, want 3", n)
		}
		for _, k := range old {
			wantEmitted(t, s, k, false)
		}
		wantEmitted(t, s, edge, true)
		wantEmitted(t, s, recent, true)
		wantCheckpoint(t, s, "5")
		if n, err := s.Prune(t0.Add(time.Hour)); err != nil || n != 0 {
			t.Fatalf("second Prune = %d, %v; want 0, nil", n, err)
		}
	})
}

func TestConcurrent(t *testing.T) {
	impls(t, func(t *testing.T, s Store) {
		done := make(chan error, 4)
		for g := 0; g < 4; g++ {
			go func() {
				for i := 0; i < 50; i++ {
					k := Key{fmt.Sprintf("g%d", g), fmt.Sprint(i)}
					if err := s.Commit([]Key{k}, k.ResourceVersion, t0); err != nil {
						done <- err
						return
					}
					if ok, err := s.Emitted(k); err != nil || !ok {
						done <- fmt.Errorf("Emitted(%v) = %v, %v", k, ok, err)
						return
					}
				}
				done <- nil
			}()
		}
		for g := 0; g < 4; g++ {
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
	})
}

func TestOpenOptions(t *testing.T) {
	s, warns, err := Open(Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if len(warns) != 1 || warns[0] != MemoryWarning {
		t.Fatalf("in-memory warnings = %q", warns)
	}
	dir := t.TempDir()
	for _, sync := range []string{"", "normal", "FULL", "off", "extra"} {
		s, warns, err := Open(Options{Path: filepath.Join(dir, "s.db"), Sync: sync})
		if err != nil || len(warns) != 0 {
			t.Fatalf("sync %q: %v %q", sync, err, warns)
		}
		s.Close()
	}
	if _, _, err := Open(Options{Path: filepath.Join(dir, "s.db"), Sync: "fast"}); err == nil || !strings.Contains(err.Error(), "db.sync") {
		t.Fatalf("bad sync: %v", err)
	}
	if _, _, err := Open(Options{Path: dir}); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Fatalf("directory as db: %v", err)
	}
}

// Dedup state and checkpoint survive Close/Open (a restart).
func TestSQLiteRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ev.db")
	s := mustOpen(t, Options{Path: path, Sync: "full"})
	if err := s.Commit([]Key{{"a", "1"}, {"b", "2"}}, "2", t0); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, Options{Path: path})
	defer s.Close()
	wantEmitted(t, s, Key{"a", "1"}, true)
	wantEmitted(t, s, Key{"b", "2"}, true)
	wantEmitted(t, s, Key{"a", "3"}, false)
	wantCheckpoint(t, s, "2")
}

// The process dies in the middle of a Commit (after some rows were inserted
// in the transaction): after restart none of that batch is stored, the
// previous batch and checkpoint are.
func TestSQLiteCrashMidCommit(t *testing.T) {
	if p := os.Getenv("STATE_TEST_CRASH_DB"); p != "" {
		s := mustOpen(t, Options{Path: p})
		if err := s.Commit([]Key{{"ok", "1"}}, "1", t0); err != nil {
			t.Fatal(err)
		}
		s.(*SQLite).afterInsert = func(i int) {
			if i == 2 {
				os.Exit(42)
			}
		}
		s.Commit([]Key{{"x", "2"}, {"y", "3"}, {"z", "4"}, {"w", "5"}}, "5", t0)
		t.Fatal("Commit returned, want the process to exit")
	}
	path := filepath.Join(t.TempDir(), "ev.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestSQLiteCrashMidCommit$")
	cmd.Env = append(os.Environ(), "STATE_TEST_CRASH_DB="+path)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 42 {
		t.Fatalf("child: %v\n%s", err, out)
	}
	s := mustOpen(t, Options{Path: path})
	defer s.Close()
	wantEmitted(t, s, Key{"ok", "1"}, true)
	for _, k := range []Key{{"x", "2"}, {"y", "3"}, {"z", "4"}} {
		wantEmitted(t, s, k, false)
	}
	wantCheckpoint(t, s, "1")
}

func TestSQLiteCorrupt(t *testing.T) {
	check := func(t *testing.T, path string) {
		t.Helper()
		s, warns, err := Open(Options{Path: path})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if len(warns) != 1 {
			t.Fatalf("warnings = %q, want one", warns)
		}
		t.Logf("warning: %s", warns[0])
		moved, _ := filepath.Glob(path + ".corrupt-*")
		var main []string
		for _, m := range moved {
			if !strings.HasSuffix(m, "-wal") && !strings.HasSuffix(m, "-shm") {
				main = append(main, m)
			}
		}
		if len(main) != 1 || !strings.Contains(warns[0], main[0]) {
			t.Fatalf("moved files %q, warning %q", moved, warns[0])
		}
		wantEmitted(t, s, Key{"a", "1"}, false)
		wantCheckpoint(t, s, "")
		if err := s.Commit([]Key{{"a", "1"}}, "1", t0); err != nil {
			t.Fatal(err)
		}
		wantEmitted(t, s, Key{"a", "1"}, true)
	}
	t.Run("garbage", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "ev.db")
		garbage := []byte(strings.Repeat("this is not a sqlite database\n", 200))
		if err := os.WriteFile(path, garbage, 0o644); err != nil {
			t.Fatal(err)
		}
		check(t, path)
		moved, _ := filepath.Glob(path + ".corrupt-*")
		if b, _ := os.ReadFile(moved[0]); string(b) != string(garbage) {
			t.Fatal("moved file does not hold the original bytes")
		}
	})
	t.Run("malformed", func(t *testing.T) {
		// A real database whose pages after the header page are overwritten.
		path := filepath.Join(t.TempDir(), "ev.db")
		s := mustOpen(t, Options{Path: path})
		var batch []Key
		for i := 0; i < 2000; i++ {
			batch = append(batch, Key{fmt.Sprintf("uid-%d", i), fmt.Sprint(i)})
		}
		if err := s.Commit(batch, "x", t0); err != nil {
			t.Fatal(err)
		}
		s.Close()
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := f.Stat()
		junk := make([]byte, fi.Size()-4096)
		for i := range junk {
			junk[i] = byte(i*7 + 3)
		}
		if _, err := f.WriteAt(junk, 4096); err != nil {
			t.Fatal(err)
		}
		f.Close()
		check(t, path)
	})
}

// An unwritable location gives a clear error naming the path. Tests run as
// root here, where chmod does not stop writes; a path below a regular file
// fails for root too (ENOTDIR), so that case always runs.
func TestSQLiteUnwritable(t *testing.T) {
	dir := t.TempDir()
	t.Run("under-a-file", func(t *testing.T) {
		file := filepath.Join(dir, "file")
		if err := os.WriteFile(file, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(file, "ev.db")
		_, _, err := Open(Options{Path: path})
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "not a directory") {
			t.Fatalf("err = %v", err)
		}
		t.Logf("error: %v", err)
	})
	t.Run("proc", func(t *testing.T) {
		// The directory exists, but nobody, root included, can create a
		// file in /proc: this reaches SQLite's own open error.
		if fi, err := os.Stat("/proc/self"); err != nil || !fi.IsDir() {
			t.Skip("no /proc")
		}
		path := "/proc/kubetrail-state-test.db"
		_, _, err := Open(Options{Path: path})
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "writable") {
			t.Fatalf("err = %v", err)
		}
		t.Logf("error: %v", err)
	})
	t.Run("missing-dir", func(t *testing.T) {
		path := filepath.Join(dir, "nope", "ev.db")
		_, _, err := Open(Options{Path: path})
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "create it") {
			t.Fatalf("err = %v", err)
		}
		t.Logf("error: %v", err)
	})
	t.Run("chmod-dir", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("running as root: chmod 0555 does not stop root; covered by under-a-file")
		}
		ro := filepath.Join(dir, "ro")
		os.Mkdir(ro, 0o555)
		defer os.Chmod(ro, 0o755)
		path := filepath.Join(ro, "ev.db")
		_, _, err := Open(Options{Path: path})
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "writable") {
			t.Fatalf("err = %v", err)
		}
		t.Logf("error: %v", err)
	})
	t.Run("read-only-file", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("running as root: a 0444 file is writable by root")
		}
		path := filepath.Join(dir, "ro.db")
		s := mustOpen(t, Options{Path: path})
		s.Close()
		os.Chmod(path, 0o444)
		defer os.Chmod(path, 0o644)
		_, _, err := Open(Options{Path: path})
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "writable") {
			t.Fatalf("err = %v", err)
		}
		t.Logf("error: %v", err)
	})
}

// Another process holds the write lock (BEGIN EXCLUSIVE on its own
// connection): Open and Commit fail after the busy timeout, naming the path;
// reads still work (WAL).
func TestSQLiteLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ev.db")
	s := mustOpen(t, Options{Path: path, BusyTimeout: 200 * time.Millisecond})
	defer s.Close()
	if err := s.Commit([]Key{{"a", "1"}}, "1", t0); err != nil {
		t.Fatal(err)
	}

	other, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	ctx := context.Background()
	conn, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN EXCLUSIVE"); err != nil {
		t.Fatal(err)
	}
	defer conn.ExecContext(ctx, "ROLLBACK")

	start := time.Now()
	_, _, err = Open(Options{Path: path, BusyTimeout: 300 * time.Millisecond})
	el := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "locked by another process") {
		t.Fatalf("Open while locked: %v", err)
	}
	if el < 300*time.Millisecond {
		t.Fatalf("Open failed after %s, before the busy timeout", el)
	}
	t.Logf("Open error after %s: %v", el.Round(time.Millisecond), err)

	start = time.Now()
	err = s.Commit([]Key{{"b", "2"}}, "2", t0)
	if err == nil || !strings.Contains(err.Error(), "locked by another process") {
		t.Fatalf("Commit while locked: %v", err)
	}
	t.Logf("Commit error after %s: %v", time.Since(start).Round(time.Millisecond), err)
	wantEmitted(t, s, Key{"a", "1"}, true)
	wantCheckpoint(t, s, "1")

	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit([]Key{{"b", "2"}}, "2", t0); err != nil {
		t.Fatalf("Commit after the lock is released: %v", err)
	}
	wantEmitted(t, s, Key{"b", "2"}, true)
}
