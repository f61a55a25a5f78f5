package events

// A Snapshot is one event's listener list at an instant, kept for a later
// EmitSnapshot. Taking one allocates nothing: it keeps the emitter's
// backing array and sequence number of that instant. The zero value holds
// no listeners.
//
// It serves Node's per-socket rule for tls.Server's 'OCSPRequest': a
// connection sees only the listeners registered when its handshake began
// that are still registered when its ClientHello arrives.
type Snapshot struct {
	event string
	v     view
}

// Snapshot records event's listeners now.
func (e *Emitter) Snapshot(event string) Snapshot {
	return Snapshot{event: event, v: e.view(event)}
}

// Event returns the event name s was taken for.
func (s Snapshot) Event() string { return s.event }

// Len returns the number of listeners s holds.
func (s Snapshot) Len() int {
	n := 0
	for _, l := range s.v.ls {
		if s.v.holds(l) {
			n++
		}
	}
	return n
}

// EmitSnapshot calls with args, in the emitter's current order, those of
// s's event listeners that were registered when s was taken and are still
// registered now, and reports whether it called any. Listeners added since
// s was taken are skipped; listeners removed since are not called. A Once
// listener keeps its contract (removed before it runs, run by one emit
// only). Channel subscriptions receive nothing, and the "error" panic rule
// does not apply: EmitSnapshot only calls listeners. A panicking listener
// leaves EmitSnapshot as it leaves Emit.
func (e *Emitter) EmitSnapshot(s Snapshot, args ...any) bool {
	if len(s.v.ls) == 0 {
		return false
	}
	cur := e.view(s.event)
	called := false
	for _, l := range cur.ls {
		if !cur.holds(l) || !s.v.holds(l) {
			continue
		}
		if l.once && !e.claimOnce(l) {
			continue
		}
		called = true
		l.fn(args...)
	}
	return called
}
