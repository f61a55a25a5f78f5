package ocspfetch

import "time"

// What the tests outside the package (with a real fleet) reach inside it
// for.

// NewWithoutLoop is New without the background loop: RunDue drives it.
func NewWithoutLoop(o Options) (*Fetcher, error) { return newFetcherWith(o) }

// RunDue lets the fetches in progress end (so that none is joined instead
// of started), starts what is due at now, as the loop would, and waits for
// it; it returns how many fetches it started, or -1 if they did not end
// within 30 s. (Safe on any goroutine: it does not fail the test itself.)
func RunDue(f *Fetcher, now time.Time) int {
	t := time.NewTimer(30 * time.Second)
	defer t.Stop()
	wait := func(flights []*flight) bool {
		for _, fl := range flights {
			select {
			case <-fl.done:
			case <-t.C:
				return false
			}
		}
		return true
	}
	var inFlight []*flight
	for _, e := range f.certs.all() {
		e.mu.Lock()
		if e.flight != nil {
			inFlight = append(inFlight, e.flight)
		}
		e.mu.Unlock()
	}
	if !wait(inFlight) {
		return -1
	}
	started, _ := f.runDue(now)
	if !wait(started) {
		return -1
	}
	return len(started)
}
