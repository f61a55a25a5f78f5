package events

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"
)

// registry maps event names to their slots. The first few names live in a
// small copy-on-write array that Emit scans without hashing (most emitters
// have a handful of events), the rest in a sync.Map, whose loads take no
// lock and whose stores do not copy it: adding the hundred-thousandth name
// costs what adding the first did. A name in the map goes when the event's
// last listener does; a name in the array stays, empty, until its place is
// needed, so that an event whose only listener comes and goes (a request
// waiting for its reply, a subscription) costs no change to the registry.
// Writers hold Emitter.mu.
type registry struct {
	few   atomic.Pointer[fewNames]
	many  sync.Map // name → *slot
	nmany int      // entries in many
}

// fewNames is the array, and whether the map has names too.
type fewNames struct {
	slots []*slot // at most fewSlots
	more  bool    // many is not empty
}

const fewSlots = 8

// lookup returns event's slot, or nil.
func (r *registry) lookup(event string) *slot {
	if f := r.few.Load(); f != nil {
		for _, s := range f.slots {
			if s.name == event {
				return s
			}
		}
		if f.more {
			return r.lookupMany(event)
		}
	}
	return nil
}

// lookupMany is lookup's map part.
func (r *registry) lookupMany(event string) *slot {
	v, _ := r.many.Load(event)
	s, _ := v.(*slot)
	return s
}

// setFew publishes slots, and whether the map has names, as the array.
func (r *registry) setFew(slots []*slot) {
	r.few.Store(&fewNames{slots: slots, more: r.nmany > 0})
}

// fewSlots returns the array's slots.
func (r *registry) fewSlots() []*slot {
	if f := r.few.Load(); f != nil {
		return f.slots
	}
	return nil
}

// insert adds s under its name, which has no slot. In the array, it takes
// the place of an empty slot when there is no room.
func (r *registry) insert(s *slot) {
	few := r.fewSlots()
	if len(few) < fewSlots {
		r.setFew(append(slices.Clip(few), s))
		return
	}
	if i := slices.IndexFunc(few, func(o *slot) bool { return o.n.Load() == 0 }); i >= 0 {
		few = slices.Clone(few)
		few[i].arr.Store(nil)
		few[i] = s
		r.setFew(few)
		return
	}
	r.many.Store(s.name, s)
	if r.nmany++; r.nmany == 1 {
		r.setFew(few)
	}
}

// release accounts for s having lost its last listener: a slot in the
// array stays there, with its backing array (whose listeners are all
// removed) for the next add; one in the map is deleted.
func (r *registry) release(s *slot) {
	if slices.Contains(r.fewSlots(), s) {
		return
	}
	s.arr.Store(nil)
	r.delete(s)
}

// delete removes s.
func (r *registry) delete(s *slot) {
	few := r.fewSlots()
	if i := slices.Index(few, s); i >= 0 {
		r.setFew(slices.Delete(slices.Clone(few), i, i+1))
		return
	}
	r.many.Delete(s.name)
	if r.nmany--; r.nmany == 0 {
		r.setFew(few)
	}
}

// slots returns every slot, in no particular order.
func (r *registry) slots() []*slot {
	all := slices.Clone(r.fewSlots())
	if r.nmany > 0 {
		r.many.Range(func(_, v any) bool {
			all = append(all, v.(*slot))
			return true
		})
	}
	return all
}

// clear forgets every slot.
func (r *registry) clear() {
	r.few.Store(nil)
	r.many.Clear()
	r.nmany = 0
}

// named is an event name and the sequence number of the add that made it
// an event (slot.created), as EventNames reads them.
type named struct {
	name    string
	created uint64
}

// nodeOrder orders events as Node's eventNames does, which is JavaScript's
// property order: names that are array indexes ("0", "1", …) first in
// ascending numeric order, then the other names in the order they were
// added, then symbols (here ErrorMonitor, a Symbol in Node).
func nodeOrder(a, b named) int {
	ai, aIdx := arrayIndex(a.name)
	bi, bIdx := arrayIndex(b.name)
	switch {
	case aIdx && bIdx:
		return cmp.Compare(ai, bi)
	case aIdx != bIdx:
		if aIdx {
			return -1
		}
		return 1
	case (a.name == ErrorMonitor) != (b.name == ErrorMonitor):
		if a.name == ErrorMonitor {
			return 1
		}
		return -1
	}
	return cmp.Compare(a.created, b.created)
}

// arrayIndex reports whether name is a canonical array index in
// JavaScript (an integer in [0, 2³²-2] without leading zeros).
func arrayIndex(name string) (uint64, bool) {
	if name == "" || len(name) > 10 || (name[0] == '0' && len(name) > 1) {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, n < 1<<32-1
}
