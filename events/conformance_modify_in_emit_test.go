package events_test

import (
	"slices"
	"testing"

	"github.com/tlsemit/tlsemit/events"
)

// TestNodeEventEmitterModifyInEmit ports test-event-emitter-modify-in-emit.js:
// listeners added during an emit are not called by it, listeners removed
// during it still are.
func TestNodeEventEmitterModifyInEmit(t *testing.T) {
	var e events.Emitter
	var called []string
	var id1, id2, id3 events.ID
	var cb2, cb3 func(...any)
	cb1 := func(...any) {
		called = append(called, "callback1")
		id2 = e.On("foo", cb2)
		id3 = e.On("foo", cb3)
		e.Off("foo", id1)
	}
	cb2 = func(...any) { called = append(called, "callback2"); e.Off("foo", id2) }
	cb3 = func(...any) { called = append(called, "callback3"); e.Off("foo", id3) }

	id1 = e.On("foo", cb1)
	if n := len(e.Listeners("foo")); n != 1 {
		t.Fatalf("listeners = %d, want 1", n)
	}
	e.Emit("foo")
	if n := len(e.Listeners("foo")); n != 2 {
		t.Fatalf("after first emit: listeners = %d, want 2", n)
	}
	if !slices.Equal(called, []string{"callback1"}) {
		t.Fatalf("called = %v", called)
	}
	e.Emit("foo")
	if n := len(e.Listeners("foo")); n != 0 {
		t.Fatalf("after second emit: listeners = %d, want 0", n)
	}
	want := []string{"callback1", "callback2", "callback3"}
	if !slices.Equal(called, want) {
		t.Fatalf("called = %v, want %v", called, want)
	}
	e.Emit("foo")
	if !slices.Equal(called, want) {
		t.Fatalf("third emit called something: %v", called)
	}

	e.On("foo", cb1)
	e.On("foo", cb2)
	if n := e.ListenerCount("foo"); n != 2 {
		t.Fatalf("count = %d, want 2", n)
	}
	e.RemoveAllListeners("foo")
	if n := e.ListenerCount("foo"); n != 0 {
		t.Fatalf("count after RemoveAllListeners = %d", n)
	}

	// Removing listeners during an emit still lets it reach all of them.
	called = nil
	id2 = e.On("foo", cb2)
	id3 = e.On("foo", cb3)
	e.Emit("foo")
	if !slices.Equal(called, []string{"callback2", "callback3"}) {
		t.Fatalf("called = %v", called)
	}
	if n := e.ListenerCount("foo"); n != 0 {
		t.Fatalf("count = %d, want 0", n)
	}
}
