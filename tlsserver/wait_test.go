package tlsserver_test

import (
	"bytes"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/tlsemit/tlsemit/tlsserver"
)

var errNoDeadlines = errors.New("deadlines not supported")

// noDeadlineConn is a connection whose deadlines cannot be set, as
// x/crypto/ssh's forwarded channels and other wrappers.
type noDeadlineConn struct{ net.Conn }

func (noDeadlineConn) SetDeadline(time.Time) error      { return errNoDeadlines }
func (noDeadlineConn) SetReadDeadline(time.Time) error  { return errNoDeadlines }
func (noDeadlineConn) SetWriteDeadline(time.Time) error { return errNoDeadlines }

// serveWrapped accepts on a loopback listener and hands every connection to
// srv.ServeConn through wrap.
func serveWrapped(t *testing.T, srv *tlsserver.Server, wrap func(net.Conn) net.Conn) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			srv.ServeConn(wrap(c))
		}
	})
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String()
}

// Item 4: a connection without deadlines, and callbacks answered 50 ms
// later from another goroutine: every wait ends when its callback comes.
func TestWaitOnConnectionWithoutDeadlines(t *testing.T) {
	p := newTSPKI(t)
	later := func(f func()) { time.AfterFunc(50*time.Millisecond, f) }
	for _, v := range versions {
		t.Run("OCSPRequest/"+v.name, func(t *testing.T) {
			srv := tsServer(t, p, func(o *tlsserver.Options) { o.HandshakeTimeout = time.Minute })
			srv.OnOCSPRequest(func(_, _ []byte, cb tlsserver.OCSPCallback) { later(func() { cb(nil, []byte("late")) }) })
			addr := serveWrapped(t, srv, func(c net.Conn) net.Conn { return noDeadlineConn{c} })
			c, err := dialAddr(addr, tsClientConfig(p, v.v))
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			defer c.Close()
			if string(c.ConnectionState().OCSPResponse) != "late" {
				t.Fatal("no staple")
			}
		})
		t.Run("sessions/"+v.name, func(t *testing.T) {
			srv := tsServer(t, p, func(o *tlsserver.Options) { o.HandshakeTimeout = time.Minute })
			var mu sync.Mutex
			store := map[string][]byte{}
			srv.OnNewSession(func(id, data []byte, done func()) {
				mu.Lock()
				store[string(id)] = data
				mu.Unlock()
				later(done)
			})
			srv.OnResumeSession(func(id []byte, cb func(error, []byte)) {
				mu.Lock()
				data := store[string(id)]
				mu.Unlock()
				later(func() { cb(nil, data) })
			})
			addr := serveWrapped(t, srv, func(c net.Conn) net.Conn { return noDeadlineConn{c} })
			cfg := tsClientConfig(p, v.v)
			cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
			for i := range 2 {
				c, err := dialAddr(addr, cfg)
				if err != nil {
					t.Fatalf("handshake %d: %v", i, err)
				}
				if i == 0 {
					c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
					c.Read(make([]byte, 1)) // TLS 1.3: the ticket comes after the handshake
				} else if !c.ConnectionState().DidResume {
					t.Fatal("second handshake did not resume")
				}
				c.Close()
			}
		})
	}
}

// Item 5: a parked client that keeps sending is destroyed with a clear
// error once it has sent more than a legitimate client could, not left
// unwatched until HandshakeTimeout.
func TestParkedClientFloodDestroyed(t *testing.T) {
	p := newTSPKI(t)
	srv := tsServer(t, p, func(o *tlsserver.Options) { o.HandshakeTimeout = time.Minute })
	ce := tsClientErrors(srv)
	raw, cb := parkOne(t, srv, p)
	go raw.Write(bytes.Repeat([]byte{23, 3, 3, 0, 0}, 100<<10/5)) // 100 KiB while the server waits
	err := ce.next(t)
	if errors.Is(err, tlsserver.ErrHandshakeTimeout) || errors.Is(err, tlsserver.ErrSocketClosed) || err == nil {
		t.Fatalf("tlsClientError %v, want the overflow reported", err)
	}
	t.Log(err)
	cb(nil, nil) // a no-op
	waitFor(t, func() bool { return srv.Connections() == 0 })
}

// Item 6: a read deadline set by a 'connection' listener survives a wait
// for a callback.
func TestConnectionDeadlineSurvivesWait(t *testing.T) {
	p := newTSPKI(t)
	srv := tsServer(t, p, nil)
	srv.OnConnection(func(raw net.Conn) { raw.SetReadDeadline(time.Now().Add(2 * time.Second)) })
	srv.OnOCSPRequest(func(_, _ []byte, cb tlsserver.OCSPCallback) {
		time.AfterFunc(50*time.Millisecond, func() { cb(nil, []byte("s")) })
	})
	res := make(chan error, 1)
	srv.OnSecureConnection(func(c *tls.Conn) {
		go func() {
			_, err := c.Read(make([]byte, 1)) // the client sends nothing
			res <- err
			c.Close()
		}()
	})
	c := tsMustDial(t, srv, tsClientConfig(p, 0))
	defer c.Close()
	select {
	case err := <-res:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("server read: %v, want the deadline the 'connection' listener set", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the 'connection' listener's read deadline was erased by the wait")
	}
}
