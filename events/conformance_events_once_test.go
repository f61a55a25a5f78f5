package events_test

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"testing"

	"github.com/tlsemit/tlsemit/events"
)

// TestNodeEventsOnce ports test-events-once.js. Node's AbortSignal is Go's
// context; a rejected promise is a returned error.
func TestNodeEventsOnce(t *testing.T) {
	ctx := context.Background()
	t.Run("resolves with args and cleans up", func(t *testing.T) {
		var f events.Emitter
		done := make(chan struct{})
		var args []any
		var err error
		go func() { args, err = events.Once(ctx, &f, "myevent"); close(done) }()
		for f.ListenerCount("myevent") == 0 {
			runtime.Gosched()
		}
		f.Emit("myevent", 42, "x")
		<-done
		if err != nil || !slices.Equal(args, []any{42, "x"}) {
			t.Fatalf("Once = %v, %v", args, err)
		}
		if f.ListenerCount("myevent") != 0 || f.ListenerCount(events.EventError) != 0 {
			t.Fatal("listeners left behind")
		}
	})
	t.Run("rejects on error", func(t *testing.T) {
		var e events.Emitter
		boom := errors.New("kaboom")
		errc := make(chan error, 1)
		go func() { _, err := events.Once(ctx, &e, "myevent"); errc <- err }()
		for e.ListenerCount(events.EventError) == 0 {
			runtime.Gosched()
		}
		e.Emit(events.EventError, boom) // handled by Once: no panic
		if err := <-errc; err != boom {
			t.Fatalf("err = %v", err)
		}
		if e.ListenerCount("myevent") != 0 || e.ListenerCount(events.EventError) != 0 {
			t.Fatal("listeners left behind")
		}
	})
	t.Run("once error event resolves", func(t *testing.T) {
		var e events.Emitter
		boom := errors.New("kaboom")
		res := make(chan []any, 1)
		go func() { a, _ := events.Once(ctx, &e, events.EventError); res <- a }()
		for e.ListenerCount(events.EventError) == 0 {
			runtime.Gosched()
		}
		e.Emit(events.EventError, boom)
		if a := <-res; len(a) != 1 || a[0] != boom {
			t.Fatalf("args = %v", a)
		}
	})
	t.Run("aborted", func(t *testing.T) {
		var e events.Emitter
		c, cancel := context.WithCancel(ctx)
		cancel()
		added := 0
		e.On(events.EventNewListener, func(...any) { added++ })
		if _, err := events.Once(c, &e, "myevent"); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
		if added != 0 {
			t.Fatal("an already-done context added listeners")
		}
		c2, cancel2 := context.WithCancel(ctx)
		errc := make(chan error, 1)
		go func() { _, err := events.Once(c2, &e, "myevent"); errc <- err }()
		for e.ListenerCount("myevent") == 0 {
			runtime.Gosched()
		}
		cancel2()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
		if e.ListenerCount("myevent") != 0 || e.ListenerCount(events.EventError) != 0 {
			t.Fatal("listeners left behind after cancel")
		}
	})
	t.Run("non-error value", func(t *testing.T) {
		var e events.Emitter
		errc := make(chan error, 1)
		go func() { _, err := events.Once(ctx, &e, "x"); errc <- err }()
		for e.ListenerCount(events.EventError) == 0 {
			runtime.Gosched()
		}
		e.Emit(events.EventError, "str")
		var ue *events.UnhandledError
		if err := <-errc; !errors.As(err, &ue) || ue.Context != "str" {
			t.Fatalf("err = %v", err)
		}
	})
}
