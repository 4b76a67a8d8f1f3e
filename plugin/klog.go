package main

/*
#include <stdlib.h>
#include "plugin.h"
*/
import "C"

import (
	"fmt"
	"strings"
	"unsafe"

	"github.com/go-logr/logr"
	"k8s.io/klog/v2"
)

// client-go logs through klog, a process-wide logger that would write its own format
// to stderr. Its lines go to Fluent Bit's logger instead: errors as errors, V(0) info
// as debug (client-go's info lines, e.g. leader election's, duplicate ours), the rest
// dropped.
func init() {
	klog.SetLogger(logr.New(klogSink{}))
}

type klogSink struct{ values []any }

func (klogSink) Init(logr.RuntimeInfo)  {}
func (klogSink) Enabled(level int) bool { return level == 0 }

func (s klogSink) Info(level int, msg string, kv ...any) {
	if level == 0 {
		globalLog(C.KT_LOG_DEBUG, "client-go: "+format(msg, append(s.values, kv...)))
	}
}

func (s klogSink) Error(err error, msg string, kv ...any) {
	globalLog(C.KT_LOG_ERROR, fmt.Sprintf("client-go: %s: %v", format(msg, append(s.values, kv...)), err))
}

func (s klogSink) WithValues(kv ...any) logr.LogSink {
	return klogSink{values: append(append([]any{}, s.values...), kv...)}
}

func (s klogSink) WithName(string) logr.LogSink { return s }

func format(msg string, kv []any) string {
	var b strings.Builder
	b.WriteString(msg)
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(&b, " %v=%v", kv[i], kv[i+1])
	}
	return b.String()
}

func globalLog(level C.int, msg string) {
	c := C.CString(msg)
	C.kt_global_log(level, c)
	C.free(unsafe.Pointer(c))
}
