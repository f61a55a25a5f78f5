package events

import (
	"context"
	"slices"
	"sync"
)

// OnceResult is what Once delivers: the arguments of the event, or the
// error that ended the wait.
type OnceResult struct {
	// Args are the event's arguments (a copy); for Once(ctx, e, "error"),
	// the value emitted with "error".
	Args []any
	// Err is the "error" emitted first (an *UnhandledError when the value
	// is not an error), or ctx.Err(); nil when the event came.
	Err error
}

// Once is Node's events.once: it adds its listeners to e before it returns,
// and the channel then delivers exactly one OnceResult and is closed. The
// result is the next emission of event, or an "error" emitted first, or the
// end of ctx; by the time it is delivered, Once's listeners are removed.
// Because the listeners are in place when Once returns, an Emit that
// follows the call, from any goroutine, is never missed:
//
//	ready := events.Once(ctx, &e, "ready")
//	go start(&e) // emits "ready"
//	r := <-ready
//
// Once sees only the emissions that follow the call: an event emitted
// before it is not seen (Once is not a latch, and neither is Node's). So
// Once goes before what emits: for a
// tlsserver.Server's 'listening', which Listen emits before it returns,
// call Once before Listen, or take the return of Listen as the event.
// (Node's habit, await once(server, 'listening') after server.listen(),
// works there only because listen emits on the next tick of the event
// loop; Go has none.)
//
// While Once waits, its "error" listener counts as a handler, so an "error"
// emission does not panic (it does not count toward the max-listener
// warning). Once(ctx, e, "error") delivers the emitted value in Args, as
// Node's promise resolves with it. A ctx already done delivers ctx.Err()
// and adds nothing.
func Once(ctx context.Context, e *Emitter, event string) <-chan OnceResult {
	w := &onceWait{c: make(chan OnceResult, 1)}
	if err := ctx.Err(); err != nil {
		w.c <- OnceResult{Err: err}
		close(w.c)
		return w.c
	}
	id := e.Once(event, func(args ...any) { w.finish(OnceResult{Args: slices.Clone(args)}) })
	if !w.track(func() { e.Off(event, id) }) {
		return w.c
	}
	if event != EventError {
		errID := e.add(EventError, func(args ...any) { w.finish(OnceResult{Err: errorOf(args)}) }, addOnce|addInternal)
		if !w.track(func() { e.Off(EventError, errID) }) {
			return w.c
		}
	}
	stop := context.AfterFunc(ctx, func() { w.finish(OnceResult{Err: ctx.Err()}) })
	w.track(func() { stop() })
	return w.c
}

// onceWait is one Once call. Its listeners can fire while Once is still
// adding them (a 'newListener' listener may emit), so each registration is
// tracked as it is made: finish undoes those made so far, and a
// registration made after finish undoes itself.
type onceWait struct {
	c     chan OnceResult
	mu    sync.Mutex
	done  bool
	undos []func()
}

// track records undo for finish, or runs it now if the wait is over, and
// reports whether the wait goes on.
func (w *onceWait) track(undo func()) bool {
	w.mu.Lock()
	if !w.done {
		w.undos = append(w.undos, undo)
		w.mu.Unlock()
		return true
	}
	w.mu.Unlock()
	undo()
	return false
}

// finish delivers r unless a result was delivered already.
func (w *onceWait) finish(r OnceResult) {
	w.mu.Lock()
	if w.done {
		w.mu.Unlock()
		return
	}
	w.done = true
	undos := w.undos
	w.undos = nil
	w.mu.Unlock()
	for _, undo := range undos {
		undo()
	}
	w.c <- r
	close(w.c)
}

// errorOf turns the arguments of an "error" emission into an error.
func errorOf(args []any) error {
	var v any
	if len(args) > 0 {
		v = args[0]
	}
	if err, ok := v.(error); ok {
		return err
	}
	return &UnhandledError{Context: v}
}
