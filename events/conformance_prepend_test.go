package events_test

import (
	"slices"
	"testing"

	"github.com/tlsemit/tlsemit/events"
)

// TestNodeEventEmitterPrepend ports test-event-emitter-prepend.js.
func TestNodeEventEmitterPrepend(t *testing.T) {
	var e events.Emitter
	var r recorder
	e.On("foo", r.fn("4"))
	e.PrependListener("foo", r.fn("3"))
	e.PrependOnceListener("foo", r.fn("2"))
	e.PrependListener("foo", r.fn("1"))
	e.Emit("foo")
	if want := []string{"1", "2", "3", "4"}; !slices.Equal(r.calls, want) {
		t.Fatalf("order = %v, want %v", r.calls, want)
	}
	r.calls = nil
	e.Emit("foo")
	if want := []string{"1", "3", "4"}; !slices.Equal(r.calls, want) {
		t.Fatalf("second emit = %v, want %v (once listener gone)", r.calls, want)
	}
}
