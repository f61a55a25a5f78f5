package events_test

// Benchmarks of Emit and On+Off, with the same shapes on olebedev/emitter's
// callback path (a middleware listener with FlagVoid|FlagSync: delivery
// runs in Emit, nothing is sent on its channel) for comparison. Node's
// emit loop for the same shapes is testdata/bench.js.

import (
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

func BenchmarkOnOff(b *testing.B) {
	var e events.Emitter
	e.On("data", nop) // the event stays: measure the listener, not the name
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
