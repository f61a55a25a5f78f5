package events_test

import (
	"context"
	"errors"
	"testing"

	"github.com/tlsemit/tlsemit/events"
)

// drain reads C until it is closed.
func drain(s *events.Subscription) []events.Event {
	var out []events.Event
	for ev := range s.C {
		out = append(out, ev)
	}
	return out
}

// TestNodeEventsOnAsyncIterator ports test-events-on-async-iterator.js to the
// channel form: events in order, 'error' ends the iteration with the error
// after what was buffered, breaking out (Cancel) or aborting (ctx) removes
// the listeners.
func TestNodeEventsOnAsyncIterator(t *testing.T) {
	ctx := context.Background()
	t.Run("basic", func(t *testing.T) {
		var e events.Emitter
		s := events.On(ctx, &e, "foo")
		e.Emit("foo", "bar")
		e.Emit("foo", 42)
		a, b := <-s.C, <-s.C
		if a.Args[0] != "bar" || b.Args[0] != 42 || a.Name != "foo" {
			t.Fatalf("got %v, %v", a, b)
		}
		s.Cancel()
		if got := drain(s); len(got) != 0 {
			t.Fatalf("after Cancel: %v", got)
		}
		if e.ListenerCount(events.EventError) != 0 || e.ListenerCount("foo") != 0 || s.Err() != nil {
			t.Fatalf("error listeners %d, foo listeners %d, Err %v", e.ListenerCount(events.EventError), e.ListenerCount("foo"), s.Err())
		}
	})
	t.Run("error", func(t *testing.T) {
		var e events.Emitter
		s := events.On(ctx, &e, "foo")
		if e.ListenerCount(events.EventError) != 1 {
			t.Fatal("On does not listen for error")
		}
		boom := errors.New("kaboom")
		e.Emit("foo", 1)
		e.Emit(events.EventError, boom) // handled: no panic
		e.Emit("foo", 2)                // after the end: not delivered
		got := drain(s)
		if len(got) != 1 || got[0].Args[0] != 1 {
			t.Fatalf("got %v", got)
		}
		if s.Err() != boom {
			t.Fatalf("Err = %v", s.Err())
		}
		if e.ListenerCount(events.EventError) != 0 {
			t.Fatal("error listener left behind")
		}
	})
	t.Run("error event itself", func(t *testing.T) {
		var e events.Emitter
		s := events.On(ctx, &e, events.EventError)
		boom := errors.New("kaboom")
		if !e.Emit(events.EventError, boom) {
			t.Fatal("Emit(error) = false with a subscription to error")
		}
		if ev := <-s.C; ev.Args[0] != boom {
			t.Fatalf("got %v", ev)
		}
		s.Cancel()
	})
	t.Run("abort", func(t *testing.T) {
		var e events.Emitter
		c, cancel := context.WithCancel(ctx)
		s := events.On(c, &e, "foo")
		cancel()
		drain(s)
		if !errors.Is(s.Err(), context.Canceled) {
			t.Fatalf("Err = %v", s.Err())
		}
		if e.ListenerCount(events.EventError) != 0 || e.Emit("foo") {
			t.Fatal("still subscribed after abort")
		}
	})
	t.Run("already aborted", func(t *testing.T) {
		var e events.Emitter
		c, cancel := context.WithCancel(ctx)
		cancel()
		s := events.On(c, &e, "foo")
		drain(s)
		if !errors.Is(s.Err(), context.Canceled) {
			t.Fatalf("Err = %v", s.Err())
		}
	})
}
