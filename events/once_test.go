package events_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/tlsemit/tlsemit/events"
)

// TestOnceThenEmitNeverMisses is the code a user writes: take the channel,
// hand it to a goroutine (or emit from one), emit right after. Once
// registers before it returns, so no emission is missed. (With the old
// blocking Once called in a goroutine, 997 of 1,000 were.)
func TestOnceThenEmitNeverMisses(t *testing.T) {
	// Only a guard against a hang: a miss shows as this deadline.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := range 1000 {
		var e events.Emitter
		got := make(chan events.OnceResult, 1)
		ready := events.Once(ctx, &e, "ready")
		go func() { got <- <-ready }()
		if i%2 == 0 {
			e.Emit("ready", i)
		} else {
			go e.Emit("ready", i)
		}
		r := <-got
		if r.Err != nil || len(r.Args) != 1 || r.Args[0] != i {
			t.Fatalf("iteration %d: Once delivered %+v", i, r)
		}
		if n := e.ListenerCount("ready") + e.ListenerCount(events.EventError); n != 0 {
			t.Fatalf("iteration %d: %d listeners left", i, n)
		}
	}
}

// An emission that arrives while Once is still adding its listeners (a
// 'newListener' listener emits) is delivered, and nothing is left behind.
func TestOnceResolvedDuringRegistration(t *testing.T) {
	var e events.Emitter
	e.On(events.EventNewListener, func(args ...any) {
		if args[0] == events.EventError {
			e.Emit("ready", "early")
		}
	})
	r := <-events.Once(context.Background(), &e, "ready")
	if r.Err != nil || len(r.Args) != 1 || r.Args[0] != "early" {
		t.Fatalf("Once = %+v", r)
	}
	if n := e.ListenerCount("ready") + e.ListenerCount(events.EventError); n != 0 {
		t.Fatalf("%d listeners left", n)
	}
}

// The event, an "error" and the end of the context race: exactly one result
// comes, the channel is closed after it, and no listener is left.
func TestOnceExactlyOneResult(t *testing.T) {
	for range 200 {
		var e events.Emitter
		ctx, cancel := context.WithCancel(context.Background())
		c := events.Once(ctx, &e, "x")
		var wg sync.WaitGroup
		wg.Go(func() { e.Emit("x", 1) })
		wg.Go(func() {
			defer func() { recover() }() // Once may be done: nobody handles it
			e.Emit(events.EventError, errors.New("e"))
		})
		wg.Go(cancel)
		wg.Wait()
		r, ok := <-c
		if !ok || (r.Err == nil && len(r.Args) != 1) {
			t.Fatalf("Once = %+v, %v", r, ok)
		}
		if _, open := <-c; open {
			t.Fatal("a second result")
		}
		if n := e.ListenerCount("x") + e.ListenerCount(events.EventError); n != 0 {
			t.Fatalf("%d listeners left", n)
		}
	}
}

// Args is Once's own copy: an emitter that reuses its argument slice does
// not change it.
func TestOnceArgsCopied(t *testing.T) {
	var e events.Emitter
	c := events.Once(context.Background(), &e, "x")
	args := []any{1}
	e.Emit("x", args...)
	args[0] = 2
	if r := <-c; r.Args[0] != 1 {
		t.Fatalf("Args = %v", r.Args)
	}
}
