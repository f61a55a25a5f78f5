package events_test

import (
	"testing"

	"github.com/tlsemit/tlsemit/events"
)

// TestNodeEventEmitterRemoveListeners ports
// test-event-emitter-remove-listeners.js. Go removes by ID, and
// 'removeListener' listeners receive (event, fn, id): the test checks the ID
// where Node checks the function.
func TestNodeEventEmitterRemoveListeners(t *testing.T) {
	nop := func(...any) {}
	t.Run("removeListener event", func(t *testing.T) {
		var e events.Emitter
		id := e.On("hello", nop)
		calls := 0
		e.On(events.EventRemoveListener, func(args ...any) {
			calls++
			if args[0] != "hello" || args[2] != id {
				t.Errorf("removeListener args = %v, want hello and %v", args, id)
			}
			if _, ok := args[1].(events.Listener); !ok {
				t.Errorf("second arg is %T, want events.Listener", args[1])
			}
		})
		if !e.Off("hello", id) {
			t.Fatal("Off = false")
		}
		if calls != 1 || e.ListenerCount("hello") != 0 {
			t.Fatalf("calls = %d, count = %d", calls, e.ListenerCount("hello"))
		}
	})
	t.Run("unknown id", func(t *testing.T) {
		var e events.Emitter
		e.On("hello", nop)
		e.On(events.EventRemoveListener, func(...any) { t.Error("removeListener emitted") })
		if e.Off("hello", 12345) {
			t.Fatal("Off of an unknown ID = true")
		}
		if e.ListenerCount("hello") != 1 {
			t.Fatal("listener removed")
		}
	})
	t.Run("state seen by removeListener", func(t *testing.T) {
		var e events.Emitter
		id1 := e.On("hello", nop)
		id2 := e.On("hello", nop)
		calls := 0
		e.Once(events.EventRemoveListener, func(args ...any) {
			calls++
			if args[2] != id1 || e.ListenerCount("hello") != 1 {
				t.Errorf("first removal: args %v, count %d", args, e.ListenerCount("hello"))
			}
			e.Once(events.EventRemoveListener, func(args ...any) {
				calls++
				if args[2] != id2 || e.ListenerCount("hello") != 0 {
					t.Errorf("second removal: args %v, count %d", args, e.ListenerCount("hello"))
				}
			})
			e.Off("hello", id2)
		})
		e.Off("hello", id1)
		if calls != 2 || e.ListenerCount("hello") != 0 {
			t.Fatalf("calls = %d, count = %d", calls, e.ListenerCount("hello"))
		}
	})
	t.Run("remove and emit from removeListener", func(t *testing.T) {
		var e events.Emitter
		var id1, id2 events.ID
		calls := 0
		e.On(events.EventRemoveListener, func(args ...any) {
			calls++
			if args[2] != id1 {
				return
			}
			e.Off("quux", id2)
			e.Emit("quux")
		})
		id1 = e.On("quux", func(...any) { t.Error("remove1 called") })
		id2 = e.On("quux", func(...any) { t.Error("remove2 called") })
		e.Off("quux", id1)
		if calls != 2 {
			t.Fatalf("removeListener calls = %d, want 2", calls)
		}
	})
	t.Run("removed during emit still runs", func(t *testing.T) {
		var e events.Emitter
		var id4 events.ID
		n3, n4 := 0, 0
		e.On("hello", func(...any) { n3++; e.Off("hello", id4) })
		id4 = e.On("hello", func(...any) { n4++ })
		e.Emit("hello")
		e.Emit("hello")
		if n3 != 2 || n4 != 1 {
			t.Fatalf("listener3 ran %d times, listener4 %d; want 2 and 1", n3, n4)
		}
	})
	t.Run("once removal emits removeListener", func(t *testing.T) {
		var e events.Emitter
		id := e.Once("hello", nop)
		calls := 0
		e.On(events.EventRemoveListener, func(args ...any) {
			calls++
			if args[0] != "hello" || args[2] != id {
				t.Errorf("args = %v", args)
			}
		})
		e.Emit("hello")
		if calls != 1 {
			t.Fatalf("calls = %d", calls)
		}
	})
	t.Run("nil listener", func(t *testing.T) {
		// Node throws ERR_INVALID_ARG_TYPE for a non-function; Go panics on add.
		var e events.Emitter
		mustPanic(t, func() { e.On("foo", nil) })
	})
}
