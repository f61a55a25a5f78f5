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
// Emit reads an immutable snapshot of the listeners without taking a lock,
// and no lock is held while a listener runs, so listeners may add, remove
// and emit from any goroutine.
type Emitter struct {
	mu     sync.Mutex // serializes changes to reg and max
	reg    atomic.Pointer[registry]
	nextID atomic.Uint64
	max    int  // guarded by mu; meaningful when maxSet
	maxSet bool // guarded by mu

	nsubs atomic.Int32 // live subscriptions; Emit skips the bridge when 0
	subMu sync.Mutex   // guards bus creation
	bus   *bus
}

// registry is replaced whole when an event name appears or disappears; a
// change to one event's listeners only swaps that slot's list.
type registry struct {
	slots map[string]*slot
	names []string // insertion order, as Node's eventNames
	// few holds the slots when there are at most fewSlots of them: a
	// linear scan of a few names beats hashing the name for the map.
	few []namedSlot
}

type namedSlot struct {
	name string
	slot *slot
}

const fewSlots = 8

// newRegistry returns a registry of slots with names in order.
func newRegistry(slots map[string]*slot, names []string) *registry {
	r := &registry{slots: slots, names: names}
	if len(slots) <= fewSlots {
		r.few = make([]namedSlot, 0, len(slots))
		for _, n := range names {
			r.few = append(r.few, namedSlot{n, slots[n]})
		}
	}
	return r
}

// lookup returns event's slot, or nil.
func (r *registry) lookup(event string) *slot {
	if r.few != nil || len(r.slots) == 0 {
		for i := range r.few {
			if r.few[i].name == event {
				return r.few[i].slot
			}
		}
		return nil
	}
	return r.slots[event]
}

type slot struct {
	list atomic.Pointer[[]*listener] // immutable once stored
	arr  *jsArray                    // guarded by Emitter.mu; nil below 2 listeners
}

// jsArray stands for the array Node keeps for an event with two or more
// listeners. Node creates it when a second listener arrives, mutates it in
// place while the event keeps two or more, and lets go of it when the
// count drops to one (the lone listener is kept bare) or the event goes.
// Two behaviours hang on its identity: the max-listener warning fires once
// per array, and removeAllListeners(type) walks the array it found by
// index while 'removeListener' listeners change it.
type jsArray struct {
	ls     []*listener // the array's contents; frozen once let go of
	warned bool
}

type listener struct {
	fn    Listener
	id    ID
	once  bool
	fired atomic.Bool // once listeners: set by the one emit that runs it
}

var emptyRegistry = &registry{}

func (e *Emitter) registry() *registry {
	if r := e.reg.Load(); r != nil {
		return r
	}
	return emptyRegistry
}

// snapshot returns the listeners of event at this instant.
func (e *Emitter) snapshot(event string) []*listener {
	r := e.reg.Load()
	if r == nil {
		return nil
	}
	s := r.lookup(event)
	if s == nil {
		return nil
	}
	return *s.list.Load()
}

// On adds fn to the end of event's listeners (Node's on/addListener) and
// returns the registration's ID. Adding the same fn twice makes two
// registrations, as in Node.
func (e *Emitter) On(event string, fn Listener) ID { return e.add(event, fn, false, false) }

// AddListener is On.
func (e *Emitter) AddListener(event string, fn Listener) ID { return e.add(event, fn, false, false) }

// Once adds fn to the end of event's listeners for one call: it is removed
// before it runs, so an emit from inside fn does not call it again.
func (e *Emitter) Once(event string, fn Listener) ID { return e.add(event, fn, true, false) }

// PrependListener adds fn to the front of event's listeners.
func (e *Emitter) PrependListener(event string, fn Listener) ID {
	return e.add(event, fn, false, true)
}

// PrependOnceListener adds fn to the front of event's listeners for one
// call.
func (e *Emitter) PrependOnceListener(event string, fn Listener) ID {
	return e.add(event, fn, true, true)
}

func (e *Emitter) add(event string, fn Listener, once, prepend bool) ID {
	if fn == nil {
		panic("events: nil listener for " + event)
	}
	id := ID(e.nextID.Add(1))
	// Node emits 'newListener' before the add, so a listener for it does not
	// see itself being added.
	if len(e.snapshot(EventNewListener)) > 0 {
		e.Emit(EventNewListener, event, fn, id)
	}
	l := &listener{fn: fn, id: id, once: once}

	e.mu.Lock()
	s := e.slotLocked(event)
	old := *s.list.Load()
	next := make([]*listener, 0, len(old)+1)
	if prepend {
		next = append(append(next, l), old...)
	} else {
		next = append(append(next, old...), l)
	}
	s.list.Store(&next)
	if len(next) == 2 {
		s.arr = &jsArray{}
	}
	if s.arr != nil {
		s.arr.ls = next
	}
	var w *MaxListenersExceededWarning
	if max := e.maxLocked(); max > 0 && len(next) > max && !s.arr.warned {
		s.arr.warned = true
		w = &MaxListenersExceededWarning{Emitter: e, Event: event, Count: len(next)}
	}
	e.mu.Unlock()

	if w != nil {
		warn(w)
	}
	return id
}

// slotLocked returns event's slot, creating it (and a new registry) if the
// event has no listeners. e.mu must be held.
func (e *Emitter) slotLocked(event string) *slot {
	r := e.registry()
	if s := r.slots[event]; s != nil {
		return s
	}
	s := &slot{}
	s.list.Store(new([]*listener))
	slots := make(map[string]*slot, len(r.slots)+1)
	for k, v := range r.slots {
		slots[k] = v
	}
	slots[event] = s
	names := insertName(append(make([]string, 0, len(r.names)+1), r.names...), event)
	e.reg.Store(newRegistry(slots, names))
	return s
}

// insertName adds event to names in the order of Node's eventNames, which
// is JavaScript's property order: array-index names ("0", "1", …) first in
// ascending numeric order, then other names in insertion order, then
// symbols (here ErrorMonitor, a Symbol in Node).
func insertName(names []string, event string) []string {
	i := len(names)
	switch idx, isIdx := arrayIndex(event); {
	case isIdx:
		i = 0
		for i < len(names) {
			if n, ok := arrayIndex(names[i]); !ok || n > idx {
				break
			}
			i++
		}
	case event != ErrorMonitor:
		for i > 0 && names[i-1] == ErrorMonitor {
			i--
		}
	}
	return slices.Insert(names, i, event)
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

// dropSlotLocked forgets an event that has no listeners left, so that it
// leaves EventNames and its max-listener warning may fire again, as when
// Node deletes the key. e.mu must be held.
func (e *Emitter) dropSlotLocked(event string) {
	r := e.registry()
	slots := make(map[string]*slot, len(r.slots))
	for k, v := range r.slots {
		if k != event {
			slots[k] = v
		}
	}
	names := make([]string, 0, len(r.names))
	for _, n := range r.names {
		if n != event {
			names = append(names, n)
		}
	}
	e.reg.Store(newRegistry(slots, names))
}

// Off removes the registration id from event's listeners (Node's
// off/removeListener) and reports whether it was there. A listener removed
// during an emit still runs in that emit. 'removeListener' is emitted after
// the removal.
func (e *Emitter) Off(event string, id ID) bool {
	l := e.remove(event, func(ls []*listener) int {
		for i := len(ls) - 1; i >= 0; i-- {
			if ls[i].id == id {
				return i
			}
		}
		return -1
	})
	if l == nil {
		return false
	}
	e.emitRemoved(event, l)
	return true
}

// RemoveListener is Off.
func (e *Emitter) RemoveListener(event string, id ID) bool { return e.Off(event, id) }

// remove takes out the listener at the index pick chooses (-1: none) and
// returns it.
func (e *Emitter) remove(event string, pick func([]*listener) int) *listener {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.registry().slots[event]
	if s == nil {
		return nil
	}
	old := *s.list.Load()
	i := pick(old)
	if i < 0 {
		return nil
	}
	if len(old) == 1 {
		s.list.Store(new([]*listener))
		e.dropSlotLocked(event)
		return old[0]
	}
	next := make([]*listener, 0, len(old)-1)
	next = append(append(next, old[:i]...), old[i+1:]...)
	s.list.Store(&next)
	s.arr.ls = next // len(old) > 1, so s.arr is set
	if len(next) == 1 {
		// Node keeps a lone listener bare and lets go of the array with
		// its warned flag: the warning re-arms.
		s.arr = nil
	}
	return old[i]
}

// removeEntry removes exactly l, wherever it now stands.
func (e *Emitter) removeEntry(event string, l *listener) {
	removed := e.remove(event, func(ls []*listener) int {
		for i, x := range ls {
			if x == l {
				return i
			}
		}
		return -1
	})
	if removed != nil {
		e.emitRemoved(event, removed)
	}
}

func (e *Emitter) emitRemoved(event string, l *listener) {
	if len(e.snapshot(EventRemoveListener)) > 0 {
		e.Emit(EventRemoveListener, event, l.fn, l.id)
	}
}

// RemoveAllListeners removes every listener of the named events, or of all
// events when none is named. As in Node, each event's listeners go newest
// first, and with no names the 'removeListener' listeners go last, so they
// see every other removal. The listeners removed are those present when
// the call began; with no names, the emitter is empty afterwards, even of
// listeners that 'removeListener' listeners added meanwhile (Node resets
// its table at the end).
func (e *Emitter) RemoveAllListeners(events ...string) {
	if len(events) == 0 {
		if len(e.snapshot(EventRemoveListener)) > 0 {
			for _, name := range e.EventNames() {
				if name != EventRemoveListener {
					e.removeAll(name)
				}
			}
			e.removeAll(EventRemoveListener)
		}
		e.mu.Lock()
		e.reg.Store(nil)
		e.mu.Unlock()
		return
	}
	for _, name := range events {
		e.removeAll(name)
	}
}

func (e *Emitter) removeAll(event string) {
	if len(e.snapshot(EventRemoveListener)) == 0 {
		e.mu.Lock()
		if s := e.registry().slots[event]; s != nil {
			s.list.Store(new([]*listener))
			e.dropSlotLocked(event)
		}
		e.mu.Unlock()
		return
	}
	// Node walks the array it found, newest first by index, while the
	// 'removeListener' listeners may change that array in place (or make
	// Node let go of it, freezing it). Walk the same way.
	e.mu.Lock()
	s := e.registry().slots[event]
	if s == nil {
		e.mu.Unlock()
		return
	}
	ls, arr := *s.list.Load(), s.arr
	e.mu.Unlock()
	if arr == nil {
		for _, l := range ls {
			e.removeEntry(event, l)
		}
		return
	}
	for i := len(ls) - 1; i >= 0; i-- {
		e.mu.Lock()
		cur := arr.ls
		e.mu.Unlock()
		if i < len(cur) { // Node throws ERR_INVALID_ARG_TYPE past the end
			e.removeEntry(event, cur[i])
		}
	}
}

// Emit calls event's listeners in order with args and reports whether the
// event had listeners (or matching subscriptions). It works on a snapshot:
// listeners added during the emit are not called by it, and listeners
// removed during it still are.
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
	ls := e.snapshot(event)
	for _, l := range ls {
		e.call(event, l, args)
	}
	delivered := false
	if e.nsubs.Load() != 0 {
		delivered = e.publish(event, args)
	}
	if len(ls) > 0 || delivered {
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

func (e *Emitter) call(event string, l *listener, args []any) {
	if l.once && !e.claimOnce(event, l) {
		return
	}
	l.fn(args...)
}

// claimOnce removes the once listener l and reports whether this emit is
// the one to run it. Only one emit runs it, even when emits race or nest.
// As in Node, where the once wrapper marks itself fired only after its
// removal returns, a 'removeListener' listener that panics leaves l
// unfired (though removed): an emit already holding l may still run it.
func (e *Emitter) claimOnce(event string, l *listener) bool {
	if !l.fired.CompareAndSwap(false, true) {
		return false
	}
	removed := false
	defer func() {
		if !removed {
			l.fired.Store(false)
		}
	}()
	e.removeEntry(event, l)
	removed = true
	return true
}

// ListenerCount returns the number of listeners of event.
func (e *Emitter) ListenerCount(event string) int { return len(e.snapshot(event)) }

// Listeners returns a copy of event's listeners, in call order.
func (e *Emitter) Listeners(event string) []Listener {
	ls := e.snapshot(event)
	if len(ls) == 0 {
		return nil
	}
	fns := make([]Listener, len(ls))
	for i, l := range ls {
		fns[i] = l.fn
	}
	return fns
}

// EventNames returns the events that have listeners, in the order their
// first listener was added, with Node's exceptions (JavaScript property
// order): names that are array indexes ("0", "1", …) come first in
// ascending order, and ErrorMonitor, a Symbol in Node, comes last.
func (e *Emitter) EventNames() []string {
	names := e.registry().names
	if len(names) == 0 {
		return nil
	}
	return append([]string(nil), names...)
}

// SetMaxListeners sets the listener count per event above which the emitter
// warns (see SetWarningHandler). Zero means no limit. A negative n is
// refused with ErrOutOfRange.
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
