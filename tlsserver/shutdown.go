package tlsserver

import (
	"context"
	"errors"
	"net"
	"slices"
	"time"
)

// Close ends the server abruptly: it stops accepting (the listeners are
// closed), destroys the connections still handshaking (their pending
// callbacks are abandoned and 'tlsClientError' reports ErrClosed),
// drops the connections waiting for Listener's Accept, and, with
// Options.HTTP, closes the http.Server and its connections
// (http.Server.Close). Other established connections stay open. 'close'
// is emitted once the last connection has ended and its last event has
// been emitted. Close returns at once. It is final, as http.Server's:
// Listen and Serve then return ErrClosed. Closing again is a no-op.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.closedCh)
	if s.hs != nil {
		s.httpBusy++
	}
	ls := s.stopLocked()
	cs := s.connsLocked()
	s.mu.Unlock()
	err := s.closeAll(ls)
	for _, c := range cs {
		c.abortHandshake(ErrClosed)
	}
	s.dropBacklog("server closed")
	if s.hs != nil {
		s.hs.Close() // closes connections with its lock held: 'close' waits
		s.mu.Lock()
		s.httpBusy--
		s.mu.Unlock()
	}
	s.checkDrained()
	return err
}

// Shutdown ends the server gracefully, as Node's server.close():
//
//  1. It stops accepting at once: the listeners are closed, so new
//     clients are refused, and ServeConn closes what it is given.
//  2. Every handshake already under way finishes, its 'OCSPRequest' and
//     other callbacks included (each bounded by HandshakeTimeout), and is
//     delivered as usual: 'secureConnection', then Listener's Accept (with
//     Options.HTTP, the http.Server). If Listener has never been called,
//     nobody will accept: connections waiting in the backlog, and those
//     that complete, are dropped (reported through 'drop') unless a
//     'secureConnection' listener keeps them.
//  3. With Options.HTTP, once each connection it handed over has sent its
//     first request (or closed; at most 5 s, net/http's allowance for a
//     new connection), it runs the http.Server's own Shutdown: idle
//     keep-alive connections are closed at once, requests in flight
//     finish, and nothing more is read.
//  4. It waits for the remaining connections to end, emits 'close', and
//     returns nil.
//
// Shutdown returns only after every connection's last event has been
// emitted and the listeners of 'close' have returned: no listener of the
// server runs after it. When ctx ends first, Shutdown gives up: it closes
// everything as Close does, and also the established connections (Node's
// closeAllConnections; a ctx already ended does only that), waits for the
// events this causes ('tlsClientError' with ErrClosed for a
// handshake it cut), and returns ctx.Err(). A listener that is still
// running a second after that (one that blocks) is not waited for: the
// events of its connection, and 'close', follow when it returns.
//
// One call does the whole sequence on SIGTERM (ExampleServer_Shutdown). With a Listener served by an http.Server of
// your own instead of Options.HTTP, call that server's Shutdown first and
// then this one; handshakes that complete after the Listener has closed
// are dropped (see Listener).
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	ls := s.stopLocked()
	holdsHTTP := s.hs != nil
	if holdsHTTP {
		s.httpBusy++ // 'close' comes after HTTP's Shutdown
	}
	s.mu.Unlock()
	releaseHTTP := func() {
		if holdsHTTP {
			holdsHTTP = false
			s.mu.Lock()
			s.httpBusy--
			s.notifyLocked()
			s.mu.Unlock()
			s.checkDrained()
		}
	}
	s.closeAll(ls)
	if !s.listenerUsedNow() {
		s.dropBacklog("server shut down, and Listener never called") // nobody will accept them
	}
	err := s.await(ctx, func() bool {
		return s.busy.Load() == 0 && (s.hs == nil || len(s.backlogQ) == 0)
	})
	if err == nil && s.hs != nil {
		// HTTP's Shutdown refuses a request read after it begins: the
		// connections just handed over send theirs first.
		first, cancel := context.WithTimeout(ctx, firstRequestWait)
		s.await(first, func() bool { return s.firstPending.Load() == 0 })
		cancel()
		if err = ctx.Err(); err == nil && s.hs.Shutdown(ctx) != nil {
			err = ctx.Err()
		}
	}
	releaseHTTP()
	if err == nil {
		select {
		case <-s.drained: // first: done is done, whatever ctx says
			return nil
		default:
		}
		select {
		case <-s.drained:
			return nil
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	return s.abandon(err)
}

func (s *Server) listenerUsedNow() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.listenerUsed
}

// abandonGrace is how long Shutdown, once its context has ended and it
// has closed everything, waits for listeners to return before it leaves
// those still running behind: long enough for one that is merely running
// to return, short enough that one that blocks does not hold the process.
const abandonGrace = time.Second

// abandon is Shutdown giving up: everything is closed, and the events
// this causes are waited for, but not a listener still running after
// abandonGrace.
func (s *Server) abandon(err error) error {
	s.Close()
	s.mu.Lock()
	cs := s.connsLocked()
	s.mu.Unlock()
	for _, c := range cs {
		c.Close()
	}
	grace, cancel := context.WithTimeout(context.Background(), abandonGrace)
	defer cancel()
	if s.await(grace, func() bool { return s.closeDone }) == nil {
		return err
	}
	s.mu.Lock()
	for c := range s.conns {
		if !c.excused && c.calls.Load() > 0 {
			c.excused = true
			s.excused++
		}
	}
	closeRunning := s.closeEmitted && !s.closeDone
	s.mu.Unlock()
	s.await(context.Background(), func() bool {
		return s.closeDone || s.serving == 0 && len(s.conns) == s.excused && (s.excused > 0 || closeRunning)
	})
	return err
}

// stopLocked stops accepting: from now on nothing new is taken. It
// returns the listeners to close. s.mu is held.
func (s *Server) stopLocked() []net.Listener {
	if s.closing {
		return nil
	}
	s.closing = true
	s.stopping.Store(true)
	return slices.Clone(s.listeners)
}

// closeAll closes the listeners stopLocked returned. Once it returns, Addr
// is nil, as Node's address() after close().
func (s *Server) closeAll(ls []net.Listener) error {
	var err error
	for _, l := range ls {
		if e := l.Close(); e != nil && err == nil && !errors.Is(e, net.ErrClosed) {
			err = e
		}
	}
	s.mu.Lock()
	for _, l := range ls {
		s.forgetListenerLocked(l)
	}
	s.mu.Unlock()
	return err
}

func (s *Server) connsLocked() []*serverConn {
	cs := make([]*serverConn, 0, len(s.conns))
	for c := range s.conns {
		cs = append(cs, c)
	}
	return cs
}

// await waits until cond, called with s.mu held, holds, or ctx ends.
// Whatever cond reads changes under s.mu with notifyLocked, or, for
// s.busy, through delivered.
func (s *Server) await(ctx context.Context, cond func() bool) error {
	for {
		s.mu.Lock()
		if cond() {
			s.mu.Unlock()
			return nil
		}
		if s.changed == nil {
			s.changed = make(chan struct{})
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// notifyLocked wakes the waiters of await. It costs a connection nothing
// when nobody waits. s.mu is held.
func (s *Server) notifyLocked() {
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
}

// checkDrained emits 'close' once the server is closing with no listener
// loop, no connection and no call into HTTP's Shutdown or Close left.
func (s *Server) checkDrained() {
	s.mu.Lock()
	if !s.closing || s.closeEmitted || s.serving > 0 || len(s.conns) > 0 || s.httpBusy > 0 {
		s.mu.Unlock()
		return
	}
	s.closeEmitted = true
	s.mu.Unlock()
	s.met.reg.Unregister() // a closed server is no longer observed
	if s.observed(EventClose) {
		if err := s.safeEmit(EventClose); err != nil {
			s.log.Error("tlsserver: 'close' listener panicked", "err", err)
		}
	}
	s.mu.Lock()
	s.closeDone = true
	close(s.drained)
	s.notifyLocked()
	s.mu.Unlock()
}

// untrack forgets a connection whose last event has been emitted.
func (s *Server) untrack(c *serverConn) {
	s.mu.Lock()
	delete(s.conns, c)
	if c.excused {
		s.excused--
	}
	s.notifyLocked()
	s.mu.Unlock()
	s.checkDrained()
}
