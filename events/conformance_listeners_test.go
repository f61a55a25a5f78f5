package events_test

import (
	"testing"

	"github.com/tlsemit/tlsemit/events"
)

// TestNodeEventEmitterListeners ports test-event-emitter-listeners.js. Go
// funcs are not comparable, so the test tells listeners apart by calling them.
func TestNodeEventEmitterListeners(t *testing.T) {
	var e events.Emitter
	var got []string
	l := func(name string) events.Listener { return func(...any) { got = append(got, name) } }
	e.On("foo", l("1"))
	ls := e.Listeners("foo")
	if len(ls) != 1 {
		t.Fatalf("len = %d", len(ls))
	}
	e.RemoveAllListeners("foo")
	if n := len(e.Listeners("foo")); n != 0 {
		t.Fatalf("after removal len = %d", n)
	}
	if len(ls) != 1 {
		t.Fatal("the returned slice is not a copy")
	}

	e.On("foo", l("1"))
	ls = e.Listeners("foo")
	e.On("foo", l("2"))
	if len(ls) != 1 || len(e.Listeners("foo")) != 2 {
		t.Fatal("Listeners is not a snapshot copy")
	}
	// Once listeners appear as themselves, in order.
	e.Once("foo", l("3"))
	for _, fn := range e.Listeners("foo") {
		fn()
	}
	if want := "123"; joined(got) != want {
		t.Fatalf("called %v, want %s", got, want)
	}
	if e.ListenerCount("foo") != 3 {
		t.Fatal("calling Listeners' result removed the once listener")
	}
	var empty events.Emitter
	if empty.Listeners("x") != nil {
		t.Fatal("Listeners of an empty emitter is not empty")
	}
}

func joined(s []string) string {
	out := ""
	for _, x := range s {
		out += x
	}
	return out
}
