package k8sevents

import (
	"context"
	"sync"

	"github.com/kubetrail/kubetrail/state"
)

// item is one entry between the collector goroutine and Fluent Bit's 1-second
// callback. Items leave the queue in order, so an item's rv is safe to checkpoint once
// it and everything before it are committed.
type item struct {
	key state.Key // zero for a progress marker
	rec []byte    // the encoded record; nil: mark key emitted without emitting it
	rv  string    // resume point once this item is committed; "" for none
	gen uint64    // the stream rv belongs to (Input.gen when it was queued)
}

func (it *item) marker() bool { return it.key.UID == "" && it.rec == nil }

// queue is bounded by the bytes of its records. put blocks while it is full, which
// stops the watch from reading: memory stays bounded when Fluent Bit pauses the input
// or cannot keep up, and the API server's stream waits in TCP buffers.
type queue struct {
	mu    sync.Mutex
	items []item
	bytes int
	max   int
	space chan struct{} // a token whenever take frees space
}

func newQueue(maxBytes int) *queue {
	return &queue{max: maxBytes, space: make(chan struct{}, 1)}
}

// put appends it, waiting for space. A record larger than the whole queue is still
// accepted when the queue is empty, so that no Event can block it forever. Consecutive
// markers collapse into the last.
func (q *queue) put(ctx context.Context, it item) error {
	for {
		q.mu.Lock()
		if it.marker() && len(q.items) > 0 && q.items[len(q.items)-1].marker() {
			q.items[len(q.items)-1].rv = it.rv
			q.items[len(q.items)-1].gen = it.gen
			q.mu.Unlock()
			return nil
		}
		if len(q.items) == 0 || q.bytes+len(it.rec) <= q.max {
			q.items = append(q.items, it)
			q.bytes += len(it.rec)
			q.mu.Unlock()
			return nil
		}
		q.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-q.space:
		}
	}
}

// take removes items from the front, records totalling at most maxBytes (but at least
// one item), and returns them; nil when the queue is empty.
func (q *queue) take(maxBytes int) []item {
	q.mu.Lock()
	defer q.mu.Unlock()
	n, size := 0, 0
	for n < len(q.items) {
		l := len(q.items[n].rec)
		if n > 0 && size+l > maxBytes {
			break
		}
		size += l
		n++
	}
	if n == 0 {
		return nil
	}
	out := make([]item, n)
	copy(out, q.items)
	clear(q.items[:n])
	q.items = q.items[n:]
	if len(q.items) == 0 {
		q.items = nil // let the backing array go
	}
	q.bytes -= size
	select {
	case q.space <- struct{}{}:
	default:
	}
	return out
}

// len returns the number of items and record bytes waiting.
func (q *queue) len() (int, int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items), q.bytes
}

// drain removes and returns everything queued.
func (q *queue) drain() []item {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.items
	q.items, q.bytes = nil, 0
	select {
	case q.space <- struct{}{}:
	default:
	}
	return out
}
