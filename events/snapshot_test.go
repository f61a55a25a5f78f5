package events_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tlsemit/tlsemit/events"
)

// EmitSnapshot calls the listeners that were there when the snapshot was
// taken and are still there now, in the current order, and runs a Once
// listener only once across snapshot and plain emits.
func TestEmitSnapshot(t *testing.T) {
	var e events.Emitter
	var got []string
	rec := func(name string) events.Listener { return func(...any) { got = append(got, name) } }

	a := e.On("x", rec("a"))
	e.On("x", rec("b"))
	e.Once("x", rec("once"))
	snap := e.Snapshot("x")
	if snap.Len() != 3 || snap.Event() != "x" {
		t.Fatalf("Snapshot: len %d event %q", snap.Len(), snap.Event())
	}
	e.On("x", rec("late"))               // added after: skipped
	e.PrependListener("x", rec("front")) // added after: skipped
	e.Off("x", a)                        // removed after: not called

	if !e.EmitSnapshot(snap) {
		t.Fatal("EmitSnapshot reported no call")
	}
	if diff := cmp.Diff([]string{"b", "once"}, got); diff != "" {
		t.Errorf("first EmitSnapshot (-want +got):\n%s", diff)
	}
	got = nil
	e.EmitSnapshot(snap)
	if diff := cmp.Diff([]string{"b"}, got); diff != "" {
		t.Errorf("second EmitSnapshot: the once listener ran again (-want +got):\n%s", diff)
	}

	var zero events.Snapshot
	if e.EmitSnapshot(zero) {
		t.Error("the zero Snapshot called something")
	}
	e.RemoveAllListeners("x")
	if e.EmitSnapshot(snap) {
		t.Error("EmitSnapshot called listeners that were all removed")
	}
}

// A snapshot taken with no subscriber and no listener costs nothing.
func TestSnapshotAllocs(t *testing.T) {
	var e events.Emitter
	e.On("x", func(...any) {})
	if n := testing.AllocsPerRun(100, func() { _ = e.Snapshot("x") }); n != 0 {
		t.Errorf("Snapshot allocates %v times", n)
	}
}
