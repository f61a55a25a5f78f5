package events_test

import (
	"strings"
	"testing"

	"github.com/tlsemit/tlsemit/events"
)

// captureWarnings replaces the warning handler for the test.
func captureWarnings(t *testing.T) *[]*events.MaxListenersExceededWarning {
	var ws []*events.MaxListenersExceededWarning
	prev := events.SetWarningHandler(func(w *events.MaxListenersExceededWarning) { ws = append(ws, w) })
	t.Cleanup(func() { events.SetWarningHandler(prev) })
	return &ws
}

// TestNodeEventEmitterMaxListenersWarning ports
// test-event-emitter-max-listeners-warning.js: one warning with the emitter,
// the event and the count. Node reports it on process 'warning'; Go through
// SetWarningHandler.
func TestNodeEventEmitterMaxListenersWarning(t *testing.T) {
	ws := captureWarnings(t)
	var e events.Emitter
	if err := e.SetMaxListeners(1); err != nil {
		t.Fatal(err)
	}
	nop := func(...any) {}
	e.On("event-type", nop)
	if len(*ws) != 0 {
		t.Fatal("warned at the limit")
	}
	e.On("event-type", nop) // 2 > 1: warns
	e.On("event-type", nop) // already warned for this event
	if len(*ws) != 1 {
		t.Fatalf("warnings = %d, want 1", len(*ws))
	}
	w := (*ws)[0]
	if w.Emitter != &e || w.Event != "event-type" || w.Count != 2 {
		t.Fatalf("warning = %+v", w)
	}
	if msg := w.Error(); !strings.Contains(msg, "MaxListenersExceededWarning") || !strings.Contains(msg, "event-type") || !strings.Contains(msg, "2") {
		t.Fatalf("message %q", msg)
	}
	// Another event name warns on its own; the ErrorMonitor name too (Node:
	// test-event-emitter-max-listeners-warning-for-symbol).
	e.On(events.ErrorMonitor, nop)
	e.On(events.ErrorMonitor, nop)
	if len(*ws) != 2 || (*ws)[1].Event != events.ErrorMonitor {
		t.Fatalf("warnings = %v", *ws)
	}
}

func TestSetWarningHandlerRestoresDefault(t *testing.T) {
	mine := func(*events.MaxListenersExceededWarning) {}
	prev := events.SetWarningHandler(mine)
	defer events.SetWarningHandler(prev)
	if got := events.SetWarningHandler(nil); got == nil {
		t.Fatal("SetWarningHandler did not return the handler it replaced")
	}
	if got := events.SetWarningHandler(nil); got != nil {
		t.Fatal("nil did not restore the default")
	}
}
