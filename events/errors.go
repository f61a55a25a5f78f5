package events

import (
	"errors"
	"fmt"
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
