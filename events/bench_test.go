package events_test

// Benchmarks of Emit and On+Off, with the same shapes on olebedev/emitter's
// callback path (a middleware listener with FlagVoid|FlagSync: delivery
// runs in Emit, nothing is sent on its channel) for comparison, and of
// registration at scale. Node's loops for the same shapes are
// testdata/bench.js.

import (
	"strconv"
	"testing"

	oe "github.com/olebedev/emitter"

	"github.com/tlsemit/tlsemit/events"
)

var sink int

func nop(args ...any) { sink += len(args) }

func BenchmarkEmit0Listeners(b *testing.B) {
	var e events.Emitter
	e.On("other", nop)
	b.ReportAllocs()
	for b.Loop() {
		e.Emit("data")
	}
}

func BenchmarkEmit1Listener0Args(b *testing.B) {
	var e events.Emitter
	e.On("data", nop)
	b.ReportAllocs()
	for b.Loop() {
		e.Emit("data")
	}
}

func BenchmarkEmit1Listener2Args(b *testing.B) {
	var e events.Emitter
	e.On("data", nop)
	b.ReportAllocs()
	for b.Loop() {
		e.Emit("data", 1, "x")
	}
}

func BenchmarkEmit10Listeners(b *testing.B) {
	var e events.Emitter
	for range 10 {
		e.On("data", nop)
	}
	b.ReportAllocs()
	for b.Loop() {
		e.Emit("data", 1, "x")
	}
}

// BenchmarkOnOff: a listener added and removed beside a permanent one.
func BenchmarkOnOff(b *testing.B) {
	var e events.Emitter
	e.On("data", nop) // the event stays: measure the listener, not the name
	b.ReportAllocs()
	for b.Loop() {
		id := e.On("data", nop)
		e.Off("data", id)
	}
}

// BenchmarkOnOffOnlyListener: the event's only listener added and removed,
// the case users hit (a request waiting for its reply, a subscription): the
// event itself comes and goes with it.
func BenchmarkOnOffOnlyListener(b *testing.B) {
	var e events.Emitter
	b.ReportAllocs()
	for b.Loop() {
		id := e.On("data", nop)
		e.Off("data", id)
	}
}

// olebedevCallback is olebedev's callback path: the middleware is the
// listener, and FlagVoid|FlagSync keep delivery synchronous and unsent.
func olebedevCallback(ev *oe.Event) {
	ev.Flags |= oe.FlagVoid | oe.FlagSync
	sink += len(ev.Args)
}

func BenchmarkOlebedevEmit0Listeners(b *testing.B) {
	e := oe.New(0)
	e.On("other", olebedevCallback)
	b.ReportAllocs()
	for b.Loop() {
		<-e.Emit("data")
	}
}

func BenchmarkOlebedevEmit1Listener0Args(b *testing.B) {
	e := oe.New(0)
	e.On("data", olebedevCallback)
	b.ReportAllocs()
	for b.Loop() {
		<-e.Emit("data")
	}
}

func BenchmarkOlebedevEmit1Listener2Args(b *testing.B) {
	e := oe.New(0)
	e.On("data", olebedevCallback)
	b.ReportAllocs()
	for b.Loop() {
		<-e.Emit("data", 1, "x")
	}
}

func BenchmarkOlebedevEmit10Listeners(b *testing.B) {
	e := oe.New(0)
	for range 10 {
		e.On("data", olebedevCallback)
	}
	b.ReportAllocs()
	for b.Loop() {
		<-e.Emit("data", 1, "x")
	}
}

func BenchmarkOlebedevOnOff(b *testing.B) {
	e := oe.New(0)
	e.On("data", olebedevCallback)
	b.ReportAllocs()
	for b.Loop() {
		ch := e.On("data", olebedevCallback)
		e.Off("data", ch)
	}
}

// The scale benchmarks run at two sizes, so that growth shows: an op at
// n=100000 takes 10× the time of one at n=10000 when the cost per
// registration does not grow. Each op starts from a new emitter with no
// limit (the warning is not what is measured).
var scaleSizes = []int{10_000, 100_000}

func benchScale(b *testing.B, run func(b *testing.B, n int)) {
	for _, n := range scaleSizes {
		b.Run("n="+strconv.Itoa(n), func(b *testing.B) {
			b.ReportAllocs()
			run(b, n)
		})
	}
}

func newUnlimited() *events.Emitter {
	e := new(events.Emitter)
	e.SetMaxListeners(0)
	return e
}

// names returns n distinct event names, made before the timing starts.
func names(prefix string, n int) []string {
	ns := make([]string, n)
	for i := range ns {
		ns[i] = prefix + strconv.Itoa(i)
	}
	return ns
}

// BenchmarkScaleOnOneEvent: on('x') n times.
func BenchmarkScaleOnOneEvent(b *testing.B) {
	benchScale(b, func(b *testing.B, n int) {
		for b.Loop() {
			e := newUnlimited()
			for range n {
				e.On("x", nop)
			}
		}
	})
}

// BenchmarkScaleDistinctNames: on(name) for n distinct names.
func BenchmarkScaleDistinctNames(b *testing.B) {
	benchScale(b, func(b *testing.B, n int) {
		ns := names("event:", n)
		for b.Loop() {
			e := newUnlimited()
			for _, name := range ns {
				e.On(name, nop)
			}
		}
	})
}

// BenchmarkScaleOffNewestFirst: n listeners on one event (not timed), then
// each removed, newest first: the usual teardown order.
func BenchmarkScaleOffNewestFirst(b *testing.B) {
	benchScale(b, func(b *testing.B, n int) {
		ids := make([]events.ID, n)
		for b.Loop() {
			b.StopTimer()
			e := newUnlimited()
			for i := range ids {
				ids[i] = e.On("x", nop)
			}
			b.StartTimer()
			for i := n - 1; i >= 0; i-- {
				e.Off("x", ids[i])
			}
		}
	})
}

// BenchmarkScaleOnceReply: Node's request/reply idiom, once('reply:'+id)
// for n requests in flight, then each reply emitted.
func BenchmarkScaleOnceReply(b *testing.B) {
	benchScale(b, func(b *testing.B, n int) {
		ns := names("reply:", n)
		for b.Loop() {
			e := newUnlimited()
			for _, name := range ns {
				e.Once(name, nop)
			}
			for _, name := range ns {
				e.Emit(name, name)
			}
		}
	})
}
