package events

import (
	"fmt"
	"sync/atomic"
)

// MaxListenersExceededWarning reports that the application has added more
// listeners to an event than the emitter's limit (SetMaxListeners), a
// likely leak. As in Node, it is reported once while the event keeps two
// or more listeners, and again after it has dropped to one or none. A
// subscription to the event by name (On) counts, as Node's iterator does;
// the listeners this package adds for its own use (the "error" listeners
// of On and Once) do not.
//
// It goes to the handler set with the emitter's SetWarningHandler, or else
// to the one set with the package's SetWarningHandler; with neither, it is
// discarded. The handler runs on the goroutine that added the listener,
// before the add returns, with the listener in place and no lock held, so
// it may add, remove and emit. Node reports the warning later: its
// 'warning' event comes on the next tick, after the code that added the
// listener has run.
type MaxListenersExceededWarning struct {
	Emitter *Emitter
	Event   string
	// Count is the number of listeners the application had added to the
	// event when the warning fired.
	Count int

	max int // the limit then
}

// Error is the warning's text as Node prints it (String(warning) in Node,
// and the line Node writes to stderr after "(node:PID) "), so that a log
// alert written for a Node server finds it:
//
//	MaxListenersExceededWarning: Possible EventEmitter memory leak detected. 11 job listeners added to [EventEmitter]. MaxListeners is 10. Use emitter.setMaxListeners() to increase limit
//
// Node names the emitter's class in the brackets; a Go Emitter cannot see
// the struct it is embedded in, so the brackets hold EventEmitter, Node's
// name for a plain emitter. ErrorMonitor is named as Node names its
// Symbol, Symbol(events.errorMonitor).
func (w *MaxListenersExceededWarning) Error() string {
	name := w.Event
	if name == ErrorMonitor {
		name = "Symbol(events.errorMonitor)"
	}
	return fmt.Sprintf("MaxListenersExceededWarning: Possible EventEmitter memory leak detected. "+
		"%d %s listeners added to [EventEmitter]. MaxListeners is %d. Use emitter.setMaxListeners() to increase limit",
		w.Count, name, w.max)
}

var warningHandler atomic.Pointer[func(*MaxListenersExceededWarning)]

// SetWarningHandler sets the function that receives the max-listener
// warnings of every emitter that has no handler of its own (Node's
// process.on('warning')), and returns the previous one. The default,
// restored by nil, discards them: a library does not write to the process's
// log uninvited. The handler runs on the goroutine that added the
// listener, before the add returns (see MaxListenersExceededWarning).
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

// SetWarningHandler sets the function that receives e's max-listener
// warnings in place of the process-wide one (the package's
// SetWarningHandler), and returns the previous one; nil hands e's warnings
// back to the process-wide handler. To silence one emitter, set a handler
// that does nothing, or SetMaxListeners(0).
func (e *Emitter) SetWarningHandler(fn func(*MaxListenersExceededWarning)) (previous func(*MaxListenersExceededWarning)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	previous, e.warn = e.warn, fn
	return previous
}

// warn hands w to the emitter's handler h, or else to the process-wide one.
func warn(h func(*MaxListenersExceededWarning), w *MaxListenersExceededWarning) {
	if h != nil {
		h(w)
		return
	}
	if p := warningHandler.Load(); p != nil {
		(*p)(w)
	}
}
