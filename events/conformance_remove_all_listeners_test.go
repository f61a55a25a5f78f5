package events_test

import (
	"slices"
	"testing"

	"github.com/tlsemit/tlsemit/events"
)

// TestNodeEventEmitterRemoveAllListeners ports
// test-event-emitter-remove-all-listeners.js.
func TestNodeEventEmitterRemoveAllListeners(t *testing.T) {
	nop := func(...any) {}
	t.Run("named", func(t *testing.T) {
		var e events.Emitter
		e.On("foo", nop)
		e.On("bar", nop)
		e.On("baz", nop)
		e.On("baz", nop)
		fooListeners := e.Listeners("foo")
		var removed []string
		e.On(events.EventRemoveListener, func(args ...any) { removed = append(removed, args[0].(string)) })
		e.RemoveAllListeners("bar", "baz")
		if e.ListenerCount("foo") != 1 || e.ListenerCount("bar") != 0 || e.ListenerCount("baz") != 0 {
			t.Fatalf("counts foo %d bar %d baz %d", e.ListenerCount("foo"), e.ListenerCount("bar"), e.ListenerCount("baz"))
		}
		if want := []string{"bar", "baz", "baz"}; !slices.Equal(removed, want) {
			t.Fatalf("removeListener saw %v, want %v", removed, want)
		}
		// The slice Listeners returned is a copy, untouched.
		if len(fooListeners) != 1 {
			t.Fatal("Listeners copy changed")
		}
	})
	t.Run("all, removeListener last", func(t *testing.T) {
		var e events.Emitter
		e.On("foo", nop)
		e.On("bar", nop)
		var removed []string
		e.On(events.EventRemoveListener, func(args ...any) { removed = append(removed, args[0].(string)) })
		e.RemoveAllListeners()
		if want := []string{"foo", "bar"}; !slices.Equal(removed, want) {
			t.Fatalf("removeListener saw %v, want %v", removed, want)
		}
		if n := e.EventNames(); len(n) != 0 {
			t.Fatalf("EventNames after RemoveAllListeners = %v", n)
		}
	})
	t.Run("newest first", func(t *testing.T) {
		var e events.Emitter
		a := e.On("x", nop)
		b := e.On("x", nop)
		c := e.On("x", nop)
		var order []events.ID
		e.On(events.EventRemoveListener, func(args ...any) { order = append(order, args[2].(events.ID)) })
		e.RemoveAllListeners("x")
		if want := []events.ID{c, b, a}; !slices.Equal(order, want) {
			t.Fatalf("removal order = %v, want %v", order, want)
		}
	})
	t.Run("empty emitter", func(t *testing.T) {
		var e events.Emitter
		e.RemoveAllListeners()
		e.RemoveAllListeners("nothing")
		if e.EventNames() != nil {
			t.Fatal("names on an empty emitter")
		}
	})
	t.Run("listener added by removeListener survives RemoveAllListeners(type)", func(t *testing.T) {
		var e events.Emitter
		e.On("x", nop)
		added := false
		e.On(events.EventRemoveListener, func(...any) {
			if !added {
				added = true
				e.On("x", nop)
			}
		})
		e.RemoveAllListeners("x") // must terminate, as Node's does
		if e.ListenerCount("x") != 1 {
			t.Fatalf("count = %d, want the one added during the removal", e.ListenerCount("x"))
		}
	})
	// Where tlsemit deliberately differs from Node (see the porting guide):
	// Node walks its live array by index, so a listener prepended by a
	// 'removeListener' listener shifts the walk (Node removes it and leaves
	// an older one), and one removed makes a hole (Node throws
	// ERR_INVALID_ARG_TYPE). Go removes the listeners the event had when
	// the call began, and keeps what was added meanwhile.
	t.Run("prepended by removeListener stays, every old one goes", func(t *testing.T) {
		var e events.Emitter
		e.On("a", nop)
		e.On("a", nop)
		e.On("a", nop)
		var p events.ID
		e.On(events.EventRemoveListener, func(...any) {
			if p == 0 {
				p = e.PrependListener("a", nop)
			}
		})
		e.RemoveAllListeners("a") // Node leaves the second listener and removes the prepended one
		if e.ListenerCount("a") != 1 || !e.Off("a", p) {
			t.Fatalf("left %d listeners, want only the prepended one", e.ListenerCount("a"))
		}
	})
	t.Run("removed by removeListener: no hole", func(t *testing.T) {
		var e events.Emitter
		first := e.On("a", nop)
		e.On("a", nop)
		e.On("a", nop)
		e.On(events.EventRemoveListener, func(...any) { e.Off("a", first) })
		var removed []events.ID
		e.On(events.EventRemoveListener, func(args ...any) { removed = append(removed, args[2].(events.ID)) })
		e.RemoveAllListeners("a") // Node throws ERR_INVALID_ARG_TYPE at the hole
		if e.ListenerCount("a") != 0 || len(removed) != 3 {
			t.Fatalf("left %d listeners, %d removals seen", e.ListenerCount("a"), len(removed))
		}
	})
}
