package fleet

import "time"

// clock is the fleet's time: when ticket-key slots begin, when a failing
// feature probes Redis again, how long a staple has left. Redis calls keep
// real deadlines. Tests replace it (export_test.go), so that rotation runs
// through hours of slots without waiting for them.
type clock interface {
	Now() time.Time
	// NewTimer returns a stopped timer; Reset arms it.
	NewTimer() timer
}

// timer is the part of *time.Timer the fleet uses.
type timer interface {
	C() <-chan time.Time
	Reset(d time.Duration)
	Stop()
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) NewTimer() timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return realTimer{t}
}

type realTimer struct{ t *time.Timer }

func (t realTimer) C() <-chan time.Time   { return t.t.C }
func (t realTimer) Reset(d time.Duration) { t.t.Reset(d) }
func (t realTimer) Stop()                 { t.t.Stop() }
