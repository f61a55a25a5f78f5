package tlsserver

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"slices"
	"time"
)

// firstRequestWait is how long Shutdown lets a connection it handed to
// Options.HTTP take to send its first request before HTTP's own Shutdown
// (which refuses a request read after it began): net/http's allowance for
// a new connection (it treats one as idle after 5 s).
const firstRequestWait = 5 * time.Second

// startHTTPLocked starts serving Options.HTTP on the server's Listener,
// once. s.mu is held.
func (s *Server) startHTTPLocked() {
	if s.hs == nil || s.httpStarted {
		return
	}
	s.httpStarted = true
	s.serving++
	l := s.listenerLocked()
	hs := s.hs
	next := hs.Handler
	if next == nil {
		next = http.DefaultServeMux
	}
	hs.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, ok := r.Context().Value(connKey{}).(*serverConn); ok {
			c.requested()
		}
		next.ServeHTTP(w, r)
	})
	connContext := hs.ConnContext
	hs.ConnContext = func(ctx context.Context, nc net.Conn) context.Context {
		if connContext != nil {
			ctx = connContext(ctx, nc)
		}
		if tc, ok := nc.(*tls.Conn); ok {
			if c, ok := tc.NetConn().(*serverConn); ok {
				ctx = context.WithValue(ctx, connKey{}, c)
			}
		}
		return ctx
	}
	go func() {
		err := hs.Serve(l)
		l.Close() // if it stopped on its own: nobody accepts any more
		// Close and Shutdown end it with http.ErrServerClosed, or, when our
		// Listener closes first, net.ErrClosed. Anything else is reported,
		// before 'close'.
		if !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			s.emitError(err)
		}
		s.mu.Lock()
		s.serving--
		s.notifyLocked()
		s.mu.Unlock()
		s.checkDrained()
	}()
}

// connKey is the context key of the serverConn an HTTP request came on.
type connKey struct{}

// requested is HTTP dispatching a request on the connection; it ends the
// wait for the first one.
func (c *serverConn) requested() {
	if c.awaitsRequest.Load() && c.awaitsRequest.CompareAndSwap(true, false) {
		c.s.firstServed()
	}
}

func (s *Server) firstServed() {
	if s.firstPending.Add(-1) == 0 && s.stopping.Load() {
		s.mu.Lock()
		s.notifyLocked() // Shutdown waits for this
		s.mu.Unlock()
	}
}

// httpProtocols returns the ALPN protocols hs serves through Serve on
// *tls.Conn connections, as net/http decides (server.go,
// shouldConfigureHTTP2ForServe and protocols): "h2" unless TLSNextProto,
// Protocols or a TLSConfig without "h2" in its NextProtos turn HTTP/2
// off, and "http/1.1" unless Protocols leaves HTTP/1 out.
func httpProtocols(hs *http.Server) []string {
	_, h2 := hs.TLSNextProto["h2"] // HTTP/2 the application configured itself
	if !h2 {
		p := hs.Protocols
		enabled := hs.TLSNextProto == nil
		if p != nil {
			enabled = p.HTTP2()
		}
		configured := hs.TLSConfig == nil || slices.Contains(hs.TLSConfig.NextProtos, "h2") ||
			p != nil && p.UnencryptedHTTP2()
		h2 = enabled && configured
	}
	var protos []string
	if h2 {
		protos = append(protos, "h2")
	}
	if hs.Protocols == nil || hs.Protocols.HTTP1() {
		protos = append(protos, "http/1.1")
	}
	return protos
}
