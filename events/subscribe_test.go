package events_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/tlsemit/tlsemit/events"
)

func TestSubscriptionOrderAndArgsCopied(t *testing.T) {
	var e events.Emitter
	s := events.On(context.Background(), &e, "data", 100)
	defer s.Cancel()
	args := []any{0}
	for i := range 50 {
		args[0] = i
		e.Emit("data", args...)
	}
	args[0] = "changed"
	for i := range 50 {
		ev := <-s.C
		if ev.Name != "data" || ev.Args[0] != i {
			t.Fatalf("event %d = %+v", i, ev)
		}
	}
	// Each subscription gets its own copy.
	s2 := events.On(context.Background(), &e, "data", 1)
	defer s2.Cancel()
	e.Emit("data", 1)
	a, b := <-s.C, <-s2.C
	a.Args[0] = "mine"
	if b.Args[0] != 1 {
		t.Fatal("subscriptions share their args")
	}
}

// TestSubscriptionFullBufferDrops: Emit never blocks on a subscriber; with
// nobody reading a buffer of 1, 999 of 1000 emissions are dropped.
func TestSubscriptionFullBufferDrops(t *testing.T) {
	var e events.Emitter
	s := events.On(context.Background(), &e, "tick", 1)
	for i := range 1000 {
		if !e.Emit("tick", i) {
			t.Fatal("Emit = false with a matching subscription")
		}
	}
	if d := s.Dropped(); d != 999 {
		t.Fatalf("Dropped = %d, want 999", d)
	}
	s.Cancel()
	got := drain(s)
	if len(got) != 1 || got[0].Args[0] != 0 {
		t.Fatalf("buffered %v", got)
	}
}

func TestSubscriptionCancelAndContext(t *testing.T) {
	var e events.Emitter
	s := events.On(context.Background(), &e, "a", 1)
	s.Cancel()
	s.Cancel() // twice is fine
	if _, ok := <-s.C; ok {
		t.Fatal("C open after Cancel")
	}
	if s.Err() != nil || e.Emit("a") || e.ListenerCount(events.EventError) != 0 {
		t.Fatal("still subscribed after Cancel")
	}

	ctx, cancel := context.WithCancel(context.Background())
	s = events.On(ctx, &e, "a", 1)
	cancel()
	if _, ok := <-s.C; ok {
		t.Fatal("C open after ctx cancel")
	}
	if !errors.Is(s.Err(), context.Canceled) {
		t.Fatalf("Err = %v", s.Err())
	}
}

func TestSubscriptionErrorEndsAfterBuffered(t *testing.T) {
	var e events.Emitter
	s := events.On(context.Background(), &e, "*", 4)
	boom := errors.New("boom")
	e.Emit("a", 1)
	e.Emit("b", 2)
	e.Emit(events.EventError, boom)
	got := drain(s)
	if len(got) != 2 || got[0].Name != "a" || got[1].Name != "b" {
		t.Fatalf("got %v", got)
	}
	if s.Err() != boom {
		t.Fatalf("Err = %v", s.Err())
	}
}

func TestSubscriptionPatterns(t *testing.T) {
	var e events.Emitter
	ctx := context.Background()
	all := events.On(ctx, &e, "*", 16)
	conn := events.On(ctx, &e, "conn*", 16)
	exact := events.On(ctx, &e, "a[", 16)
	star := events.On(ctx, &e, "x", 16)
	for _, name := range []string{"connect", "data", "connection", "a[", "*"} {
		e.Emit(name)
	}
	for _, s := range []*events.Subscription{all, conn, exact, star} {
		s.Cancel()
	}
	names := func(s *events.Subscription) (out string) {
		for _, ev := range drain(s) {
			out += ev.Name + " "
		}
		return out
	}
	if got := names(all); got != "connect data connection a[ * " {
		t.Errorf(`"*" got %q`, got)
	}
	if got := names(conn); got != "connect connection " {
		t.Errorf(`"conn*" got %q`, got)
	}
	// olebedev alone would drop "a[" (bad pattern) and deliver "*" to "x".
	if got := names(exact); got != "a[ " {
		t.Errorf(`"a[" got %q`, got)
	}
	if got := names(star); got != "" {
		t.Errorf(`"x" got %q`, got)
	}
}

func TestSubscriptionConcurrent(t *testing.T) {
	var e events.Emitter
	e.SetMaxListeners(0)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				s := events.On(context.Background(), &e, "ev*", 2)
				e.Emit("ev1", 1)
				s.Cancel()
				drain(s)
			}
		})
	}
	for range 2 {
		wg.Go(func() {
			for range 500 {
				e.Emit("ev2")
			}
		})
	}
	wg.Wait()
}

// TestNoSubscriberCost: an emitter without subscriptions emits without
// allocating; with one that does not match, nothing is copied either.
func TestNoSubscriberCost(t *testing.T) {
	var e events.Emitter
	e.On("data", func(...any) {})
	if n := testing.AllocsPerRun(100, func() { e.Emit("data") }); n != 0 {
		t.Fatalf("Emit with a listener allocates %v", n)
	}
	if n := testing.AllocsPerRun(100, func() { e.Emit("none") }); n != 0 {
		t.Fatalf("Emit without listeners allocates %v", n)
	}
	s := events.On(context.Background(), &e, "data", 1)
	s.Cancel()
	if n := testing.AllocsPerRun(100, func() { e.Emit("data") }); n != 0 {
		t.Fatalf("Emit after the subscription ended allocates %v", n)
	}
}

func TestSubscriptionsCount(t *testing.T) {
	var e events.Emitter
	if n := e.Subscriptions(); n != 0 {
		t.Fatalf("Subscriptions() = %d on a new emitter", n)
	}
	a := events.On(context.Background(), &e, "a", 1)
	b := events.On(context.Background(), &e, "*", 1)
	if n := e.Subscriptions(); n != 2 {
		t.Fatalf("Subscriptions() = %d with two, want 2", n)
	}
	a.Cancel()
	b.Cancel()
	if n := e.Subscriptions(); n != 0 {
		t.Fatalf("Subscriptions() = %d after Cancel, want 0", n)
	}
}
