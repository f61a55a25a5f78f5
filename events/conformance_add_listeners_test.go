package events_test

import (
	"slices"
	"testing"

	"github.com/tlsemit/tlsemit/events"
)

// TestNodeEventEmitterAddListeners ports test-event-emitter-add-listeners.js.
// Go's 'newListener' listeners receive (event, fn, id).
func TestNodeEventEmitterAddListeners(t *testing.T) {
	var e events.Emitter
	var events_ []string
	var listenersInNew []int
	e.On(events.EventNewListener, func(args ...any) {
		name := args[0].(string)
		events_ = append(events_, name)
		listenersInNew = append(listenersInNew, e.ListenerCount(name))
		if _, ok := args[1].(events.Listener); !ok {
			t.Errorf("newListener fn is %T", args[1])
		}
		if _, ok := args[2].(events.ID); !ok {
			t.Errorf("newListener id is %T", args[2])
		}
	})
	var times []any
	hello := func(args ...any) { times = append(times, args...) }
	id := e.On("hello", hello)
	e.Once("foo", func(...any) { t.Error("foo listener called") })

	if !slices.Equal(events_, []string{"hello", "foo"}) {
		t.Fatalf("newListener events = %v", events_)
	}
	// 'newListener' fires before the add.
	if !slices.Equal(listenersInNew, []int{0, 0}) {
		t.Fatalf("listener counts inside newListener = %v", listenersInNew)
	}
	if id == 0 {
		t.Fatal("On returned the zero ID")
	}
	if !e.Emit("hello", "a", "b") {
		t.Fatal("Emit = false with a listener")
	}
	if !slices.Equal(times, []any{"a", "b"}) {
		t.Fatalf("hello got %v", times)
	}

	// A 'newListener' listener does not see itself, and a listener it adds
	// for the event being added goes before it.
	var f events.Emitter
	var order []string
	f.Once(events.EventNewListener, func(args ...any) {
		if args[0] != "hello" {
			t.Errorf("newListener for %v", args[0])
		}
		f.On("hello", func(...any) { order = append(order, "b") })
	})
	f.On("hello", func(...any) { order = append(order, "a") })
	f.Emit("hello")
	if !slices.Equal(order, []string{"b", "a"}) {
		t.Fatalf("order = %v, want [b a]", order)
	}

	// AddListener is On; distinct registrations of the same fn get distinct IDs.
	var g events.Emitter
	a, b := g.AddListener("x", hello), g.On("x", hello)
	if a == b || g.ListenerCount("x") != 2 {
		t.Fatalf("ids %v %v, count %d", a, b, g.ListenerCount("x"))
	}
}
