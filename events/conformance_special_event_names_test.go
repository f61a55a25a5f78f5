package events_test

import (
	"slices"
	"testing"

	"github.com/tlsemit/tlsemit/events"
)

// TestNodeEventEmitterSpecialEventNames ports
// test-event-emitter-special-event-names.js, and checks Node's eventNames
// order for array-index names (JavaScript property order: "0", "1", … first,
// ascending), which real Node shows and the differential test covers.
func TestNodeEventEmitterSpecialEventNames(t *testing.T) {
	var e events.Emitter
	nop := func(...any) {}
	for _, n := range []string{"__proto__", "__defineGetter__", "toString"} {
		e.On(n, nop)
	}
	if got := e.EventNames(); !slices.Equal(got, []string{"__proto__", "__defineGetter__", "toString"}) {
		t.Fatalf("EventNames = %v", got)
	}
	for _, n := range []string{"__proto__", "__defineGetter__", "toString"} {
		if len(e.Listeners(n)) != 1 {
			t.Fatalf("Listeners(%q) = %d", n, len(e.Listeners(n)))
		}
	}
	var got any
	e.On("__proto__", func(args ...any) { got = args[0] })
	e.Emit("__proto__", 1)
	if got != 1 {
		t.Fatalf("got %v", got)
	}
	if e.ListenerCount("constructor") != 0 || e.Emit("hasOwnProperty") {
		t.Fatal("inherited names are events")
	}

	var f events.Emitter
	for _, n := range []string{"b", events.ErrorMonitor, "10", "a", "2", "01", ""} {
		f.On(n, nop)
	}
	want := []string{"2", "10", "b", "a", "01", "", events.ErrorMonitor}
	if got := f.EventNames(); !slices.Equal(got, want) {
		t.Fatalf("EventNames = %q, want %q", got, want)
	}
}
