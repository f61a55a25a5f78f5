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
	sub := events.On(context.Background(), &e, "conn*")
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

// An ErrorMonitor listener sees every "error" emission before the "error"
// listeners do, and does not handle it: with no "error" listener the emit
// still panics.
func ExampleErrorMonitor() {
	var e events.Emitter
	e.On(events.ErrorMonitor, func(args ...any) { fmt.Println("monitor saw:", args[0]) })
	func() {
		defer func() { fmt.Println("recovered:", recover()) }()
		e.Emit(events.EventError, errors.New("disk full"))
	}()
	e.On(events.EventError, func(args ...any) { fmt.Println("handled:", args[0]) })
	e.Emit(events.EventError, errors.New("disk full again"))
	// Output:
	// monitor saw: disk full
	// recovered: disk full
	// monitor saw: disk full again
	// handled: disk full again
}

// Node lets 'error' carry any value. A listener receives it as it was
// emitted; unhandled, it is wrapped in an *UnhandledError, Node's
// ERR_UNHANDLED_ERROR, which is what Emit panics with (an error value is
// panicked with as it is).
func ExampleUnhandledError() {
	var e events.Emitter
	id := e.On(events.EventError, func(args ...any) { fmt.Printf("listener got %q\n", args[0]) })
	e.Emit(events.EventError, "timeout")
	e.Off(events.EventError, id)

	defer func() {
		var ue *events.UnhandledError
		if err, ok := recover().(error); ok && errors.As(err, &ue) {
			fmt.Println(ue.Code(), ue.Context)
		}
	}()
	e.Emit(events.EventError, "timeout")
	// Output:
	// listener got "timeout"
	// ERR_UNHANDLED_ERROR timeout
}

// A listener's panic leaves Emit, as a throw leaves Node's emit: the
// listeners after it do not run in that emit. Recover around Emit; the
// emitter stays usable.
func ExampleEmitter_Emit_panic() {
	var e events.Emitter
	e.On("job", func(args ...any) { fmt.Println("logged job", args[0]) })
	bad := e.On("job", func(args ...any) { panic(fmt.Sprint("cannot run job ", args[0])) })
	e.On("job", func(args ...any) { fmt.Println("ran job", args[0]) })

	emit := func(args ...any) (err error) {
		defer func() {
			if v := recover(); v != nil {
				err = fmt.Errorf("a listener panicked: %v", v)
			}
		}()
		e.Emit("job", args...)
		return nil
	}
	fmt.Println(emit(1))
	e.Off("job", bad)
	fmt.Println(emit(2))
	// Output:
	// logged job 1
	// a listener panicked: cannot run job 1
	// logged job 2
	// ran job 2
	// <nil>
}

// RemoveAllListeners with names empties those events; with none, the whole
// emitter. A channel subscription to a removed event ends: its channel
// closes after what it had queued.
func ExampleEmitter_RemoveAllListeners() {
	var e events.Emitter
	e.On("data", func(...any) {})
	e.On("data", func(...any) {})
	e.On("end", func(...any) {})
	sub := events.On(context.Background(), &e, "close")
	e.Emit("close", "bye")

	e.RemoveAllListeners("data")
	fmt.Println(e.EventNames())
	e.RemoveAllListeners()
	fmt.Println(e.EventNames(), e.Emit("close"))
	for ev := range sub.C {
		fmt.Println("subscription got", ev.Args[0], "before it ended")
	}
	// Output:
	// [end close error]
	// [] false
	// subscription got bye before it ended
}

// EventNames lists the events that have listeners, in Node's order: names
// that are array indexes first, in numeric order, then the others in the
// order their first listener came, ErrorMonitor last. A subscription to an
// event is one of its listeners, and its "error" listener is there too.
func ExampleEmitter_EventNames() {
	var e events.Emitter
	nop := func(...any) {}
	e.On("data", nop)
	e.On(events.ErrorMonitor, nop)
	e.On("10", nop)
	e.On("2", nop)
	sub := events.On(context.Background(), &e, "job")
	defer sub.Cancel()
	fmt.Printf("%q\n", e.EventNames())
	// Output:
	// ["2" "10" "data" "job" "error" "events.errorMonitor"]
}

// PrependOnceListener puts a listener in front for one call.
func ExampleEmitter_PrependOnceListener() {
	var e events.Emitter
	e.On("request", func(args ...any) { fmt.Println("handle", args[0]) })
	e.PrependOnceListener("request", func(args ...any) { fmt.Println("first request:", args[0]) })
	e.Emit("request", "/a")
	e.Emit("request", "/b")
	// Output:
	// first request: /a
	// handle /a
	// handle /b
}

// 'newListener' is emitted before a listener is added, so a listener added
// from it (here B) comes before the one being added (A), as in Node's
// documentation of the event. It gets the event, the listener and its ID.
func ExampleEventNewListener() {
	var e events.Emitter
	e.Once(events.EventNewListener, func(args ...any) {
		if args[0] == "event" {
			e.On("event", func(...any) { fmt.Println("B") })
		}
	})
	e.On("event", func(...any) { fmt.Println("A") })
	e.Emit("event")
	// Output:
	// B
	// A
}

// Once ends with the first "error" emitted while it waits: the error is in
// Err, and nothing panics (Once's "error" listener handles it).
func ExampleOnce_error() {
	var conn events.Emitter
	ready := events.Once(context.Background(), &conn, "ready")
	conn.Emit(events.EventError, errors.New("connection refused"))
	r := <-ready
	fmt.Println(r.Args, r.Err)
	// Output:
	// [] connection refused
}

// Once ends when its context does, with the context's error, and its
// listeners are gone by then: the context is Node's abort signal.
func ExampleOnce_cancel() {
	var conn events.Emitter
	ctx, cancel := context.WithCancel(context.Background())
	ready := events.Once(ctx, &conn, "ready")
	cancel()
	r := <-ready
	fmt.Println(r.Err, conn.ListenerCount("ready"), conn.ListenerCount(events.EventError))
	// Output:
	// context canceled 0 0
}

// The port of `for await (const [job] of events.on(queue, 'job', {signal}))`:
// the subscription queues every job the reader has not taken yet, and ends
// when the context does (or on an "error"). Cancel, deferred, releases it
// however the loop ends.
func ExampleOn_cancel() {
	var queue events.Emitter
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	jobs := events.On(ctx, &queue, "job")
	defer jobs.Cancel()

	go func() {
		for i := 1; i <= 3; i++ {
			queue.Emit("job", i)
		}
	}()
	for ev := range jobs.C {
		fmt.Println("job", ev.Args[0])
		if ev.Args[0] == 3 {
			cancel() // the signal's abort
		}
	}
	fmt.Println("ended:", jobs.Err(), queue.ListenerCount("job"))
	// Output:
	// job 1
	// job 2
	// job 3
	// ended: context canceled 0
}

// Buffer bounds a subscription for a reader that may lose emissions but
// must cost the emitter no memory: C holds two, and the emissions that
// find it full are dropped and counted by Dropped. (Node's events.on, and
// On without Buffer, would queue all five.)
func ExampleBuffer() {
	var e events.Emitter
	ticks := events.On(context.Background(), &e, "tick", events.Buffer(2))
	for i := range 5 {
		e.Emit("tick", i)
	}
	ticks.Cancel() // what C holds can still be read
	for ev := range ticks.C {
		fmt.Println("tick", ev.Args[0])
	}
	fmt.Println("dropped:", ticks.Dropped())
	// Output:
	// tick 0
	// tick 1
	// dropped: 3
}
