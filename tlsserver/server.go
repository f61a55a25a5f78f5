package tlsserver

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tlsemit/tlsemit/events"
)

// Event names, as Node's tls.Server and net.Server spell them.
const (
	// EventOCSPRequest is emitted with (cert, issuer []byte, cb OCSPCallback)
	// when a client asks for certificate status on a full handshake.
	EventOCSPRequest = "OCSPRequest"
	// EventSecureConnection is emitted with (*tls.Conn) after a handshake
	// completes.
	EventSecureConnection = "secureConnection"
	// EventTLSClientError is emitted with (error, net.Conn) when a
	// connection fails before its handshake completes, at most once per
	// connection. The conn is the *tls.Conn.
	EventTLSClientError = "tlsClientError"
	// EventConnection is emitted with (net.Conn), the raw connection, before
	// the TLS handshake starts.
	EventConnection = "connection"
	// EventKeylog is emitted with (line []byte, net.Conn): one NSS key-log
	// line, newline included, for connections whose handshake began while a
	// 'keylog' listener existed. The conn is the *tls.Conn.
	EventKeylog = "keylog"
	// EventNewSession is emitted with (id, data []byte, done func()) when a
	// session ticket is issued; the handshake waits for done.
	EventNewSession = "newSession"
	// EventResumeSession is emitted with (id []byte, cb func(err error,
	// data []byte)) when a client offers a ticket issued through
	// 'newSession'; the handshake waits for cb.
	EventResumeSession = "resumeSession"
	// EventListening is emitted with no arguments once Listen has bound.
	EventListening = "listening"
	// EventClose is emitted with no arguments after Close, once the last
	// connection has ended.
	EventClose = "close"
	// EventError is emitted with (error) for a failure of the accept loop
	// started by Listen, only when an 'error' listener exists (else it is
	// logged): the server never panics through the emitter's
	// unhandled-'error' rule.
	EventError = events.EventError
	// EventDrop is emitted with (DropInfo) when a connection is refused
	// because the server has MaxConnections connections.
	EventDrop = "drop"
)

// DefaultHandshakeTimeout is Node's default handshakeTimeout.
const DefaultHandshakeTimeout = 120 * time.Second

// Options configure a Server. Only Certificates, CA and Config make up a
// secure context, which SetSecureContext replaces.
type Options struct {
	// Certificates is the default context's certificate (Node: key/cert/pfx).
	// When several are given, the first one the client supports is served.
	// When empty, Config.Certificates is used.
	Certificates []tls.Certificate
	// CA is Node's ca: where the issuer given to 'OCSPRequest' is looked up
	// when the served chain lacks it, and, unless Config.ClientCAs is set,
	// the roots for client certificates.
	CA []*x509.Certificate
	// Config is an optional base (cipher suites, NextProtos for ALPN,
	// ClientAuth, versions…). It is cloned. Its GetCertificate,
	// GetConfigForClient and NameToCertificate are ignored: certificates
	// come from Certificates, AddContext and SNICallback. Its KeyLogWriter,
	// WrapSession and UnwrapSession keep working.
	Config *tls.Config
	// HandshakeTimeout bounds a handshake, from accept to completion,
	// including time spent waiting for listener callbacks. Zero means
	// DefaultHandshakeTimeout (Node's 120 s); negative disables it. On expiry
	// the connection is destroyed at once and 'tlsClientError' is emitted
	// with ErrHandshakeTimeout (Node leaves the socket open). A listener that
	// blocks the handshake's goroutine delays that emission until it returns;
	// the connection is closed all the same.
	HandshakeTimeout time.Duration
	// SNICallback, when set, selects the certificate for a client that sent
	// a server name (Node calls it only then). A nil certificate with a nil
	// error means the default context. An error destroys the connection and
	// is reported through 'tlsClientError'. ctx ends when the handshake is
	// abandoned. When set, AddContext contexts are not consulted (as in
	// Node, where they are what the default SNICallback looks up).
	SNICallback func(ctx context.Context, serverName string) (*tls.Certificate, error)
	// MaxConnections, when positive, caps the connections (handshaking and
	// established). A connection accepted over it is closed and 'drop' is
	// emitted. ServeConn is not subject to it, as Node's emit('connection')
	// is not.
	MaxConnections int
	// Logger receives the failures that have no listener to go to. Nil
	// discards them: a library does not write to the process's log
	// uninvited.
	Logger *slog.Logger
}

// DropInfo describes a connection dropped over MaxConnections (Node's
// 'drop' argument).
type DropInfo struct {
	LocalAddr  net.Addr
	RemoteAddr net.Addr
}

// OCSPCallback answers an 'OCSPRequest'. cb(nil, resp) staples a non-empty
// resp byte-for-byte on this connection (nil or empty staples nothing);
// cb(err, nil) destroys the connection. It may be called from any
// goroutine; resp is not copied and must not be modified afterwards.
type OCSPCallback = func(err error, resp []byte)

// Server is a TLS server that emits Node's tls.Server events. Its embedded
// Emitter carries them: register with On or the typed On… methods, which
// share one registry.
//
// Handshakes run concurrently, one goroutine per connection, never inside
// Accept.
type Server struct {
	events.Emitter

	timeout  time.Duration
	maxConns int
	sni      func(context.Context, string) (*tls.Certificate, error)
	log      *slog.Logger

	sc       atomic.Pointer[secureContext]
	contexts atomic.Pointer[[]*sniContext]
	ctxMu    sync.Mutex // serializes AddContext, SetSecureContext, SetTicketKeys
	keys     [][48]byte // guarded by ctxMu; the first encrypts

	mu           sync.Mutex
	conns        map[*serverConn]struct{}
	listeners    map[net.Listener]struct{}
	serving      int
	addr         net.Addr
	closed       bool
	closeEmitted bool
	closedCh     chan struct{} // closed by Close
	drained      chan struct{} // closed once closed with nothing left
	lis          *connListener
}

// New returns a Server for opts. It does not listen: call Listen, Serve or
// ServeConn.
func New(opts Options) (*Server, error) {
	s := &Server{
		timeout:   opts.HandshakeTimeout,
		maxConns:  opts.MaxConnections,
		sni:       opts.SNICallback,
		log:       opts.Logger,
		conns:     make(map[*serverConn]struct{}),
		listeners: make(map[net.Listener]struct{}),
		closedCh:  make(chan struct{}),
		drained:   make(chan struct{}),
	}
	if s.timeout == 0 {
		s.timeout = DefaultHandshakeTimeout
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.keys = make([][48]byte, 1)
	if _, err := rand.Read(s.keys[0][:]); err != nil {
		return nil, err
	}
	sc, err := s.newSecureContext(opts)
	if err != nil {
		return nil, err
	}
	s.storeContext(sc)
	return s, nil
}

// Listen binds network/address, emits 'listening' and serves in the
// background until Close or until ctx ends, as Node's listen. It returns the
// bind error, if any, and emits nothing then.
func (s *Server) Listen(ctx context.Context, network, address string) error {
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, network, address)
	if err != nil {
		return err
	}
	if err := s.register(l); err != nil {
		l.Close()
		return err
	}
	if s.observed(EventListening) {
		if err := s.safeEmit(EventListening); err != nil {
			s.log.Error("tlsserver: 'listening' listener panicked", "err", err)
		}
	}
	go func() {
		if err := s.acceptLoop(l); err != nil && !errors.Is(err, ErrServerClosed) {
			s.emitError(err)
		}
	}()
	if ctx.Done() != nil {
		context.AfterFunc(ctx, func() { s.Close() })
	}
	return nil
}

// Serve accepts connections on l and handshakes each in its own goroutine
// until Close; then it returns ErrServerClosed. It closes l when it
// returns. An accept error that is not temporary is returned.
func (s *Server) Serve(l net.Listener) error {
	if err := s.register(l); err != nil {
		if l != nil {
			l.Close()
		}
		return err
	}
	return s.acceptLoop(l)
}

func (s *Server) register(l net.Listener) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.serving++
	if s.addr == nil {
		s.addr = l.Addr()
	}
	return nil
}

func (s *Server) acceptLoop(l net.Listener) error {
	defer func() {
		l.Close()
		s.mu.Lock()
		delete(s.listeners, l)
		s.serving--
		s.mu.Unlock()
		s.checkDrained()
	}()
	var delay time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if s.isClosed() {
				return ErrServerClosed
			}
			var te interface{ Temporary() bool }
			if errors.As(err, &te) && te.Temporary() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.log.Warn("tlsserver: accept error; retrying", "err", err, "delay", delay)
				select {
				case <-time.After(delay):
				case <-s.closedCh:
				}
				continue
			}
			return err
		}
		delay = 0
		s.start(c, true)
	}
}

// ServeConn handshakes c in the background, as a connection accepted by the
// server (Node: server.emit('connection', socket)). After Close it closes c.
func (s *Server) ServeConn(c net.Conn) { s.start(c, false) }

// Addr returns the address of the first listener, or nil.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Connections returns the number of open connections, handshaking or
// established (Node's getConnections).
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Close stops accepting, closes the listeners, and destroys the
// connections still handshaking (their pending callbacks are abandoned and
// 'tlsClientError' reports ErrServerClosed). Established connections stay
// open; 'close' is emitted once the last one ends. Closing again is a
// no-op.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.closedCh)
	ls := make([]net.Listener, 0, len(s.listeners))
	for l := range s.listeners {
		ls = append(ls, l)
	}
	cs := make([]*serverConn, 0, len(s.conns))
	for c := range s.conns {
		cs = append(cs, c)
	}
	s.mu.Unlock()
	var err error
	for _, l := range ls {
		if e := l.Close(); e != nil && err == nil && !errors.Is(e, net.ErrClosed) {
			err = e
		}
	}
	for _, c := range cs {
		c.abandon(ErrServerClosed)
	}
	s.checkDrained()
	return err
}

// Shutdown closes the server as Close does, then waits for the established
// connections to end. When ctx ends first, it closes them and returns
// ctx.Err().
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.Close()
	select {
	case <-s.drained:
		return err
	case <-ctx.Done():
	}
	s.mu.Lock()
	cs := make([]*serverConn, 0, len(s.conns))
	for c := range s.conns {
		cs = append(cs, c)
	}
	s.mu.Unlock()
	for _, c := range cs {
		c.Close()
	}
	return ctx.Err()
}

// checkDrained emits 'close' once the server is closed with no listener
// loop and no connection left.
func (s *Server) checkDrained() {
	s.mu.Lock()
	if !s.closed || s.closeEmitted || s.serving > 0 || len(s.conns) > 0 {
		s.mu.Unlock()
		return
	}
	s.closeEmitted = true
	close(s.drained)
	s.mu.Unlock()
	if s.observed(EventClose) {
		if err := s.safeEmit(EventClose); err != nil {
			s.log.Error("tlsserver: 'close' listener panicked", "err", err)
		}
	}
}

func (s *Server) untrack(c *serverConn) {
	s.mu.Lock()
	_, ok := s.conns[c]
	delete(s.conns, c)
	s.mu.Unlock()
	if ok {
		s.checkDrained()
	}
}

// emitError emits 'error' when someone listens, else logs: never the
// emitter's unhandled-'error' panic.
func (s *Server) emitError(err error) {
	if s.ListenerCount(EventError) == 0 {
		s.log.Error("tlsserver: serve error", "err", err)
		return
	}
	if perr := s.safeEmit(EventError, err); perr != nil {
		s.log.Error("tlsserver: 'error' listener panicked", "err", perr)
	}
}

// observed reports whether anyone would receive event: a listener or a
// channel subscription (events.On). Emissions nobody receives are skipped,
// which saves building their arguments.
func (s *Server) observed(event string) bool {
	return s.ListenerCount(event) > 0 || s.Subscriptions() > 0
}

// safeEmit emits event and turns a listener's panic into an error wrapping
// ErrListenerPanic.
func (s *Server) safeEmit(event string, args ...any) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = panicError(event, v)
		}
	}()
	s.Emit(event, args...)
	return nil
}

func panicError(event string, v any) error {
	return &Error{
		Code: ErrListenerPanic.Code,
		Msg:  "'" + event + "' listener panicked",
		Err:  &PanicError{Event: event, Value: v, Stack: debug.Stack()},
	}
}

// OnOCSPRequest adds fn as an 'OCSPRequest' listener. cert is the DER of
// the certificate served on the connection, issuer the DER of its issuer
// (from the served chain, else the context's CA, else nil), and cb decides
// what is stapled. See the package documentation for the whole contract.
func (s *Server) OnOCSPRequest(fn func(cert, issuer []byte, cb OCSPCallback)) events.ID {
	return s.On(EventOCSPRequest, func(args ...any) {
		fn(bytesArg(args, 0), bytesArg(args, 1), args[2].(OCSPCallback))
	})
}

// OnSecureConnection adds fn as a 'secureConnection' listener.
func (s *Server) OnSecureConnection(fn func(*tls.Conn)) events.ID {
	return s.On(EventSecureConnection, func(args ...any) { fn(args[0].(*tls.Conn)) })
}

// OnTLSClientError adds fn as a 'tlsClientError' listener.
func (s *Server) OnTLSClientError(fn func(err error, conn net.Conn)) events.ID {
	return s.On(EventTLSClientError, func(args ...any) {
		err, _ := args[0].(error)
		conn, _ := args[1].(net.Conn)
		fn(err, conn)
	})
}

// OnConnection adds fn as a 'connection' listener: it gets the raw
// connection before the handshake starts.
func (s *Server) OnConnection(fn func(net.Conn)) events.ID {
	return s.On(EventConnection, func(args ...any) { fn(args[0].(net.Conn)) })
}

// OnKeylog adds fn as a 'keylog' listener.
func (s *Server) OnKeylog(fn func(line []byte, conn net.Conn)) events.ID {
	return s.On(EventKeylog, func(args ...any) {
		conn, _ := args[1].(net.Conn)
		fn(bytesArg(args, 0), conn)
	})
}

// OnNewSession adds fn as a 'newSession' listener: store data under id
// (for a later 'resumeSession'), then call done; the handshake waits for
// done.
func (s *Server) OnNewSession(fn func(id, data []byte, done func())) events.ID {
	return s.On(EventNewSession, func(args ...any) {
		fn(bytesArg(args, 0), bytesArg(args, 1), args[2].(func()))
	})
}

// OnResumeSession adds fn as a 'resumeSession' listener: look id up and
// call cb(nil, data), or cb(nil, nil) for a full handshake, or cb(err, nil)
// to destroy the connection; the handshake waits for cb.
func (s *Server) OnResumeSession(fn func(id []byte, cb func(err error, data []byte))) events.ID {
	return s.On(EventResumeSession, func(args ...any) {
		fn(bytesArg(args, 0), args[1].(func(error, []byte)))
	})
}

func bytesArg(args []any, i int) []byte {
	b, _ := args[i].([]byte)
	return b
}
