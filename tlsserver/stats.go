package tlsserver

import (
	"crypto/tls"
	"maps"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// RecentClientErrors is how many 'tlsClientError' reports Stats keeps.
const RecentClientErrors = 16

// Stats are a server's counters since New: what its status page shows and
// its metrics export, for an application that wants them itself (a health
// check, a log line). Handshakes per second is the difference of two
// snapshots over their time apart.
type Stats struct {
	// Connections is the number of open connections, as Connections
	// returns.
	Connections int
	// Handshaking is how many of them are handshaking: accepted, and not
	// yet delivered ('secureConnection' emitted and its listeners
	// returned) or reported as failed. These are what Shutdown lets
	// finish; a server that drains can wait for 0.
	Handshaking int
	// Queued is how many of them are established and waiting in the
	// backlog for Listener's Accept.
	Queued int
	// FullHandshakes, ResumedHandshakes and FailedHandshakes count the
	// handshakes that ended: completed in full, resumed, or failed (each
	// failure is also a 'tlsClientError').
	FullHandshakes, ResumedHandshakes, FailedHandshakes int64
	// Drops counts the connections reported through 'drop': accepted over
	// MaxConnections, or established and not accepted.
	Drops int64
	// ClientErrors counts the 'tlsClientError' reports by their Node code
	// (Code of the error; "" for an error without one), whether or not a
	// listener was registered.
	ClientErrors map[string]int64
	// RecentClientErrors are the latest of those reports, newest first, at
	// most RecentClientErrors of them.
	RecentClientErrors []ClientError
	// At is when the snapshot was taken.
	At time.Time
}

// ClientError is one 'tlsClientError' report.
type ClientError struct {
	At         time.Time
	Code       string // Code(Err)
	Err        error
	RemoteAddr net.Addr
}

// Stats returns a snapshot of the server's counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	st := Stats{Connections: len(s.conns), Handshaking: int(s.busy.Load()), Queued: len(s.backlogQ), At: time.Now()}
	s.mu.Unlock()
	k := &s.counts
	for v := range versionNames {
		st.FullHandshakes += k.handshakes[hsFull][v].Load()
		st.ResumedHandshakes += k.handshakes[hsResumed][v].Load()
		st.FailedHandshakes += k.handshakes[hsFailed][v].Load()
	}
	st.Drops = k.drops[dropOverMax].Load() + k.drops[dropNotAccepted].Load()
	k.mu.Lock()
	st.ClientErrors = maps.Clone(k.byCode)
	if st.ClientErrors == nil {
		st.ClientErrors = map[string]int64{}
	}
	n := min(k.reported, RecentClientErrors)
	st.RecentClientErrors = make([]ClientError, n)
	for i := range n {
		st.RecentClientErrors[i] = k.recent[(k.reported-1-i)%RecentClientErrors]
	}
	k.mu.Unlock()
	return st
}

// Handshake outcomes, the first index of counters.handshakes.
const (
	hsFull = iota
	hsResumed
	hsFailed
	hsOutcomes
)

// versionNames are the TLS versions counted apart, as the semantic
// conventions' tls.protocol.version spells them; "" is unknown (a
// handshake that failed before the ClientHello said).
var versionNames = [...]string{"", "1.0", "1.1", "1.2", "1.3"}

func versionIndex(v uint16) int {
	if v >= tls.VersionTLS10 && v <= tls.VersionTLS13 {
		return int(v-tls.VersionTLS10) + 1
	}
	return 0
}

// Reasons for a drop, the index of counters.drops.
const (
	dropOverMax     = iota // over MaxConnections
	dropNotAccepted        // established, not accepted (ErrNotAccepted)
)

// counters are the server's running counts. The handshake goroutines only
// add to atomics; Stats and the metrics read them when asked, so that
// counting costs a handshake one atomic add.
type counters struct {
	handshakes [hsOutcomes][len(versionNames)]atomic.Int64
	drops      [2]atomic.Int64

	mu       sync.Mutex // the client errors: a failure's path, not a handshake's
	byCode   map[string]int64
	recent   [RecentClientErrors]ClientError // a ring; the newest at (reported-1) % len
	reported int
}

// handshakeEnded counts a handshake that ended and records its duration.
// cs is the connection's state when it completed, nil when it failed.
func (c *serverConn) handshakeEnded(cs *tls.ConnectionState) {
	outcome, vers := hsFailed, c.hs.vers
	if cs != nil {
		outcome, vers = hsFull, cs.Version
		if cs.DidResume {
			outcome = hsResumed
		}
	}
	v := versionIndex(vers)
	c.s.counts.handshakes[outcome][v].Add(1)
	if !c.began.IsZero() {
		c.s.met.handshakeDuration(time.Since(c.began), outcome, v)
	}
}

// clientError counts a 'tlsClientError' report.
func (k *counters) clientError(err error, remote net.Addr) {
	code := Code(err)
	k.mu.Lock()
	if k.byCode == nil {
		k.byCode = make(map[string]int64)
	}
	k.byCode[code]++
	k.recent[k.reported%RecentClientErrors] = ClientError{At: time.Now(), Code: code, Err: err, RemoteAddr: remote}
	k.reported++
	k.mu.Unlock()
}

// dropped counts a 'drop'.
func (k *counters) dropped(info DropInfo) {
	if info.Err == nil {
		k.drops[dropOverMax].Add(1)
	} else {
		k.drops[dropNotAccepted].Add(1)
	}
}
