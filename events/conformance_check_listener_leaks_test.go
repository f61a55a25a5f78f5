package events_test

import (
	"testing"

	"github.com/tlsemit/tlsemit/events"
)

// TestNodeEventEmitterCheckListenerLeaks ports
// test-event-emitter-check-listener-leaks.js. Go has no process-wide
// defaultMaxListeners to change (DefaultMaxListeners is a constant), so that
// part is left out.
func TestNodeEventEmitterCheckListenerLeaks(t *testing.T) {
	ws := captureWarnings(t)
	nop := func(...any) {}
	var e events.Emitter
	for range 10 {
		e.On("default", nop)
	}
	if len(*ws) != 0 {
		t.Fatal("warned at 10 listeners")
	}
	e.On("default", nop)
	if len(*ws) != 1 || (*ws)[0].Event != "default" || (*ws)[0].Count != 11 {
		t.Fatalf("warnings %v", *ws)
	}
	e.On("default", nop)
	if len(*ws) != 1 {
		t.Fatal("warned twice for one event")
	}

	// A specific limit.
	if err := e.SetMaxListeners(5); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		e.On("specific", nop)
	}
	if len(*ws) != 1 {
		t.Fatal("warned at the limit")
	}
	e.On("specific", nop)
	if len(*ws) != 2 || (*ws)[1].Event != "specific" {
		t.Fatalf("warnings %v", *ws)
	}

	// Zero is unlimited.
	if err := e.SetMaxListeners(0); err != nil {
		t.Fatal(err)
	}
	for range 1000 {
		e.On("unlimited", nop)
	}
	if len(*ws) != 2 {
		t.Fatal("warned with no limit")
	}

	// The warning re-arms when the event is down to one listener, as Node
	// lets go of the array that carried the flag.
	var f events.Emitter
	f.SetMaxListeners(1)
	f.On("x", nop)
	id := f.On("x", nop)
	f.Off("x", id)
	f.On("x", nop)
	if len(*ws) != 4 {
		t.Fatalf("warnings = %d, want the re-armed one too", len(*ws))
	}
}
