package k8sevents

import (
	"sync"
	"time"
)

// Delivery says what Fluent Bit has done with a batch when its cleanup callback runs,
// which decides when the batch may be committed (marked emitted, checkpoint advanced).
// A commit made too early loses the batch if Fluent Bit dies before storing it; one
// made too late only repeats it after a crash.
type Delivery int

const (
	// RingBuffer: a threaded input, Fluent Bit's default for Go inputs
	// (src/flb_plugin_proxy.c flb_proxy_register_input ORs in FLB_INPUT_THREADED).
	// flb_input_log_append only copies the buffer into the instance's ring
	// (src/flb_input_chunk.c append_to_ring_buffer) and the cleanup callback follows
	// at once, whatever the append returned; the engine thread moves ring entries into
	// chunks every 250 ms (FLB_DEV_RB_MS, flb_input_chunk_ring_buffer_collector), not
	// while the input is paused, and a process killed meanwhile loses them. Fluent Bit
	// gives the plugin no sign that an entry reached a chunk, so a batch is committed
	// only once every way it could still be lost has passed: CommitDelay after its
	// cleanup without a pause, and never at exit.
	RingBuffer Delivery = iota
	// Synchronous: `threaded off`. The append writes the chunk before the cleanup
	// callback (flb_input_chunk_append_raw -> input_chunk_append_raw), so the batch is
	// committed in the cleanup callback.
	Synchronous
)

func (d Delivery) String() string {
	if d == Synchronous {
		return "synchronous (threaded off: each batch is in a chunk when its cleanup callback runs, and is committed then)"
	}
	return "ring buffer (threaded, Fluent Bit's default for Go inputs: a batch is committed " +
		CommitDelay.String() + " after its append, unpaused; set threaded off so that a clean stop repeats nothing)"
}

const (
	// CommitDelay is how long a ring-buffered batch waits after its cleanup callback
	// before it is committed: eight of the engine's 250 ms drains. A batch is lost
	// only if Fluent Bit is killed while its engine has been busy that long.
	CommitDelay = 2 * time.Second
	// DroppedAfter: a cleanup callback this long after the input callback returned
	// means the ring was full and the append gave up (10 tries 100 ms apart, then
	// "could not enqueue records into the ring buffer": append_to_ring_buffer); the
	// batch is handed to Fluent Bit again. An append that succeeded on its last try
	// returns after ~900 ms. Input processors run before the append, so a slow one
	// looks the same: a batch is handed over again maxHandovers times at most (a
	// ring full for ~10 s: the engine stalled that long).
	DroppedAfter = 950 * time.Millisecond
	maxHandovers = 10
)

// pending is a ring-buffered batch waiting for its commit.
type pending struct {
	b  *Batch
	at time.Time // its cleanup callback
}

// deliverer holds the batches Fluent Bit took but may still lose, in order.
type deliverer struct {
	mode Delivery
	now  func() time.Time

	mu      sync.Mutex
	pending []pending
	paused  bool
	resumed time.Time // the last FLBPluginInputResume
}

// due removes and returns the pending batches that can no longer be lost: their
// cleanup and the last resume both CommitDelay ago, and the input not paused.
func (d *deliverer) due() []*Batch {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.paused || len(d.pending) == 0 {
		return nil
	}
	now := d.now()
	if now.Sub(d.resumed) < CommitDelay {
		return nil
	}
	n := 0
	for n < len(d.pending) && now.Sub(d.pending[n].at) >= CommitDelay {
		n++
	}
	out := make([]*Batch, n)
	for i := range out {
		out[i] = d.pending[i].b
	}
	d.pending = append(d.pending[:0], d.pending[n:]...)
	return out
}

// hold queues b behind the pending batches; it reports false when nothing is pending
// and b may be committed now.
func (d *deliverer) hold(b *Batch, appended bool) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !appended {
		// Progress without records: ordered after what is pending (its checkpoint
		// must not pass theirs), else committed at once.
		if len(d.pending) == 0 {
			return false
		}
		d.pending = append(d.pending, pending{b: b, at: d.pending[len(d.pending)-1].at})
		return true
	}
	d.pending = append(d.pending, pending{b: b, at: d.now()})
	return true
}

func (d *deliverer) pause() {
	d.mu.Lock()
	d.paused = true
	d.mu.Unlock()
}

func (d *deliverer) resume() {
	d.mu.Lock()
	d.paused = false
	d.resumed = d.now()
	d.mu.Unlock()
}

// uncommitted returns how many batches and records are still pending.
func (d *deliverer) uncommitted() (batches, records int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, p := range d.pending {
		records += p.b.records
	}
	return len(d.pending), records
}

// Appended is the cleanup callback's news: Fluent Bit's append of b returned, latency
// after the input callback returned. It reports whether b must be handed to Fluent
// Bit again (the ring was full: Fluent Bit dropped it); the caller then keeps its
// buffer and returns it from the next input callback.
func (in *Input) Appended(b *Batch, latency time.Duration) (again bool) {
	if b == nil {
		return false
	}
	if in.delivery.mode == Synchronous {
		in.Commit(b)
		return false
	}
	if latency >= DroppedAfter && b.handovers < maxHandovers {
		// Bounded: appends that stay this slow (input processors, a starved thread)
		// are at last taken as slow, not dropped, so that the input never stalls.
		b.handovers++
		in.stats.redelivered.Add(1)
		in.log.Warnf("Fluent Bit took %s to append %d Events: its ring buffer was full and the records were probably dropped (\"could not enqueue records into the ring buffer\"); handing them over again", latency.Round(time.Millisecond), b.records)
		return true
	}
	in.delivery.hold(b, true)
	return false
}

// Pause and Resume are FLBPluginInputPause and FLBPluginInputResume: while paused,
// Fluent Bit's engine leaves the input's ring entries where they are.
func (in *Input) Pause()  { in.delivery.pause() }
func (in *Input) Resume() { in.delivery.resume() }

// commitDue commits the ring-buffered batches that can no longer be lost.
func (in *Input) commitDue() {
	for _, b := range in.delivery.due() {
		in.Commit(b)
	}
}
