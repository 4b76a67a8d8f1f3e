package state

import (
	"sync"
	"time"
)

// Memory is the in-memory Store used when no db path is set. It has the
// same semantics as the SQLite store but does not survive a restart.
type Memory struct {
	mu         sync.Mutex
	closed     bool
	emitted    map[Key]int64 // emitted time, unix seconds
	checkpoint string
}

// NewMemory returns an empty in-memory Store.
func NewMemory() *Memory {
	return &Memory{emitted: make(map[Key]int64)}
}

// Emitted implements Store.
func (m *Memory) Emitted(k Key) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return false, ErrClosed
	}
	_, ok := m.emitted[k]
	return ok, nil
}

// Commit implements Store. The whole batch is validated before anything is
// stored, so a failing key leaves the store unchanged.
func (m *Memory) Commit(batch []Key, checkpoint string, now time.Time) error {
	for _, k := range batch {
		if err := validKey(k); err != nil {
			return err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	ts := now.Unix()
	for _, k := range batch {
		if _, ok := m.emitted[k]; !ok {
			m.emitted[k] = ts
		}
	}
	if checkpoint != "" {
		m.checkpoint = checkpoint
	}
	return nil
}

// Checkpoint implements Store.
func (m *Memory) Checkpoint() (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return "", ErrClosed
	}
	return m.checkpoint, nil
}

// Prune implements Store.
func (m *Memory) Prune(before time.Time) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return 0, ErrClosed
	}
	cut, n := before.Unix(), 0
	for k, ts := range m.emitted {
		if ts < cut {
			delete(m.emitted, k)
			n++
		}
	}
	return n, nil
}

// Close implements Store.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.emitted = nil
	return nil
}
