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
	"time"
	"unsafe"

	"github.com/fluent/fluent-bit-go/input"

	"github.com/kubetrail/kubetrail/conf"
	"github.com/kubetrail/kubetrail/plugin/k8sevents"
)

// Fluent Bit's Go-proxy return codes (fluent-bit-go: FLB_ERROR 0, FLB_OK 1).
const (
	flbError = C.int(input.FLB_ERROR)
	flbOK    = C.int(input.FLB_OK)
)

// eventsInput is what an instance needs from package k8sevents.
type eventsInput interface {
	Collect() *k8sevents.Batch
	Appended(b *k8sevents.Batch, latency time.Duration) (again bool)
	Pause()
	Resume()
	Close() k8sevents.Stats
}

// inputInstance is one k8s_events instance behind its cgo.Handle.
type inputInstance struct {
	in  eventsInput
	log *inputLogger

	mu       sync.Mutex
	inflight map[unsafe.Pointer]handedOut // handed to Fluent Bit, not cleaned up yet
	retry    *k8sevents.Batch             // taken but not handed over (malloc failed)
	again    *handedOut                   // dropped by Fluent Bit: its buffer, to hand over again
}

// handedOut is a batch in the malloc'ed buffer Fluent Bit was given.
type handedOut struct {
	b    *k8sevents.Batch
	buf  unsafe.Pointer
	size C.size_t
	at   time.Time // when the input callback returned it
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
	// Fluent Bit runs the init on the thread that will run the callbacks: the engine's
	// only with threaded off, where the append writes the chunk before the cleanup.
	delivery := k8sevents.RingBuffer
	if C.kt_input_on_engine_thread() == 1 {
		delivery = k8sevents.Synchronous
	}
	log.Infof("delivery: %s", delivery)
	in, err := k8sevents.New(cfg, log, k8sevents.WithDelivery(delivery), k8sevents.WithName(C.GoString(log.name)))
	if err != nil {
		log.Errorf("cannot start: %v", err)
		return flbError
	}
	h := cgo.NewHandle(&inputInstance{in: in, log: log, inflight: make(map[unsafe.Pointer]handedOut)})
	if C.kt_input_set_context(plugin, C.uintptr_t(h)) != 0 {
		h.Delete()
		in.Close()
		log.Errorf("the Go proxy gave no input context: cannot keep the instance state")
		return flbError
	}
	if C.kt_input_push_thread_handle(C.uintptr_t(h)) != 0 {
		h.Delete()
		in.Close()
		log.Errorf("too many k8s_events instances on one thread")
		return flbError
	}
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
	if a := inst.again; a != nil {
		// Fluent Bit dropped it (full ring buffer): the same buffer once more, before
		// anything newer (a checkpoint must not pass it).
		inst.again = nil
		a.at = time.Now()
		inst.inflight[a.buf] = *a
		*data, *size = a.buf, a.size
		return flbOK
	}
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
	// The time is taken last: the cleanup's latency is then Fluent Bit's append alone.
	inst.inflight[p] = handedOut{b: b, buf: p, size: C.size_t(n), at: time.Now()}
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

// inputCleanup runs when Fluent Bit's append of the buffer returned, whatever it
// returned (flb_plugin_proxy.c flb_proxy_input_cb_collect): package k8sevents decides
// from the delivery mode and the append's latency when the batch is committed, or
// whether Fluent Bit dropped it and the buffer is to be handed over again.
func inputCleanup(h uintptr, data unsafe.Pointer) (rc C.int) {
	if data == nil {
		return 0
	}
	keep := false
	defer func() {
		if !keep {
			C.free(data)
		}
	}()
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
	defer inst.mu.Unlock()
	o, ok := inst.inflight[data]
	delete(inst.inflight, data)
	if !ok {
		inst.log.Warnf("cleanup of a buffer this instance did not hand out: freed, nothing committed")
		return 0
	}
	if inst.in.Appended(o.b, time.Since(o.at)) {
		keep = true
		inst.again = &o
	}
	return 0
}

// FLBPluginInputPause and FLBPluginInputResume carry no context: Fluent Bit calls them
// on the instance's thread (flb_proxy_input_cb_pause, queued to a threaded input's
// thread by flb_input_pause).
//
//export FLBPluginInputPause
func FLBPluginInputPause() {
	withThreadInstance("pause", func(inst *inputInstance) { inst.in.Pause() })
}

//export FLBPluginInputResume
func FLBPluginInputResume() {
	withThreadInstance("resume", func(inst *inputInstance) { inst.in.Resume() })
}

func withThreadInstance(what string, f func(*inputInstance)) {
	inst := lookupInput(uintptr(C.kt_input_thread_handle()))
	if inst == nil {
		return
	}
	defer func() {
		if r := recover(); r != nil {
			inst.log.Errorf("%s: panic: %v\n%s", what, r, debug.Stack())
		}
	}()
	f(inst)
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
	C.kt_input_pop_thread_handle()
	cgo.Handle(h).Delete()
	inst.log.Infof("stopped: %s", inst.in.Close())
	inst.mu.Lock()
	if inst.again != nil {
		C.free(inst.again.buf) // not committed: the next start sends it again
		inst.again = nil
	}
	inst.mu.Unlock()
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
