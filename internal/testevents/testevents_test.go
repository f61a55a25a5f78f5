package testevents

import "testing"

type event struct {
	kind   string
	source string
}

// TestRecorder: counts, the last match, kinds in order, and a wait that
// returns once the events it waits for came from another goroutine.
func TestRecorder(t *testing.T) {
	r := New(func(e event) string { return e.kind })
	is := func(k string) func(event) bool { return func(e event) bool { return e.kind == k } }
	r.OnEvent(event{"a", "x"})
	r.OnEvent(event{"b", "x"})
	r.OnEvent(event{"a", "y"})
	if e, ok := r.Last(is("a")); !ok || e.source != "y" || r.Count(is("a")) != 2 || r.Count(is("c")) != 0 {
		t.Fatalf("%v %v, %d", e, ok, r.Count(is("a")))
	}
	if _, ok := r.Last(is("c")); ok {
		t.Fatal("found what was not recorded")
	}
	if k := r.Kinds(); len(k) != 3 || k[0] != "a" || k[1] != "b" || k[2] != "a" {
		t.Fatalf("kinds %v", k)
	}
	go func() {
		for range 2 {
			r.OnEvent(event{"c", "z"})
		}
	}()
	if e := r.Wait(t, 2, "c", is("c")); e.kind != "c" || r.Count(is("c")) != 2 {
		t.Fatalf("%v", e)
	}
}
