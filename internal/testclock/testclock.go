// Package testclock is a clock for tests that moves only when told: an
// Options.Now for a Fetcher whose refreshes, hours apart, then run in
// milliseconds.
package testclock

import (
	"sync"
	"time"
)

// Clock is a time that moves only by Advance. It is safe for concurrent
// use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// New returns a Clock at the real time now.
func New() *Clock { return &Clock{t: time.Now()} }

// Now returns the Clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the Clock on by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
