package ocspfetch

import "time"

// What the tests outside the package (with a real fleet) reach inside it
// for.

// NewWithoutLoop is New without the background loop: RunDue drives it.
func NewWithoutLoop(o Options) (*Fetcher, error) { return newFetcherWith(o) }

// RunDue lets the fetches in progress finish, starts what is due at now,
// as the loop would, and waits for it; it returns how many it started, or
// -1 if they did not finish within 30 s.
func RunDue(f *Fetcher, now time.Time) int {
	deadline := time.Now().Add(30 * time.Second)
	for {
		f.lifeMu.Lock()
		n := f.fetches
		f.lifeMu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			return -1
		}
		time.Sleep(time.Millisecond)
	}
	flights, _ := f.runDue(now)
	for _, fl := range flights {
		select {
		case <-fl.done:
		case <-time.After(time.Until(deadline)):
			return -1
		}
	}
	return len(flights)
}
