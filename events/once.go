package events

import "context"

// Once waits for e to emit event and returns its arguments (Node's
// events.once). If e emits "error" first, Once returns that error (an
// *UnhandledError when the value is not an error); if ctx ends first, it
// returns ctx.Err(). Its listeners are removed before it returns. While
// Once waits, it counts as an "error" listener, so an "error" emission does
// not panic.
func Once(ctx context.Context, e *Emitter, event string) ([]any, error) {
	type result struct {
		args []any
		err  error
	}
	if err := ctx.Err(); err != nil {
		// As Node rejects at once for an aborted signal, adding nothing.
		return nil, err
	}
	done := make(chan result, 1)
	var errID ID
	id := e.Once(event, func(args ...any) {
		select {
		case done <- result{args: args}:
		default:
		}
	})
	if event != EventError {
		errID = e.Once(EventError, func(args ...any) {
			select {
			case done <- result{err: errorOf(args)}:
			default:
			}
		})
	}
	defer func() {
		e.Off(event, id)
		if errID != 0 {
			e.Off(EventError, errID)
		}
	}()
	select {
	case r := <-done:
		return r.args, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
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
