package tlsserver

import (
	"crypto/tls"
	"fmt"
	"net"
	"strings"

	"github.com/tlsemit/tlsemit/events"
)

// Event names, as Node's tls.Server and net.Server spell them.
const (
	// EventOCSPRequest is emitted with (cert, issuer []byte, cb OCSPCallback)
	// when a client asks for certificate status on a full handshake.
	EventOCSPRequest = "OCSPRequest"
	// EventSecureConnection is emitted with (*tls.Conn) after a handshake
	// completes. Then, unless a listener started using the connection, it
	// waits for Listener's Accept (see Server.Listener).
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
	// EventListening is emitted with no arguments each time Listen has
	// bound, before Listen returns: a listener for it is registered before
	// Listen is called (the return of Listen is the event).
	EventListening = "listening"
	// EventClose is emitted with no arguments after Close or Shutdown,
	// once the last connection has ended and its last event has been
	// emitted (with Options.HTTP, after the http.Server's Shutdown).
	EventClose = "close"
	// EventError is emitted with (error) for a failure of the accept loop
	// started by Listen, a forged emission, or a mispredicted resumption,
	// only when an 'error' listener exists (else it is logged): the server
	// never panics through the emitter's unhandled-'error' rule.
	EventError = events.EventError
	// EventDrop is emitted with (DropInfo) when the server drops a
	// connection: one accepted over MaxConnections (Node's 'drop'), an
	// established one nobody accepted, or one turned away while the
	// Listener is closed (see Server.Listener).
	EventDrop = "drop"
)

// DropInfo describes a dropped connection (Node's 'drop' argument).
type DropInfo struct {
	LocalAddr  net.Addr
	RemoteAddr net.Addr
	// Err is nil for a connection refused over MaxConnections (Node's only
	// reason), and wraps ErrNotAccepted for a connection nobody accepted:
	// established and not taken, or turned away before its handshake
	// while the Listener is closed (Server.Listener says when).
	Err error
}

// OCSPCallback answers an 'OCSPRequest'. cb(nil, resp) staples a non-empty
// resp byte-for-byte on this connection (nil or empty staples nothing);
// cb(err, nil) destroys the connection. It may be called from any
// goroutine; resp is not copied and must not be modified afterwards.
type OCSPCallback = func(err error, resp []byte)

// The typed registrations. Each adds to the same registry as On, so
// ListenerCount, Off and RemoveAllListeners see them. An emission whose
// arguments a typed listener cannot take (a forged srv.Emit with wrong or
// missing arguments) skips that listener and is reported through 'error'
// with ErrInvalidArgType; it never panics.

// OnOCSPRequest adds fn as an 'OCSPRequest' listener. cert is the DER of
// the certificate served on the connection, issuer the DER of its issuer
// (from the served chain, else the context's CA, else nil), and cb decides
// what is stapled. See the package documentation for the whole contract.
func (s *Server) OnOCSPRequest(fn func(cert, issuer []byte, cb OCSPCallback)) events.ID {
	return s.On(EventOCSPRequest, func(args ...any) {
		cert, ok1 := arg[[]byte](args, 0)
		issuer, ok2 := arg[[]byte](args, 1)
		cb, ok3 := arg[OCSPCallback](args, 2)
		if !ok1 || !ok2 || !ok3 || cert == nil || cb == nil {
			s.invalidArgs(EventOCSPRequest, args, "[]byte, []byte, tlsserver.OCSPCallback")
			return
		}
		fn(cert, issuer, cb)
	})
}

// OnSecureConnection adds fn as a 'secureConnection' listener. fn gets the
// connection first, as in Node. Unless fn starts using it (reads, writes
// or closes it) before it returns, the connection then goes to Listener's
// Accept: a listener that only logs does not keep connections from
// net/http. While Listener has never been called, a connection fn received
// is fn's, as in Node, and is left open however long fn waits to use it
// (see Server.Listener).
func (s *Server) OnSecureConnection(fn func(*tls.Conn)) events.ID {
	return s.On(EventSecureConnection, func(args ...any) {
		c, ok := arg[*tls.Conn](args, 0)
		if !ok || c == nil {
			s.invalidArgs(EventSecureConnection, args, "*tls.Conn")
			return
		}
		fn(c)
	})
}

// OnTLSClientError adds fn as a 'tlsClientError' listener.
func (s *Server) OnTLSClientError(fn func(err error, conn net.Conn)) events.ID {
	return s.On(EventTLSClientError, func(args ...any) {
		err, ok1 := arg[error](args, 0)
		conn, ok2 := arg[net.Conn](args, 1)
		if !ok1 || !ok2 || err == nil || conn == nil {
			s.invalidArgs(EventTLSClientError, args, "error, net.Conn")
			return
		}
		fn(err, conn)
	})
}

// OnConnection adds fn as a 'connection' listener: it gets the raw
// connection before the handshake starts.
func (s *Server) OnConnection(fn func(net.Conn)) events.ID {
	return s.On(EventConnection, func(args ...any) {
		c, ok := arg[net.Conn](args, 0)
		if !ok || c == nil {
			s.invalidArgs(EventConnection, args, "net.Conn")
			return
		}
		fn(c)
	})
}

// OnKeylog adds fn as a 'keylog' listener.
func (s *Server) OnKeylog(fn func(line []byte, conn net.Conn)) events.ID {
	return s.On(EventKeylog, func(args ...any) {
		line, ok1 := arg[[]byte](args, 0)
		conn, ok2 := arg[net.Conn](args, 1)
		if !ok1 || !ok2 || conn == nil {
			s.invalidArgs(EventKeylog, args, "[]byte, net.Conn")
			return
		}
		fn(line, conn)
	})
}

// OnNewSession adds fn as a 'newSession' listener: store data under id
// (for a later 'resumeSession'), then call done; the handshake waits for
// done. Calling done again does nothing (as in Node).
func (s *Server) OnNewSession(fn func(id, data []byte, done func())) events.ID {
	return s.On(EventNewSession, func(args ...any) {
		id, ok1 := arg[[]byte](args, 0)
		data, ok2 := arg[[]byte](args, 1)
		done, ok3 := arg[func()](args, 2)
		if !ok1 || !ok2 || !ok3 || done == nil {
			s.invalidArgs(EventNewSession, args, "[]byte, []byte, func()")
			return
		}
		fn(id, data, done)
	})
}

// OnResumeSession adds fn as a 'resumeSession' listener: look id up and
// call cb(nil, data), or cb(nil, nil) for a full handshake, or cb(err, nil)
// to destroy the connection; the handshake waits for cb.
func (s *Server) OnResumeSession(fn func(id []byte, cb func(err error, data []byte))) events.ID {
	return s.On(EventResumeSession, func(args ...any) {
		id, ok1 := arg[[]byte](args, 0)
		cb, ok2 := arg[func(error, []byte)](args, 1)
		if !ok1 || !ok2 || cb == nil {
			s.invalidArgs(EventResumeSession, args, "[]byte, func(error, []byte)")
			return
		}
		fn(id, cb)
	})
}

// OnListening adds fn as a 'listening' listener. Listen emits 'listening'
// before it returns: add fn before calling Listen.
func (s *Server) OnListening(fn func()) events.ID {
	return s.On(EventListening, func(...any) { fn() })
}

// OnClose adds fn as a 'close' listener: fn runs once, after Close or
// Shutdown, when every connection has ended and its last event has been
// emitted.
func (s *Server) OnClose(fn func()) events.ID {
	return s.On(EventClose, func(...any) { fn() })
}

// OnError adds fn as an 'error' listener. Registering one makes the server
// emit its errors instead of logging them.
func (s *Server) OnError(fn func(error)) events.ID {
	return s.On(EventError, func(args ...any) {
		err, ok := arg[error](args, 0)
		if !ok || err == nil {
			s.invalidArgs(EventError, args, "error")
			return
		}
		fn(err)
	})
}

// OnDrop adds fn as a 'drop' listener.
func (s *Server) OnDrop(fn func(DropInfo)) events.ID {
	return s.On(EventDrop, func(args ...any) {
		info, ok := arg[DropInfo](args, 0)
		if !ok {
			s.invalidArgs(EventDrop, args, "tlsserver.DropInfo")
			return
		}
		fn(info)
	})
}

// arg returns args[i] as a T, and false when it is missing or of another
// type. A nil argument is T's zero value: the caller rejects it where nil
// is not valid (connections, callbacks).
func arg[T any](args []any, i int) (T, bool) {
	var zero T
	if i >= len(args) {
		return zero, false
	}
	if args[i] == nil {
		return zero, true
	}
	v, ok := args[i].(T)
	return v, ok
}

// invalidArgs reports an emission a typed listener could not take: through
// 'error', or the logger when the emission was an 'error' itself.
func (s *Server) invalidArgs(event string, args []any, want string) {
	types := make([]string, len(args))
	for i, a := range args {
		types[i] = fmt.Sprintf("%T", a)
	}
	err := withDetail(ErrInvalidArgType, fmt.Sprintf("'%s' emitted with (%s), a typed listener takes (%s); that listener was skipped",
		event, strings.Join(types, ", "), want))
	if event == EventError {
		s.log.Error("tlsserver: invalid 'error' emission", "err", err)
		return
	}
	s.emitError(err)
}
