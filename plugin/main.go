// Command plugin is kubetrail's shared object for Fluent Bit (built with
// -buildmode=c-shared). This package is the only cgo in the project and stays thin:
// filter.c holds the native filter's registration structure and callbacks and the Go
// exports below adapt them to package k8saudit; input.c and input.go do the same for
// the Go-proxy input and package k8sevents. Both cores log through flblog.Logger.
//
// Per-instance state lives behind a runtime/cgo.Handle stored as the filter context
// (the input's, in the handle Fluent Bit's Go proxy keeps per instance), because a Go
// library is never unloaded and a Fluent Bit hot reload must start from fresh
// instances. Process-wide state is limited to what cannot be per instance:
//   - klog.go: client-go logs through klog, one logger per process, set once in init
//     and writing through Fluent Bit's global logger (no instance name);
//   - input.c: a thread-local stack of the handles of the instances a thread runs,
//     because FLBPluginExit, FLBPluginInputPause/Resume and the callbacks of Fluent
//     Bit < 4.1 carry no instance context (see input.c).
package main

/*
#include <stdlib.h>
#include "plugin.h"
*/
import "C"

import (
	"fmt"
	"runtime/cgo"
	"runtime/debug"
	"strings"
	"unsafe"

	"github.com/kubetrail/kubetrail/conf"
	"github.com/kubetrail/kubetrail/plugin/k8saudit"
)

func main() {}

// Fluent Bit's filter return codes (include/fluent-bit/flb_filter.h).
const (
	filterModified = 1
	filterNotouch  = 2
)

// processor is what an instance needs from package k8saudit.
type processor interface {
	Process(chunk []byte) (*k8saudit.Output, bool)
	Close() k8saudit.Stats
}

type instance struct {
	f   processor
	log *flbLogger
}

// getter reads the instance's properties through flb_filter_get_property.
type getter struct{ ins unsafe.Pointer }

func (g getter) Get(key string) string {
	ck := C.CString(key)
	defer C.free(unsafe.Pointer(ck))
	v := C.kt_get_property(g.ins, ck)
	if v == nil {
		return ""
	}
	return C.GoString(v)
}

var _ conf.Getter = getter{}

//export ktFilterInit
func ktFilterInit(ins unsafe.Pointer) (rc C.int) {
	log := newLogger(ins)
	defer func() {
		if r := recover(); r != nil {
			log.Errorf("initialization failed: panic: %v\n%s", r, debug.Stack())
			rc = -1
		}
	}()
	cfg, err := conf.ParseAudit(getter{ins})
	if err != nil {
		log.Errorf("invalid configuration: %v", err)
		return -1
	}
	f, err := k8saudit.New(cfg, log)
	if err != nil {
		log.Errorf("invalid configuration: %v", err)
		return -1
	}
	h := cgo.NewHandle(&instance{f: f, log: log})
	if C.kt_set_context(ins, C.uintptr_t(h)) != 0 {
		h.Delete()
		log.Errorf("the host has no flb_filter_set_context: cannot keep the instance state")
		return -1
	}
	log.Infof("ready: %s", strings.Join(cfg.Effective(), ", "))
	return 0
}

//export ktFilterDo
func ktFilterDo(ctx C.uintptr_t, data unsafe.Pointer, size C.size_t, outBuf *unsafe.Pointer, outBytes *C.size_t) (rc C.int) {
	var log *flbLogger
	defer func() {
		if r := recover(); r != nil {
			msg := fmt.Sprintf("chunk passed through unchanged: panic: %v\n%s", r, debug.Stack())
			if log != nil {
				log.Errorf("%s", msg)
			} else {
				newLogger(nil).Errorf("%s", msg)
			}
			rc = filterNotouch
		}
	}()
	inst := cgo.Handle(ctx).Value().(*instance)
	log = inst.log
	out, modified := inst.f.Process(unsafe.Slice((*byte)(data), int(size)))
	if !modified {
		return filterNotouch
	}
	defer out.Release()
	b := out.Bytes()
	if len(b) == 0 {
		// Every record dropped. Fluent Bit takes MODIFIED with 0 bytes as "nothing
		// left" and stops the filter chain (src/flb_filter.c: flb_filter_do); a NULL
		// buffer avoids a 0-byte malloc that the processor path would not free.
		*outBuf = nil
		*outBytes = 0
		return filterModified
	}
	p := C.malloc(C.size_t(len(b)))
	if p == nil {
		log.Errorf("out of memory for a %d-byte chunk: passed through unchanged", len(b))
		return filterNotouch
	}
	copy(unsafe.Slice((*byte)(p), len(b)), b)
	*outBuf = p
	*outBytes = C.size_t(len(b))
	return filterModified
}

//export ktFilterExit
func ktFilterExit(ctx C.uintptr_t) (rc C.int) {
	defer func() {
		if r := recover(); r != nil {
			newLogger(nil).Errorf("exit: panic: %v\n%s", r, debug.Stack())
			rc = -1
		}
	}()
	h := cgo.Handle(ctx)
	inst := h.Value().(*instance)
	h.Delete()
	inst.log.Infof("stopped: %s", inst.f.Close())
	return 0
}
