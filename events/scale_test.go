package events_test

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tlsemit/tlsemit/events"
)

// allocatedPerOp returns the bytes allocated by op(i) for i in [from, to),
// per call.
func allocatedPerOp(from, to int, op func(i int)) float64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := from; i < to; i++ {
		op(i)
	}
	runtime.ReadMemStats(&after)
	return float64(after.TotalAlloc-before.TotalAlloc) / float64(to-from)
}

// TestRegistrationCostDoesNotGrow: what a registration, a new event name or
// a removal allocates does not grow with what the emitter already holds.
// (The copy-on-write emitter copied the whole list or name table on every
// change: at 20,000 listeners each On allocated 160 KB.) Memory, not time,
// is measured, so the test does not depend on the machine's load; the
// benchmarks (BenchmarkScale…) measure the time.
func TestRegistrationCostDoesNotGrow(t *testing.T) {
	nop := func(...any) {}
	const small, large = 1_000, 20_000
	cases := []struct {
		name string
		// grow makes an emitter ready for n operations, and returns the
		// operation.
		grow func(e *events.Emitter, n int) func(i int)
	}{
		{"On, one event", func(e *events.Emitter, n int) func(int) {
			return func(int) { e.On("x", nop) }
		}},
		{"On, distinct names", func(e *events.Emitter, n int) func(int) {
			return func(i int) { e.On("event:"+strconv.Itoa(i), nop) }
		}},
		{"Off, newest first", func(e *events.Emitter, n int) func(int) {
			ids := make([]events.ID, 2*n)
			for i := range ids {
				ids[i] = e.On("x", nop)
			}
			return func(i int) { e.Off("x", ids[len(ids)-1-i]) }
		}},
		{"Once then Emit, distinct names", func(e *events.Emitter, n int) func(int) {
			return func(i int) {
				name := "reply:" + strconv.Itoa(i)
				e.Once(name, nop)
				if i >= n/2 { // half the replies in flight, then one each
					e.Emit("reply:" + strconv.Itoa(i-n/2))
				}
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			per := func(n int) float64 {
				e := new(events.Emitter)
				e.SetMaxListeners(0)
				op := c.grow(e, n)
				allocatedPerOp(0, n, op) // the first n
				return allocatedPerOp(n, 2*n, op)
			}
			s, l := per(small), per(large)
			t.Logf("bytes per op: %.0f at %d, %.0f at %d", s, small, l, large)
			if l > 3*s+64 {
				t.Errorf("bytes per op grew from %.0f at %d to %.0f at %d", s, small, l, large)
			}
		})
	}
}

// TestEmitSnapshotAcrossRepacks: a listener that removes half of the
// event's listeners and adds twice as many, forcing the backing array to be
// compacted and then grown, leaves the emit in progress calling exactly the
// listeners it started with.
func TestEmitSnapshotAcrossRepacks(t *testing.T) {
	var e events.Emitter
	e.SetMaxListeners(0)
	const n = 100
	var ids []events.ID
	called := map[int]int{}
	listener := func(k int) events.Listener { return func(...any) { called[k]++ } }
	ids = append(ids, e.On("x", func(...any) {
		called[0]++
		for _, id := range ids[n/2:] {
			e.Off("x", id)
		}
		for k := range 2 * n {
			e.On("x", listener(1000+k))
		}
	}))
	for k := 1; k < n; k++ {
		ids = append(ids, e.On("x", listener(k)))
	}
	e.Emit("x")
	if len(called) != n {
		t.Fatalf("the emit called %d listeners, want the %d it started with", len(called), n)
	}
	for k := range n {
		if called[k] != 1 {
			t.Fatalf("listener %d called %d times", k, called[k])
		}
	}
	if got, want := e.ListenerCount("x"), n/2+2*n; got != want {
		t.Fatalf("ListenerCount = %d, want %d", got, want)
	}
}

// TestEmitSeesOneInstant: a goroutine replaces the only "error" listener
// again and again, adding the new one before removing the old, so at every
// instant there is one; racing emits must always find one (an emit that
// saw the removal but not the add would panic for an unhandled error).
func TestEmitSeesOneInstant(t *testing.T) {
	var e events.Emitter
	e.SetMaxListeners(0)
	nop := func(...any) {}
	id := e.On(events.EventError, nop)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			next := e.On(events.EventError, nop)
			e.Off(events.EventError, id)
			id = next
			if i%64 == 0 { // now and then a prepend and a new name too
				e.Off(events.EventError, e.PrependListener(events.EventError, nop))
				e.Off("other", e.On("other", nop))
			}
		}
	})
	boom := errors.New("boom")
	for range 20_000 {
		if !e.Emit(events.EventError, boom) {
			t.Fatal("an emit found no listener")
		}
	}
	close(stop)
	wg.Wait()
}

// TestEmptiedEventsKeepNodeOrder: an event whose last listener goes leaves
// EventNames, and comes back at the end when a listener is added again, as
// a key Node deletes and adds again; this holds while emptied events wait
// in the registry's small array (kept for their next listener) and when
// new names take their places there or go to the map.
func TestEmptiedEventsKeepNodeOrder(t *testing.T) {
	var e events.Emitter
	ids := map[string]events.ID{}
	var want []string // the live events in Node's order
	on := func(name string) {
		ids[name] = e.On(name, func(...any) {})
		want = append(want, name)
	}
	off := func(name string) {
		if !e.Off(name, ids[name]) {
			t.Fatalf("Off(%s) = false", name)
		}
		want = slices.DeleteFunc(want, func(n string) bool { return n == name })
	}
	check := func(step string) {
		t.Helper()
		if diff := cmp.Diff(want, e.EventNames(), cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("%s: EventNames (-want +got):\n%s", step, diff)
		}
		for _, name := range want {
			if !e.Emit(name) || e.ListenerCount(name) != 1 {
				t.Fatalf("%s: %s has no listener", step, name)
			}
		}
	}
	for i := range 8 {
		on(fmt.Sprint("e", i))
	}
	check("eight")
	for _, n := range []string{"e1", "e4", "e6"} {
		off(n)
	}
	check("three emptied")
	on("e4") // back, at the end
	check("e4 again")
	for i := 8; i < 12; i++ { // take the emptied places, then the map
		on(fmt.Sprint("e", i))
	}
	check("more names")
	off("e9")
	off("e0")
	on("e0")
	on("e1")
	check("churn across both")
	if e.Emit("e6") || e.Emit("e9") || e.ListenerCount("e6") != 0 {
		t.Fatal("an emptied event still has a listener")
	}
}
