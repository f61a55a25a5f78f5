package tlsserver

import (
	"net"
	"slices"
	"strconv"
	"sync"
	"time"
)

// connListener yields the server's established connections.
type connListener struct {
	s    *Server
	done chan struct{}
	once sync.Once
}

// Listener returns a net.Listener whose Accept yields the server's
// established connections, as *tls.Conn: http.Server.Serve(srv.Listener())
// serves HTTP/1.1, and HTTP/2 when the Config's NextProtos offer "h2".
// (Options.HTTP does this for you, ALPN and Shutdown included: prefer it.)
// Failed handshakes never reach Accept (they would stop http.Server); they
// go to 'tlsClientError'.
//
// An established connection goes first to the 'secureConnection'
// listeners, as in Node. Unless one of them starts using it (reads, writes
// or closes it), it then waits for Accept in a backlog, as in the kernel's
// accept queue, whether or not Listener has been called yet: the README's
// order, Listen and then go http.Serve(srv.Listener(), h), loses no
// connection that completes in between, and a 'secureConnection' listener
// that only logs does not keep connections from net/http. The backlog
// holds Options.Backlog connections (Node's listen backlog, 511 by
// default), each for at most HandshakeTimeout (120 s by default, also when
// the handshake timeout is disabled). A connection that finds the backlog
// full, waits longer, or is still waiting when the Listener or the server
// is closed is closed and reported through 'drop', with DropInfo.Err
// wrapping ErrNotAccepted: none is left open indefinitely. The one
// exception keeps Node's model for servers that never call Listener: as
// long as Listener has not been called, a connection a 'secureConnection'
// callback listener received is that listener's, and is left open.
//
// A closed Listener says that nobody accepts, where one not yet asked for
// says nothing. Once the Listener is closed (by you, or by the
// http.Server's Shutdown or Close) and until Listener is called again, no
// connection waits: one accepted meanwhile is closed before its
// handshake, and one whose handshake completes meanwhile is closed unless
// a 'secureConnection' listener has started using it; each is reported
// through 'drop' at once, with DropInfo.Err wrapping ErrNotAccepted.
// Nobody waits for HandshakeTimeout. Calling Listener again opens a new
// one, which takes the connections established from then on.
//
// Accept fails with net.ErrClosed once the listener is closed, or the
// server closed by Close (or by Shutdown giving up) or shut down ('close'
// emitted); during Shutdown it goes on yielding the handshakes that
// complete. Until the listener is closed, every call of Listener returns
// it; after, a new one.
func (s *Server) Listener() net.Listener {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.listenerLocked()
}

func (s *Server) listenerLocked() *connListener {
	s.listenerUsed = true
	if s.lis == nil {
		s.lis = &connListener{s: s, done: make(chan struct{})}
	}
	return s.lis
}

// enqueue puts an established connection in the backlog, unless a
// 'secureConnection' listener has started using it. held says whether a
// callback listener received it.
func (s *Server) enqueue(c *serverConn, held bool) {
	s.mu.Lock()
	c.mu.Lock()
	c.held = held
	if c.phase != established || !c.fresh.Load() {
		c.mu.Unlock()
		s.mu.Unlock()
		return
	}
	var why string
	switch {
	case s.closed:
		why = "server closed"
	case s.listenerUsed && s.lis == nil:
		why = "the Listener is closed"
	case s.closing && !s.listenerUsed:
		why = "server shut down, and Listener never called"
	case len(s.backlogQ) >= s.backlog:
		why = "backlog full (" + strconv.Itoa(s.backlog) + " connections)"
	default:
		c.phase = queued
		c.armTimer(s.acceptTimeout)
		s.backlogQ = append(s.backlogQ, c)
		s.signalReady()
		c.mu.Unlock()
		s.mu.Unlock()
		return
	}
	keep := s.keeps(c)
	c.mu.Unlock()
	s.mu.Unlock()
	if !keep {
		s.dropConn(c, withDetail(ErrNotAccepted, why))
	}
}

// giveUp ends a queued connection's wait: it is dropped, or left to the
// 'secureConnection' listener that received it.
func (s *Server) giveUp(c *serverConn, why string) {
	s.mu.Lock()
	c.mu.Lock()
	if c.phase != queued {
		c.mu.Unlock()
		s.mu.Unlock()
		return
	}
	c.timer.Stop()
	c.phase = established
	keep := s.keeps(c)
	if i := slices.Index(s.backlogQ, c); i >= 0 {
		s.backlogQ = slices.Delete(s.backlogQ, i, i+1)
		s.notifyLocked()
	}
	c.mu.Unlock()
	s.mu.Unlock()
	if !keep {
		s.dropConn(c, withDetail(ErrNotAccepted, why))
	}
}

// keeps decides, for a connection leaving (or not entering) the backlog
// unaccepted, whether it is the 'secureConnection' listener's (Node's
// model, while Listener has never been called) or is dropped (dropConn
// must follow); s.mu and c.mu are held.
func (s *Server) keeps(c *serverConn) bool {
	if c.held && !s.listenerUsed {
		c.fresh.Store(false)
		return true
	}
	c.phase = closed
	c.refs.Add(1) // until the drop is reported
	return false
}

// signalReady wakes an Accept waiting for the backlog; s.mu is held.
func (s *Server) signalReady() {
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// armTimer (re)starts the connection's timer for d.
func (c *serverConn) armTimer(d time.Duration) {
	if c.timer == nil {
		c.timer = time.AfterFunc(d, c.expire)
		return
	}
	c.timer.Reset(d)
}

// take hands a queued connection to Accept; false if it left the backlog
// meanwhile. toHTTP says Accept serves Options.HTTP.
func (c *serverConn) take(toHTTP bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.phase != queued {
		return false
	}
	c.phase = established
	c.fresh.Store(false)
	c.timer.Stop() // armed when it was queued
	if toHTTP {
		c.s.firstPending.Add(1) // before Close can see the flag
		c.awaitsRequest.Store(true)
	}
	return true
}

// unqueue removes c from the backlog.
func (s *Server) unqueue(c *serverConn) {
	s.mu.Lock()
	if i := slices.Index(s.backlogQ, c); i >= 0 {
		s.backlogQ = slices.Delete(s.backlogQ, i, i+1)
		s.notifyLocked()
	}
	s.mu.Unlock()
}

// dropConn closes an established connection nobody took and reports it.
func (s *Server) dropConn(c *serverConn, reason error) {
	c.Close()
	c.calls.Add(1)
	s.emitDrop(DropInfo{LocalAddr: c.LocalAddr(), RemoteAddr: c.RemoteAddr(), Err: reason})
	c.calls.Add(-1)
	c.release()
}

// dropBacklog drops every connection in the backlog.
func (s *Server) dropBacklog(why string) {
	s.mu.Lock()
	q := slices.Clone(s.backlogQ)
	s.mu.Unlock()
	for _, c := range q {
		s.giveUp(c, why)
	}
}

// Accept waits for the next established connection.
func (l *connListener) Accept() (net.Conn, error) {
	s := l.s
	for {
		select {
		case <-l.done:
			return nil, l.closedErr()
		case <-s.closedCh:
			return nil, l.closedErr()
		case <-s.drained:
			return nil, l.closedErr()
		default:
		}
		s.mu.Lock()
		var c *serverConn
		if len(s.backlogQ) > 0 {
			c = s.backlogQ[0]
			s.backlogQ = slices.Delete(s.backlogQ, 0, 1)
			if len(s.backlogQ) > 0 {
				s.signalReady() // for another Accept
			}
			s.notifyLocked()
		}
		s.mu.Unlock()
		if c != nil {
			if c.take(s.hs != nil) {
				return c.tls, nil
			}
			continue
		}
		select {
		case <-s.ready:
		case <-l.done:
			return nil, l.closedErr()
		case <-s.closedCh:
			return nil, l.closedErr()
		case <-s.drained:
			return nil, l.closedErr()
		}
	}
}

func (l *connListener) closedErr() error {
	return &net.OpError{Op: "accept", Net: "tls", Addr: l.Addr(), Err: net.ErrClosed}
}

// Close stops the listener and drops the connections waiting for it; the
// server keeps running, and later connections wait for a new Listener.
func (l *connListener) Close() error {
	l.once.Do(func() {
		close(l.done)
		l.s.mu.Lock()
		if l.s.lis == l {
			l.s.lis = nil
		}
		l.s.mu.Unlock()
		l.s.dropBacklog("listener closed")
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
