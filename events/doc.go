// Package events is Node.js's EventEmitter in Go.
//
// An [Emitter] keeps Node's contract: listeners run synchronously in the
// order they were added ([Emitter.PrependListener] puts one in front), an
// emit works on a snapshot of the listeners (one removed during the emit
// still runs in it, one added is first called by the next emit), a Once
// listener is removed before it runs, 'newListener' fires before an add
// and 'removeListener' after a removal, and emitting "error" with no
// listener panics (Node throws). The zero value is ready to use and every
// method is safe for concurrent use; listeners may call any method of the
// emitter, from any goroutine, without deadlock.
//
// Go funcs are not comparable, so a registration returns an [ID] and
// removal is by ID: where Node writes
//
//	emitter.removeListener('data', fn)
//
// Go writes
//
//	id := e.On("data", fn)
//	e.Off("data", id)
//
// A Node class that extends EventEmitter is a Go struct that embeds an
// Emitter. Go code that prefers a channel to a callback uses [On], the
// channel form of Node's events.on, which like Node's loses no emission
// unless [Buffer] bounds it; [Once] is Node's events.once.
package events
