package events

import (
	"slices"
	"sync"
	"sync/atomic"
)

// Listener is a function called with the arguments given to Emit.
type Listener func(args ...any)

// ID names one registration of a listener. Go funcs are not comparable, so
// where Node removes a listener by the function itself, Go removes it by the
// ID its registration returned.
type ID uint64

// An Emitter calls listeners when events are emitted, with Node's
// EventEmitter semantics. The zero value is ready to use. An Emitter must
// not be copied after first use.
//
// Emit reads the listeners without taking a lock, and no lock is held while
// a listener runs, so listeners may add, remove and emit from any
// goroutine. Adding or removing a listener, and adding an event name, cost
// about the same however many listeners and names the emitter already has
// (amortised O(1) per listener; a new name is a hash-trie insert).
type Emitter struct {
	mu  sync.Mutex // serializes every change; Emit never takes it
	reg registry
	seq atomic.Uint64 // the last change's sequence number (see slot)
	ids handles       // guarded by mu: the registered listeners by ID

	max    int                                // guarded by mu; meaningful when maxSet
	maxSet bool                               // guarded by mu
	warn   func(*MaxListenersExceededWarning) // guarded by mu; nil: the process-wide handler

	npat  atomic.Int32 // live pattern subscriptions; Emit skips the bus when 0
	nsubs atomic.Int32 // live subscriptions (Subscriptions)
	subMu sync.Mutex   // guards bus creation
	bus   *bus

	observers map[*listener]*Subscription // guarded by mu: the subscriptions' listeners
}

// view returns event's listeners at this instant. It is registry.lookup
// written out, which Emit's speed depends on.
func (e *Emitter) view(event string) view {
	seq := e.seq.Load()
	f := e.reg.few.Load()
	if f == nil {
		return view{}
	}
	for _, s := range f.slots {
		if s.name == event {
			return s.view(seq)
		}
	}
	if f.more {
		if s := e.reg.lookupMany(event); s != nil {
			return s.view(seq)
		}
	}
	return view{}
}

// has reports whether event has listeners.
func (e *Emitter) has(event string) bool {
	s := e.reg.lookup(event)
	return s != nil && s.n.Load() > 0
}

// On adds fn to the end of event's listeners (Node's on/addListener) and
// returns the registration's ID. Adding the same fn twice makes two
// registrations, as in Node.
func (e *Emitter) On(event string, fn Listener) ID { return e.add(event, fn, 0) }

// AddListener is On.
func (e *Emitter) AddListener(event string, fn Listener) ID { return e.add(event, fn, 0) }

// Once adds fn to the end of event's listeners for one call: it is removed
// before it runs, so an emit from inside fn does not call it again.
func (e *Emitter) Once(event string, fn Listener) ID { return e.add(event, fn, addOnce) }

// PrependListener adds fn to the front of event's listeners.
func (e *Emitter) PrependListener(event string, fn Listener) ID {
	return e.add(event, fn, addFront)
}

// PrependOnceListener adds fn to the front of event's listeners for one
// call.
func (e *Emitter) PrependOnceListener(event string, fn Listener) ID {
	return e.add(event, fn, addOnce|addFront)
}

// addMode says how add registers a listener.
type addMode uint8

const (
	addOnce     addMode = 1 << iota // removed before its one call
	addFront                        // prepended
	addInternal                     // made by this package: not counted for the max-listener warning
)

func (e *Emitter) add(event string, fn Listener, mode addMode) ID {
	if fn == nil {
		panic("events: nil listener for " + event)
	}
	l := &listener{fn: fn, once: mode&addOnce != 0, internal: mode&addInternal != 0}
	return e.register(event, l, mode&addFront != 0, nil)
}

// register adds l to event's listeners, at the front or the end, and
// returns its ID. An observer listener feeds sub.
func (e *Emitter) register(event string, l *listener, front bool, sub *Subscription) ID {
	e.mu.Lock()
	l.id = e.ids.reserve()
	if e.has(EventNewListener) {
		e.mu.Unlock()
		e.announce(event, l)
		e.mu.Lock()
	}
	seq := e.seq.Load() + 1
	s := e.reg.lookup(event)
	if s == nil {
		s = &slot{name: event, created: seq}
		e.reg.insert(s)
	} else if s.n.Load() == 0 {
		// A slot kept while empty (see registry.release): the event is new
		// again, as a key Node deleted and adds again.
		s.created = seq
	}
	l.slot, l.added = s, seq
	s.add(l, seq, front)
	e.ids.set(l)
	if l.observer {
		if e.observers == nil {
			e.observers = make(map[*listener]*Subscription)
		}
		e.observers[l] = sub
	}
	var w *MaxListenersExceededWarning
	var handler func(*MaxListenersExceededWarning)
	if !l.internal {
		s.user++
		if max := e.maxLocked(); max > 0 && s.user > max && !s.warned {
			s.warned = true
			w = &MaxListenersExceededWarning{Emitter: e, Event: event, Count: s.user, max: max}
			handler = e.warn
		}
	}
	e.seq.Store(seq)
	e.mu.Unlock()

	if w != nil {
		warn(handler, w)
	}
	return l.id
}

// announce emits 'newListener' for l, which Node does before the add, so
// that a listener for it does not see itself being added. If a listener
// panics, the add does not happen and l's ID is freed.
func (e *Emitter) announce(event string, l *listener) {
	announced := false
	defer func() {
		if !announced {
			e.mu.Lock()
			e.ids.release(l.id)
			e.mu.Unlock()
		}
	}()
	e.Emit(EventNewListener, event, l.fn, l.id)
	announced = true
}

// Off removes the registration id from event's listeners (Node's
// off/removeListener) and reports whether it was there. A listener removed
// during an emit still runs in that emit. 'removeListener' is emitted after
// the removal.
func (e *Emitter) Off(event string, id ID) bool {
	e.mu.Lock()
	l := e.ids.get(id)
	if l == nil || l.slot.name != event {
		e.mu.Unlock()
		return false
	}
	sub := e.removeLocked(l)
	e.mu.Unlock()
	e.emitRemoved(event, l)
	if sub != nil {
		sub.detached()
	}
	return true
}

// RemoveListener is Off.
func (e *Emitter) RemoveListener(event string, id ID) bool { return e.Off(event, id) }

// removeEntry removes l if it is still registered, and reports whether it
// was. The subscription l fed, if any, goes to detached.
func (e *Emitter) removeEntry(l *listener, detached *[]*Subscription) bool {
	e.mu.Lock()
	if l.removed.Load() != 0 {
		e.mu.Unlock()
		return false
	}
	if sub := e.removeLocked(l); sub != nil {
		*detached = append(*detached, sub)
	}
	e.mu.Unlock()
	e.emitRemoved(l.slot.name, l)
	return true
}

// removeLocked removes the registered listener l, and returns the
// subscription it fed, if any. e.mu must be held.
func (e *Emitter) removeLocked(l *listener) *Subscription {
	seq := e.seq.Load() + 1
	e.ids.release(l.id)
	l.removed.Store(seq)
	if s := l.slot; s.removed(l, seq) {
		// As Node deletes the key: the event leaves EventNames.
		e.reg.release(s)
	}
	e.seq.Store(seq)
	return e.unobserve(l)
}

// unobserve forgets the observer listener l, and returns its subscription;
// nil for another listener. e.mu must be held.
func (e *Emitter) unobserve(l *listener) *Subscription {
	if !l.observer {
		return nil
	}
	sub := e.observers[l]
	delete(e.observers, l)
	return sub
}

// dropLocked removes every listener of s at once, as of seq, and adds the
// subscriptions they fed to detached. e.mu must be held, and the caller
// stores seq.
func (e *Emitter) dropLocked(s *slot, seq uint64, detached *[]*Subscription) {
	if a := s.arr.Load(); a != nil {
		for _, l := range a.ls[s.lo:s.hi] {
			if l.removed.Load() == 0 {
				l.removed.Store(seq)
				e.ids.release(l.id)
				if sub := e.unobserve(l); sub != nil {
					*detached = append(*detached, sub)
				}
			}
		}
	}
	s.arr.Store(nil)
	s.n.Store(0)
	s.subs.Store(0)
}

func (e *Emitter) emitRemoved(event string, l *listener) {
	if e.has(EventRemoveListener) {
		e.Emit(EventRemoveListener, event, l.fn, l.id)
	}
}

// RemoveAllListeners removes every listener of the named events, in turn,
// or of all events when none is named. An event loses the listeners it has
// when its turn comes, last to first in call order, each followed by its
// 'removeListener' emission; listeners that 'removeListener' listeners add
// meanwhile stay. With no names, the 'removeListener' listeners go last, so
// that they see every other removal, and then the emitter is emptied of
// everything, including listeners added meanwhile (Node resets its table).
// A 'removeListener' listener that panics ends the call there, as a throw
// does in Node.
//
// The subscriptions (On) whose listeners it removes end when it returns,
// as does every pattern subscription when no event is named: their
// channels close after what they had queued.
func (e *Emitter) RemoveAllListeners(events ...string) {
	var detached []*Subscription
	defer func() {
		for _, s := range detached {
			s.detached()
		}
	}()
	for _, name := range events {
		e.removeAll(name, &detached)
	}
	if len(events) > 0 {
		return
	}
	if e.has(EventRemoveListener) {
		for _, name := range e.EventNames() {
			if name != EventRemoveListener {
				e.removeAll(name, &detached)
			}
		}
		e.removeAll(EventRemoveListener, &detached)
	}
	e.mu.Lock()
	seq := e.seq.Load() + 1
	for _, s := range e.reg.slots() {
		e.dropLocked(s, seq, &detached)
	}
	e.reg.clear()
	e.seq.Store(seq)
	e.mu.Unlock()
	if e.npat.Load() != 0 {
		detached = append(detached, e.bus0().patterns()...)
	}
}

func (e *Emitter) removeAll(event string, detached *[]*Subscription) {
	if !e.has(EventRemoveListener) {
		e.mu.Lock()
		if s := e.reg.lookup(event); s != nil {
			seq := e.seq.Load() + 1
			e.dropLocked(s, seq, detached)
			e.reg.delete(s)
			e.seq.Store(seq)
		}
		e.mu.Unlock()
		return
	}
	// Node walks its live array by index while the 'removeListener'
	// listeners may change it (see the porting guide); Go removes the
	// listeners the event had when its turn came.
	v := e.view(event)
	for i := len(v.ls) - 1; i >= 0; i-- {
		if l := v.ls[i]; v.holds(l) {
			e.removeEntry(l, detached)
		}
	}
}

// Emit calls event's listeners in order with args and reports whether the
// event had listeners (or matching pattern subscriptions). It works on a
// snapshot: listeners added during the emit are not called by it, and
// listeners removed during it still are.
//
// A listener's panic leaves Emit as a throw leaves Node's emit: later
// listeners of this emit do not run, and the emitter stays usable.
//
// Emitting EventError with no "error" listener panics: with the argument
// itself when it is an error, else with an *UnhandledError carrying it.
// ErrorMonitor listeners run first in either case.
func (e *Emitter) Emit(event string, args ...any) bool {
	if event == EventError {
		e.monitorError(args)
	}
	v := e.view(event)
	had := false
	for _, l := range v.ls {
		if v.holds(l) {
			had = true
			e.call(l, args)
		}
	}
	delivered := false
	if e.npat.Load() != 0 {
		delivered = e.publish(event, args)
	}
	if had || delivered {
		return true
	}
	if event == EventError {
		unhandled(args)
	}
	return false
}

// monitorError runs the ErrorMonitor listeners of an "error" emission. As
// in Node, they run before the "error" listeners are looked up, so a
// monitor that adds or removes one decides whether the emission is handled.
// It stays out of line so that Emit's common path keeps a small frame (about
// 1 ns per emit, measured).
//
//go:noinline
func (e *Emitter) monitorError(args []any) { e.Emit(ErrorMonitor, args...) }

// unhandled panics for an "error" emission nobody received, with the
// emitted error itself, or an *UnhandledError carrying a value that is not
// one (Node throws the same).
func unhandled(args []any) { panic(errorOf(args)) }

func (e *Emitter) call(l *listener, args []any) {
	if l.once && !e.claimOnce(l) {
		return
	}
	l.fn(args...)
}

// claimOnce removes the once listener l and reports whether this emit is
// the one to run it. Only one emit runs it, even when emits race or nest.
// As in Node, where the once wrapper marks itself fired only after its
// removal returns, a 'removeListener' listener that panics leaves l
// unfired (though removed): an emit already holding l may still run it.
func (e *Emitter) claimOnce(l *listener) bool {
	if !l.fired.CompareAndSwap(false, true) {
		return false
	}
	removed := false
	defer func() {
		if !removed {
			l.fired.Store(false)
		}
	}()
	e.removeEntry(l, nil) // a once listener, never an observer
	removed = true
	return true
}

// ListenerCount returns the number of listeners of event. A subscription
// (On) to event by name is one of them, as Node's iterator is.
func (e *Emitter) ListenerCount(event string) int {
	if s := e.reg.lookup(event); s != nil {
		return int(s.n.Load())
	}
	return 0
}

// Listeners returns a copy of event's listeners, in call order.
func (e *Emitter) Listeners(event string) []Listener {
	var fns []Listener
	v := e.view(event)
	for _, l := range v.ls {
		if v.holds(l) {
			fns = append(fns, l.fn)
		}
	}
	return fns
}

// EventNames returns the events that have listeners, in the order their
// first listener was added, with Node's exceptions (JavaScript property
// order): names that are array indexes ("0", "1", …) come first in
// ascending order, and ErrorMonitor, a Symbol in Node, comes last. An event
// whose only listener is a subscription (On) has a listener.
func (e *Emitter) EventNames() []string {
	e.mu.Lock()
	var live []named
	for _, s := range e.reg.slots() {
		if s.n.Load() > 0 {
			live = append(live, named{s.name, s.created})
		}
	}
	e.mu.Unlock()
	if len(live) == 0 {
		return nil
	}
	slices.SortFunc(live, nodeOrder)
	names := make([]string, len(live))
	for i, s := range live {
		names[i] = s.name
	}
	return names
}

// SetMaxListeners sets the listener count per event above which the emitter
// warns (see MaxListenersExceededWarning). Zero means no limit. A negative
// n is refused with ErrOutOfRange.
func (e *Emitter) SetMaxListeners(n int) error {
	if n < 0 {
		return ErrOutOfRange
	}
	e.mu.Lock()
	e.max, e.maxSet = n, true
	e.mu.Unlock()
	return nil
}

// GetMaxListeners returns the limit set by SetMaxListeners, or
// DefaultMaxListeners.
func (e *Emitter) GetMaxListeners() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.maxLocked()
}

func (e *Emitter) maxLocked() int {
	if e.maxSet {
		return e.max
	}
	return DefaultMaxListeners
}
