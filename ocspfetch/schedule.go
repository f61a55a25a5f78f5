package ocspfetch

import (
	"container/heap"
	"sync"
	"time"
)

// scheduler keeps every entry in a min-heap by the time it is due (a
// refresh, a retry, or the idle check of a certificate never fetched), so
// that the background loop looks at the earliest only: O(log n) per
// change, whatever the number of certificates.
type scheduler struct {
	mu sync.Mutex
	h  dueHeap
}

type dueHeap []*entry

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h dueHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *dueHeap) Push(x any) {
	e := x.(*entry)
	e.index = len(*h)
	*h = append(*h, e)
}
func (h *dueHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.index = -1
	return e
}

// schedule makes e due at at, waking the loop if that is now the earliest.
func (f *Fetcher) schedule(e *entry, at time.Time) {
	s := &f.sched
	s.mu.Lock()
	if e.gone.Load() {
		s.mu.Unlock()
		return
	}
	e.due = at
	if e.index < 0 {
		heap.Push(&s.h, e)
	} else {
		heap.Fix(&s.h, e.index)
	}
	first := s.h[0] == e
	s.mu.Unlock()
	if first {
		f.poke()
	}
}

// poke wakes the loop to look at the earliest due time again.
func (f *Fetcher) poke() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// maxSleep bounds the loop's sleep, so that a clock that jumps (or a fake
// one in tests) is noticed within it.
const maxSleep = time.Minute

// loop is the Fetcher's one background goroutine: it starts what is due.
func (f *Fetcher) loop() {
	defer close(f.loopDone)
	t := time.NewTimer(maxSleep)
	defer t.Stop()
	for {
		_, d := f.runDue(f.now())
		t.Reset(d)
		select {
		case <-f.done:
			return
		case <-f.wake:
		case <-t.C:
		}
	}
}

// runDue takes the entries due at now out of the heap: an idle one is
// forgotten, one never fetched is checked again a day later, any other is
// refreshed (the fetch reschedules it). It returns the fetches started and
// how long until the next entry is due (at most maxSleep).
func (f *Fetcher) runDue(now time.Time) ([]*flight, time.Duration) {
	var started []*flight
	var idle []*entry
	for !f.closed.Load() {
		e := f.sched.popDue(now)
		if e == nil {
			break
		}
		e.mu.Lock()
		if e.used.Swap(false) {
			e.lastUsed = now
		}
		idleFor := now.Sub(e.lastUsed)
		e.mu.Unlock()
		switch {
		case idleFor > idleTimeout:
			idle = append(idle, e)
		case e.unfetched:
			f.schedule(e, now.Add(idleTimeout))
		default:
			// Looked at again if the fetch does not reschedule it (it
			// will, unless it joined one that is finishing).
			f.schedule(e, now.Add(fetchTimeout))
			started = append(started, f.startFlight(e, true))
		}
	}
	if len(idle) > 0 {
		f.certs.remove(idle)
		for _, e := range idle {
			e.cur.Store(nil) // handshakes that still find it look again
		}
	}
	next := maxSleep
	if at, ok := f.sched.next(); ok {
		next = min(max(at.Sub(now), time.Millisecond), maxSleep)
	}
	return started, next
}

// popDue removes and returns the earliest entry if it is due at now.
func (s *scheduler) popDue(now time.Time) *entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.h) == 0 || s.h[0].due.After(now) {
		return nil
	}
	return heap.Pop(&s.h).(*entry)
}

// next returns the earliest due time.
func (s *scheduler) next() (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.h) == 0 {
		return time.Time{}, false
	}
	return s.h[0].due, true
}
