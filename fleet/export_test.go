package fleet

import (
	"sync"
	"time"
)

// What the tests outside the package reach inside it for.

// FakeClock is a fleet clock that moves only when told, with timers that
// fire when it passes them: rotation runs through hours of slots without
// waiting for them. Redis calls keep real deadlines.
type FakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers map[*fakeTimer]struct{} // armed
	onSet  func(time.Time)         // also moves another clock (miniredis)
}

// NewFakeClock returns a clock at t.
func NewFakeClock(t time.Time) *FakeClock {
	return &FakeClock{now: t, timers: map[*fakeTimer]struct{}{}}
}

// Now is the clock's time.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// NewTimer returns a stopped timer on c.
func (c *FakeClock) NewTimer() timer {
	return &fakeTimer{c: c, ch: make(chan time.Time, 1)}
}

// Set moves the clock to t and fires the timers due by then.
func (c *FakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	var due []*fakeTimer
	for ft := range c.timers {
		if !ft.at.After(t) {
			due = append(due, ft)
			delete(c.timers, ft)
		}
	}
	onSet := c.onSet
	c.mu.Unlock()
	if onSet != nil {
		onSet(t)
	}
	for _, ft := range due {
		select {
		case ft.ch <- t:
		default:
		}
	}
}

// Advance moves the clock on by d.
func (c *FakeClock) Advance(d time.Duration) { c.Set(c.Now().Add(d)) }

// Armed returns how many timers wait on c: the loops parked until their
// next wake.
func (c *FakeClock) Armed() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// Next returns when the earliest armed timer fires, or false.
func (c *FakeClock) Next() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var at time.Time
	for ft := range c.timers {
		if at.IsZero() || ft.at.Before(at) {
			at = ft.at
		}
	}
	return at, !at.IsZero()
}

type fakeTimer struct {
	c  *FakeClock
	ch chan time.Time
	at time.Time
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Reset(d time.Duration) {
	select { // no stale tick, as time.Timer since Go 1.23
	case <-t.ch:
	default:
	}
	t.c.mu.Lock()
	t.at = t.c.now.Add(d)
	if d <= 0 {
		t.c.mu.Unlock()
		t.ch <- t.at
		return
	}
	t.c.timers[t] = struct{}{}
	t.c.mu.Unlock()
}

func (t *fakeTimer) Stop() {
	t.c.mu.Lock()
	delete(t.c.timers, t)
	t.c.mu.Unlock()
}

// SetClock makes f run on c; call it before anything else on f.
func SetClock(f *Fleet, c *FakeClock) { f.clock = c }

// TicketKeyName is the Redis key of f's ticket key for slot.
func TicketKeyName(f *Fleet, slot int64) string { return newRotator(f).name(slot) }

// Slot is the ticket-key slot of t for f.
func Slot(f *Fleet, t time.Time) int64 { return newRotator(f).slot(t) }

// Syncs counts the ticket-key polls f made (none before TicketKeys).
func Syncs(f *Fleet) int64 {
	f.mu.Lock()
	r := f.rot
	f.mu.Unlock()
	if r == nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.syncs
}
