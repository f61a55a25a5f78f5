package evhook_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tlsemit/tlsemit/events"
	"github.com/tlsemit/tlsemit/internal/evhook"
)

// Emit calls the listeners that were there when the snapshot was taken
// and are still there now, in the current order, and runs a Once listener
// only once across snapshot and plain emits.
func TestSnapshotEmit(t *testing.T) {
	var e events.Emitter
	var got []string
	rec := func(name string) events.Listener { return func(...any) { got = append(got, name) } }

	a := e.On("x", rec("a"))
	e.On("x", rec("b"))
	e.Once("x", rec("once"))
	snap := evhook.Take(&e, "x")
	if snap.Len() != 3 {
		t.Fatalf("Len = %d, want 3", snap.Len())
	}
	e.On("x", rec("late"))               // added after: skipped
	e.PrependListener("x", rec("front")) // added after: skipped
	e.Off("x", a)                        // removed after: not called
	if snap.Len() != 2 {
		t.Fatalf("Len after a removal = %d, want 2", snap.Len())
	}

	if !snap.Emit() {
		t.Fatal("Emit reported no call")
	}
	if diff := cmp.Diff([]string{"b", "once"}, got); diff != "" {
		t.Errorf("first Emit (-want +got):\n%s", diff)
	}
	got = nil
	snap.Emit()
	if diff := cmp.Diff([]string{"b"}, got); diff != "" {
		t.Errorf("second Emit: the once listener ran again (-want +got):\n%s", diff)
	}

	var zero evhook.Snapshot
	if zero.Emit() || zero.Len() != 0 {
		t.Error("the zero Snapshot called something")
	}
	e.RemoveAllListeners("x")
	if snap.Emit() || snap.Len() != 0 {
		t.Error("Emit called listeners that were all removed")
	}
	e.On("x", rec("new"))
	if snap.Emit() {
		t.Error("Emit called a listener of an event that was emptied and filled again")
	}
}

// A subscription observes: it is not in a snapshot, and Callbacks does
// not count it, while ListenerCount does (as Node counts events.on).
func TestSubscriptionsAreNotCallbacks(t *testing.T) {
	var e events.Emitter
	sub := events.On(context.Background(), &e, "x")
	defer sub.Cancel()
	if e.ListenerCount("x") != 1 || evhook.Callbacks(&e, "x") != 0 {
		t.Fatalf("ListenerCount %d, Callbacks %d: want 1, 0", e.ListenerCount("x"), evhook.Callbacks(&e, "x"))
	}
	snap := evhook.Take(&e, "x")
	if snap.Len() != 0 || snap.Emit("ignored") {
		t.Fatal("a snapshot holds the subscription")
	}
	called := false
	e.On("x", func(...any) { called = true })
	if evhook.Callbacks(&e, "x") != 1 {
		t.Fatalf("Callbacks = %d with one callback listener", evhook.Callbacks(&e, "x"))
	}
	snap = evhook.Take(&e, "x")
	if snap.Len() != 1 || !snap.Emit("a") || !called {
		t.Fatal("the callback listener is not in the snapshot")
	}
	select {
	case ev := <-sub.C:
		t.Fatalf("the subscription received %v from a snapshot", ev)
	default:
	}
}

// Taking a snapshot allocates nothing.
func TestSnapshotAllocs(t *testing.T) {
	var e events.Emitter
	e.On("x", func(...any) {})
	if n := testing.AllocsPerRun(100, func() { _ = evhook.Take(&e, "x") }); n != 0 {
		t.Errorf("Take allocates %v times", n)
	}
}
