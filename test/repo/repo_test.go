package repo

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestRoot(t *testing.T) {
	r, err := Root()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"go.mod", "Makefile", "test/repo/repo.go"} {
		if _, err := os.Stat(filepath.Join(r, f)); err != nil {
			t.Errorf("root %s: %v", r, err)
		}
	}
}

// endTB records how a test ended (Skipf or Fatalf) and stops its goroutine.
type endTB struct {
	testing.TB
	how, msg string
}

func (e *endTB) Helper() {}
func (e *endTB) Skipf(f string, a ...any) {
	e.how, e.msg = "skip", f
	runtime.Goexit()
}
func (e *endTB) Fatalf(f string, a ...any) {
	e.how, e.msg = "fatal", f
	runtime.Goexit()
}

// A missing artefact skips, and fails with RequireEnv=1 (make test).
func TestArtefactMissing(t *testing.T) {
	for _, tc := range []struct{ require, how string }{{"", "skip"}, {"1", "fatal"}, {"0", "skip"}} {
		t.Setenv(RequireEnv, tc.require)
		e := &endTB{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			Artefact(e, "build/no-such-artefact", "make")
			t.Error("Artefact returned for a missing file")
		}()
		<-done
		if e.how != tc.how {
			t.Errorf("%s=%q: %s, want %s", RequireEnv, tc.require, e.how, tc.how)
		}
	}
	if p := Artefact(t, "go.mod", "make"); !strings.HasSuffix(p, "/go.mod") {
		t.Errorf("Artefact(go.mod) = %q", p)
	}
}
