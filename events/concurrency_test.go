package events_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tlsemit/tlsemit/events"
)

// TestConcurrentUse hammers one emitter from several goroutines with every
// kind of call, including subscriptions, under -race.
func TestConcurrentUse(t *testing.T) {
	var e events.Emitter
	e.SetMaxListeners(0)
	var calls atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Go(func() {
			for i := range 300 {
				switch (g + i) % 6 {
				case 0:
					id := e.On("x", func(...any) { calls.Add(1) })
					e.Emit("x", i)
					e.Off("x", id)
				case 1:
					e.Once("x", func(...any) { calls.Add(1) })
					e.Emit("x")
				case 2:
					e.PrependListener("y", func(...any) { e.Emit("x") })
					e.Emit("y")
					e.RemoveAllListeners("y")
				case 3:
					s := events.On(ctx, &e, "x*")
					e.Emit("x1", i)
					s.Cancel()
					drain(s)
				case 4:
					_ = e.EventNames()
					_ = e.Listeners("x")
					_ = e.ListenerCount("x")
				case 5:
					c, cc := context.WithCancel(ctx)
					s := events.On(c, &e, "z", events.Buffer(0))
					cc()
					drain(s)
				}
			}
		})
	}
	wg.Wait()
	if calls.Load() == 0 {
		t.Fatal("no listener ran")
	}
	e.RemoveAllListeners()
	if n := e.EventNames(); n != nil {
		t.Fatalf("left: %v", n)
	}
}

// TestReentrantFromOtherGoroutines: a listener waits for another goroutine
// that calls every method of the emitter; no lock is held while it runs.
func TestReentrantFromOtherGoroutines(t *testing.T) {
	var e events.Emitter
	ran := false
	e.On("a", func(...any) {
		done := make(chan struct{})
		go func() {
			defer close(done)
			id := e.On("a", func(...any) {})
			e.Once("b", func(...any) { ran = true })
			e.Emit("b")
			e.Off("a", id)
			e.RemoveAllListeners("c")
			e.SetMaxListeners(20)
			_ = e.GetMaxListeners()
			s := events.On(context.Background(), &e, "a")
			s.Cancel()
		}()
		<-done
	})
	e.Emit("a")
	if !ran || e.ListenerCount("a") != 1 || e.GetMaxListeners() != 20 {
		t.Fatalf("ran %v, count %d, max %d", ran, e.ListenerCount("a"), e.GetMaxListeners())
	}
}

// TestPanickingListener: the panic leaves Emit, later listeners of that emit
// do not run, and the emitter is fully usable afterwards.
func TestPanickingListener(t *testing.T) {
	var e events.Emitter
	var r recorder
	e.On("a", r.fn("first"))
	bad := e.On("a", func(...any) { panic("listener failed") })
	e.On("a", r.fn("never"))
	if v := mustPanic(t, func() { e.Emit("a") }); v != "listener failed" {
		t.Fatalf("panic %v", v)
	}
	if joined(r.calls) != "first" {
		t.Fatalf("calls %v", r.calls)
	}
	// Still usable, from another goroutine too (no lock left held).
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.Off("a", bad)
		e.On("b", r.fn("b"))
		e.Emit("a")
		e.Emit("b")
		e.RemoveAllListeners("b")
	}()
	<-done
	if joined(r.calls) != "firstfirstneverb" || e.ListenerCount("b") != 0 {
		t.Fatalf("calls %v", r.calls)
	}
	// A panicking once listener is gone.
	e.Once("c", func(...any) { panic("once") })
	mustPanic(t, func() { e.Emit("c") })
	if e.ListenerCount("c") != 0 || e.Emit("c") {
		t.Fatal("panicking once listener still registered")
	}
}

// TestOnceRacingEmits: emits racing on many goroutines run each once
// listener exactly once.
func TestOnceRacingEmits(t *testing.T) {
	for range 20 {
		var e events.Emitter
		e.SetMaxListeners(0)
		const n = 50
		var counts [n]atomic.Int32
		for i := range n {
			e.Once("go", func(...any) { counts[i].Add(1) })
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range 8 {
			wg.Go(func() {
				<-start
				e.Emit("go")
			})
		}
		close(start)
		wg.Wait()
		for i := range counts {
			if c := counts[i].Load(); c != 1 {
				t.Fatalf("once listener %d ran %d times", i, c)
			}
		}
		if e.ListenerCount("go") != 0 {
			t.Fatal("once listeners left")
		}
	}
}

// An add waiting on its 'newListener' listeners while RemoveAllListeners
// empties the emitter completes, and its listener is registered and
// removable.
func TestAddAcrossRemoveAll(t *testing.T) {
	var e events.Emitter
	e.On("a", func(...any) {})
	e.Once(events.EventNewListener, func(...any) { e.RemoveAllListeners() })
	id := e.On("b", func(...any) {})
	if e.ListenerCount("b") != 1 || len(e.EventNames()) != 1 {
		t.Fatalf("after the add: %v", e.EventNames())
	}
	if !e.Off("b", id) || e.ListenerCount("b") != 0 {
		t.Fatal("the listener added across RemoveAllListeners cannot be removed")
	}
}
