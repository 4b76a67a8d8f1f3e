package main

/*
#include <stdlib.h>
#include "plugin.h"
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// flbLogger writes through Fluent Bit's logger (flb_log_print) with the prefix of the
// flb_plg_* macros, "[filter:k8s_audit:<instance>] ", at or below the instance's log
// level; to stderr when the host has no flb_log_print.
type flbLogger struct {
	ins   unsafe.Pointer
	level int
}

func newLogger(ins unsafe.Pointer) *flbLogger {
	return &flbLogger{ins: ins, level: int(C.kt_log_level(ins))}
}

func (l *flbLogger) logf(level int, format string, args ...any) {
	if level > l.level {
		return
	}
	msg := C.CString(fmt.Sprintf(format, args...))
	C.kt_log(l.ins, C.int(level), msg)
	C.free(unsafe.Pointer(msg))
}

func (l *flbLogger) Errorf(format string, args ...any) { l.logf(C.KT_LOG_ERROR, format, args...) }
func (l *flbLogger) Warnf(format string, args ...any)  { l.logf(C.KT_LOG_WARN, format, args...) }
func (l *flbLogger) Infof(format string, args ...any)  { l.logf(C.KT_LOG_INFO, format, args...) }
func (l *flbLogger) Debugf(format string, args ...any) { l.logf(C.KT_LOG_DEBUG, format, args...) }
