package events_test

import (
	"errors"
	"testing"

	"github.com/tlsemit/tlsemit/events"
)

// TestNodeEventEmitterMaxListeners ports test-event-emitter-max-listeners.js.
// Where Node throws ERR_OUT_OF_RANGE, Go's SetMaxListeners returns
// ErrOutOfRange and keeps the previous limit.
func TestNodeEventEmitterMaxListeners(t *testing.T) {
	var e events.Emitter
	if e.GetMaxListeners() != events.DefaultMaxListeners || events.DefaultMaxListeners != 10 {
		t.Fatalf("default = %d", e.GetMaxListeners())
	}
	// Setting the limit from a 'maxListeners' listener works as in Node.
	e.On("maxListeners", func(...any) {
		if err := e.SetMaxListeners(42); err != nil {
			t.Error(err)
		}
	})
	e.Emit("maxListeners")
	if e.GetMaxListeners() != 42 {
		t.Fatalf("max = %d", e.GetMaxListeners())
	}
	for _, bad := range []int{-1, -100} {
		if err := e.SetMaxListeners(bad); !errors.Is(err, events.ErrOutOfRange) {
			t.Fatalf("SetMaxListeners(%d) = %v, want ErrOutOfRange", bad, err)
		}
	}
	if e.GetMaxListeners() != 42 {
		t.Fatal("a refused limit changed the limit")
	}
	if err := e.SetMaxListeners(0); err != nil || e.GetMaxListeners() != 0 {
		t.Fatalf("SetMaxListeners(0) = %v, max %d", err, e.GetMaxListeners())
	}
}
