package tlsserver

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/tlsemit/tlsemit/events"
	"github.com/tlsemit/tlsemit/internal/evhook"
)

// DefaultHandshakeTimeout is Node's default handshakeTimeout.
const DefaultHandshakeTimeout = 120 * time.Second

// DefaultSessionTimeout is Node's default sessionTimeout: how long a
// session can be resumed.
const DefaultSessionTimeout = 300 * time.Second

// DefaultBacklog is Node's default listen backlog: how many established
// connections wait for Listener's Accept.
const DefaultBacklog = 511

// Options configure a Server. Certificates, CA and Config make up the
// default secure context, which SetSecureContext replaces.
type Options struct {
	// Certificates is the default context's certificate (Node: key/cert/pfx).
	// When several are given, the first one the client supports is served.
	// When empty, Config.Certificates is used.
	Certificates []tls.Certificate
	// CA is Node's ca: where the issuer given to 'OCSPRequest' is looked up
	// when the served chain lacks it, and, unless Config.ClientCAs is set,
	// the roots for client certificates.
	CA []*x509.Certificate
	// CRL is Node's crl: CRLs (DER or PEM) that client certificates are
	// checked against (see SecureContext.CRL). New returns an error for a
	// CRL that does not verify against CA.
	CRL [][]byte
	// Config is an optional base (cipher suites, NextProtos for ALPN,
	// ClientAuth, versions…). It is cloned. Its GetCertificate,
	// GetConfigForClient and NameToCertificate are ignored: certificates
	// come from Certificates, AddContext and SNICallback. Its KeyLogWriter,
	// WrapSession and UnwrapSession keep working; a session UnwrapSession
	// returns is resumed only if it was issued through the server's
	// WrapSession, which records its creation time (for SessionTimeout) in
	// SessionState.Extra before calling yours.
	Config *tls.Config
	// HandshakeTimeout bounds a handshake, from accept to completion,
	// including time spent waiting for listener callbacks. Zero means
	// DefaultHandshakeTimeout (Node's 120 s); negative disables it. On expiry
	// the connection is destroyed at once and 'tlsClientError' is emitted
	// with ErrHandshakeTimeout (Node leaves the socket open). A listener that
	// blocks the handshake's goroutine delays that emission until it returns;
	// the connection is closed all the same. It also bounds how long an
	// established connection waits for Listener's Accept (see
	// Server.Listener).
	HandshakeTimeout time.Duration
	// SessionTimeout is Node's sessionTimeout: a session (a ticket, or
	// session data from 'resumeSession') resumes while its age, by the
	// server's clock (Config.Time), is under this, to the nanosecond; an
	// older one gets a full handshake. Sub-second values work. Zero means
	// DefaultSessionTimeout (Node's 300 s); negative means crypto/tls's own
	// limit (7 days), which also caps larger values. In TLS 1.2 a resumed
	// session keeps its creation time; in TLS 1.3 each resumption issues a
	// session of its own.
	SessionTimeout time.Duration
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
	// Backlog is Node's listen backlog: how many established connections
	// can wait for Listener's Accept (see Server.Listener). Zero means
	// DefaultBacklog (Node's 511).
	Backlog int
	// Logger receives the failures that have no listener to go to, and
	// the server's max-listener warnings (Node prints those to stderr;
	// Server.SetWarningHandler overrides it). Nil discards the failures and
	// leaves the warnings to events.SetWarningHandler: a library does not
	// write to the process's log uninvited.
	Logger *slog.Logger
	// HTTP, when set, is served on the established connections: Node's
	// https.createServer(options, handler). The first Listen, Serve or
	// ServeConn starts HTTP.Serve on the server's Listener (do not call
	// Listener yourself), after wrapping HTTP.Handler and HTTP.ConnContext
	// (set them before) so that Shutdown knows when a connection it handed
	// over has sent its first request. Shutdown shuts HTTP down in its
	// turn, and Close closes it (http.Server.Close). Unless
	// Config.NextProtos is set, ALPN offers what HTTP serves: "h2" (unless
	// its Protocols, TLSNextProto or TLSConfig turn HTTP/2 off; if you turn
	// it off with GODEBUG=http2server=0, set Config.NextProtos) and
	// "http/1.1". HTTP.TLSConfig plays no part in the handshake: the
	// server's certificates and Config do.
	HTTP *http.Server
	// MeterProvider receives the server's OpenTelemetry metrics
	// (handshakes by outcome and TLS version, their duration, the
	// 'OCSPRequest' wait, open and dropped connections, client errors by
	// Node code: docs/metrics.md). Nil means the global provider
	// (otel.GetMeterProvider), a no-op until the application installs one.
	MeterProvider metric.MeterProvider
}

// Server is a TLS server that emits Node's tls.Server events. Its embedded
// Emitter carries them: register with On or the typed On… methods, which
// share one registry.
//
// Handshakes run concurrently, one goroutine per connection, never inside
// Accept.
type Server struct {
	events.Emitter

	timeout        time.Duration // of a handshake; <= 0: none
	acceptTimeout  time.Duration // of a wait in the backlog
	sessionTimeout time.Duration
	backlog        int
	maxConns       int
	sni            func(context.Context, string) (*tls.Certificate, error)
	log            *slog.Logger
	met            *metrics
	counts         counters

	sc       atomic.Pointer[secureContext]
	contexts atomic.Pointer[[]*namedContext]
	tickets  atomic.Pointer[ticketKeys]
	ctxMu    sync.Mutex // serializes AddContext, SetSecureContext, SetTicketKeys

	hs          *http.Server // Options.HTTP
	httpStarted bool         // HTTP.Serve has been started (under mu)

	stopping atomic.Bool  // closing, for the handshake goroutines
	busy     atomic.Int64 // connections whose goroutine is handshaking or delivering (Stats.Handshaking)
	// firstPending counts the connections handed to Options.HTTP that
	// have not yet had a request dispatched.
	firstPending atomic.Int64

	mu           sync.Mutex
	conns        map[*serverConn]struct{} // counted until their last event
	excused      int                      // conns whose goroutine was in a listener when Shutdown gave up
	listeners    []net.Listener           // serving, in the order they started
	serving      int                      // accept loops and HTTP.Serve running
	closing      bool                     // Shutdown or Close began: nothing new is accepted
	closed       bool                     // Close (or Shutdown giving up): handshakes are cut
	httpBusy     int                      // calls into HTTP's Shutdown or Close to come or running: 'close' waits
	closeEmitted bool
	closeDone    bool          // 'close''s listeners have returned
	closedCh     chan struct{} // closed by Close
	drained      chan struct{} // closed once 'close' has been emitted
	changed      chan struct{} // made by a waiter, closed at the next change
	lis          *connListener
	listenerUsed bool          // Listener has been called
	backlogQ     []*serverConn // established, waiting for Accept
	ready        chan struct{} // a connection joined backlogQ
}

// New returns a Server for opts. It does not listen: call Listen, Serve or
// ServeConn.
func New(opts Options) (*Server, error) {
	s := &Server{
		timeout:        opts.HandshakeTimeout,
		sessionTimeout: opts.SessionTimeout,
		backlog:        opts.Backlog,
		maxConns:       opts.MaxConnections,
		sni:            opts.SNICallback,
		log:            opts.Logger,
		hs:             opts.HTTP,
		conns:          make(map[*serverConn]struct{}),
		closedCh:       make(chan struct{}),
		drained:        make(chan struct{}),
		ready:          make(chan struct{}, 1),
	}
	if s.timeout == 0 {
		s.timeout = DefaultHandshakeTimeout
	}
	s.acceptTimeout = s.timeout
	if s.acceptTimeout < 0 {
		s.acceptTimeout = DefaultHandshakeTimeout // never kept indefinitely
	}
	switch {
	case s.sessionTimeout == 0:
		s.sessionTimeout = DefaultSessionTimeout
	case s.sessionTimeout < 0 || s.sessionTimeout > maxSessionAge:
		s.sessionTimeout = maxSessionAge
	}
	if s.backlog <= 0 {
		s.backlog = DefaultBacklog
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	} else {
		s.SetWarningHandler(func(w *events.MaxListenersExceededWarning) { s.log.Warn(w.Error(), "event", w.Event, "count", w.Count) })
	}
	k := make([]byte, 48)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	s.tickets.Store(newTicketKeys([][]byte{k}))
	sc, err := s.newSecureContext(opts.secureContext())
	if err != nil {
		return nil, err
	}
	s.storeContext(sc)
	s.met = newMetrics(opts.MeterProvider, s)
	return s, nil
}

func (o Options) secureContext() SecureContext {
	return SecureContext{Certificates: o.Certificates, CA: o.CA, CRL: o.CRL, Config: o.Config}
}

// Listen binds network/address, emits 'listening' and serves in the
// background, as Node's listen. It returns the bind error, if any, and
// emits nothing then. The return of Listen is Node's 'listening': the
// event has been emitted, synchronously, by then, so a listener for it
// (or events.Once) must be registered before the call. When ctx ends,
// this listener stops (as Node's listen with a signal) and established
// connections stay open; the server goes on, and can Listen again: only
// Close and Shutdown are final. After them, Listen returns
// ErrClosed.
func (s *Server) Listen(ctx context.Context, network, address string) error {
	if s.isClosing() {
		return ErrClosed
	}
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
	var stopped atomic.Bool
	stop := context.AfterFunc(ctx, func() {
		stopped.Store(true)
		l.Close()
	})
	go func() {
		err := s.acceptLoop(l)
		stop()
		if err != nil && !errors.Is(err, ErrClosed) && !stopped.Load() {
			s.emitError(err)
		}
		s.stopServing(l)
	}()
	return nil
}

// Serve accepts connections on l and handshakes each in its own goroutine
// until Close or Shutdown; then it returns ErrClosed. It closes l
// when it returns. An accept error that is not temporary is returned.
func (s *Server) Serve(l net.Listener) error {
	if err := s.register(l); err != nil {
		if l != nil {
			l.Close()
		}
		return err
	}
	err := s.acceptLoop(l)
	s.stopServing(l)
	return err
}

func (s *Server) register(l net.Listener) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return ErrClosed
	}
	s.listeners = append(s.listeners, l)
	s.serving++
	s.startHTTPLocked()
	return nil
}

// acceptLoop accepts on l until it fails or the server stops accepting.
// The caller reports its error, then calls stopServing: 'close' comes
// after the report.
func (s *Server) acceptLoop(l net.Listener) error {
	var delay time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if s.isClosing() {
				return ErrClosed
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

// stopServing ends what register began for l.
func (s *Server) stopServing(l net.Listener) {
	l.Close()
	s.mu.Lock()
	s.forgetListenerLocked(l)
	s.serving--
	s.mu.Unlock()
	s.checkDrained()
}

func (s *Server) forgetListenerLocked(l net.Listener) {
	if i := slices.Index(s.listeners, l); i >= 0 {
		s.listeners = slices.Delete(s.listeners, i, i+1)
	}
}

// ServeConn handshakes c in the background, as a connection accepted by the
// server (Node: server.emit('connection', socket)). Once Close or Shutdown
// has begun it closes c.
func (s *Server) ServeConn(c net.Conn) {
	if s.hs != nil {
		s.mu.Lock()
		if !s.closing {
			s.startHTTPLocked()
		}
		s.mu.Unlock()
	}
	s.start(c, false)
}

// Addr returns the address of the first listener still serving, or nil
// when none is (Node's address() is null then, as after close()).
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.listeners) == 0 {
		return nil
	}
	return s.listeners[0].Addr()
}

// Connections returns the number of open connections: handshaking,
// established, and waiting for Listener's Accept (Node's getConnections).
// A connection counts until its last event ('tlsClientError',
// 'secureConnection' or 'drop') has been emitted and its listeners have
// returned: when Connections is 0, every report has been made.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
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

// emitDrop emits 'drop' for a connection the server dropped.
func (s *Server) emitDrop(info DropInfo) {
	s.counts.dropped(info)
	if info.Err != nil {
		s.log.Warn("tlsserver: connection dropped", "remote", info.RemoteAddr, "err", info.Err)
	}
	if !s.observed(EventDrop) {
		return
	}
	if err := s.safeEmit(EventDrop, info); err != nil {
		s.log.Error("tlsserver: 'drop' listener panicked", "err", err)
	}
}

// observed reports whether anyone would receive event: a listener or a
// channel subscription (events.On). Emissions nobody receives are skipped,
// which saves building their arguments.
func (s *Server) observed(event string) bool {
	return s.ListenerCount(event) > 0 || s.Subscriptions() > 0
}

// callbacks reports whether event has a callback listener. ListenerCount
// also counts a channel subscription (events.On), as Node counts its
// iterator, but a subscription only observes: it cannot answer a callback
// or take a connection.
func (s *Server) callbacks(event string) bool { return evhook.Callbacks(&s.Emitter, event) > 0 }

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
