package main

import (
	"os"
	"runtime/cgo"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"github.com/kubetrail/kubetrail/plugin/k8saudit"
)

// panicky is a processor whose Process panics, as a bug in package k8saudit outside
// its per-record recover would.
type panicky struct{}

func (panicky) Process([]byte) (*k8saudit.Output, bool) { panic("test panic in Process") }
func (panicky) Close() k8saudit.Stats                   { return k8saudit.Stats{} }

// stderrOf runs fn with file descriptor 2 sent to a file (the logger writes there with
// C's fprintf when the host has no flb_log_print) and returns what was written.
func stderrOf(t *testing.T, fn func()) string {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	saved, err := syscall.Dup(2)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Dup3(int(f.Fd()), 2, 0); err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() {
			if err := syscall.Dup3(saved, 2, 0); err != nil {
				t.Fatal(err)
			}
			syscall.Close(saved)
		}()
		fn()
	}()
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestFilterDoRecovers reaches the recover of the cb_filter adapter: a panic below it
// (in Process, or on a context that is no instance) must not cross into Fluent Bit. The
// chunk is kept (NOTOUCH, the output arguments untouched) and the panic is logged.
//
// The cgo types of ktFilterDo's parameters are named as cgo generates them
// (_Ctype_*): a test file cannot import "C".
func TestFilterDoRecovers(t *testing.T) {
	chunk := []byte{0x92, 0x92, 0x01, 0x80, 0x80} // [[1, {}], {}]
	for _, c := range []struct {
		name string
		ctx  func() (uintptr, func())
		want string
	}{
		{"panic in Process", func() (uintptr, func()) {
			h := cgo.NewHandle(&instance{f: panicky{}, log: newLogger(nil)})
			return uintptr(h), h.Delete
		}, "chunk passed through unchanged: panic: test panic in Process"},
		{"not an instance", func() (uintptr, func()) {
			h := cgo.NewHandle("not an instance")
			return uintptr(h), h.Delete
		}, "chunk passed through unchanged: panic: interface conversion"},
	} {
		ctx, done := c.ctx()
		sentinel := unsafe.Pointer(&chunk[1])
		out, n := sentinel, _Ctype_size_t(7)
		var rc _Ctype_int
		log := stderrOf(t, func() {
			rc = ktFilterDo(_Ctype_uintptr_t(ctx), unsafe.Pointer(&chunk[0]), _Ctype_size_t(len(chunk)), &out, &n)
		})
		done()
		if rc != filterNotouch || out != sentinel || n != 7 {
			t.Errorf("%s: rc %d, out changed %v, size %d; want NOTOUCH (%d) and the output untouched", c.name, rc, out != sentinel, n, filterNotouch)
		}
		if !strings.Contains(log, c.want) {
			t.Errorf("%s: log %q, want %q", c.name, log, c.want)
		}
	}
}
