package k8sevents

import (
	"runtime/debug"
	"strings"
	"testing"
)

// TestMemLimit: each instance raises the Go runtime's memory limit by its budget, the
// last to stop restores the limit there was, and GOMEMLIMIT in the environment leaves
// the limit alone.
func TestMemLimit(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "")
	before := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(before)
	limit := func() int64 { return debug.SetMemoryLimit(-1) }

	if msg := setMemLimit(memBudget(8<<20), 1); !strings.Contains(msg, "24 MiB") {
		t.Errorf("first instance (8m): %q, want 24 MiB", msg)
	}
	if got := limit(); got != 24<<20 {
		t.Errorf("one instance: limit %d, want 24 MiB", got)
	}
	setMemLimit(memBudget(4<<20), 1)
	if got := limit(); got != 32<<20 {
		t.Errorf("two instances: limit %d, want 32 MiB", got)
	}
	setMemLimit(memBudget(8<<20), -1)
	if got := limit(); got != 16<<20 {
		t.Errorf("one stopped: limit %d, want 16 MiB", got)
	}
	setMemLimit(memBudget(4<<20), -1)
	if got := limit(); got != before {
		t.Errorf("all stopped: limit %d, want the one before, %d", got, before)
	}

	t.Setenv("GOMEMLIMIT", "50MiB")
	if msg := setMemLimit(memBudget(8<<20), 1); !strings.Contains(msg, "GOMEMLIMIT=50MiB") {
		t.Errorf("with GOMEMLIMIT: %q", msg)
	}
	if got := limit(); got != before {
		t.Errorf("with GOMEMLIMIT: limit %d, want unchanged %d", got, before)
	}
	setMemLimit(memBudget(8<<20), -1)
	if got := limit(); got != before {
		t.Errorf("with GOMEMLIMIT, stopped: limit %d, want unchanged %d", got, before)
	}
}
