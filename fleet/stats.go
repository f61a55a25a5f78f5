package fleet

import (
	"sync"
	"sync/atomic"
	"time"
)

// Stats is what an operator looks at during an outage: whether Redis
// answers, what it said last, where rotation stands, and what the session
// store and the staple sharing achieve. The counts are totals since New.
type Stats struct {
	// RedisReachable is false while any feature's Redis calls fail: from
	// the first failure until a call or a probe succeeds again.
	RedisReachable bool
	// LastError is the last Redis failure (an error, or no answer within
	// the deadline), at LastErrorAt; nil if there has been none. A
	// caller's cancelled context is not one.
	LastError   error
	LastErrorAt time.Time

	// TicketKeySlot is the slot (unix time / TicketKeyPeriod) whose key
	// encrypts new tickets, and LastRotation when that key last changed;
	// both zero before the first TicketKeys.
	TicketKeySlot int64
	LastRotation  time.Time
	// TicketKeyLocal reports that the encrypting key is this member's own,
	// made while Redis could not be asked: its tickets resume on this
	// member only, until the fleet adopts it or it is replaced.
	TicketKeyLocal bool

	// SessionHits counts resumptions the session store answered;
	// SessionMisses those it could not (no such session, expired,
	// unreadable, or Redis unavailable). SessionWriteFailures counts
	// sessions that could not be written (they resume on no member).
	SessionHits, SessionMisses, SessionWriteFailures int64

	// StaplesAdopted counts OCSP responses another member fetched, read
	// from Redis by this member for the first time.
	StaplesAdopted int64
}

// counters are the Stats' counts, kept as things happen.
type counters struct {
	sessionHits, sessionMisses, sessionWriteFailures, staplesAdopted atomic.Int64

	mu           sync.Mutex
	lastErr      error
	lastErrAt    time.Time
	encSlot      int64
	lastRotation time.Time
	encLocal     bool
}

func (c *counters) setError(err error, at time.Time) {
	c.mu.Lock()
	c.lastErr, c.lastErrAt = err, at
	c.mu.Unlock()
}

// Stats returns the fleet's state now. It takes a lock briefly and never
// calls Redis.
func (f *Fleet) Stats() Stats {
	st := Stats{
		RedisReachable:       !f.sessions.failing.Load() && !f.tickets.failing.Load() && !f.staples.failing.Load(),
		SessionHits:          f.stats.sessionHits.Load(),
		SessionMisses:        f.stats.sessionMisses.Load(),
		SessionWriteFailures: f.stats.sessionWriteFailures.Load(),
		StaplesAdopted:       f.stats.staplesAdopted.Load(),
	}
	c := &f.stats
	c.mu.Lock()
	st.LastError, st.LastErrorAt = c.lastErr, c.lastErrAt
	st.TicketKeySlot, st.LastRotation, st.TicketKeyLocal = c.encSlot, c.lastRotation, c.encLocal
	c.mu.Unlock()
	return st
}
