package events_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/tlsemit/tlsemit/events"
)

// TestNodeEventsOnce ports test-events-once.js. Node's AbortSignal is Go's
// context; the promise is the channel Once returns, a rejection its Err.
func TestNodeEventsOnce(t *testing.T) {
	ctx := context.Background()
	t.Run("resolves with args and cleans up", func(t *testing.T) {
		var f events.Emitter
		c := events.Once(ctx, &f, "myevent")
		if f.ListenerCount("myevent") != 1 || f.ListenerCount(events.EventError) != 1 {
			t.Fatal("Once returned before adding its listeners")
		}
		f.Emit("myevent", 42, "x")
		r := <-c
		if r.Err != nil || !slices.Equal(r.Args, []any{42, "x"}) {
			t.Fatalf("Once = %+v", r)
		}
		if f.ListenerCount("myevent") != 0 || f.ListenerCount(events.EventError) != 0 {
			t.Fatal("listeners left behind")
		}
		if _, open := <-c; open {
			t.Fatal("the channel delivered a second result")
		}
	})
	t.Run("rejects on error", func(t *testing.T) {
		var e events.Emitter
		boom := errors.New("kaboom")
		c := events.Once(ctx, &e, "myevent")
		e.Emit(events.EventError, boom) // handled by Once: no panic
		if r := <-c; r.Err != boom || r.Args != nil {
			t.Fatalf("Once = %+v", r)
		}
		if e.ListenerCount("myevent") != 0 || e.ListenerCount(events.EventError) != 0 {
			t.Fatal("listeners left behind")
		}
	})
	t.Run("once error event resolves", func(t *testing.T) {
		var e events.Emitter
		boom := errors.New("kaboom")
		c := events.Once(ctx, &e, events.EventError)
		e.Emit(events.EventError, boom)
		if r := <-c; r.Err != nil || len(r.Args) != 1 || r.Args[0] != boom {
			t.Fatalf("Once = %+v", r)
		}
		if e.ListenerCount(events.EventError) != 0 {
			t.Fatal("listener left behind")
		}
	})
	t.Run("aborted", func(t *testing.T) {
		var e events.Emitter
		c, cancel := context.WithCancel(ctx)
		cancel()
		added := 0
		e.On(events.EventNewListener, func(...any) { added++ })
		if r := <-events.Once(c, &e, "myevent"); !errors.Is(r.Err, context.Canceled) {
			t.Fatalf("Once = %+v", r)
		}
		if added != 0 {
			t.Fatal("an already-done context added listeners")
		}
		c2, cancel2 := context.WithCancel(ctx)
		ch := events.Once(c2, &e, "myevent")
		cancel2()
		if r := <-ch; !errors.Is(r.Err, context.Canceled) {
			t.Fatalf("Once = %+v", r)
		}
		if e.ListenerCount("myevent") != 0 || e.ListenerCount(events.EventError) != 0 {
			t.Fatal("listeners left behind after cancel")
		}
	})
	t.Run("non-error value", func(t *testing.T) {
		var e events.Emitter
		c := events.Once(ctx, &e, "x")
		e.Emit(events.EventError, "str")
		var ue *events.UnhandledError
		if r := <-c; !errors.As(r.Err, &ue) || ue.Context != "str" {
			t.Fatalf("Once = %+v", r)
		}
	})
}
