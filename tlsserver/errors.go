package tlsserver

import (
	"errors"
	"fmt"
)

// Error is an error with a Node.js error code. The package's sentinel
// errors are *Error values; an *Error matches a sentinel under errors.Is when
// their codes are equal, so a wrapped or more detailed report still matches:
//
//	errors.Is(err, tlsserver.ErrHandshakeTimeout)
type Error struct {
	// Code is Node's error code, such as "ERR_TLS_HANDSHAKE_TIMEOUT".
	Code string
	// Msg describes the failure.
	Msg string
	// Err is the underlying cause, or nil.
	Err error
}

// Error returns the message, with the code and the cause.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("tlsserver: %s (%s): %v", e.Msg, e.Code, e.Err)
	}
	return fmt.Sprintf("tlsserver: %s (%s)", e.Msg, e.Code)
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is an *Error with the same code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Code returns the Node error code of the first *Error in err's chain, or
// "" when there is none.
func Code(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// The sentinel errors. Compare with errors.Is; the errors reported by the
// server wrap them with details.
var (
	// ErrMultipleCallback: an 'OCSPRequest' (or 'resumeSession') callback
	// was called a second time. The connection is destroyed.
	ErrMultipleCallback = &Error{Code: "ERR_MULTIPLE_CALLBACK", Msg: "callback was already called"}
	// ErrHandshakeTimeout: the handshake did not complete within
	// Options.HandshakeTimeout. The connection is destroyed.
	ErrHandshakeTimeout = &Error{Code: "ERR_TLS_HANDSHAKE_TIMEOUT", Msg: "TLS handshake timeout"}
	// ErrSocketClosed: the client closed the connection before the
	// handshake completed (Node reports ECONNRESET there), or the connection
	// was already closed.
	ErrSocketClosed = &Error{Code: "ERR_SOCKET_CLOSED", Msg: "socket is closed"}
	// ErrListenerPanic: a listener (or SNICallback) panicked while serving a
	// connection. The connection is destroyed; the error wraps a
	// *PanicError holding the value. Node would crash the process.
	ErrListenerPanic = &Error{Code: "ERR_TLSEMIT_LISTENER_PANIC", Msg: "listener panicked"}
	// ErrServerClosed: the server was closed: returned by Serve after
	// Close, and reported for handshakes that Close or Shutdown aborted.
	ErrServerClosed = &Error{Code: "ERR_SERVER_NOT_RUNNING", Msg: "server is closed"}
	// ErrTicketKeys: SetTicketKeys was given other than 48 bytes.
	ErrTicketKeys = &Error{Code: "ERR_INVALID_ARG_VALUE", Msg: "ticket keys must be 48 bytes"}
)

// PanicError carries the value a listener panicked with. When the value is
// an error, Unwrap returns it, so errors.Is sees through the panic.
type PanicError struct {
	// Event is the event whose listener panicked ("SNICallback" for the
	// callback).
	Event string
	// Value is what the listener panicked with.
	Value any
	// Stack is the goroutine's stack at the panic.
	Stack []byte
}

// Error describes the panic.
func (p *PanicError) Error() string { return fmt.Sprintf("%q listener panic: %v", p.Event, p.Value) }

// Unwrap returns Value when it is an error.
func (p *PanicError) Unwrap() error {
	err, _ := p.Value.(error)
	return err
}

func withCause(sentinel *Error, cause error) *Error {
	return &Error{Code: sentinel.Code, Msg: sentinel.Msg, Err: cause}
}
