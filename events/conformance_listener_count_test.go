package events_test

import (
	"testing"

	"github.com/tlsemit/tlsemit/events"
)

// TestNodeEventEmitterListenerCount ports test-event-emitter-listener-count.js.
func TestNodeEventEmitterListenerCount(t *testing.T) {
	var e events.Emitter
	nop := func(...any) {}
	if e.ListenerCount("foo") != 0 {
		t.Fatal("empty count")
	}
	e.On("foo", nop)
	e.On("foo", nop)
	e.On("baz", nop)
	e.Once("baz", nop)
	if e.ListenerCount("foo") != 2 || e.ListenerCount("baz") != 2 || e.ListenerCount("bar") != 0 {
		t.Fatalf("counts %d %d %d", e.ListenerCount("foo"), e.ListenerCount("baz"), e.ListenerCount("bar"))
	}
	e.Emit("baz")
	if e.ListenerCount("baz") != 1 {
		t.Fatalf("after once fired: %d", e.ListenerCount("baz"))
	}
}
