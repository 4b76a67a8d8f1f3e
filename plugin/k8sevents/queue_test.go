package k8sevents

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kubetrail/kubetrail/state"
)

func rec(n int) item {
	return item{key: state.Key{UID: "u", ResourceVersion: "1"}, rec: make([]byte, n)}
}

func TestQueueBoundsAndOrder(t *testing.T) {
	q := newQueue(100)
	ctx := context.Background()
	for _, it := range []item{rec(40), {rv: "1"}, {rv: "2"}, rec(60)} {
		if err := q.put(ctx, it); err != nil {
			t.Fatal(err)
		}
	}
	if n, size := q.len(); n != 3 || size != 100 {
		t.Fatalf("len = %d items, %d bytes; want 3 (two markers collapsed), 100", n, size)
	}
	// Full: the next put waits until take frees space.
	put := make(chan error, 1)
	go func() { put <- q.put(ctx, rec(10)) }()
	select {
	case err := <-put:
		t.Fatalf("put into a full queue returned at once (%v)", err)
	case <-time.After(100 * time.Millisecond):
	}
	got := q.take(50)
	if len(got) != 2 || len(got[0].rec) != 40 || got[1].rv != "2" {
		t.Fatalf("take(50) = %+v; want the 40-byte record and the collapsed marker rv 2", got)
	}
	if err := <-put; err != nil {
		t.Fatal(err)
	}
	if got := q.take(1 << 20); len(got) != 2 {
		t.Fatalf("take all = %d items, want 2", len(got))
	}
	if q.take(1) != nil {
		t.Fatal("empty queue returned items")
	}
}

func TestQueueOversizedRecordAndCancel(t *testing.T) {
	q := newQueue(10)
	ctx, cancel := context.WithCancel(context.Background())
	if err := q.put(ctx, rec(50)); err != nil { // larger than the queue, but it is empty
		t.Fatal(err)
	}
	if got := q.take(1); len(got) != 1 {
		t.Fatalf("take = %d items: a record larger than maxBytes must still come out", len(got))
	}
	_ = q.put(ctx, rec(10))
	done := make(chan error, 1)
	go func() { done <- q.put(ctx, rec(10)) }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("put after cancel = %v, want context.Canceled", err)
	}
}
