package events_test

import (
	"context"
	"errors"
	"io"
	"runtime"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tlsemit/tlsemit/events"
)

func TestSubscriptionOrderAndArgsCopied(t *testing.T) {
	var e events.Emitter
	s := events.On(context.Background(), &e, "data")
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
	s2 := events.On(context.Background(), &e, "data")
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
	s := events.On(context.Background(), &e, "tick", events.Buffer(1))
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
	s := events.On(context.Background(), &e, "a")
	s.Cancel()
	s.Cancel() // twice is fine
	if _, ok := <-s.C; ok {
		t.Fatal("C open after Cancel")
	}
	if s.Err() != nil || e.Emit("a") || e.ListenerCount(events.EventError) != 0 {
		t.Fatal("still subscribed after Cancel")
	}

	ctx, cancel := context.WithCancel(context.Background())
	s = events.On(ctx, &e, "a")
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
	s := events.On(context.Background(), &e, "*")
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
	all := events.On(ctx, &e, "*", events.Buffer(16))
	conn := events.On(ctx, &e, "conn*", events.Buffer(16))
	exact := events.On(ctx, &e, "a[", events.Buffer(16))
	star := events.On(ctx, &e, "x", events.Buffer(16))
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
				s := events.On(context.Background(), &e, "ev*")
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
	s := events.On(context.Background(), &e, "data")
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
	a := events.On(context.Background(), &e, "a")
	b := events.On(context.Background(), &e, "*")
	if n := e.Subscriptions(); n != 2 {
		t.Fatalf("Subscriptions() = %d with two, want 2", n)
	}
	a.Cancel()
	b.Cancel()
	if n := e.Subscriptions(); n != 0 {
		t.Fatalf("Subscriptions() = %d after Cancel, want 0", n)
	}
}

// TestOnRacesErrorEmission: an "error" emitted while On registers (from
// another goroutine) ends the subscription without a data race, and leaves
// nothing behind: no subscription counted, no "error" listener of its own
// (which would swallow a later unhandled error), C closed. Before the fix
// the race detector reported On's write of the listener's ID against the
// emission's read, and an emission that came before On had noted the ID
// left both the "error" listener and the count behind for good.
func TestOnRacesErrorEmission(t *testing.T) {
	boom := errors.New("boom")
	for i := range 2000 {
		var e events.Emitter
		var wg sync.WaitGroup
		var s *events.Subscription
		start := make(chan struct{})
		wg.Go(func() {
			<-start
			s = events.On(context.Background(), &e, "x", events.Buffer(1))
		})
		wg.Go(func() {
			<-start
			defer func() { recover() }() // no listener yet: the emission panics
			e.Emit(events.EventError, boom)
		})
		close(start)
		wg.Wait()
		s.Cancel()
		if _, ok := <-s.C; ok {
			t.Fatalf("run %d: C open after Cancel", i)
		}
		if n := e.Subscriptions(); n != 0 {
			t.Fatalf("run %d: Subscriptions() = %d after the end", i, n)
		}
		if n := e.ListenerCount(events.EventError); n != 0 {
			t.Fatalf("run %d: %d \"error\" listeners left", i, n)
		}
		if v := mustPanic(t, func() { e.Emit(events.EventError, boom) }); v != boom {
			t.Fatalf("run %d: unhandled error panicked with %v", i, v)
		}
	}
}

// A subscription that ends while On is still registering (here its
// listener is removed when its "error" listener is announced) leaves
// nothing registered, and its channel closed; so does one whose
// registration a 'newListener' listener makes panic.
func TestOnEndedWhileRegistering(t *testing.T) {
	t.Run("removed", func(t *testing.T) {
		var e events.Emitter
		e.On(events.EventNewListener, func(args ...any) {
			if args[0] == events.EventError {
				e.RemoveAllListeners("x")
			}
		})
		s := events.On(context.Background(), &e, "x")
		if _, ok := <-s.C; ok {
			t.Fatal("C open")
		}
		if e.ListenerCount("x") != 0 || e.ListenerCount(events.EventError) != 0 || e.Subscriptions() != 0 {
			t.Fatalf("left: x %d, error %d, subscriptions %d", e.ListenerCount("x"), e.ListenerCount(events.EventError), e.Subscriptions())
		}
	})
	t.Run("panic", func(t *testing.T) {
		var e events.Emitter
		e.On(events.EventNewListener, func(args ...any) {
			if args[0] == events.EventError {
				panic("no")
			}
		})
		if v := mustPanic(t, func() { events.On(context.Background(), &e, "x") }); v != "no" {
			t.Fatalf("panic %v", v)
		}
		if e.ListenerCount("x") != 0 || e.ListenerCount(events.EventError) != 0 || e.Subscriptions() != 0 {
			t.Fatalf("left: x %d, error %d, subscriptions %d", e.ListenerCount("x"), e.ListenerCount(events.EventError), e.Subscriptions())
		}
	})
}

// TestOnLosesNothingInABurst is the straight port of
// `for await (const [job] of events.on(q, 'job'))`: a producer goroutine
// emits 100,000 jobs while the reader is slower (it reads nothing until
// half are out, then yields after each one); every job arrives, in order.
// With the old fixed buffer (the only form there was) 0.1–35 % were
// dropped.
func TestOnLosesNothingInABurst(t *testing.T) {
	const n = 100_000
	var q events.Emitter
	jobs := events.On(context.Background(), &q, "job")
	defer jobs.Cancel()
	half := make(chan struct{})
	go func() {
		for i := range n {
			if i == n/2 {
				close(half)
			}
			if !q.Emit("job", i) {
				panic("Emit = false with a subscription")
			}
		}
		q.Emit("done")
		q.Emit(events.EventError, io.EOF) // ends the subscription after the queue
	}()
	<-half
	next := 0
	for ev := range jobs.C {
		if ev.Args[0] != next {
			t.Fatalf("job %d arrived as job %v", next, ev.Args[0])
		}
		next++
		runtime.Gosched()
	}
	if next != n || jobs.Dropped() != 0 || jobs.Err() != io.EOF {
		t.Fatalf("received %d of %d, dropped %d, Err %v", next, n, jobs.Dropped(), jobs.Err())
	}
}

// Cancel, and the end of the context, drop what the reader has not taken;
// the goroutine that hands the queue to C ends (goleak checks it at the
// end of the package's tests).
func TestOnCancelDropsTheQueue(t *testing.T) {
	for _, how := range []string{"Cancel", "ctx"} {
		t.Run(how, func(t *testing.T) {
			var e events.Emitter
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			removed := make(chan struct{})
			e.On(events.EventRemoveListener, func(args ...any) {
				if args[0] == "x" {
					close(removed)
				}
			})
			s := events.On(ctx, &e, "x")
			for i := range 100 {
				e.Emit("x", i)
			}
			if ev := <-s.C; ev.Args[0] != 0 {
				t.Fatalf("first event %v", ev)
			}
			if how == "Cancel" {
				s.Cancel()
			} else {
				cancel()
			}
			<-removed // the context's end runs on a goroutine of its own
			// At most the one in flight when the queue was dropped.
			got := len(drain(s))
			if got > 1 || e.Subscriptions() != 0 || e.ListenerCount("x") != 0 {
				t.Fatalf("after %s: %d more events, %d subscriptions, %d listeners", how, got, e.Subscriptions(), e.ListenerCount("x"))
			}
		})
	}
	// Cancel after an "error" ended the subscription drops what it queued.
	var e events.Emitter
	s := events.On(context.Background(), &e, "x")
	e.Emit("x", 1)
	e.Emit("x", 2)
	e.Emit(events.EventError, io.EOF)
	s.Cancel()
	if got := len(drain(s)); got > 1 || s.Err() != io.EOF {
		t.Fatalf("%d events after Cancel, Err %v", got, s.Err())
	}
}

// TestSubscriptionIsAListener: a subscription to an event by name is one of
// its listeners, as Node counts the iterator of events.on: ListenerCount,
// Listeners and EventNames see it, 'newListener' and 'removeListener'
// announce it and its "error" listener (in Node's order), and Cancel takes
// both away. Before, ListenerCount was 0 and EventNames empty.
func TestSubscriptionIsAListener(t *testing.T) {
	var e events.Emitter
	var meta []string
	e.On(events.EventNewListener, func(args ...any) { meta = append(meta, "new "+args[0].(string)) })
	e.On(events.EventRemoveListener, func(args ...any) { meta = append(meta, "removed "+args[0].(string)) })
	s := events.On(context.Background(), &e, "job")
	if e.ListenerCount("job") != 1 || len(e.Listeners("job")) != 1 || e.ListenerCount(events.EventError) != 1 {
		t.Fatalf("ListenerCount job %d, Listeners %d, error %d", e.ListenerCount("job"), len(e.Listeners("job")), e.ListenerCount(events.EventError))
	}
	want := []string{events.EventNewListener, events.EventRemoveListener, "job", events.EventError}
	if diff := cmp.Diff(want, e.EventNames()); diff != "" {
		t.Fatalf("EventNames (-want +got):\n%s", diff)
	}
	s.Cancel()
	if e.ListenerCount("job") != 0 || e.ListenerCount(events.EventError) != 0 {
		t.Fatal("Cancel left listeners")
	}
	// Node adds the iterator's listener, then its 'error' listener, and
	// removes them last first.
	if diff := cmp.Diff([]string{"new removeListener", "new job", "new error", "removed error", "removed job"}, meta); diff != "" {
		t.Fatalf("meta events (-want +got):\n%s", diff)
	}
	// A pattern is no one event's listener.
	p := events.On(context.Background(), &e, "jo*")
	defer p.Cancel()
	if e.ListenerCount("job") != 0 || e.Subscriptions() != 1 {
		t.Fatalf("pattern: ListenerCount %d, Subscriptions %d", e.ListenerCount("job"), e.Subscriptions())
	}
}

// TestRemoveAllListenersEndsSubscriptions: removing a subscription's
// listener ends it: Emit no longer reaches it (Node's iterator gets nothing
// more either), and its channel closes after what it had queued instead of
// waiting forever. Before, RemoveAllListeners removed only its "error"
// listener and the subscription kept receiving. Removing only its "error"
// listener leaves it receiving, as in Node.
func TestRemoveAllListenersEndsSubscriptions(t *testing.T) {
	t.Run("all", func(t *testing.T) {
		var e events.Emitter
		s := events.On(context.Background(), &e, "job")
		p := events.On(context.Background(), &e, "jo*")
		e.Emit("job", 1)
		e.RemoveAllListeners()
		if e.Emit("job", 2) {
			t.Fatal("Emit = true after RemoveAllListeners")
		}
		for _, sub := range []*events.Subscription{s, p} {
			got := drain(sub)
			if len(got) != 1 || got[0].Args[0] != 1 || sub.Err() != nil {
				t.Fatalf("got %v, Err %v", got, sub.Err())
			}
		}
		if e.Subscriptions() != 0 || e.EventNames() != nil {
			t.Fatalf("Subscriptions %d, EventNames %v", e.Subscriptions(), e.EventNames())
		}
	})
	t.Run("the event", func(t *testing.T) {
		var e events.Emitter
		s := events.On(context.Background(), &e, "job")
		p := events.On(context.Background(), &e, "jo*", events.Buffer(1))
		defer p.Cancel()
		e.RemoveAllListeners("job")
		if _, ok := <-s.C; ok || e.ListenerCount(events.EventError) != 1 || e.Subscriptions() != 1 {
			t.Fatalf("C open %v, error listeners %d (the pattern's), subscriptions %d", ok, e.ListenerCount(events.EventError), e.Subscriptions())
		}
	})
	t.Run("its error listener", func(t *testing.T) {
		var e events.Emitter
		s := events.On(context.Background(), &e, "job")
		defer s.Cancel()
		e.RemoveAllListeners(events.EventError)
		if !e.Emit("job", 1) || (<-s.C).Args[0] != 1 {
			t.Fatal("the subscription stopped receiving")
		}
		mustPanic(t, func() { e.Emit(events.EventError, io.EOF) })
	})
}

// A subscription to an event counts toward its max-listener warning, as
// Node's iterators do; its "error" listener does not.
func TestSubscriptionsCountTowardWarning(t *testing.T) {
	ws := captureWarnings(t)
	var e events.Emitter
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for range 11 {
		events.On(ctx, &e, "job")
	}
	if len(*ws) != 1 || (*ws)[0].Event != "job" || (*ws)[0].Count != 11 {
		t.Fatalf("warnings %v", *ws)
	}
}

// On+Off of an event's only listener allocates the listener and, now and
// then, a small array: not the event's slot and name table each time.
func TestOnOffOnlyListenerAllocs(t *testing.T) {
	var e events.Emitter
	nop := func(...any) {}
	if n := testing.AllocsPerRun(1000, func() { e.Off("x", e.On("x", nop)) }); n > 1.5 {
		t.Fatalf("On+Off allocates %v times", n)
	}
}

// A 'removeListener' listener that panics while a subscription removes its
// listeners does not keep the others registered: the subscription ends
// whole, C closes, then the panic goes on (Node's iterator stops removing
// at the throw).
func TestSubscriptionEndsDespitePanickingRemoveListener(t *testing.T) {
	var e events.Emitter
	e.On(events.EventRemoveListener, func(args ...any) {
		if args[0] == events.EventError {
			panic("observer failed")
		}
	})
	s := events.On(context.Background(), &e, "x")
	if v := mustPanic(t, s.Cancel); v != "observer failed" {
		t.Fatalf("panic %v", v)
	}
	if _, ok := <-s.C; ok {
		t.Fatal("C open")
	}
	if e.ListenerCount("x") != 0 || e.ListenerCount(events.EventError) != 0 || e.Subscriptions() != 0 {
		t.Fatalf("left: x %d, error %d, subscriptions %d", e.ListenerCount("x"), e.ListenerCount(events.EventError), e.Subscriptions())
	}
}
