package tlsserver

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"time"
)

// sessionIDLen is the length of the ids 'newSession' hands out, the
// tickets of the session store.
const sessionIDLen = 32

// maxSessionAge is crypto/tls's own limit on a session's age (its
// maxSessionTicketLifetime), less a minute: the server must never offer
// crypto/tls a session it would refuse as too old.
const maxSessionAge = 7*24*time.Hour - time.Minute

// Sessions map onto crypto/tls's WrapSession and UnwrapSession. Every
// session carries a record of tlsemit's in SessionState.Extra (see
// resumption.go): its creation time, for SessionTimeout, and in TLS 1.2
// what the server needs to know whether crypto/tls will resume it. c is
// the connection when cfg is its own, else nil (the shared config of a
// context, which serves TLS 1.3 and the hooks-free TLS 1.2 handshakes).

// wrapSession issues a session: through 'newSession' (the ticket is a
// random id, the listener stores the data under it) when a listener
// exists, else as configured.
func (s *Server) wrapSession(c *serverConn, sc *secureContext, cfg *tls.Config, cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
	ss.Extra = append(ss.Extra, newRecord(c, cfg, cs).encode())
	if c != nil && c.store && s.callbacks(EventNewSession) {
		return c.newSession(ss)
	}
	if sc.wrap != nil {
		return sc.wrap(cs, ss)
	}
	return cfg.EncryptTicket(cs, ss)
}

// unwrapSession resolves a ticket: through 'resumeSession' for the session
// store's ids, else as configured. A session without tlsemit's record, or
// older than SessionTimeout, is not resumed. In TLS 1.2 with an
// 'OCSPRequest' pending, it then decides resumption (crypto/tls reads the
// staple as soon as it returns) and runs 'OCSPRequest' for a full
// handshake.
func (s *Server) unwrapSession(c *serverConn, sc *secureContext, cfg *tls.Config, identity []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
	ss, err := s.openSession(c, sc, cfg, identity, cs)
	if err != nil {
		return nil, err
	}
	var rec *sessionRecord
	if ss != nil {
		rec = findRecord(ss.Extra)
		if rec == nil || rec.expired(now(cfg), s.sessionTimeout) {
			ss = nil
		}
	}
	if c == nil || cs.Version == tls.VersionTLS13 {
		return ss, nil
	}
	h := &c.hs
	if !h.deferOCSP {
		if ss != nil {
			h.resumed = rec
		}
		return ss, nil
	}
	h.deferOCSP = false
	if ss != nil && c.canResume(rec, cs.Version) {
		h.resumed, h.predicted = rec, true
		return ss, nil
	}
	if err := c.runOCSP(); err != nil {
		return nil, err
	}
	return nil, nil
}

func (s *Server) openSession(c *serverConn, sc *secureContext, cfg *tls.Config, identity []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
	switch {
	case c != nil && c.store && len(identity) == sessionIDLen && s.callbacks(EventResumeSession):
		return c.resumeSession(identity)
	case sc.unwrap != nil:
		return sc.unwrap(identity, cs)
	case len(identity) == 0: // crypto/tls asks in TLS 1.2 without a ticket too
		return nil, nil
	}
	return cfg.DecryptTicket(identity, cs)
}

// newSession emits 'newSession' and waits for done.
func (c *serverConn) newSession(ss *tls.SessionState) ([]byte, error) {
	data, err := ss.Bytes()
	if err != nil {
		return nil, err
	}
	id := make([]byte, sessionIDLen)
	rand.Read(id)
	r := c.newReply(false)
	done := func() { r.answer(nil, nil) }
	if err := c.emit(EventNewSession, bytes.Clone(id), data, done); err != nil {
		return nil, c.destroy(err)
	}
	if _, err := r.wait(); err != nil {
		return nil, err
	}
	return id, nil
}

// resumeSession emits 'resumeSession' and waits for its callback:
// cb(nil, nil), or data that does not parse, is a full handshake.
func (c *serverConn) resumeSession(id []byte) (*tls.SessionState, error) {
	r := c.newReply(true)
	if err := c.emit(EventResumeSession, bytes.Clone(id), r.answer); err != nil {
		return nil, c.destroy(err)
	}
	data, err := r.wait()
	if err != nil || len(data) == 0 {
		return nil, err
	}
	ss, err := tls.ParseSessionState(data)
	if err != nil {
		return nil, nil
	}
	return ss, nil
}

func now(cfg *tls.Config) time.Time {
	if cfg.Time != nil {
		return cfg.Time()
	}
	return time.Now()
}

// ticketKeys is the ring of session ticket keys: Node's 48-byte form of
// the encrypting key, and crypto/tls's 32-byte keys, the encrypting one
// first.
type ticketKeys struct {
	enc  [48]byte
	keys [][32]byte
}

// newTicketKeys maps Node's 48-byte keys (16 bytes of name, 16 of HMAC
// key, 16 of AES key) onto the 32-byte keys crypto/tls takes: the SHA-256
// of each. Servers given the same keys share tickets; tickets are not
// interchangeable with Node's.
func newTicketKeys(keys [][]byte) *ticketKeys {
	tk := &ticketKeys{keys: make([][32]byte, len(keys))}
	copy(tk.enc[:], keys[0])
	for i, k := range keys {
		tk.keys[i] = sha256.Sum256(k)
	}
	return tk
}

// TicketKeys returns the 48 bytes of the key that encrypts new session
// tickets, in Node's getTicketKeys form. It is random when the server is
// made, as in Node.
func (s *Server) TicketKeys() []byte {
	tk := s.tickets.Load()
	return append([]byte(nil), tk.enc[:]...)
}

// SetTicketKeys replaces the session ticket keys (Node's setTicketKeys),
// each 48 bytes: the first encrypts new tickets, and tickets under any of
// them are accepted, so a rotation can keep the previous keys for the
// tickets already out. Node's one-key call is SetTicketKeys(k). Servers
// given the same keys accept each other's tickets. It is safe to call
// while handshakes run, from any goroutine; a handshake already under way
// keeps the keys it began with. A ticket's age is still bounded by
// SessionTimeout.
func (s *Server) SetTicketKeys(keys ...[]byte) error {
	if len(keys) == 0 {
		return ErrTicketKeys
	}
	for _, k := range keys {
		if len(k) != 48 {
			return ErrTicketKeys
		}
	}
	tk := newTicketKeys(keys)
	s.ctxMu.Lock()
	defer s.ctxMu.Unlock()
	s.tickets.Store(tk)
	s.sc.Load().config.SetSessionTicketKeys(tk.keys)
	return nil
}
