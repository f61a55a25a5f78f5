package tlsserver

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tlsemit/tlsemit/events"
)

const (
	extStatusRequest = 5
	extEMS           = 23
	sessionIDLen     = 32
	maxTicketAge     = 7 * 24 * time.Hour // crypto/tls's maxSessionTicketLifetime
	maxPending       = 64 << 10           // bytes buffered while watching a parked client
)

const (
	phaseHandshaking = iota
	phaseEstablished
	phaseDead
)

// serverConn is the net.Conn the server hands to tls.Server: the accepted
// connection plus its state. (*tls.Conn).NetConn returns it; its NetConn
// method returns the accepted connection.
type serverConn struct {
	net.Conn
	s      *Server
	sc     *secureContext
	tls    *tls.Conn
	ocsp   events.Snapshot // 'OCSPRequest' listeners when the handshake began
	keylog bool            // a 'keylog' listener existed when the handshake began
	store  bool            // a 'newSession' or 'resumeSession' listener existed then
	abort  chan struct{}   // closed by destroy
	timer  *time.Timer
	sniCtx context.Context
	sniEnd context.CancelCauseFunc

	// Owned by the handshake goroutine.
	hello     *tls.ClientHelloInfo
	cfg       *tls.Config // per-connection clone, or nil
	vers      uint16
	statusReq bool
	deferOCSP bool // TLS 1.2: emit from UnwrapSession, once resumption is decided
	cert      *tls.Certificate
	entry     *certEntry
	pending   []byte // bytes read while watching a parked client

	ocspCalls atomic.Int32
	ocspRes   chan cbResult

	mu       sync.Mutex
	phase    int
	failErr  error
	reported bool

	closeOnce sync.Once
	closeErr  error
}

type cbResult struct {
	err  error
	data []byte
}

// NetConn returns the accepted connection.
func (c *serverConn) NetConn() net.Conn { return c.Conn }

// Read serves bytes read while the client was watched first.
func (c *serverConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		if len(c.pending) == 0 {
			c.pending = nil
		}
		return n, nil
	}
	return c.Conn.Read(p)
}

// Close closes the accepted connection and forgets it.
func (c *serverConn) Close() error {
	c.closeOnce.Do(func() {
		c.closeErr = c.Conn.Close()
		c.s.untrack(c)
	})
	return c.closeErr
}

func (s *Server) start(raw net.Conn, accepted bool) {
	// The handshake begins now, before the 'connection' listeners run.
	c := &serverConn{
		Conn:   raw,
		s:      s,
		sc:     s.sc.Load(),
		ocsp:   s.Snapshot(EventOCSPRequest),
		keylog: s.ListenerCount(EventKeylog) > 0,
		store:  s.ListenerCount(EventNewSession) > 0 || s.ListenerCount(EventResumeSession) > 0,
		abort:  make(chan struct{}),
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		raw.Close()
		return
	}
	if accepted && s.maxConns > 0 && len(s.conns) >= s.maxConns {
		s.mu.Unlock()
		raw.Close()
		if s.observed(EventDrop) {
			if err := s.safeEmit(EventDrop, DropInfo{LocalAddr: raw.LocalAddr(), RemoteAddr: raw.RemoteAddr()}); err != nil {
				s.log.Error("tlsserver: 'drop' listener panicked", "err", err)
			}
		}
		return
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	if s.sni != nil {
		c.sniCtx, c.sniEnd = context.WithCancelCause(context.Background())
	}
	if s.timeout > 0 {
		c.timer = time.AfterFunc(s.timeout, func() { c.destroy(ErrHandshakeTimeout) })
	}
	go c.serve()
}

func (c *serverConn) serve() {
	s := c.s
	c.tls = tls.Server(c, c.sc.config)
	if s.observed(EventConnection) {
		if err := s.safeEmit(EventConnection, c.Conn); err != nil {
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
	if err == nil && c.failErr == nil {
		c.phase = phaseEstablished
		c.mu.Unlock()
	} else {
		if c.failErr == nil {
			c.failErr = classify(err)
		}
		c.phase = phaseDead
		err = c.failErr
		c.mu.Unlock()
		c.Close()
		c.report(err)
		return
	}
	// Forget what only the handshake needed.
	c.hello, c.cert, c.entry, c.ocsp = nil, nil, nil, events.Snapshot{}
	owned := false
	if s.observed(EventSecureConnection) {
		// A callback listener takes the connection, as in Node; a channel
		// subscription only observes it.
		owned = s.ListenerCount(EventSecureConnection) > 0
		if err := s.safeEmit(EventSecureConnection, c.tls); err != nil {
			c.destroy(err)
			return
		}
	}
	if s.deliver(c) || owned {
		return
	}
	// Nobody took the connection: as a Node socket nobody reads, it stays
	// open until the client ends it; what the client sends is discarded.
	io.Copy(io.Discard, c.tls)
	c.Close()
}

// classify gives a handshake error its Node code where one applies.
func classify(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.EPIPE) {
		return withCause(ErrSocketClosed, err)
	}
	return err
}

// destroy closes the connection because of err, which becomes the error
// the connection reports (the first such error wins). Before the handshake
// completes the handshake goroutine reports it; after, destroy reports it
// itself. It reports whether it acted.
func (c *serverConn) destroy(err error) bool {
	c.mu.Lock()
	if c.phase == phaseDead || c.failErr != nil {
		c.mu.Unlock()
		return false
	}
	c.failErr = err
	ph := c.phase
	if ph == phaseEstablished {
		c.phase = phaseDead
	}
	c.mu.Unlock()
	close(c.abort)
	if c.sniEnd != nil {
		c.sniEnd(err)
	}
	c.Close()
	if ph == phaseEstablished {
		c.report(err)
	}
	return true
}

// abandon destroys a connection that is still handshaking (Close).
func (c *serverConn) abandon(err error) {
	c.mu.Lock()
	hs := c.phase == phaseHandshaking
	c.mu.Unlock()
	if hs {
		c.destroy(err)
	}
}

// fail destroys the connection and returns the error it will report.
func (c *serverConn) fail(err error) error {
	c.destroy(err)
	return c.failure()
}

func (c *serverConn) failure() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.failErr
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
	s.log.Debug("tlsserver: client error", "remote", c.RemoteAddr(), "err", err)
	if !s.observed(EventTLSClientError) {
		return
	}
	var conn net.Conn = c.tls
	if c.tls == nil {
		conn = c.Conn
	}
	if perr := s.safeEmit(EventTLSClientError, err, conn); perr != nil {
		s.log.Error("tlsserver: 'tlsClientError' listener panicked", "err", perr)
	}
}

// park waits for a listener's callback. If the callback has not come yet
// it watches the client meanwhile, so that a client hanging up is noticed;
// bytes it reads are kept for the handshake. Timeout, Close and a second
// callback call end the wait through destroy.
func (c *serverConn) park(ch chan cbResult) (cbResult, error) {
	var r cbResult
	select {
	case r = <-ch:
	default:
		stop := c.watch()
		select {
		case r = <-ch:
		case <-c.abort:
		}
		stop()
	}
	if err := c.failure(); err != nil {
		return cbResult{}, err
	}
	return r, nil
}

var longAgo = time.Unix(1, 0)

func (c *serverConn) watch() (stop func()) {
	done := make(chan struct{})
	var stopping atomic.Bool
	go func() {
		defer close(done)
		var buf [512]byte
		for {
			n, err := c.Conn.Read(buf[:])
			if n > 0 {
				c.pending = append(c.pending, buf[:n]...)
				if len(c.pending) >= maxPending {
					return
				}
			}
			if err != nil {
				if !stopping.Load() {
					c.destroy(withCause(ErrSocketClosed, err))
				}
				return
			}
		}
	}()
	return func() {
		stopping.Store(true)
		c.Conn.SetReadDeadline(longAgo)
		<-done
		c.Conn.SetReadDeadline(time.Time{})
	}
}

// getConfigForClient records what the ClientHello says and gives the
// connection its own tls.Config only when a per-connection hook needs one:
// a key log, the session store, or a TLS 1.2 'OCSPRequest' that must wait
// for the resumption decision.
func (s *Server) getConfigForClient(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	c, ok := hello.Conn.(*serverConn)
	if !ok {
		return nil, nil
	}
	base := c.sc.config
	c.hello = hello
	c.statusReq = slices.Contains(hello.Extensions, extStatusRequest)
	c.vers = mutualVersion(base, hello.SupportedVersions)
	c.deferOCSP = c.ocsp.Len() > 0 && c.statusReq && c.vers != tls.VersionTLS13 && !base.SessionTicketsDisabled
	if !c.keylog && !c.store && !c.deferOCSP {
		return nil, nil
	}
	cfg := base.Clone()
	cfg.GetConfigForClient = nil
	if c.keylog {
		cfg.KeyLogWriter = &keylogWriter{c: c, next: base.KeyLogWriter}
	}
	if c.store || c.deferOCSP {
		cfg.UnwrapSession = c.unwrapSession
	}
	if c.store {
		cfg.WrapSession = c.wrapSession
	}
	c.cfg = cfg
	return cfg, nil
}

// mutualVersion predicts the version crypto/tls negotiates: the client's
// first preference the server supports.
func mutualVersion(cfg *tls.Config, client []uint16) uint16 {
	lo, hi := cfg.MinVersion, cfg.MaxVersion
	if lo == 0 {
		lo = tls.VersionTLS12
	}
	if hi == 0 {
		hi = tls.VersionTLS13
	}
	for _, v := range client {
		if v >= lo && v <= hi {
			return v
		}
	}
	return 0
}

// getCertificate is Node's certificate callback: crypto/tls calls it on
// full handshakes only (in TLS 1.3; in TLS 1.2 also before a resumption,
// hence deferOCSP). It selects the certificate and runs 'OCSPRequest'.
func (s *Server) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	c, ok := hello.Conn.(*serverConn)
	if !ok {
		return nil, errNoCertificate
	}
	e, err := c.selectCert(hello)
	if err != nil {
		return nil, c.fail(err)
	}
	if c.ocsp.Len() == 0 || !c.statusReq {
		return e.cert, nil
	}
	cp := new(tls.Certificate)
	*cp = *e.cert
	cp.OCSPStaple = nil
	c.cert, c.entry = cp, e
	if c.deferOCSP {
		return cp, nil
	}
	if err := c.runOCSP(); err != nil {
		return nil, err
	}
	return cp, nil
}

func (c *serverConn) selectCert(hello *tls.ClientHelloInfo) (*certEntry, error) {
	s := c.s
	name := hello.ServerName
	if s.sni != nil && name != "" {
		cert, err := c.callSNI(name)
		if err != nil {
			return nil, err
		}
		if cert != nil {
			if len(cert.Certificate) == 0 {
				return nil, errNoCertificate
			}
			return &certEntry{cert: cert, issuer: findIssuer(cert, c.sc.ca)}, nil
		}
	} else if name != "" {
		if list := s.contexts.Load(); list != nil {
			for i := len(*list) - 1; i >= 0; i-- {
				if sc := (*list)[i]; sc.re.MatchString(name) {
					return sc.entry, nil
				}
			}
		}
	}
	switch certs := c.sc.certs; len(certs) {
	case 0:
		return nil, errNoCertificate
	case 1:
		return certs[0], nil
	default:
		for _, e := range certs {
			if hello.SupportsCertificate(e.cert) == nil {
				return e, nil
			}
		}
		return certs[0], nil
	}
}

func (c *serverConn) callSNI(name string) (cert *tls.Certificate, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = panicError("SNICallback", v)
		}
	}()
	return c.s.sni(c.sniCtx, name)
}

// runOCSP emits 'OCSPRequest' to the eligible listeners and waits for the
// shared callback; the staple goes on the connection's own certificate.
func (c *serverConn) runOCSP() error {
	c.ocspRes = make(chan cbResult, 1)
	issuer := c.entry.issuer
	var called bool
	err := func() (err error) {
		defer func() {
			if v := recover(); v != nil {
				err = panicError(EventOCSPRequest, v)
			}
		}()
		called = c.s.EmitSnapshot(c.ocsp, c.cert.Certificate[0], issuer, OCSPCallback(c.ocspCallback))
		return nil
	}()
	if err != nil {
		return c.fail(err)
	}
	if !called {
		return nil // every eligible listener was removed meanwhile
	}
	r, err := c.park(c.ocspRes)
	if err != nil {
		return err
	}
	if r.err != nil {
		return c.fail(r.err)
	}
	if len(r.data) > 0 {
		c.cert.OCSPStaple = r.data
	}
	return nil
}

func (c *serverConn) ocspCallback(err error, resp []byte) {
	if c.ocspCalls.Add(1) == 1 {
		c.ocspRes <- cbResult{err: err, data: resp}
		return
	}
	// A second call: Node's ERR_MULTIPLE_CALLBACK. Before the handshake
	// completes it fails the handshake; after, it destroys the connection
	// and, since *tls.Conn has no 'error' event, is reported through
	// 'tlsClientError'. On a dead connection it is a no-op.
	c.destroy(ErrMultipleCallback)
}

// unwrapSession resolves a ticket: through 'resumeSession' for the session
// store's ids, else as configured. In TLS 1.2 it then runs the deferred
// 'OCSPRequest' when the handshake will be a full one.
func (c *serverConn) unwrapSession(identity []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
	var ss *tls.SessionState
	var err error
	switch {
	case c.store && len(identity) == sessionIDLen && c.s.ListenerCount(EventResumeSession) > 0:
		ss, err = c.resume(identity)
		if err != nil {
			return nil, err
		}
	case c.sc.unwrap != nil:
		ss, err = c.sc.unwrap(identity, cs)
	default:
		ss, err = c.cfg.DecryptTicket(identity, cs)
	}
	if err != nil || !c.deferOCSP {
		return ss, err
	}
	c.deferOCSP = false
	if ss != nil && c.willResume(ss, cs) {
		return ss, nil
	}
	if err := c.runOCSP(); err != nil {
		return nil, err
	}
	return nil, nil
}

func (c *serverConn) resume(identity []byte) (*tls.SessionState, error) {
	ch := make(chan cbResult, 1)
	var calls atomic.Int32
	cb := func(err error, data []byte) {
		if calls.Add(1) == 1 {
			ch <- cbResult{err: err, data: data}
			return
		}
		c.destroy(ErrMultipleCallback)
	}
	if err := c.s.safeEmit(EventResumeSession, bytes.Clone(identity), cb); err != nil {
		return nil, c.fail(err)
	}
	r, err := c.park(ch)
	if err != nil {
		return nil, err
	}
	if r.err != nil {
		return nil, c.fail(r.err)
	}
	if len(r.data) == 0 {
		return nil, nil
	}
	ss, err := tls.ParseSessionState(r.data)
	if err != nil {
		return nil, nil // unusable data: a full handshake, as with no data
	}
	return ss, nil
}

// wrapSession issues a ticket: through 'newSession' (the ticket is a random
// id, the listener stores the data under it) when a listener exists, else
// as configured.
func (c *serverConn) wrapSession(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
	if c.s.ListenerCount(EventNewSession) == 0 {
		if c.sc.wrap != nil {
			return c.sc.wrap(cs, ss)
		}
		return c.cfg.EncryptTicket(cs, ss)
	}
	data, err := ss.Bytes()
	if err != nil {
		return nil, err
	}
	id := make([]byte, sessionIDLen)
	rand.Read(id)
	ch := make(chan cbResult, 1)
	var once atomic.Bool
	done := func() {
		if once.CompareAndSwap(false, true) {
			ch <- cbResult{}
		}
	}
	if err := c.s.safeEmit(EventNewSession, bytes.Clone(id), data, done); err != nil {
		return nil, c.fail(err)
	}
	if _, err := c.park(ch); err != nil {
		return nil, err
	}
	return id, nil
}

// willResume repeats the checks crypto/tls's TLS 1.2 server makes after
// UnwrapSession, so that 'OCSPRequest' is emitted exactly when the
// handshake is a full one. A session it refuses is not offered to crypto/tls
// (which would refuse it too).
func (c *serverConn) willResume(ss *tls.SessionState, cs tls.ConnectionState) bool {
	b, err := ss.Bytes()
	if err != nil || len(b) < 14 {
		return false
	}
	vers := binary.BigEndian.Uint16(b)
	suite := binary.BigEndian.Uint16(b[3:])
	created := time.Unix(int64(binary.BigEndian.Uint64(b[5:])), 0)
	b = b[13:]
	if len(b) < 1 || len(b) < 1+int(b[0]) {
		return false
	}
	b = b[1+int(b[0]):] // secret
	if len(b) < 3 {
		return false
	}
	n := int(b[0])<<16 | int(b[1])<<8 | int(b[2])
	if len(b) < 3+n+2+3 {
		return false
	}
	b = b[3+n:] // extra
	ems := b[0] == 1
	hasPeerCerts := b[2]|b[3]|b[4] != 0
	cfg := c.cfg
	now := time.Now()
	if cfg.Time != nil {
		now = cfg.Time()
	}
	switch {
	case now.Sub(created) > maxTicketAge,
		vers != cs.Version,
		!slices.Contains(c.hello.CipherSuites, suite),
		cfg.CipherSuites != nil && !slices.Contains(cfg.CipherSuites, suite),
		!ems && slices.Contains(c.hello.Extensions, extEMS),
		!hasPeerCerts && (cfg.ClientAuth == tls.RequireAnyClientCert || cfg.ClientAuth == tls.RequireAndVerifyClientCert),
		hasPeerCerts && cfg.ClientAuth == tls.NoClientCert:
		return false
	}
	return true
}

// keylogWriter is a handshake's KeyLogWriter: each line becomes a 'keylog'
// emission (and still goes to the configured writer, if any).
type keylogWriter struct {
	c    *serverConn
	next io.Writer
}

func (w *keylogWriter) Write(p []byte) (int, error) {
	if w.next != nil {
		w.next.Write(p)
	}
	if err := w.c.s.safeEmit(EventKeylog, bytes.Clone(p), net.Conn(w.c.tls)); err != nil {
		return 0, w.c.fail(err)
	}
	return len(p), nil
}
