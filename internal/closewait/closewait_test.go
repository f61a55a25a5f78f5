package closewait

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestGroup: goroutines are counted until they end; Wait gives up at its
// deadline and says how many still run, or returns as the last ends;
// after Close nothing starts.
func TestGroup(t *testing.T) {
	var g Group
	if n := g.Wait(time.Now().Add(time.Hour)); n != 0 {
		t.Fatalf("an empty group waits: %d", n)
	}
	release := make(chan struct{})
	for range 2 {
		if !g.Go(func() { <-release }) {
			t.Fatal("refused before Close")
		}
	}
	if n := g.Running(); n != 2 {
		t.Fatalf("%d running", n)
	}
	g.Close()
	if g.Go(func() { t.Error("started after Close") }) || g.Add() {
		t.Fatal("accepted after Close")
	}
	if n := g.Wait(time.Now()); n != 2 {
		t.Fatalf("Wait at its deadline: %d still running, want 2", n)
	}
	close(release)
	if n := g.Wait(time.Now().Add(time.Hour)); n != 0 { // returns as the last ends, not at the deadline
		t.Fatalf("%d still running", n)
	}
}
