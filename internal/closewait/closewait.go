// Package closewait is how a Fetcher or a Fleet waits, in Close, for the
// goroutines it started that run code it does not control (a Store, an
// HTTP transport, OnEvent, a Redis client): at most until a deadline,
// after which they are abandoned, and counted so that Close can say so.
package closewait

import (
	"sync"
	"time"
)

// Group counts running goroutines. Its zero value is ready to use.
type Group struct {
	mu     sync.Mutex
	closed bool
	n      int
	idle   chan struct{} // closed when n reaches 0, while Wait waits
}

// Add counts a goroutine about to start, unless the Group is closed:
// then it counts nothing and returns false, and the goroutine must not
// start. Done ends what Add counted.
func (g *Group) Add() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.n++
	return true
}

// Done ends a goroutine Add counted.
func (g *Group) Done() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.n--
	if g.n == 0 && g.idle != nil {
		close(g.idle)
		g.idle = nil
	}
}

// Go runs fn on a goroutine of its own, counted, unless the Group is
// closed; it reports whether it did.
func (g *Group) Go(fn func()) bool {
	if !g.Add() {
		return false
	}
	go func() {
		defer g.Done()
		fn()
	}()
	return true
}

// Running returns how many goroutines are counted.
func (g *Group) Running() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.n
}

// Close makes Add refuse from now on.
func (g *Group) Close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

// Wait waits until no goroutine is counted or deadline passes, and
// returns how many are still running.
func (g *Group) Wait(deadline time.Time) int {
	g.mu.Lock()
	if g.n == 0 {
		g.mu.Unlock()
		return 0
	}
	if g.idle == nil {
		g.idle = make(chan struct{})
	}
	idle := g.idle
	g.mu.Unlock()
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-idle:
	case <-t.C:
	}
	return g.Running()
}
