package events_test

import (
	"errors"
	"testing"

	"github.com/tlsemit/tlsemit/events"
)

// Node quirks the emitter deliberately does not copy (the porting guide's
// "where tlsemit deliberately differs"); TestNodeEventEmitterRemoveAllListeners
// has the removeAllListeners walk.

// TestErrorMonitorDecidesOnCurrentListeners: Node's emit('error') looks for
// 'error' listeners in the table it read before the errorMonitor listeners
// ran, and a monitor that empties the emitter makes Node replace that
// table. Go decides on the listeners there are after the monitors.
func TestErrorMonitorDecidesOnCurrentListeners(t *testing.T) {
	boom := errors.New("boom")
	t.Run("a once monitor, the last listener, adds a handler", func(t *testing.T) {
		var e events.Emitter
		handled := false
		e.Once(events.ErrorMonitor, func(...any) {
			e.On(events.EventError, func(...any) { handled = true })
		})
		if !e.Emit(events.EventError, boom) || !handled { // Node throws
			t.Fatal("the handler the monitor added did not handle the error")
		}
	})
	t.Run("a monitor removes every listener", func(t *testing.T) {
		var e events.Emitter
		called := false
		e.On(events.EventError, func(...any) { called = true })
		e.On(events.ErrorMonitor, func(...any) { e.RemoveAllListeners() })
		if v := mustPanic(t, func() { e.Emit(events.EventError, boom) }); v != boom || called {
			t.Fatalf("panic %v, removed handler called %v", v, called) // Node calls the removed handler
		}
	})
}

// TestRemoveListenerGetsOnceListener: Node hands 'removeListener' the once
// wrapper when the event had other listeners; Go hands the listener and
// the ID its registration returned.
func TestRemoveListenerGetsOnceListener(t *testing.T) {
	var e events.Emitter
	e.On("x", func(...any) {})
	var got []events.ID
	e.On(events.EventRemoveListener, func(args ...any) {
		if _, ok := args[1].(events.Listener); !ok {
			t.Errorf("'removeListener' got %T, want the events.Listener", args[1])
		}
		got = append(got, args[2].(events.ID))
	})
	id := e.Once("x", func(...any) {})
	e.Emit("x")
	if len(got) != 1 || got[0] != id {
		t.Fatalf("'removeListener' saw %v, want the once listener's ID %v", got, id)
	}
}
