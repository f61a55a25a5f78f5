package events

import "github.com/tlsemit/tlsemit/internal/evhook"

// tlsserver's 'OCSPRequest' needs the listeners registered when a handshake
// began, and tlsserver needs to tell callback listeners from subscriptions.
// Applications need neither, so they are reached through internal/evhook
// instead of the Emitter's methods. A snapshot is a sequence number: the
// listeners it holds are those added at or before it (see slot).
func init() {
	evhook.Set(evhook.Hooks{
		Mark: func(e any, event string) (uint64, bool) {
			em := e.(*Emitter)
			seq := em.seq.Load()
			return seq, em.callbacks(event) > 0
		},
		Count: func(e any, event string, seq uint64) int {
			n := 0
			v := e.(*Emitter).view(event)
			for _, l := range v.ls {
				if v.holds(l) && l.added <= seq && !l.observer {
					n++
				}
			}
			return n
		},
		Emit: func(e any, event string, seq uint64, args []any) bool {
			return e.(*Emitter).emitSince(event, seq, args)
		},
		Callbacks: func(e any, event string) int { return e.(*Emitter).callbacks(event) },
	})
}

// callbacks returns the number of event's listeners that are not
// subscriptions.
func (e *Emitter) callbacks(event string) int {
	if s := e.reg.lookup(event); s != nil {
		return int(s.n.Load() - s.subs.Load())
	}
	return 0
}

// emitSince calls event's callback listeners that were registered at seq
// and still are, and reports whether it called any.
func (e *Emitter) emitSince(event string, seq uint64, args []any) bool {
	v := e.view(event)
	called := false
	for _, l := range v.ls {
		if !v.holds(l) || l.added > seq || l.observer {
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
