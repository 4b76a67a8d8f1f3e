package state

import (
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/mattn/go-sqlite3"
)

// schemaVersion is stored in PRAGMA user_version.
const schemaVersion = 1

// Schema is the SQLite schema. Table and column names follow Fluent Bit's
// in_kubernetes_events (uid, resourceVersion, created), with two deliberate
// differences: the key is (uid, resourceVersion) instead of uid alone, and
// resourceVersion is TEXT because it is opaque (equality only). The table is
// WITHOUT ROWID so the key is stored once. The CHECK constraints make an
// invalid key fail inside the transaction (ON CONFLICT DO NOTHING only
// covers the key, unlike INSERT OR IGNORE which would also skip CHECKs).
const Schema = `
CREATE TABLE IF NOT EXISTS in_kubernetes_events (
  uid             TEXT    NOT NULL CHECK (uid <> ''),
  resourceVersion TEXT    NOT NULL CHECK (resourceVersion <> ''),
  created         INTEGER NOT NULL, -- emitted time, unix seconds
  PRIMARY KEY (uid, resourceVersion)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS in_kubernetes_events_created
  ON in_kubernetes_events (created);
CREATE TABLE IF NOT EXISTS in_kubernetes_events_checkpoint (
  id              INTEGER PRIMARY KEY CHECK (id = 1),
  resourceVersion TEXT    NOT NULL, -- watch resume point, opaque
  updated         INTEGER NOT NULL  -- unix seconds
);
`

const (
	sqlEmitted = `SELECT 1 FROM in_kubernetes_events WHERE uid = ? AND resourceVersion = ?`
	sqlInsert  = `INSERT INTO in_kubernetes_events (uid, resourceVersion, created) VALUES (?, ?, ?)
  ON CONFLICT (uid, resourceVersion) DO NOTHING`
	sqlSetCheckpoint = `INSERT INTO in_kubernetes_events_checkpoint (id, resourceVersion, updated) VALUES (1, ?, ?)
  ON CONFLICT (id) DO UPDATE SET resourceVersion = excluded.resourceVersion, updated = excluded.updated`
	sqlCheckpoint = `SELECT resourceVersion FROM in_kubernetes_events_checkpoint WHERE id = 1`
	sqlPrune      = `DELETE FROM in_kubernetes_events WHERE created < ?`
)

// SQLite is the Store backed by a SQLite database file in WAL mode.
type SQLite struct {
	path        string
	busyTimeout time.Duration

	mu     sync.RWMutex // guards closed against Close; db is itself safe
	closed bool
	db     *sql.DB
	emit   *sql.Stmt
	insert *sql.Stmt
	setCP  *sql.Stmt
	getCP  *sql.Stmt

	// afterInsert, set only by tests, runs after the i-th insert of a Commit, inside
	// the transaction (to kill the process mid-commit).
	afterInsert func(i int)
	prune       *sql.Stmt
}

// errCorrupt marks a database that is not a database or is malformed.
type errCorrupt struct{ err error }

func (e errCorrupt) Error() string { return e.err.Error() }
func (e errCorrupt) Unwrap() error { return e.err }

func openSQLite(path, sync string, busy time.Duration) (Store, []string, error) {
	if strings.ContainsRune(path, '?') {
		return nil, nil, fmt.Errorf("state: db %q: the path must not contain '?': choose another path", path)
	}
	if err := checkPath(path); err != nil {
		return nil, nil, err
	}
	s, err := trySQLite(path, sync, busy)
	var ce errCorrupt
	if !errors.As(err, &ce) {
		if err != nil {
			return nil, nil, describe(path, "open", busy, err)
		}
		return s, nil, nil
	}
	moved, merr := moveAside(path, time.Now())
	if merr != nil {
		return nil, nil, fmt.Errorf("state: db %q is corrupt (%v) and could not be moved aside: move or delete it by hand, or set db to another path: %w", path, ce.err, merr)
	}
	warn := fmt.Sprintf("state: db %q was corrupt (%v); moved it to %q and started a new database: Events still in the cluster will be emitted again", path, ce.err, moved)
	s, err = trySQLite(path, sync, busy)
	if err != nil {
		return nil, []string{warn}, describe(path, "open new", busy, err)
	}
	return s, []string{warn}, nil
}

// checkPath gives a clear error for paths SQLite could only report as
// "unable to open database file".
func checkPath(path string) error {
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("state: db %q: directory %q is not usable: create it as a directory writable by Fluent Bit, or set db to another path: %w", path, dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("state: db %q: %q is not a directory: set db to a path in a writable directory", path, dir)
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return fmt.Errorf("state: db %q is a directory: set db to a file path", path)
	}
	return nil
}

func trySQLite(path, sync string, busy time.Duration) (*SQLite, error) {
	q := url.Values{}
	q.Set("_busy_timeout", fmt.Sprint(busy.Milliseconds()))
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", sync)
	q.Set("_cache_size", "-16000") // KiB; the working set of 1h retention fits
	q.Set("_txlock", "immediate")  // take the write lock at BEGIN: no upgrade deadlocks
	db, err := sql.Open("sqlite3", path+"?"+q.Encode())
	if err != nil {
		return nil, err
	}
	// One connection: SQLite has a single writer anyway, and it keeps the
	// prepared statements and pragmas on one handle.
	db.SetMaxOpenConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	s := &SQLite{path: path, busyTimeout: busy, db: db}
	if err := s.init(); err != nil {
		s.closeStmts()
		db.Close()
		return nil, err
	}
	return s, nil
}

func isCorrupt(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && (se.Code == sqlite3.ErrNotADB || se.Code == sqlite3.ErrCorrupt)
}

func (s *SQLite) init() error {
	if err := s.db.Ping(); err != nil {
		if isCorrupt(err) {
			return errCorrupt{err}
		}
		return err
	}
	rows, err := s.db.Query("PRAGMA quick_check")
	if err != nil {
		if isCorrupt(err) {
			return errCorrupt{err}
		}
		return err
	}
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			rows.Close()
			return err
		}
		if line != "ok" {
			problems = append(problems, line)
		}
	}
	if err := rows.Err(); err != nil {
		if isCorrupt(err) {
			return errCorrupt{err}
		}
		return err
	}
	rows.Close()
	if len(problems) > 0 {
		if len(problems) > 3 {
			problems = append(problems[:3], "...")
		}
		return errCorrupt{fmt.Errorf("quick_check: %s", strings.Join(problems, "; "))}
	}

	// A write transaction even when the schema exists: it surfaces a lock
	// held by another process or a read-only file now, not at first Commit.
	tx, err := s.db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var v int
	if err := tx.QueryRow("PRAGMA user_version").Scan(&v); err != nil {
		return err
	}
	if v > schemaVersion {
		return fmt.Errorf("schema version %d is newer than this kubetrail supports (%d): use a newer kubetrail or another db path", v, schemaVersion)
	}
	if _, err := tx.Exec(Schema); err != nil {
		return err
	}
	if _, err := tx.Exec(fmt.Sprintf("PRAGMA user_version = %d", schemaVersion)); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}

	for _, p := range []struct {
		st  **sql.Stmt
		sql string
	}{{&s.emit, sqlEmitted}, {&s.insert, sqlInsert}, {&s.setCP, sqlSetCheckpoint}, {&s.getCP, sqlCheckpoint}, {&s.prune, sqlPrune}} {
		if *p.st, err = s.db.Prepare(p.sql); err != nil {
			return err
		}
	}
	return nil
}

// describe wraps err with the path and what the operator can do about it.
func describe(path, op string, busy time.Duration, err error) error {
	var se sqlite3.Error
	if errors.As(err, &se) {
		switch se.Code {
		case sqlite3.ErrBusy, sqlite3.ErrLocked:
			return fmt.Errorf("state: %s db %q: locked by another process (waited %s): make sure only one Fluent Bit uses this file, or set db to another path: %w", op, path, busy, err)
		case sqlite3.ErrReadonly:
			return fmt.Errorf("state: %s db %q: read-only: make the file, its -wal/-shm files and its directory writable by Fluent Bit, or set db to another path: %w", op, path, err)
		case sqlite3.ErrCantOpen, sqlite3.ErrPerm, sqlite3.ErrIoErr, sqlite3.ErrAuth:
			return fmt.Errorf("state: %s db %q: cannot open or write: check that the file and its directory exist and are writable by Fluent Bit, or set db to another path: %w", op, path, err)
		case sqlite3.ErrFull:
			return fmt.Errorf("state: %s db %q: disk full: free space or lower kube_retention_time: %w", op, path, err)
		case sqlite3.ErrNotADB, sqlite3.ErrCorrupt:
			return fmt.Errorf("state: %s db %q: corrupt: restart to move it aside, or delete it: %w", op, path, err)
		}
	}
	return fmt.Errorf("state: %s db %q: %w", op, path, err)
}

// moveAside renames path and its -wal and -shm files to
// <path>.corrupt-<timestamp> (plus -wal/-shm) and returns the new name.
func moveAside(path string, now time.Time) (string, error) {
	base := path + ".corrupt-" + now.UTC().Format("20060102T150405Z")
	dst := base
	for i := 2; ; i++ {
		if _, err := os.Lstat(dst); errors.Is(err, os.ErrNotExist) {
			break
		}
		dst = fmt.Sprintf("%s-%d", base, i)
	}
	if err := os.Rename(path, dst); err != nil {
		return "", err
	}
	for _, sfx := range []string{"-wal", "-shm"} {
		if err := os.Rename(path+sfx, dst+sfx); err != nil && !errors.Is(err, os.ErrNotExist) {
			return dst, err
		}
	}
	return dst, nil
}

func (s *SQLite) closeStmts() {
	for _, st := range []*sql.Stmt{s.emit, s.insert, s.setCP, s.getCP, s.prune} {
		if st != nil {
			st.Close()
		}
	}
}

func (s *SQLite) lock() error {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	return nil
}

// Emitted implements Store.
func (s *SQLite) Emitted(k Key) (bool, error) {
	if err := s.lock(); err != nil {
		return false, err
	}
	defer s.mu.RUnlock()
	var one int
	switch err := s.emit.QueryRow(k.UID, k.ResourceVersion).Scan(&one); {
	case err == nil:
		return true, nil
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	default:
		return false, describe(s.path, "query", s.busyTimeout, err)
	}
}

// Commit implements Store in one SQLite transaction.
func (s *SQLite) Commit(batch []Key, checkpoint string, now time.Time) error {
	if len(batch) == 0 && checkpoint == "" {
		return nil
	}
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	if err := s.commit(batch, checkpoint, now.Unix()); err != nil {
		return describe(s.path, "commit to", s.busyTimeout, err)
	}
	return nil
}

func (s *SQLite) commit(batch []Key, checkpoint string, ts int64) error {
	tx, err := s.db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback() // no-op after Commit
	ins := tx.Stmt(s.insert)
	for i, k := range batch {
		if _, err := ins.Exec(k.UID, k.ResourceVersion, ts); err != nil {
			return fmt.Errorf("key %d %+v: %w", i, k, err)
		}
		if s.afterInsert != nil {
			s.afterInsert(i)
		}
	}
	if checkpoint != "" {
		if _, err := tx.Stmt(s.setCP).Exec(checkpoint, ts); err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
	}
	return tx.Commit()
}

// Checkpoint implements Store.
func (s *SQLite) Checkpoint() (string, error) {
	if err := s.lock(); err != nil {
		return "", err
	}
	defer s.mu.RUnlock()
	var cp string
	switch err := s.getCP.QueryRow().Scan(&cp); {
	case err == nil, errors.Is(err, sql.ErrNoRows):
		return cp, nil
	default:
		return "", describe(s.path, "read checkpoint from", s.busyTimeout, err)
	}
}

// Prune implements Store.
func (s *SQLite) Prune(before time.Time) (int, error) {
	if err := s.lock(); err != nil {
		return 0, err
	}
	defer s.mu.RUnlock()
	res, err := s.prune.Exec(before.Unix())
	if err != nil {
		return 0, describe(s.path, "prune", s.busyTimeout, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, describe(s.path, "prune", s.busyTimeout, err)
	}
	return int(n), nil
}

// Close implements Store. It closes the database; SQLite checkpoints the
// WAL into the main file when the last connection closes.
func (s *SQLite) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.closeStmts()
	if err := s.db.Close(); err != nil {
		return describe(s.path, "close", s.busyTimeout, err)
	}
	return nil
}
