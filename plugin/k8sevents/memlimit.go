package k8sevents

import (
	"fmt"
	"os"
	"runtime/debug"
	"sync"
)

// The Go runtime's soft memory limit (runtime/debug.SetMemoryLimit), which k8s_events
// sets for the library unless GOMEMLIMIT is in Fluent Bit's environment.
//
// Why: with only GOGC=100 the runtime lets the heap grow to twice what is live before
// collecting, and the first sync keeps a lot live (buffer_max_size of queued records,
// the same again while a batch is copied out, the LIST page in flight), so the heap
// peaked at ~50 MB for 100,000 Events and the runtime kept most of it (measured in
// docs/performance.md). With a limit, the runtime collects as the heap nears it and
// returns freed pages to the OS to stay under it (the runtime's GC guide: "the memory
// limit"); collecting more often is cheap here because queued records are pointer-free
// byte slices, which the collector does not scan.
//
// The limit is soft: the runtime never fails an allocation for it, and it caps the CPU
// spent collecting near the limit at about 50% (the GC CPU limiter), so a limit set too
// low slows the input down rather than breaking it.
//
// Both plugins share the library's one Go runtime, so the limit covers k8s_audit too;
// the filter allocates almost nothing per record (it keeps no more than one chunk's
// output live), so it fits in memLimitBase. Without any k8s_events instance no limit
// is set.
var memLimit struct {
	mu      sync.Mutex
	budgets int64 // the running instances' memBudget, summed
	n       int
	before  int64 // the limit before the first instance set one
}

// memLimitBase is what the runtime needs with both plugins idle: client-go, the
// runtime's own structures, a LIST page being read and the next one as far as the
// transport buffered it (under 1 MB each at 500 Events per page) and headroom.
const memLimitBase = 8 << 20

// memBudget is one instance's share: the queue full (buffer_max_size of records) and
// the batch Fluent Bit's callback takes out of it, live until copied into Fluent Bit's
// buffer.
func memBudget(bufferMaxSize int) int64 { return 2 * int64(bufferMaxSize) }

// setMemLimit adds delta to the instances' budgets (one instance starting, +1, or
// stopping, -1) and sets the limit to memLimitBase plus the budgets; the last instance
// to stop restores the limit there was before. It returns what to log, "" when nothing
// was changed because GOMEMLIMIT is set: the operator's choice wins (GOMEMLIMIT=off
// means no limit; the runtime reads the variable itself, at start).
func setMemLimit(budget int64, delta int) string {
	if os.Getenv("GOMEMLIMIT") != "" {
		if delta > 0 {
			return fmt.Sprintf("memory limit: GOMEMLIMIT=%s from the environment", os.Getenv("GOMEMLIMIT"))
		}
		return ""
	}
	memLimit.mu.Lock()
	defer memLimit.mu.Unlock()
	if memLimit.n == 0 && delta > 0 {
		memLimit.before = debug.SetMemoryLimit(-1) // -1 reads it
	}
	memLimit.n += delta
	memLimit.budgets += int64(delta) * budget
	if memLimit.n <= 0 {
		memLimit.n, memLimit.budgets = 0, 0
		debug.SetMemoryLimit(memLimit.before)
		return ""
	}
	limit := memLimitBase + memLimit.budgets
	debug.SetMemoryLimit(limit)
	if delta < 0 {
		return ""
	}
	return fmt.Sprintf("memory limit: the Go runtime's set to %d MiB for the library (8 MiB + 2 x buffer_max_size per k8s_events instance; GOMEMLIMIT in the environment overrides it, GOMEMLIMIT=off removes it)", limit>>20)
}
