package events_test

import (
	"slices"
	"testing"

	"github.com/tlsemit/tlsemit/events"
)

// TestNodeEventEmitterOnce ports test-event-emitter-once.js.
func TestNodeEventEmitterOnce(t *testing.T) {
	var e events.Emitter
	hello := 0
	e.Once("hello", func(...any) { hello++ })
	id := e.Once("foo", func(...any) { t.Error("removed once listener ran") })
	e.Off("foo", id)
	e.Emit("hello", "a", "b")
	e.Emit("hello", "a", "b")
	e.Emit("hello", "a", "b")
	if hello != 1 {
		t.Fatalf("once listener ran %d times", hello)
	}
	if e.Emit("foo") {
		t.Fatal("Emit(foo) = true after the once listener was removed")
	}

	// A once listener that removes itself: removing an already-removed
	// registration is a no-op.
	var selfID events.ID
	n := 0
	selfID = e.Once("e", func(...any) { n++; e.Off("e", selfID) })
	e.Emit("e")
	if n != 1 {
		t.Fatalf("n = %d", n)
	}

	// A recursive emit inside a once listener does not call it again.
	times := 0
	e.Once("e2", func(...any) { times++; e.Emit("e2") })
	e.Emit("e2")
	if times != 1 {
		t.Fatalf("recursive once ran %d times", times)
	}

	// Arguments arrive intact for 0..5 args.
	for k := range 6 {
		args := make([]any, k)
		for i := range args {
			args[i] = i
		}
		var got []any
		e.Once("args", func(a ...any) { got = a })
		e.Emit("args", args...)
		if !slices.Equal(got, args) {
			t.Fatalf("once got %v, want %v", got, args)
		}
	}

	// 'newListener' sees a once listener before it is added.
	var f events.Emitter
	seen := 0
	f.On(events.EventNewListener, func(args ...any) {
		if args[0] == "x" {
			seen++
			if f.ListenerCount("x") != 0 {
				t.Error("newListener ran after the add")
			}
		}
	})
	f.Once("x", func(...any) {})
	if seen != 1 {
		t.Fatalf("newListener calls = %d", seen)
	}
}
