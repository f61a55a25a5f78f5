// Package evhook (events hooks) gives tlsserver what it needs of an
// events.Emitter and an application does not: the 'OCSPRequest' listeners
// of a handshake, fixed when it began, and a count of callback listeners
// that leaves out channel subscriptions. Package events sets the hooks in
// its init: it cannot export them without putting them in every user's
// API, and this package cannot import events (events imports it), so an
// emitter travels here as any and must be an *events.Emitter.
package evhook

// Hooks are the functions package events provides. seq is a mark of the
// emitter's listeners at an instant (its sequence number).
type Hooks struct {
	// Mark returns the emitter's mark now, and whether event had a callback
	// listener then.
	Mark func(e any, event string) (seq uint64, ok bool)
	// Count returns how many of event's callback listeners registered at
	// seq are still registered.
	Count func(e any, event string, seq uint64) int
	// Emit calls those listeners with args, and reports whether it called
	// any.
	Emit func(e any, event string, seq uint64, args []any) bool
	// Callbacks returns how many callback listeners event has.
	Callbacks func(e any, event string) int
}

var hooks Hooks

// Set installs h. Package events calls it from its init.
func Set(h Hooks) { hooks = h }

// A Snapshot is one event's callback listeners at an instant, for a later
// Emit. It serves Node's per-socket rule for tls.Server's 'OCSPRequest': a
// connection sees only the listeners registered when its handshake began
// that are still registered when its ClientHello arrives. Channel
// subscriptions are not in it: they observe, and cannot answer a callback.
// The zero value holds no listeners. Taking one allocates nothing and holds
// on to no listener.
type Snapshot struct {
	e     any
	event string
	seq   uint64
}

// Take records the callback listeners event has on e (an *events.Emitter)
// now.
func Take(e any, event string) Snapshot {
	seq, ok := hooks.Mark(e, event)
	if !ok {
		return Snapshot{}
	}
	return Snapshot{e: e, event: event, seq: seq}
}

// Len returns how many of s's listeners are still registered.
func (s Snapshot) Len() int {
	if s.e == nil {
		return 0
	}
	return hooks.Count(s.e, s.event, s.seq)
}

// Emit calls with args, in the emitter's current order, those of s's
// listeners that are still registered, and reports whether it called any.
// Listeners added since s was taken are skipped. A Once listener keeps its
// contract (removed before it runs, run by one emit only). The "error"
// panic rule does not apply: Emit only calls listeners. A panicking
// listener leaves Emit as it leaves events.Emitter.Emit.
func (s Snapshot) Emit(args ...any) bool {
	if s.e == nil {
		return false
	}
	return hooks.Emit(s.e, s.event, s.seq, args)
}

// Callbacks returns how many callback listeners event has on e (an
// *events.Emitter): events.Emitter.ListenerCount without the channel
// subscriptions of events.On, which observe an event and never answer its
// callback or take its connection.
func Callbacks(e any, event string) int { return hooks.Callbacks(e, event) }
