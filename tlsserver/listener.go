package tlsserver

import (
	"crypto/tls"
	"net"
	"sync"
)

// connListener yields the server's handshaken connections.
type connListener struct {
	s    *Server
	ch   chan *tls.Conn
	done chan struct{}
	once sync.Once
}

// Listener returns a net.Listener whose Accept yields the server's
// connections once their handshake has completed and 'secureConnection'
// has been emitted, as *tls.Conn: http.Server.Serve(srv.Listener()) serves
// HTTP/1.1, and HTTP/2 when the Config's NextProtos offer "h2". Failed
// handshakes never reach Accept (they would stop http.Server); they go to
// 'tlsClientError'. Accept fails with net.ErrClosed once the listener or
// the server is closed; connections not yet accepted then are closed.
// Until it is closed, every call returns the same listener.
func (s *Server) Listener() net.Listener {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lis == nil {
		s.lis = &connListener{s: s, ch: make(chan *tls.Conn), done: make(chan struct{})}
	}
	return s.lis
}

// deliver hands c to the Listener, if there is one, and reports whether
// there was.
func (s *Server) deliver(c *serverConn) bool {
	s.mu.Lock()
	l := s.lis
	s.mu.Unlock()
	if l == nil {
		return false
	}
	select {
	case l.ch <- c.tls:
	case <-l.done:
		c.Close()
	case <-s.closedCh:
		c.Close()
	}
	return true
}

// Accept waits for the next handshaken connection.
func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
	case <-l.s.closedCh:
	}
	return nil, &net.OpError{Op: "accept", Net: "tls", Addr: l.Addr(), Err: net.ErrClosed}
}

// Close stops the listener; the server keeps running.
func (l *connListener) Close() error {
	l.once.Do(func() {
		close(l.done)
		l.s.mu.Lock()
		if l.s.lis == l {
			l.s.lis = nil
		}
		l.s.mu.Unlock()
	})
	return nil
}

// Addr returns the server's address.
func (l *connListener) Addr() net.Addr {
	if a := l.s.Addr(); a != nil {
		return a
	}
	return &net.TCPAddr{}
}
