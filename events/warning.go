package events

import (
	"fmt"
	"sync/atomic"
)

// MaxListenersExceededWarning reports that the application has added more
// listeners to an event than the emitter's limit (SetMaxListeners), a
// likely leak. As in Node, it is reported once while the event keeps two
// or more listeners, and again after it has dropped to one or none. The
// listeners this package adds for its own use (the "error" listeners of On
// and Once) are not counted.
//
// It goes to the handler set with the emitter's SetWarningHandler, or else
// to the one set with the package's SetWarningHandler; with neither, it is
// discarded.
type MaxListenersExceededWarning struct {
	Emitter *Emitter
	Event   string
	// Count is the number of listeners the application had added to the
	// event when the warning fired.
	Count int
}

// Error is the warning's text, as Node prints it.
func (w *MaxListenersExceededWarning) Error() string {
	return fmt.Sprintf("MaxListenersExceededWarning: possible EventEmitter memory leak detected. "+
		"%d %q listeners added. Use SetMaxListeners to increase the limit", w.Count, w.Event)
}

var warningHandler atomic.Pointer[func(*MaxListenersExceededWarning)]

// SetWarningHandler sets the function that receives the max-listener
// warnings of every emitter that has no handler of its own (Node's
// process.on('warning')), and returns the previous one. The default,
// restored by nil, discards them: a library does not write to the process's
// log uninvited. The handler runs on the goroutine that added the
// listener, after the add, with no lock held.
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
