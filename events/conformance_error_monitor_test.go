package events_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/tlsemit/tlsemit/events"
)

// TestNodeEventEmitterErrorMonitor ports test-event-emitter-error-monitor.js.
// Go's ErrorMonitor is an event name where Node uses a Symbol.
func TestNodeEventEmitterErrorMonitor(t *testing.T) {
	var e events.Emitter
	theErr := errors.New("MyError")
	var order []string
	e.On(events.ErrorMonitor, func(args ...any) {
		order = append(order, "monitor")
		if args[0] != theErr {
			t.Errorf("monitor got %v", args[0])
		}
	})
	// Monitors run first, do not handle the error: Emit still panics.
	if v := mustPanic(t, func() { e.Emit(events.EventError, theErr) }); v != theErr {
		t.Fatalf("panic %v", v)
	}
	if !slices.Equal(order, []string{"monitor"}) {
		t.Fatalf("order = %v", order)
	}

	order = nil
	e.On(events.EventError, func(args ...any) { order = append(order, "error") })
	if !e.Emit(events.EventError, theErr) {
		t.Fatal("Emit = false")
	}
	if !slices.Equal(order, []string{"monitor", "error"}) {
		t.Fatalf("order = %v, want monitor then error", order)
	}
	// A non-error value still reaches the monitor before the panic.
	var f events.Emitter
	seen := 0
	f.On(events.ErrorMonitor, func(...any) { seen++ })
	if _, ok := mustPanic(t, func() { f.Emit(events.EventError, 42) }).(*events.UnhandledError); !ok || seen != 1 {
		t.Fatalf("seen = %d", seen)
	}
}
