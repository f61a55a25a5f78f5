package events_test

import (
	"testing"

	"github.com/tlsemit/tlsemit/events"
)

// TestNodeEventEmitterNumArgs ports test-event-emitter-num-args.js.
func TestNodeEventEmitterNumArgs(t *testing.T) {
	for n := range 6 {
		for _, listeners := range []int{1, 3} {
			var e events.Emitter
			calls := 0
			for range listeners {
				e.On("numArgs", func(args ...any) {
					calls++
					if len(args) != n {
						t.Errorf("got %d args, want %d", len(args), n)
					}
				})
			}
			e.Emit("numArgs", make([]any, n)...)
			if calls != listeners {
				t.Fatalf("%d args, %d listeners: %d calls", n, listeners, calls)
			}
		}
	}
}
