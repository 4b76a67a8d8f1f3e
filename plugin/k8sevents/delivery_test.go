package k8sevents

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kubetrail/kubetrail/conf"
	"github.com/kubetrail/kubetrail/state"
)

// deliveryInput is an Input whose collector retries an unreachable API server in the
// background, with a clock the test moves: the tests queue items by hand.
func deliveryInput(t *testing.T, mode Delivery) (*Input, *time.Time, *testLogger) {
	t.Helper()
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	if err := os.WriteFile(tok, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := conf.ParseEvents(conf.MapGetter{
		"kube_url": "https://127.0.0.1:1", "kube_tls_verify": "off", "kube_token_file": tok,
		"db": filepath.Join(dir, "events.db"),
	})
	if err != nil {
		t.Fatal(err)
	}
	log := &testLogger{t: t}
	in, err := New(cfg, log, WithDelivery(mode))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() })
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	in.delivery.now = func() time.Time { return now }
	return in, &now, log
}

// queued puts one Event (uid u, resourceVersion rv) or, with u empty, a progress marker.
func queued(t *testing.T, in *Input, u, rv string) {
	t.Helper()
	it := item{rv: rv}
	if u != "" {
		it.key = state.Key{UID: u, ResourceVersion: rv}
		it.rec = []byte{0xc0}
		if fresh, err := in.reserve(it.key); err != nil || !fresh {
			t.Fatalf("reserve %v = %v, %v", it.key, fresh, err)
		}
	}
	if err := in.put(context.Background(), it); err != nil {
		t.Fatal(err)
	}
}

func emitted(t *testing.T, in *Input, u, rv string) bool {
	t.Helper()
	ok, err := in.store.Emitted(state.Key{UID: u, ResourceVersion: rv})
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func TestSynchronousCommitsAtCleanup(t *testing.T) {
	in, _, _ := deliveryInput(t, Synchronous)
	queued(t, in, "a", "10")
	b := in.Collect()
	if again := in.Appended(b, 5*time.Second); again {
		t.Fatal("a synchronous append is never handed over again")
	}
	if !emitted(t, in, "a", "10") || in.committedRV() != "10" {
		t.Errorf("not committed at cleanup: emitted %v, checkpoint %q", emitted(t, in, "a", "10"), in.committedRV())
	}
}

// TestRingBufferCommitsLate: a threaded input's batch is committed only CommitDelay
// after its cleanup, never while paused or within CommitDelay of a resume, never at
// exit; progress behind it waits for it.
func TestRingBufferCommitsLate(t *testing.T) {
	in, now, _ := deliveryInput(t, RingBuffer)
	queued(t, in, "a", "10")
	b := in.Collect()
	if in.Appended(b, 10*time.Millisecond) {
		t.Fatal("a quick append was handed over again")
	}
	// A bookmark behind the batch: its checkpoint must not pass it.
	queued(t, in, "", "12")
	*now = now.Add(time.Second)
	if in.Collect() != nil {
		t.Fatal("a batch without records was returned")
	}
	if emitted(t, in, "a", "10") || in.committedRV() != "" {
		t.Fatalf("committed 1 s after the append (emitted %v, checkpoint %q): the ring may still hold it", emitted(t, in, "a", "10"), in.committedRV())
	}
	in.Pause()
	*now = now.Add(5 * time.Second)
	in.Collect()
	if emitted(t, in, "a", "10") {
		t.Fatal("committed while paused: the engine does not drain a paused input's ring")
	}
	in.Resume()
	*now = now.Add(time.Second)
	in.Collect()
	if emitted(t, in, "a", "10") {
		t.Fatal("committed 1 s after the resume")
	}
	*now = now.Add(CommitDelay)
	in.Collect()
	if !emitted(t, in, "a", "10") || in.committedRV() != "12" {
		t.Fatalf("not committed %v after the resume: emitted %v, checkpoint %q", CommitDelay+time.Second, emitted(t, in, "a", "10"), in.committedRV())
	}

	queued(t, in, "b", "20")
	in.Appended(in.Collect(), 10*time.Millisecond)
	if st := in.Close(); st.Emitted != 1 || in.committedRV() != "12" {
		t.Errorf("committed at exit: %s, checkpoint %q", st, in.committedRV())
	}
}

// TestRingBufferFullHandsOverAgain: an append that took DroppedAfter or longer was
// dropped by a full ring: handed over again, up to maxHandovers times, then held.
func TestRingBufferFullHandsOverAgain(t *testing.T) {
	in, now, _ := deliveryInput(t, RingBuffer)
	queued(t, in, "a", "10")
	b := in.Collect()
	for i := 0; i < maxHandovers; i++ {
		if !in.Appended(b, time.Second) {
			t.Fatalf("handover %d: a 1 s append (the ring's ten tries) was not handed over again", i+1)
		}
	}
	if in.Appended(b, time.Second) {
		t.Fatal("handed over again without end: a slow pipeline would stall the input")
	}
	*now = now.Add(CommitDelay)
	in.Collect()
	if !emitted(t, in, "a", "10") {
		t.Error("the batch held after its last handover was never committed")
	}
	if got := in.Stats().Redelivered; got != maxHandovers {
		t.Errorf("redelivered=%d, want %d", got, maxHandovers)
	}
}

// TestNewStreamKeepsCheckpoint: a batch of an earlier stream (before a LIST or a new
// leadership term) marks its Events emitted but does not move the checkpoint back.
func TestNewStreamKeepsCheckpoint(t *testing.T) {
	in, _, _ := deliveryInput(t, Synchronous)
	queued(t, in, "a", "10")
	old := in.Collect()
	in.startList("50", false)
	in.Appended(old, 0)
	if !emitted(t, in, "a", "10") {
		t.Error("the earlier stream's Event was not marked emitted")
	}
	if got := in.committedRV(); got != "list:50" {
		t.Errorf("checkpoint %q after an earlier stream's batch, want list:50 (it went back)", got)
	}
	cp, err := in.store.Checkpoint()
	if err != nil || cp != in.formatCheckpoint("list:50") {
		t.Errorf("stored checkpoint %q, %v", cp, err)
	}
}
