// Package fluentbit finds a real Fluent Bit for the tests that also run the library
// inside one. No package registry ships Fluent Bit here, so those tests skip, saying
// why, when there is none.
package fluentbit

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// Env names the variable that points at a fluent-bit executable.
const Env = "FLUENT_BIT"

// Find returns $FLUENT_BIT, else fluent-bit on PATH, else "". It fails only when
// FLUENT_BIT names a file that does not exist.
func Find() (string, error) {
	if p := os.Getenv(Env); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", Env, p, err)
		}
		return p, nil
	}
	p, _ := exec.LookPath("fluent-bit")
	return p, nil
}

// Require returns what Find found; without a Fluent Bit it skips t, saying what the
// test would have run (why).
func Require(t testing.TB, why string) string {
	t.Helper()
	p, err := Find()
	if err != nil {
		t.Fatal(err)
	}
	if p == "" {
		t.Skipf("no Fluent Bit: set %s or put fluent-bit on PATH to %s", Env, why)
	}
	return p
}
