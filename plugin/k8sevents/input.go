// Package k8sevents is the k8s_events input: it lists, then watches, Kubernetes Events
// through client-go and hands each new version of an Event to Fluent Bit once.
//
// One Input is one Fluent Bit input instance. A goroutine collects (list, watch,
// dedup, encode) into a bounded queue; Fluent Bit's 1-second callback takes a Batch
// from it (Collect), and the cleanup callback reports the append (Appended). A batch
// is committed (its Events marked emitted, the checkpoint advanced) only once Fluent
// Bit holds it in a chunk or can no longer lose it (Delivery says which), so a crash
// repeats what was in flight and loses nothing.
package k8sevents

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fastjson"
	"k8s.io/client-go/dynamic"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"

	"github.com/kubetrail/kubetrail/conf"
	"github.com/kubetrail/kubetrail/plugin/flblog"
	"github.com/kubetrail/kubetrail/state"
)

// Input is one running k8s_events instance.
type Input struct {
	cfg    conf.Events
	log    flblog.Logger
	api    api
	stream string // what the checkpoint belongs to: API, namespace and selector
	rest   *rest.Config
	res    dynamic.ResourceInterface // WATCH
	raw    *rest.RESTClient          // LIST pages, as JSON
	// The collector goroutine's: watchParser parses watched Events, pages reads LIST
	// pages and itemParser parses their Events, one at a time.
	watchParser fastjson.Parser
	pages       listReader
	itemParser  fastjson.Parser
	store       state.Store
	q           *queue
	coder       *encoder                       // owned by the collector goroutine
	cms         typedcorev1.ConfigMapInterface // the checkpoint's, with leader election

	// seen holds the keys queued or handed to Fluent Bit but not committed yet, and
	// keys whose commit failed (database unwritable), so that no re-list emits them
	// twice while the store does not have them. failed are the latter, committed
	// again with the next batch.
	seenMu sync.Mutex
	seen   map[state.Key]struct{}
	failed []state.Key

	committed atomic.Pointer[string] // last committed resume point (resourceVersion)
	// gen numbers the streams of resourceVersions: a new LIST or leadership term
	// starts one, and only a batch of the current stream moves the checkpoint, which
	// therefore never goes back.
	gen      atomic.Uint64
	stats    counters
	status   statusLog
	delivery deliverer
	// name is the Fluent Bit instance name (k8s_events.0), the metrics' name label.
	name string
	// leading is set while this instance collects as the Lease's holder.
	leading     atomic.Bool
	stopMetrics func()

	cancel context.CancelFunc
	done   chan struct{}
	closed atomic.Bool
}

// Batch is what one callback hands to Fluent Bit.
type Batch struct {
	recs      [][]byte // encoded events, in order
	size      int
	keys      []state.Key
	rv        string
	gen       uint64 // rv's stream
	records   int
	handovers int // times handed to Fluent Bit again (see Appended)
}

// Size is the length of the batch as concatenated events.
func (b *Batch) Size() int { return b.size }

// MoveTo writes the batch, as concatenated Fluent Bit v2 log events, into dst (at
// least Size bytes: the host's malloc'ed buffer, so that no second copy is made) and
// lets go of its records: Commit needs only the keys, and the records would otherwise
// stay in memory until Fluent Bit's cleanup callback.
func (b *Batch) MoveTo(dst []byte) {
	off := 0
	for i, r := range b.recs {
		off += copy(dst[off:], r)
		b.recs[i] = nil
	}
	b.recs = nil
}

// Records is the number of events in the batch.
func (b *Batch) Records() int { return b.records }

// Option changes how New sets an Input up.
type Option func(*Input)

// WithDelivery says how Fluent Bit takes the batches (default Synchronous).
func WithDelivery(d Delivery) Option { return func(in *Input) { in.delivery.mode = d } }

// WithName gives the Fluent Bit instance name, which labels the health metrics.
func WithName(name string) Option { return func(in *Input) { in.name = name } }

// New opens the database, connects the client and starts collecting. It fails only on
// what a retry cannot fix (bad configuration, unusable database); an unreachable API
// server is retried in the background.
func New(cfg conf.Events, log flblog.Logger, opts ...Option) (*Input, error) {
	rc, err := restConfig(cfg)
	if err != nil {
		return nil, err
	}
	return newInput(cfg, rc, log, opts...)
}

func newInput(cfg conf.Events, rc *rest.Config, log flblog.Logger, opts ...Option) (*Input, error) {
	store, warnings, err := state.Open(state.Options{Path: cfg.DB, Sync: cfg.DBSync})
	if err != nil {
		return nil, fmt.Errorf("db: %w", err)
	}
	if w := tokenWarning(rc); w != "" {
		warnings = append(warnings, w)
	}
	for _, w := range warnings {
		log.Warnf("%s", w)
	}
	in := &Input{
		cfg:   cfg,
		log:   log,
		api:   apiFor(cfg.API),
		rest:  rc,
		store: store,
		q:     newQueue(cfg.BufferMaxSize),
		seen:  make(map[state.Key]struct{}),
		done:  make(chan struct{}),
	}
	in.delivery = deliverer{mode: Synchronous, now: time.Now}
	for _, o := range opts {
		o(in)
	}
	if in.name == "" {
		in.name = "k8s_events"
	}
	if cfg.MetricsPort > 0 {
		addr := net.JoinHostPort(cfg.MetricsListen, strconv.Itoa(cfg.MetricsPort))
		stop, err := serveMetrics(addr, in.name, in)
		if err != nil {
			store.Close()
			return nil, err
		}
		in.stopMetrics = stop
		log.Infof("health metrics at http://%s/metrics", addr)
	}
	in.coder = newEncoder(&in.api, cfg.ClusterName)
	in.stream = fmt.Sprintf("%s|%s|%s", cfg.API, cfg.Namespace, cfg.FieldSelector)
	in.status.log = log
	if msg := setMemLimit(memBudget(cfg.BufferMaxSize), 1); msg != "" {
		log.Infof("%s", msg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	in.cancel = cancel
	go in.run(ctx)
	return in, nil
}

// run collects until ctx ends: alone, or only while leading.
func (in *Input) run(ctx context.Context) {
	pruned := make(chan struct{})
	defer func() {
		<-pruned // the store is closed after done: nothing may use it then
		close(in.done)
	}()
	go func() {
		defer close(pruned)
		in.pruneLoop(ctx)
	}()
	if !in.connect(ctx) {
		return
	}
	if in.cfg.LeaderElection {
		in.runElected(ctx)
		return
	}
	in.collect(ctx, in.localCheckpoint(), true)
}

// connect makes the API clients, retrying with backoff until it can or ctx ends:
// client-go reads the token file when it makes a client, and a projected token may not
// be there yet.
func (in *Input) connect(ctx context.Context) bool {
	bo := newBackoff()
	for {
		err := in.makeClients()
		if err == nil {
			in.status.set("client", nil)
			return true
		}
		in.status.set("client", fmt.Errorf("API client: %w (retrying)", err))
		if sleep(ctx, bo.Step()); ctx.Err() != nil {
			return false
		}
	}
}

func (in *Input) makeClients() error {
	dc, err := dynamic.NewForConfig(in.rest)
	if err != nil {
		return err
	}
	if in.raw, err = rest.UnversionedRESTClientFor(dynamic.ConfigFor(in.rest)); err != nil {
		return err
	}
	if in.cfg.Namespace != "" {
		in.res = dc.Resource(in.api.gvr).Namespace(in.cfg.Namespace)
	} else {
		in.res = dc.Resource(in.api.gvr)
	}
	return nil
}

// localCheckpoint is the resume point in the database, "" if none or if it belongs to
// another stream (the configuration changed: re-list, dedup drops repeats).
func (in *Input) localCheckpoint() string {
	cp, err := in.store.Checkpoint()
	if err != nil {
		in.log.Errorf("db: reading the checkpoint: %v: re-listing", err)
		return ""
	}
	return in.parseCheckpoint(cp, "db")
}

func (in *Input) parseCheckpoint(cp, where string) string {
	if cp == "" {
		return ""
	}
	stream, rv, ok := strings.Cut(cp, " ")
	if !ok || stream != in.stream || rv == "" {
		in.log.Infof("checkpoint in %s is for another configuration (%q): re-listing", where, cp)
		return ""
	}
	return rv
}

func (in *Input) formatCheckpoint(rv string) string { return in.stream + " " + rv }

// firstStart reports whether nothing was ever committed: no checkpoint at all.
func (in *Input) firstStart() bool {
	cp, err := in.store.Checkpoint()
	return err == nil && cp == ""
}

// reserve reports whether this version of the Event still has to be emitted, and
// reserves it if so.
func (in *Input) reserve(k state.Key) (bool, error) {
	in.seenMu.Lock()
	defer in.seenMu.Unlock()
	if _, ok := in.seen[k]; ok {
		return false, nil
	}
	done, err := in.store.Emitted(k)
	if err != nil {
		return false, fmt.Errorf("db: %w", err)
	}
	if done {
		return false, nil
	}
	in.seen[k] = struct{}{}
	return true, nil
}

func (in *Input) release(keys []state.Key) {
	in.seenMu.Lock()
	for _, k := range keys {
		delete(in.seen, k)
	}
	in.seenMu.Unlock()
}

// Collect takes what is queued, up to buffer_max_size, for Fluent Bit's callback
// (called once a second: this is also the most the input delivers per second). It
// returns nil when there is nothing to emit; progress without records (filtered or
// duplicate Events, bookmarks) is committed as soon as what Fluent Bit took before it
// is, since Fluent Bit has nothing to append. It first commits the ring-buffered
// batches that can no longer be lost. It never blocks.
func (in *Input) Collect() *Batch {
	if in.closed.Load() {
		return nil
	}
	in.commitDue()
	items := in.q.take(in.cfg.BufferMaxSize)
	if items == nil {
		return nil
	}
	b := &Batch{}
	for i := range items {
		it := &items[i]
		if it.rec != nil {
			b.recs = append(b.recs, it.rec)
			b.size += len(it.rec)
			b.records++
		}
		if it.key.UID != "" {
			b.keys = append(b.keys, it.key)
		}
		if it.rv != "" {
			b.rv, b.gen = it.rv, it.gen
		}
	}
	if b.records == 0 {
		if !in.delivery.hold(b, false) {
			in.Commit(b)
		}
		return nil
	}
	return b
}

// maxFailed bounds the Events kept in memory while the database fails commits
// (~100 B each): past it the collector stops reading until a commit succeeds.
const maxFailed = 100_000

// Commit records that Fluent Bit holds b: its Events are marked emitted and the
// checkpoint advances. On a database error the Events stay known in memory (no
// repeats in this run; a restart may repeat them), are committed again with the next
// batch, and the error is logged once, its recovery once.
func (in *Input) Commit(b *Batch) {
	if b == nil {
		return
	}
	cp := ""
	current := b.rv != "" && b.gen == in.gen.Load()
	if current {
		cp = in.formatCheckpoint(b.rv)
	}
	in.seenMu.Lock()
	keys := b.keys
	if len(in.failed) > 0 {
		keys = append(in.failed, b.keys...)
	}
	in.seenMu.Unlock()
	err := in.store.Commit(keys, cp, time.Now())
	in.stats.emitted.Add(uint64(b.records))
	if err != nil {
		in.stats.dbErrors.Add(1)
		in.seenMu.Lock()
		in.failed = keys
		in.seenMu.Unlock()
		in.status.set("db", fmt.Errorf("db: committing Events: %w (kept in memory and committed again with the next batch: a restart may repeat them)", err))
		return
	}
	in.status.set("db", nil)
	in.seenMu.Lock()
	in.failed = nil
	in.seenMu.Unlock()
	in.release(keys)
	if current {
		rv := b.rv
		in.committed.Store(&rv)
	}
}

// waitForCommits holds the collector while the database has failed commits for more
// than maxFailed Events, so that memory stays bounded; the Events wait in the API
// server (an hour) and the watch resumes where it stopped.
func (in *Input) waitForCommits(ctx context.Context) {
	for {
		in.seenMu.Lock()
		n := len(in.failed)
		in.seenMu.Unlock()
		if n < maxFailed || ctx.Err() != nil {
			return
		}
		in.status.set("db", fmt.Errorf("db: %d Events could not be committed: not reading more Events until the database recovers", n))
		sleep(ctx, time.Second)
	}
}

// dropQueued forgets what is queued (a leadership term ended): those Events were not
// handed to Fluent Bit, and the next leader sends them.
func (in *Input) dropQueued() {
	var keys []state.Key
	for _, it := range in.q.drain() {
		if it.key.UID != "" {
			keys = append(keys, it.key)
		}
	}
	in.release(keys)
}

// put queues it as part of the current stream.
func (in *Input) put(ctx context.Context, it item) error {
	it.gen = in.gen.Load()
	return in.q.put(ctx, it)
}

// newStream starts a stream of resourceVersions (a LIST, a leadership term): batches
// of earlier streams no longer move the checkpoint.
func (in *Input) newStream() { in.gen.Add(1) }

// committedRV is the last committed resume point, "" if none in this run.
func (in *Input) committedRV() string {
	if p := in.committed.Load(); p != nil {
		return *p
	}
	return ""
}

// pruneLoop forgets Events older than the retention time, so that the database stays
// bounded; they are not emitted again because handle skips Events that old.
func (in *Input) pruneLoop(ctx context.Context) {
	every := min(in.cfg.RetentionTime/4, 10*time.Minute)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n, err := in.store.Prune(time.Now().Add(-in.cfg.RetentionTime))
			if err != nil {
				in.status.set("db", fmt.Errorf("pruning: %w", err))
				continue
			}
			in.stats.pruned.Add(uint64(n))
		}
	}
}

// Close stops collecting, waits for the collector and closes the database. Queued
// Events that Fluent Bit did not take are not lost: they were not committed, so the
// next start resumes before them. Close is idempotent.
func (in *Input) Close() Stats {
	if in.closed.Swap(true) {
		return in.Stats()
	}
	in.cancel()
	<-in.done
	if n, recs := in.delivery.uncommitted(); n > 0 {
		// Fluent Bit gives no sign that they reached a chunk (see RingBuffer): kept
		// uncommitted, they come again at the next start rather than risk a loss.
		in.log.Infof("%d batches (%d Events) appended in the last %s are not committed: Fluent Bit gives a threaded input no sign that they reached a chunk, so the next start sends them again (threaded off avoids this)", n, recs, CommitDelay)
	}
	if in.stopMetrics != nil {
		in.stopMetrics()
	}
	if err := in.store.Close(); err != nil && !errors.Is(err, state.ErrClosed) {
		in.log.Errorf("db: closing: %v", err)
	}
	setMemLimit(memBudget(in.cfg.BufferMaxSize), -1)
	return in.Stats()
}
