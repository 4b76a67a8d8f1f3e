// Package repo finds, for tests, the repository's own files, what `make` builds and
// the workplace's shared test data, and decides what a test does when one is absent.
//
// A fresh clone has only Go: `go test ./...` must pass there, so a test that needs a
// built artefact (build/flb-testhost, build/kubetrail.so, the apiserver of `make
// apiserver`) skips, with one line saying what to run. `make test` builds them all
// and sets RequireEnv, so that there a missing artefact fails the test instead of
// letting it pass without running. The shared corpora (../shared/testdata beside the
// repository, audit logs written by other projects' apiservers) are not ours to
// commit: tests that read them skip when they are absent, under `make test` too.
package repo

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Module is the module path whose go.mod marks the repository root.
const Module = "github.com/kubetrail/kubetrail"

// RequireEnv, set to 1 (make test does), turns a missing artefact into a failure.
const RequireEnv = "KUBETRAIL_REQUIRE_ARTEFACTS"

var (
	rootOnce sync.Once
	root     string
	rootErr  error
)

// Root returns the repository root: the nearest directory above the working
// directory whose go.mod declares Module.
func Root() (string, error) {
	rootOnce.Do(func() {
		dir, err := os.Getwd()
		if err != nil {
			rootErr = err
			return
		}
		for {
			if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil {
				for _, l := range strings.Split(string(b), "\n") {
					if f := strings.Fields(l); len(f) == 2 && f[0] == "module" && f[1] == Module {
						root = dir
						return
					}
				}
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				rootErr = errors.New("repository root (go.mod of " + Module + ") not found above the working directory")
				return
			}
			dir = parent
		}
	})
	return root, rootErr
}

// Path returns the absolute path of a file of the repository (elem relative to the
// root), failing the test when the root cannot be found.
func Path(t testing.TB, elem ...string) string {
	t.Helper()
	r, err := Root()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(append([]string{r}, elem...)...)
}

// Required reports whether missing artefacts fail tests (RequireEnv=1) rather than
// skip them.
func Required() bool { return os.Getenv(RequireEnv) == "1" }

// Missing ends a test that cannot run without something `make` builds: a skip that
// says what to run, or a failure under RequireEnv.
func Missing(t testing.TB, what, run string) {
	t.Helper()
	if Required() {
		t.Fatalf("%s not found (run %s); %s=1 requires it", what, run, RequireEnv)
	}
	t.Skipf("%s not found: run %s (make test builds it and runs this test)", what, run)
}

// Artefact returns the absolute path of a file `make` builds (rel, relative to the
// root, such as build/flb-testhost), or ends the test through Missing.
func Artefact(t testing.TB, rel, run string) string {
	t.Helper()
	p := Path(t, rel)
	if _, err := os.Stat(p); err != nil {
		Missing(t, rel, run)
	}
	return p
}

// SharedAudit returns ../shared/testdata/audit beside the repository root: audit logs
// written by real apiservers of other projects (SOURCES.md there), never copied into
// the repository. Without it the test skips.
func SharedAudit(t testing.TB) string {
	t.Helper()
	p := filepath.Join(filepath.Dir(Path(t)), "shared", "testdata", "audit")
	if fi, err := os.Stat(p); err != nil || !fi.IsDir() {
		t.Skipf("%s is absent: the shared audit corpora are not part of the repository", p)
	}
	return p
}

// SharedAuditFiles returns the files of SharedAudit's folder that match pattern
// (such as "*.log"), none when the folder is absent: for tests that read the shared
// corpora beside the repository's own and run on the latter alone.
func SharedAuditFiles(t testing.TB, pattern string) []string {
	t.Helper()
	p := filepath.Join(filepath.Dir(Path(t)), "shared", "testdata", "audit", pattern)
	files, err := filepath.Glob(p)
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	return files
}
