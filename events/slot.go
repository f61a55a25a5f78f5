package events

import "sync/atomic"

// A slot holds one event's listeners.
//
// Emit reads them with no lock, and a change allocates nothing but the
// listener itself (and now and then a larger array): an add appends or
// prepends to a backing array, a removal stamps the listener, and a reader
// tells which listeners were registered at its instant by the emitter's
// sequence number.
//
// Every change (under Emitter.mu) takes the next sequence number, seq, and
// stores it last, after everything else it wrote: an add stamps the
// listener added at seq and writes it just outside the array's filled
// range, then widens the range; a removal stamps the listener removed at
// seq. A reader loads the sequence number, then the array and its range,
// and calls the listeners added at or before its number and not removed at
// or before it. So an emit keeps Node's snapshot rule (a listener added
// during it is not called, one removed during it still is), and racing
// emits each see the emitter as it was at one instant.
//
// Array elements are written once, outside every range a reader can have
// loaded, so readers never race with writers. When the removed listeners
// outnumber the registered ones by more than churnRoom, or an end of the
// array is full, the registered ones are copied to a new array, made at
// the change's sequence number, with room at both ends; the adds and
// removals since the last copy pay for it, so every change costs O(1)
// amortised.
type slot struct {
	name    string
	created uint64 // sequence number of the add that made the event (again)
	arr     atomic.Pointer[array]
	n       atomic.Int64 // registered listeners
	subs    atomic.Int64 // of which subscriptions' (On)

	// Guarded by Emitter.mu.
	lo, hi int  // arr's filled range
	user   int  // registered listeners the application added
	warned bool // the max-listener warning fired since user was last ≤ 1
}

// churnRoom is the room for adds, and for listeners removed since, that
// an event whose listeners come and go gets beyond twice its registered
// ones: a listener added and removed again and again (a request waiting
// for its reply, a subscription), beside permanent ones or alone (an
// emptied slot kept by registry.release), then allocates only itself on
// most adds. Removed listeners stay reachable until the next repack, so it
// is small.
const churnRoom = 8

// An array is a slot's backing array at one size.
type array struct {
	ls   []*listener
	span atomic.Uint64 // the filled range, lo<<32 | hi; it only grows
	made uint64        // sequence number of the change that made it
}

// A listener is one registration.
type listener struct {
	fn       Listener
	slot     *slot
	id       ID
	added    uint64        // sequence number of the add
	removed  atomic.Uint64 // sequence number of the removal; 0 while registered
	fired    atomic.Bool   // once listeners: set by the one emit that runs it
	once     bool
	internal bool // added by this package (On's and Once's "error" listeners)
	observer bool // feeds a subscription (On), which Emitter.observers has
}

// A view is an event's listeners as they were at sequence number seq.
type view struct {
	ls  []*listener // a range of an array, with listeners added or removed since
	seq uint64
}

// holds reports whether l was registered at v's instant.
func (v view) holds(l *listener) bool {
	r := l.removed.Load()
	return l.added <= v.seq && (r == 0 || r > v.seq)
}

// view returns s's listeners as of seq, a sequence number the reader
// loaded first. An array made after seq is read as of the change that made
// it, which happened while the reader read: everything it holds was written
// before it was published.
func (s *slot) view(seq uint64) view {
	a := s.arr.Load()
	if a == nil {
		return view{}
	}
	sp := a.span.Load()
	return view{ls: a.ls[sp>>32 : uint32(sp)], seq: max(seq, a.made)}
}

// The writers' side; Emitter.mu is held, seq is the change's number, and
// the caller stores it after.

// add puts l at the end of the listeners, or at the front.
func (s *slot) add(l *listener, seq uint64, front bool) {
	a := s.arr.Load()
	full := a == nil || (front && s.lo == 0) || (!front && s.hi == len(a.ls))
	if full {
		a = s.repack(seq, front)
	}
	if front {
		s.lo--
		a.ls[s.lo] = l
	} else {
		a.ls[s.hi] = l
		s.hi++
	}
	a.span.Store(uint64(s.lo)<<32 | uint64(s.hi))
	if full {
		s.arr.Store(a)
	}
	s.n.Add(1)
	if l.observer {
		s.subs.Add(1)
	}
}

// repack copies the registered listeners to a new array that has room for
// as many again plus two (churnRoom after the first array), three quarters
// of it at the end that ran out (the front for a prepend), and returns it,
// not yet published.
func (s *slot) repack(seq uint64, front bool) *array {
	n := int(s.n.Load())
	size := 2*n + 2
	if s.arr.Load() != nil {
		size = 2*n + churnRoom
	}
	a := &array{ls: make([]*listener, size), made: seq}
	free := len(a.ls) - n
	lo := free / 4
	if front {
		lo = free - free/4
	}
	hi := lo
	if old := s.arr.Load(); old != nil && s.hi-s.lo == n {
		// None removed: a plain copy, without reading each listener.
		hi += copy(a.ls[lo:], old.ls[s.lo:s.hi])
	} else if old != nil {
		for _, l := range old.ls[s.lo:s.hi] {
			if l.removed.Load() == 0 {
				a.ls[hi] = l
				hi++
			}
		}
	}
	s.lo, s.hi = lo, hi
	a.span.Store(uint64(lo)<<32 | uint64(hi))
	return a
}

// removed accounts for the removal of l, which the caller has stamped, and
// repacks when the removed listeners outnumber the registered ones by more
// than churnRoom. It
// reports whether s is left empty, to be dropped.
func (s *slot) removed(l *listener, seq uint64) (empty bool) {
	n := s.n.Add(-1)
	if l.observer {
		s.subs.Add(-1)
	}
	if !l.internal {
		s.user--
	}
	if s.user <= 1 {
		// Node keeps the warned flag on the array it holds for two or more
		// listeners, and lets go of that array when one is left.
		s.warned = false
	}
	if n == 0 {
		return true
	}
	if s.hi-s.lo > 2*int(n)+churnRoom {
		s.arr.Store(s.repack(seq, false))
	}
	return false
}
