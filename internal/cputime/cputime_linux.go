// Package cputime reads the calling thread's CPU time, for benchmarks that
// time one goroutine's work (locked to its thread) to the nanosecond.
package cputime

import (
	"syscall"
	"time"
	"unsafe"
)

// Thread returns the calling thread's CPU time (CLOCK_THREAD_CPUTIME_ID).
func Thread() time.Duration {
	var ts syscall.Timespec
	syscall.Syscall(syscall.SYS_CLOCK_GETTIME, 3 /* CLOCK_THREAD_CPUTIME_ID */, uintptr(unsafe.Pointer(&ts)), 0)
	return time.Duration(ts.Nano())
}
