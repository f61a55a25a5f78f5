package events_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/tlsemit/tlsemit/events"
)

func ExampleEmitter_On() {
	var e events.Emitter
	e.On("data", func(args ...any) { fmt.Println("first", args) })
	e.On("data", func(args ...any) { fmt.Println("second", args) })
	fmt.Println(e.Emit("data", 1, "x"))
	fmt.Println(e.Emit("nobody"))
	// Output:
	// first [1 x]
	// second [1 x]
	// true
	// false
}

func ExampleEmitter_Once() {
	var e events.Emitter
	e.Once("ready", func(...any) { fmt.Println("ready") })
	e.Emit("ready")
	e.Emit("ready")
	fmt.Println(e.ListenerCount("ready"))
	// Output:
	// ready
	// 0
}

func ExampleEmitter_PrependListener() {
	var e events.Emitter
	e.On("x", func(...any) { fmt.Println("added first") })
	e.PrependListener("x", func(...any) { fmt.Println("prepended") })
	e.Emit("x")
	// Output:
	// prepended
	// added first
}

func ExampleEmitter_Off() {
	var e events.Emitter
	id := e.On("tick", func(...any) { fmt.Println("tick") })
	e.Emit("tick")
	fmt.Println(e.Off("tick", id), e.Off("tick", id))
	e.Emit("tick")
	// Output:
	// tick
	// true false
}

func ExampleEmitter_Emit_error() {
	var e events.Emitter
	defer func() { fmt.Println("recovered:", recover()) }()
	e.Emit(events.EventError, errors.New("disk full")) // nobody listens: panics
	// Output:
	// recovered: disk full
}

func ExampleOnce() {
	var e events.Emitter
	// Once adds its listeners before it returns: an emission that follows,
	// from this goroutine or another, is not missed.
	listening := events.Once(context.Background(), &e, "listening")
	go e.Emit("listening", 8443)
	r := <-listening
	fmt.Println(r.Args, r.Err)
	// Output:
	// [8443] <nil>
}

func ExampleOn() {
	var e events.Emitter
	sub := events.On(context.Background(), &e, "conn*", 8)
	e.Emit("connect", "a")
	e.Emit("data", "ignored")
	e.Emit("connection", "b")
	e.Emit(events.EventError, errors.New("reset"))
	for ev := range sub.C {
		fmt.Println(ev.Name, ev.Args)
	}
	fmt.Println("ended:", sub.Err())
	// Output:
	// connect [a]
	// connection [b]
	// ended: reset
}

func ExampleSetWarningHandler() {
	prev := events.SetWarningHandler(func(w *events.MaxListenersExceededWarning) {
		fmt.Println("warning:", w.Event, w.Count)
	})
	defer events.SetWarningHandler(prev)
	var e events.Emitter
	e.SetMaxListeners(2)
	for range 4 {
		e.On("data", func(...any) {})
	}
	// Output:
	// warning: data 3
}

func ExampleEmitter_SetWarningHandler() {
	var e events.Emitter
	e.SetMaxListeners(1)
	// This emitter's warnings go here; without a handler they are discarded.
	e.SetWarningHandler(func(w *events.MaxListenersExceededWarning) {
		fmt.Println("possible leak:", w.Event, w.Count)
	})
	e.On("data", func(...any) {})
	e.On("data", func(...any) {})
	// Output:
	// possible leak: data 2
}
