package events_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/tlsemit/tlsemit/events"
)

// TestNodeEventEmitterErrors ports test-event-emitter-errors.js: emitting
// "error" with no listener throws the Error itself, or ERR_UNHANDLED_ERROR
// carrying a non-Error value. Go panics with the error, or *UnhandledError.
func TestNodeEventEmitterErrors(t *testing.T) {
	var e events.Emitter
	v := mustPanic(t, func() { e.Emit(events.EventError, "Accepts a string") })
	ue, ok := v.(*events.UnhandledError)
	if !ok {
		t.Fatalf("panic value %T, want *UnhandledError", v)
	}
	if ue.Context != "Accepts a string" || ue.Code() != "ERR_UNHANDLED_ERROR" ||
		!strings.Contains(ue.Error(), "Accepts a string") {
		t.Fatalf("UnhandledError = %#v (%v)", ue, ue)
	}
	obj := map[string]string{"message": "Error!"}
	v = mustPanic(t, func() { e.Emit(events.EventError, obj) })
	if ue, ok := v.(*events.UnhandledError); !ok || ue.Context.(map[string]string)["message"] != "Error!" {
		t.Fatalf("panic value %#v", v)
	}
	v = mustPanic(t, func() { e.Emit(events.EventError) })
	if ue, ok := v.(*events.UnhandledError); !ok || ue.Context != nil {
		t.Fatalf("panic value %#v", v)
	}
	boom := errors.New("boom")
	v = mustPanic(t, func() { e.Emit(events.EventError, boom) })
	if v != boom {
		t.Fatalf("panic value %v, want the error itself", v)
	}

	// With a listener, "error" is an ordinary event.
	var got any
	e.On(events.EventError, func(args ...any) { got = args[0] })
	if !e.Emit(events.EventError, boom) || got != boom {
		t.Fatalf("Emit with a listener: got %v", got)
	}
}
