package tlsserver

import (
	"context"
	"crypto/tls"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tlsemit/tlsemit/internal/evhook"
)

// phase is where a connection is in its life.
type phase uint8

const (
	handshaking phase = iota // from accept until the handshake returns
	established              // handshake done; with a listener or the application
	queued                   // established, waiting in the backlog for Listener's Accept
	closed                   // destroyed, dropped or closed
)

// serverConn is the net.Conn the server hands to tls.Server: the accepted
// connection plus its state. (*tls.Conn).NetConn returns it; its NetConn
// method returns the accepted connection.
type serverConn struct {
	net.Conn
	s      *Server
	sc     *secureContext // the default context when the handshake began
	tls    *tls.Conn
	ocsp   evhook.Snapshot // 'OCSPRequest' listeners when the handshake began
	keylog bool            // a 'keylog' listener existed when the handshake began
	store  bool            // a 'newSession' or 'resumeSession' listener existed then
	timer  *time.Timer     // the handshake's bound, then the backlog's
	sniCtx context.Context // with an SNICallback: ends with the handshake
	sniEnd context.CancelCauseFunc
	began  time.Time // when the handshake began, if its duration is recorded

	hs handshakeState // owned by the handshake goroutine

	// Client certificates: the context that verifies them (set in
	// getConfigForClient), and, for the modes that refuse nothing, the
	// handshake's time and Authorized's verdict, made at its first call.
	verifier *clientVerifier
	authAt   time.Time
	authOnce sync.Once
	authErr  error

	rd    atomic.Pointer[watcher] // while set, reads go through the watcher
	fresh atomic.Bool             // established, and nobody has used it yet
	calls atomic.Int32            // listener calls running for it (see Shutdown)
	// awaitsRequest: handed to Options.HTTP, no request dispatched yet.
	awaitsRequest atomic.Bool
	// refs keep the connection counted (Connections, 'close'): its
	// goroutine until it has delivered or reported it, its socket until
	// closed, and each event emitted for it after that.
	refs atomic.Int32

	mu       sync.Mutex
	abort    chan struct{} // closed when the connection is destroyed; made by a wait
	phase    phase
	held     bool  // a 'secureConnection' callback listener received it
	err      error // why the connection was destroyed; the first reason wins
	reported bool
	excused  bool // under s.mu: Shutdown gave up while a listener ran for it

	closeOnce sync.Once
	closeErr  error
}

// NetConn returns the accepted connection.
func (c *serverConn) NetConn() net.Conn { return c.Conn }

// Read reads from the client, through the watcher while it holds the
// socket (see wait.go).
func (c *serverConn) Read(p []byte) (int, error) {
	if c.fresh.Load() {
		c.touch()
	}
	if w := c.rd.Load(); w != nil {
		return w.read(p)
	}
	return c.Conn.Read(p)
}

// Write writes to the client.
func (c *serverConn) Write(p []byte) (int, error) {
	if c.fresh.Load() {
		c.touch()
	}
	return c.Conn.Write(p)
}

// touch marks an established connection as the application's: a
// 'secureConnection' listener has started using it, so it leaves the
// backlog (see Server.Listener).
func (c *serverConn) touch() {
	c.fresh.Store(false)
	c.mu.Lock()
	q := c.phase == queued
	if q {
		c.phase = established
		c.timer.Stop()
	}
	c.mu.Unlock()
	if q {
		c.s.unqueue(c)
	}
}

// Close closes the accepted connection; the server forgets it once its
// last event has been emitted (see refs). Whoever closes an established
// connection first (the application, Shutdown, destroy) ends it: nothing
// is reported for it afterwards.
func (c *serverConn) Close() error {
	c.closeOnce.Do(func() {
		c.fresh.Store(false)
		c.mu.Lock()
		q := c.phase == queued
		if c.phase != handshaking {
			c.phase = closed
		}
		c.mu.Unlock()
		if q {
			c.timer.Stop()
			c.s.unqueue(c)
		}
		c.closeErr = c.Conn.Close()
		if c.awaitsRequest.Load() && c.awaitsRequest.CompareAndSwap(true, false) {
			c.s.firstServed()
		}
		c.release()
	})
	return c.closeErr
}

// release drops one of the connection's refs; the last one forgets it.
func (c *serverConn) release() {
	if c.refs.Add(-1) == 0 {
		c.s.untrack(c)
	}
}

// emit emits event for the connection, marking it as running a listener
// meanwhile.
func (c *serverConn) emit(event string, args ...any) error {
	c.calls.Add(1)
	defer c.calls.Add(-1)
	return c.s.safeEmit(event, args...)
}

// start tracks raw and handshakes it in its own goroutine. The handshake
// begins now, before the 'connection' listeners run: what it sees of the
// server's listeners and context is fixed here.
func (s *Server) start(raw net.Conn, accepted bool) {
	c := &serverConn{
		Conn:   raw,
		s:      s,
		sc:     s.sc.Load(),
		ocsp:   evhook.Take(&s.Emitter, EventOCSPRequest),
		keylog: s.callbacks(EventKeylog),
		store:  s.callbacks(EventNewSession) || s.callbacks(EventResumeSession),
	}
	if s.met.timed() {
		c.began = time.Now()
	}
	if s.sni != nil {
		c.sniCtx, c.sniEnd = context.WithCancelCause(context.Background())
	}
	c.refs.Store(2) // its goroutine and its socket
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		raw.Close()
		return
	}
	var drop *DropInfo
	switch {
	case accepted && s.listenerUsed && s.lis == nil:
		drop = &DropInfo{Err: withDetail(ErrNotAccepted, "the Listener is closed")}
	case accepted && s.maxConns > 0 && len(s.conns) >= s.maxConns:
		drop = &DropInfo{}
	}
	if drop != nil {
		s.mu.Unlock()
		raw.Close()
		drop.LocalAddr, drop.RemoteAddr = raw.LocalAddr(), raw.RemoteAddr()
		s.emitDrop(*drop)
		return
	}
	s.conns[c] = struct{}{} // fully built: Close may destroy it from now on
	s.busy.Add(1)
	s.mu.Unlock()
	if s.timeout > 0 {
		c.timer = time.AfterFunc(s.timeout, c.expire)
	}
	go c.serve()
}

// serve runs the connection's handshake and hands the connection on: to
// the 'secureConnection' listeners, then, unless one of them started
// using it, to the backlog for Listener.
func (c *serverConn) serve() {
	s := c.s
	defer c.delivered()
	c.tls = tls.Server(c, c.sc.config)
	if s.observed(EventConnection) {
		if err := c.emit(EventConnection, c.Conn); err != nil {
			c.destroy(err)
		}
	}
	err := c.tls.Handshake()
	if c.timer != nil {
		c.timer.Stop()
	}
	if c.sniEnd != nil {
		c.sniEnd(nil)
	}
	c.mu.Lock()
	if err == nil && c.err == nil {
		c.phase = established
		c.mu.Unlock()
	} else {
		if c.err == nil {
			c.err = classify(err, now(c.sc.config), c.verifier)
		}
		err = c.err
		c.phase = closed
		c.mu.Unlock()
		c.handshakeEnded(nil)
		c.Close()
		c.report(err)
		return
	}
	cs := c.tls.ConnectionState()
	if a := c.sc.config.ClientAuth; (a == tls.RequestClientCert || a == tls.RequireAnyClientCert) && len(cs.PeerCertificates) > 0 {
		c.authAt = now(c.sc.config) // Authorized verifies as of now, as Node does at the handshake
	}
	c.handshakeEnded(&cs)
	c.checkPrediction(cs.DidResume)
	c.hs = handshakeState{} // what only the handshake needed
	c.ocsp = evhook.Snapshot{}
	c.fresh.Store(true)
	held := s.callbacks(EventSecureConnection) // a subscription only observes
	if s.observed(EventSecureConnection) {
		if err := c.emit(EventSecureConnection, c.tls); err != nil {
			c.destroy(err)
			return
		}
	}
	s.enqueue(c, held)
}

// delivered ends the connection's goroutine: its handshake has been
// delivered or reported.
func (c *serverConn) delivered() {
	s := c.s
	if s.busy.Add(-1) == 0 && s.stopping.Load() {
		s.mu.Lock()
		s.notifyLocked() // Shutdown waits for this
		s.mu.Unlock()
	}
	c.release()
}

// expire is the connection's timer: the handshake's bound, then the
// backlog's.
func (c *serverConn) expire() {
	c.mu.Lock()
	ph := c.phase
	c.mu.Unlock()
	switch ph {
	case handshaking:
		c.destroy(ErrHandshakeTimeout)
	case queued:
		c.s.giveUp(c, "not accepted within "+c.s.acceptTimeout.String())
	}
}

// destroy closes the connection because of err, unless it has already
// ended, and returns the error it ends with (the first reason wins). A
// connection still handshaking is reported by its handshake goroutine
// when the handshake returns (with that error); a later one is reported
// here. Every failure of a connection goes through destroy.
func (c *serverConn) destroy(err error) error { return c.end(err, false) }

// abortHandshake destroys the connection with err if it is still
// handshaking (Close, Shutdown).
func (c *serverConn) abortHandshake(err error) { c.end(err, true) }

func (c *serverConn) end(err error, handshakeOnly bool) error {
	c.mu.Lock()
	if c.err != nil || c.phase == closed || handshakeOnly && c.phase != handshaking {
		if c.err != nil {
			err = c.err
		}
		c.mu.Unlock()
		return err
	}
	c.err = err
	ph := c.phase
	if ph != handshaking {
		c.phase = closed
		c.refs.Add(1) // until it is reported
	}
	abort := c.abort
	c.mu.Unlock()
	if abort != nil {
		close(abort)
	}
	if c.sniEnd != nil {
		c.sniEnd(err)
	}
	if ph == queued {
		c.s.unqueue(c)
	}
	c.Close()
	if ph != handshaking {
		c.report(err)
		c.release()
	}
	return err
}

// aborted returns a channel closed when the connection is destroyed.
func (c *serverConn) aborted() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.abort == nil {
		c.abort = make(chan struct{})
		if c.err != nil {
			close(c.abort)
		}
	}
	return c.abort
}

// failure returns the error the connection was destroyed with, or nil.
func (c *serverConn) failure() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// report emits 'tlsClientError', once per connection.
func (c *serverConn) report(err error) {
	c.mu.Lock()
	done := c.reported
	c.reported = true
	c.mu.Unlock()
	if done {
		return
	}
	s := c.s
	s.counts.clientError(err, c.RemoteAddr())
	s.log.Debug("tlsserver: client error", "remote", c.RemoteAddr(), "err", err)
	if !s.observed(EventTLSClientError) {
		return
	}
	var conn net.Conn = c.tls
	if c.tls == nil {
		conn = c.Conn
	}
	if perr := c.emit(EventTLSClientError, err, conn); perr != nil {
		s.log.Error("tlsserver: 'tlsClientError' listener panicked", "err", perr)
	}
}
