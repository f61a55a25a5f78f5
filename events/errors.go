package events

import (
	"errors"
	"fmt"
	"log"
	"sync/atomic"
)

// UnhandledError is what Emit panics with when "error" is emitted with a
// value that is not an error and no listener handles it. Node throws
// ERR_UNHANDLED_ERROR with the value as its context.
type UnhandledError struct {
	// Context is the value that was emitted, nil when Emit had no argument.
	Context any
}

// Code returns Node's error code, "ERR_UNHANDLED_ERROR".
func (e *UnhandledError) Code() string { return "ERR_UNHANDLED_ERROR" }

// Error describes the unhandled value.
func (e *UnhandledError) Error() string {
	if e.Context == nil {
		return "events: unhandled error (ERR_UNHANDLED_ERROR)"
	}
	return fmt.Sprintf("events: unhandled error (%v) (ERR_UNHANDLED_ERROR)", e.Context)
}

// ErrOutOfRange is returned by SetMaxListeners for a negative count. It
// carries Node's code ERR_OUT_OF_RANGE in its text.
var ErrOutOfRange = errors.New("events: max listeners must be a non-negative number (ERR_OUT_OF_RANGE)")

// MaxListenersExceededWarning reports that an event has more listeners than
// the emitter's limit, a likely leak. It is reported once per event name
// while the event keeps at least one listener.
type MaxListenersExceededWarning struct {
	Emitter *Emitter
	Event   string
	// Count is the number of listeners the event had when the warning fired.
	Count int
}

// Error is the warning's text, as Node prints it.
func (w *MaxListenersExceededWarning) Error() string {
	return fmt.Sprintf("MaxListenersExceededWarning: possible EventEmitter memory leak detected. "+
		"%d %q listeners added. Use SetMaxListeners to increase the limit", w.Count, w.Event)
}

var warningHandler atomic.Pointer[func(*MaxListenersExceededWarning)]

// SetWarningHandler replaces the function that receives max-listener
// warnings (Node's process 'warning' event) and returns the previous one.
// A nil fn restores the default, which writes the warning to the standard
// logger. The handler runs on the goroutine that added the listener, after
// the add, with no lock held.
func SetWarningHandler(fn func(*MaxListenersExceededWarning)) (previous func(*MaxListenersExceededWarning)) {
	var old *func(*MaxListenersExceededWarning)
	if fn == nil {
		old = warningHandler.Swap(nil)
	} else {
		old = warningHandler.Swap(&fn)
	}
	if old == nil {
		return nil
	}
	return *old
}

func warn(w *MaxListenersExceededWarning) {
	if h := warningHandler.Load(); h != nil {
		(*h)(w)
		return
	}
	log.Print(w.Error())
}
