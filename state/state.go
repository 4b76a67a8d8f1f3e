// Package state persists what the k8s_events input has already emitted, so
// that every version of a Kubernetes Event is emitted exactly once across
// re-lists, restarts and leader changes.
//
// Deduplication is keyed by (uid, resourceVersion): a new resourceVersion of
// an Event (count++, new lastTimestamp) is a new record and is emitted once;
// a version that was already emitted is never emitted again (until it is
// pruned by retention). Alongside, the store keeps the watch checkpoint, the
// last resourceVersion of the watch, so that a restart resumes from it.
//
// Records are marked emitted only after Fluent Bit has taken them. Commit
// marks a batch emitted and records the checkpoint in one transaction, so a
// crash repeats at most the last batch and never loses one (at-least-once at
// the boundary, exactly-once otherwise).
//
// Two implementations share the Store interface: a SQLite file (Options.Path
// set) and an in-memory map (Options.Path empty; restarts repeat Events).
package state

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Key identifies one version of one Kubernetes object. Both fields are
// opaque strings: resourceVersion is compared for equality only.
type Key struct {
	UID             string
	ResourceVersion string
}

// Store is the dedup and checkpoint store used by the k8s_events input.
// Implementations are safe for concurrent use.
type Store interface {
	// Emitted reports whether this version of the object was already
	// emitted (committed and not yet pruned).
	Emitted(k Key) (bool, error)
	// Commit marks every key of batch emitted at now and, unless checkpoint
	// is "", records checkpoint as the watch resume point, all in one
	// transaction: on error nothing of the call is stored. Keys already
	// emitted are accepted and keep their original emitted time. Empty UID or
	// ResourceVersion is an error.
	Commit(batch []Key, checkpoint string, now time.Time) error
	// Checkpoint returns the last committed checkpoint, "" if none.
	Checkpoint() (string, error)
	// Prune deletes rows emitted before the cutoff (second granularity) and
	// returns how many were deleted. The checkpoint is never pruned.
	Prune(before time.Time) (int, error)
	// Close releases the store. It is idempotent; other calls after Close
	// return ErrClosed.
	Close() error
}

// Sync modes accepted in Options.Sync, as Fluent Bit's db.sync.
const (
	SyncNormal = "normal"
	SyncFull   = "full"
	SyncOff    = "off"
	SyncExtra  = "extra"
)

// DefaultBusyTimeout is used when Options.BusyTimeout is zero.
const DefaultBusyTimeout = 5 * time.Second

// Options configures Open.
type Options struct {
	// Path of the SQLite database file (the input's db property). Empty
	// selects the in-memory store.
	Path string
	// Sync is the SQLite synchronous mode: normal (default), full, off or
	// extra; case-insensitive.
	Sync string
	// BusyTimeout is how long to wait for a lock held by another process
	// before failing. Zero means DefaultBusyTimeout.
	BusyTimeout time.Duration
}

// ErrClosed is returned by calls on a closed Store.
var ErrClosed = errors.New("state: store is closed")

// MemoryWarning is the warning Open returns for the in-memory store.
const MemoryWarning = "state: no db path set: Events are deduplicated in memory only, a restart will emit them again; set db to a file path to persist"

// Open opens the store described by opts. With an empty Path it returns the
// in-memory store and MemoryWarning. Warnings are non-fatal conditions the
// caller should log (e.g. a corrupt database that was moved aside).
func Open(opts Options) (Store, []string, error) {
	sync, err := parseSync(opts.Sync)
	if err != nil {
		return nil, nil, err
	}
	if opts.BusyTimeout < 0 {
		return nil, nil, fmt.Errorf("state: busy timeout %s is negative", opts.BusyTimeout)
	}
	if opts.BusyTimeout == 0 {
		opts.BusyTimeout = DefaultBusyTimeout
	}
	if opts.Path == "" {
		return NewMemory(), []string{MemoryWarning}, nil
	}
	return openSQLite(opts.Path, sync, opts.BusyTimeout)
}

func parseSync(s string) (string, error) {
	switch v := strings.ToLower(strings.TrimSpace(s)); v {
	case "":
		return "NORMAL", nil
	case SyncNormal, SyncFull, SyncOff, SyncExtra:
		return strings.ToUpper(v), nil
	default:
		return "", fmt.Errorf("state: invalid db.sync %q: use normal, full, off or extra", s)
	}
}

func validKey(k Key) error {
	if k.UID == "" || k.ResourceVersion == "" {
		return fmt.Errorf("state: invalid key %+v: uid and resourceVersion must be non-empty", k)
	}
	return nil
}
