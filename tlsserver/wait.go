package tlsserver

import (
	"errors"
	"os"
	"sync"
)

// maxPending bounds what a client may send while its handshake waits for a
// callback. A legitimate client sends nothing more until the server's
// reply (a TLS 1.2 client using False Start may send its first request
// while 'newSession' waits).
const maxPending = 64 << 10

// reply is the answer to one of the callbacks a handshake waits for: the
// 'OCSPRequest' cb, the 'newSession' done, the 'resumeSession' cb. The
// first call wins. A later one is Node's ERR_MULTIPLE_CALLBACK, which
// destroys the connection, for the strict callbacks, and is ignored for
// 'newSession' done (as Node's is).
type reply struct {
	c      *serverConn
	strict bool
	mu     sync.Mutex
	calls  int
	err    error
	data   []byte
	wake   chan struct{} // made when the handshake has to wait
}

func (c *serverConn) newReply(strict bool) *reply { return &reply{c: c, strict: strict} }

// answer is the callback.
func (r *reply) answer(err error, data []byte) {
	r.mu.Lock()
	r.calls++
	first := r.calls == 1
	if first {
		r.err, r.data = err, data
		if r.wake != nil {
			close(r.wake)
		}
	}
	r.mu.Unlock()
	if !first && r.strict {
		// Before the handshake completes it fails the handshake; after, it
		// destroys the connection and, since *tls.Conn has no 'error'
		// event, is reported through 'tlsClientError'. On a connection
		// already ended it is a no-op.
		r.c.destroy(ErrMultipleCallback)
	}
}

// wait waits for the answer. Until it comes the server watches the client,
// so that a client hanging up is noticed at once. The handshake timer,
// Close and a second strict call end the wait through destroy. An error
// passed to the callback destroys the connection.
func (r *reply) wait() ([]byte, error) {
	c := r.c
	r.mu.Lock()
	if r.calls == 0 {
		r.wake = make(chan struct{})
		wake := r.wake
		r.mu.Unlock()
		w := c.watch()
		select {
		case <-wake:
		case <-c.aborted():
		}
		w.unpark()
		r.mu.Lock()
	}
	err, data := r.err, r.data
	r.mu.Unlock()
	if ferr := c.failure(); ferr != nil {
		return nil, ferr
	}
	if err != nil {
		return nil, c.destroy(err)
	}
	return data, nil
}

// watcher reads from a client whose handshake waits for a callback: a
// hang-up is noticed at once, and what the client sends is kept for the
// handshake. It never touches the connection's deadlines (a 'connection'
// listener's stay, and connections without deadlines work): when the wait
// ends, the read in flight is left to finish, the handshake's reads go
// through the watcher until it has, then straight to the connection.
type watcher struct {
	c       *serverConn
	mu      sync.Mutex
	cond    sync.Cond
	pending []byte // read, not yet consumed
	err     error  // the read error, delivered once
	parked  bool   // the handshake waits: read ahead
	reading bool   // a read is in flight
}

// watch starts (or resumes) watching the client.
func (c *serverConn) watch() *watcher {
	w := c.rd.Load()
	if w == nil {
		w = &watcher{c: c}
		w.cond.L = &w.mu
		c.rd.Store(w)
	}
	w.mu.Lock()
	w.parked = true
	failed := w.err // an earlier read already failed: nothing more will come
	start := !w.reading && failed == nil
	if start {
		w.reading = true
	}
	w.mu.Unlock()
	switch {
	case start:
		go w.run()
	case failed != nil:
		c.clientFailed(failed)
	}
	return w
}

// unpark ends the wait: the read in flight, if any, is the last.
func (w *watcher) unpark() {
	w.mu.Lock()
	w.parked = false
	w.mu.Unlock()
}

func (w *watcher) run() {
	buf := make([]byte, 512)
	for {
		n, err := w.c.Conn.Read(buf)
		w.mu.Lock()
		w.pending = append(w.pending, buf[:n]...)
		w.err = err
		parked := w.parked
		over := parked && len(w.pending) > maxPending
		stop := err != nil || over || !parked
		if stop {
			w.reading = false
			w.cond.Broadcast()
		}
		w.mu.Unlock()
		switch {
		case over:
			w.c.destroy(ErrClientDataOverflow)
		case err != nil && parked:
			w.c.clientFailed(err)
		}
		if stop {
			return
		}
	}
}

// clientFailed destroys a waiting connection whose client left, or whose
// read deadline (a 'connection' listener's) passed.
func (c *serverConn) clientFailed(err error) {
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		err = withCause(ErrSocketClosed, err)
	}
	c.destroy(err)
}

// read serves the handshake (or, after it, the application) from what the
// watcher read, waiting for the read in flight; once the watcher is done
// and drained it hands the socket back.
func (w *watcher) read(p []byte) (int, error) {
	w.mu.Lock()
	for len(w.pending) == 0 && w.err == nil && w.reading {
		w.cond.Wait()
	}
	switch {
	case len(w.pending) > 0:
		n := copy(p, w.pending)
		w.pending = w.pending[n:]
		if len(w.pending) == 0 {
			w.pending = nil
		}
		w.mu.Unlock()
		return n, nil
	case w.err != nil:
		err := w.err
		w.err = nil
		w.mu.Unlock()
		return 0, err
	}
	w.c.rd.CompareAndSwap(w, nil)
	w.mu.Unlock()
	return w.c.Conn.Read(p)
}
