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
	"sync"
	"unsafe"

	"github.com/fluent/fluent-bit-go/input"

	"github.com/kubetrail/kubetrail/conf"
	"github.com/kubetrail/kubetrail/k8sevents"
)

// Fluent Bit's Go-proxy return codes (fluent-bit-go: FLB_ERROR 0, FLB_OK 1).
const (
	flbError = C.int(input.FLB_ERROR)
	flbOK    = C.int(input.FLB_OK)
)

// eventsInput is what an instance needs from package k8sevents.
type eventsInput interface {
	Collect() *k8sevents.Batch
	Commit(*k8sevents.Batch)
	Close() k8sevents.Stats
}

// inputInstance is one k8s_events instance behind its cgo.Handle.
type inputInstance struct {
	in  eventsInput
	log *inputLogger

	mu       sync.Mutex
	inflight map[unsafe.Pointer]*k8sevents.Batch // handed to Fluent Bit, not cleaned up yet
	retry    *k8sevents.Batch                    // taken but not handed over (malloc failed)
}

// inputGetter reads the instance's properties through the proxy's input_get_property.
type inputGetter struct{ plugin unsafe.Pointer }

func (g inputGetter) Get(key string) string { return input.FLBPluginConfigKey(g.plugin, key) }

var _ conf.Getter = inputGetter{}

//export FLBPluginRegister
func FLBPluginRegister(def unsafe.Pointer) C.int {
	return C.int(input.FLBPluginRegister(def, "k8s_events", "Kubernetes Events, each version once (kubetrail)"))
}

//export FLBPluginUnregister
func FLBPluginUnregister(def unsafe.Pointer) {
	input.FLBPluginUnregister(def)
}

//export FLBPluginInit
func FLBPluginInit(plugin unsafe.Pointer) (rc C.int) {
	log := newInputLogger(plugin)
	defer func() {
		if r := recover(); r != nil {
			log.Errorf("initialization failed: panic: %v\n%s", r, debug.Stack())
			rc = flbError
		}
	}()
	cfg, err := conf.ParseEvents(inputGetter{plugin})
	if err != nil {
		log.Errorf("invalid configuration: %v", err)
		return flbError
	}
	log.Infof("starting: %s", strings.Join(cfg.Effective(), ", "))
	in, err := k8sevents.New(cfg, log)
	if err != nil {
		log.Errorf("cannot start: %v", err)
		return flbError
	}
	h := cgo.NewHandle(&inputInstance{in: in, log: log, inflight: make(map[unsafe.Pointer]*k8sevents.Batch)})
	if C.kt_input_set_context(plugin, C.uintptr_t(h)) != 0 {
		h.Delete()
		in.Close()
		log.Errorf("the Go proxy gave no input context: cannot keep the instance state")
		return flbError
	}
	C.kt_input_set_thread_handle(C.uintptr_t(h))
	return flbOK
}

func lookupInput(h uintptr) *inputInstance {
	if h == 0 {
		return nil
	}
	inst, _ := cgo.Handle(h).Value().(*inputInstance)
	return inst
}

//export FLBPluginInputCallbackCtx
func FLBPluginInputCallbackCtx(ctx unsafe.Pointer, data *unsafe.Pointer, size *C.size_t) C.int {
	return inputCollect(uintptr(ctx), data, size)
}

// FLBPluginInputCallback is the callback of Fluent Bit < 4.1, which passes no context.
//
//export FLBPluginInputCallback
func FLBPluginInputCallback(data *unsafe.Pointer, size *C.size_t) C.int {
	return inputCollect(uintptr(C.kt_input_thread_handle()), data, size)
}

// inputCollect hands Fluent Bit the queued Events in a malloc'ed buffer (size 0: none
// now). It never blocks: Fluent Bit calls it every second on the input's thread.
func inputCollect(h uintptr, data *unsafe.Pointer, size *C.size_t) (rc C.int) {
	*data, *size = nil, 0
	inst := lookupInput(h)
	if inst == nil {
		return flbOK
	}
	defer func() {
		if r := recover(); r != nil {
			inst.log.Errorf("collect: panic: %v\n%s", r, debug.Stack())
			*data, *size = nil, 0
			rc = flbOK
		}
	}()
	inst.mu.Lock()
	defer inst.mu.Unlock()
	b := inst.retry
	inst.retry = nil
	if b == nil {
		if b = inst.in.Collect(); b == nil {
			return flbOK
		}
	}
	n := b.Size()
	p := C.malloc(C.size_t(n))
	if p == nil {
		inst.log.Errorf("out of memory for %d bytes of Events: retrying next time", n)
		inst.retry = b
		return flbOK
	}
	b.MoveTo(unsafe.Slice((*byte)(p), n))
	inst.inflight[p] = b
	*data, *size = p, C.size_t(n)
	return flbOK
}

//export FLBPluginInputCleanupCallbackCtx
func FLBPluginInputCleanupCallbackCtx(ctx, data unsafe.Pointer) C.int {
	return inputCleanup(uintptr(ctx), data)
}

//export FLBPluginInputCleanupCallback
func FLBPluginInputCleanupCallback(data unsafe.Pointer) C.int {
	return inputCleanup(uintptr(C.kt_input_thread_handle()), data)
}

// inputCleanup runs after Fluent Bit appended the buffer to its chunk: the Events are
// Fluent Bit's now, so the batch is committed (marked emitted, checkpoint advanced).
func inputCleanup(h uintptr, data unsafe.Pointer) (rc C.int) {
	if data == nil {
		return 0
	}
	defer C.free(data)
	inst := lookupInput(h)
	if inst == nil {
		return 0
	}
	defer func() {
		if r := recover(); r != nil {
			inst.log.Errorf("cleanup: panic: %v\n%s", r, debug.Stack())
			rc = 0
		}
	}()
	inst.mu.Lock()
	b := inst.inflight[data]
	delete(inst.inflight, data)
	inst.mu.Unlock()
	if b == nil {
		inst.log.Warnf("cleanup of a buffer this instance did not hand out: freed, nothing committed")
		return 0
	}
	inst.in.Commit(b)
	return 0
}

// FLBPluginExit carries no context: Fluent Bit calls it on the input's own thread,
// whose handle kt_input_thread_handle kept.
//
//export FLBPluginExit
func FLBPluginExit() (rc C.int) {
	h := uintptr(C.kt_input_thread_handle())
	inst := lookupInput(h)
	if inst == nil {
		return flbOK
	}
	defer func() {
		if r := recover(); r != nil {
			inst.log.Errorf("exit: panic: %v\n%s", r, debug.Stack())
			rc = flbError
		}
	}()
	C.kt_input_set_thread_handle(0)
	cgo.Handle(h).Delete()
	inst.log.Infof("stopped: %s", inst.in.Close())
	return flbOK
}

// inputLogger writes through Fluent Bit's logger (the proxy's api->log_print) with the
// flb_plg_* prefix "[input:k8s_events:<instance>] ", at the instance's log level.
type inputLogger struct {
	api, ins unsafe.Pointer
	name     *C.char // owned by Fluent Bit's instance, which outlives the logger
}

func newInputLogger(plugin unsafe.Pointer) *inputLogger {
	ins := C.kt_input_ins(plugin)
	return &inputLogger{api: C.kt_input_api(plugin), ins: ins, name: C.kt_input_name(ins)}
}

func (l *inputLogger) logf(level C.int, format string, args ...any) {
	if C.kt_input_log_enabled(l.api, l.ins, level) == 0 {
		return
	}
	msg := C.CString(fmt.Sprintf(format, args...))
	C.kt_input_log(l.api, l.name, level, msg)
	C.free(unsafe.Pointer(msg))
}

func (l *inputLogger) Errorf(format string, args ...any) { l.logf(C.KT_LOG_ERROR, format, args...) }
func (l *inputLogger) Warnf(format string, args ...any)  { l.logf(C.KT_LOG_WARN, format, args...) }
func (l *inputLogger) Infof(format string, args ...any)  { l.logf(C.KT_LOG_INFO, format, args...) }
func (l *inputLogger) Debugf(format string, args ...any) { l.logf(C.KT_LOG_DEBUG, format, args...) }
