package events_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tlsemit/tlsemit/events"
	"github.com/tlsemit/tlsemit/internal/nodeharness"
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

// TestQuietByDefault: eleven channel subscriptions on one emitter (to
// eleven events) add eleven "error" listeners of this package's own, which
// warn nobody and print nothing; the application's eleventh "error"
// listener still warns, to the handler the application installed; with
// none installed, nothing is printed.
func TestQuietByDefault(t *testing.T) {
	out := captureOutput(t, func() {
		ws := captureWarnings(t)
		var e events.Emitter
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		for i := range 11 {
			events.On(ctx, &e, fmt.Sprint("data", i))
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

// TestWarningTextIsNodes: the warning's text is Node's, character for
// character (String(warning) in Node, which Node prints to stderr after
// "(node:PID) "), so that a log alert written for the Node server finds
// it. Before, it was lowercase, quoted the event and left out the emitter
// and the limit.
func TestWarningTextIsNodes(t *testing.T) {
	nodeharness.Require(t)
	type warnCase struct {
		Event string `json:"event"`
		Max   *int   `json:"max"`
		N     int    `json:"n"`
	}
	three, one := 3, 1
	cases := []warnCase{
		{Event: "job", N: 11},
		{Event: "$monitor", N: 11},
		{Event: "x y", Max: &three, N: 4},
		{Event: "", Max: &one, N: 2},
		{Event: "error", Max: &one, N: 2},
	}
	in, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "cases.json")
	if err := os.WriteFile(file, in, 0o644); err != nil {
		t.Fatal(err)
	}
	var want []string
	if err := json.Unmarshal(nodeharness.Run(t, "testdata/warning.js", file), &want); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range cases {
		var e events.Emitter
		if c.Max != nil {
			e.SetMaxListeners(*c.Max)
		}
		event := c.Event
		if event == "$monitor" {
			event = events.ErrorMonitor
		}
		var texts []string
		e.SetWarningHandler(func(w *events.MaxListenersExceededWarning) { texts = append(texts, w.Error()) })
		for range c.N {
			e.On(event, func(...any) {})
		}
		if len(texts) != 1 {
			texts = []string{fmt.Sprintf("%d warnings", len(texts))}
		}
		got = append(got, texts...)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("warning text (-node +go):\n%s", diff)
	}
}

// The handler runs inside the On that crossed the limit, on its goroutine,
// before it returns: the listener is in place, and the handler may use the
// emitter (here it removes the listener and emits). Node reports the
// warning on a later tick instead.
func TestWarningHandlerRunsInsideOn(t *testing.T) {
	var e events.Emitter
	e.SetMaxListeners(1)
	var seen int
	inside := false
	e.SetWarningHandler(func(w *events.MaxListenersExceededWarning) {
		inside = true
		seen = e.ListenerCount(w.Event)
		e.Emit(w.Event, "from the handler")
	})
	calls := 0
	e.On("a", func(...any) { calls++ })
	e.On("a", func(...any) { calls++ })
	if !inside {
		t.Fatal("the handler had not run when On returned")
	}
	if seen != 2 || calls != 2 {
		t.Fatalf("the handler saw %d listeners and its emit made %d calls: want the new listener in place (2, 2)", seen, calls)
	}
}
