// Package testevents records the events a Fetcher hands its OnEvent, for
// tests to look through and wait on.
package testevents

import (
	"sync"
	"testing"
	"time"
)

// Recorder collects events of type E, whose kinds are of type K. It is
// safe for concurrent use.
type Recorder[E any, K comparable] struct {
	kind   func(E) K
	mu     sync.Mutex
	events []E
	added  chan struct{}
}

// New returns a Recorder that tells an event's kind with kind.
func New[E any, K comparable](kind func(E) K) *Recorder[E, K] {
	return &Recorder[E, K]{kind: kind, added: make(chan struct{}, 1)}
}

// OnEvent records e: an OnEvent option.
func (r *Recorder[E, K]) OnEvent(e E) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	select {
	case r.added <- struct{}{}:
	default:
	}
}

// Kinds returns the kinds of the events recorded, in order.
func (r *Recorder[E, K]) Kinds() []K {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := make([]K, 0, len(r.events))
	for _, e := range r.events {
		k = append(k, r.kind(e))
	}
	return k
}

// Count returns how many events match.
func (r *Recorder[E, K]) Count(match func(E) bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if match(e) {
			n++
		}
	}
	return n
}

// Last returns the last event that matches, false for none.
func (r *Recorder[E, K]) Last(match func(E) bool) (E, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.events) - 1; i >= 0; i-- {
		if match(r.events[i]) {
			return r.events[i], true
		}
	}
	var zero E
	return zero, false
}

// Wait waits until n events match (a deadlock guard of 10 s, failing t
// with what, not a timed assertion) and returns the last.
func (r *Recorder[E, K]) Wait(t testing.TB, n int, what string, match func(E) bool) E {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for r.Count(match) < n {
		select {
		case <-r.added:
		case <-deadline:
			t.Fatalf("no %d %s events within 10 s; have %v", n, what, r.Kinds())
		}
	}
	e, _ := r.Last(match)
	return e
}
