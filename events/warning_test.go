package events_test

import (
	"bytes"
	"context"
	"io"
	"log"
	"os"
	"testing"

	"github.com/tlsemit/tlsemit/events"
)

// captureOutput collects what the standard logger and os.Stderr receive
// while f runs.
func captureOutput(t *testing.T, f func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	stderr, logOut := os.Stderr, log.Writer()
	os.Stderr = w
	log.SetOutput(&logged)
	done := make(chan []byte)
	go func() { b, _ := io.ReadAll(r); done <- b }()
	defer func() {
		os.Stderr = stderr
		log.SetOutput(logOut)
	}()
	f()
	w.Close()
	return logged.String() + string(<-done)
}

// TestQuietByDefault: eleven channel subscriptions on one emitter add eleven
// "error" listeners of this package's own, which warn nobody and print
// nothing; the application's eleventh "error" listener still warns, to the
// handler the application installed; with none installed, nothing is
// printed.
func TestQuietByDefault(t *testing.T) {
	out := captureOutput(t, func() {
		ws := captureWarnings(t)
		var e events.Emitter
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		for range 11 {
			events.On(ctx, &e, "data", 1)
		}
		events.Once(ctx, &e, "ready")
		if len(*ws) != 0 {
			t.Fatalf("subscriptions warned: %v", (*ws)[0])
		}
		for i := range 11 {
			e.On(events.EventError, func(...any) {})
			if want := i / 10; len(*ws) != want {
				t.Fatalf("after %d listeners of the application: %d warnings", i+1, len(*ws))
			}
		}
		if w := (*ws)[0]; w.Event != events.EventError || w.Count != 11 || w.Emitter != &e {
			t.Fatalf("warning %+v", w)
		}

		events.SetWarningHandler(nil) // the default
		var f events.Emitter
		for range 12 {
			f.On("x", func(...any) {})
		}
	})
	if out != "" {
		t.Fatalf("printed %q", out)
	}
}

// An emitter's own handler takes its warnings in place of the process-wide
// one; nil gives them back.
func TestEmitterWarningHandler(t *testing.T) {
	global := captureWarnings(t)
	var mine []*events.MaxListenersExceededWarning
	var e events.Emitter
	e.SetMaxListeners(1)
	if prev := e.SetWarningHandler(func(w *events.MaxListenersExceededWarning) { mine = append(mine, w) }); prev != nil {
		t.Fatal("a new emitter had a handler")
	}
	e.On("a", func(...any) {})
	e.On("a", func(...any) {})
	if len(mine) != 1 || len(*global) != 0 {
		t.Fatalf("emitter handler got %d, process-wide %d", len(mine), len(*global))
	}
	if prev := e.SetWarningHandler(nil); prev == nil {
		t.Fatal("SetWarningHandler did not return the handler it replaced")
	}
	e.On("b", func(...any) {})
	e.On("b", func(...any) {})
	if len(mine) != 1 || len(*global) != 1 || (*global)[0].Event != "b" {
		t.Fatalf("after nil: emitter handler got %d, process-wide %d", len(mine), len(*global))
	}
}
