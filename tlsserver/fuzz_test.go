package tlsserver_test

// FuzzServeConn: raw client bytes into a server connection.

import (
	"bytes"
	"context"
	"crypto/tls"
	"hash/crc32"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/cryptotest"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/tlsemit/tlsemit/internal/testpki"
	"github.com/tlsemit/tlsemit/tlsserver"
)

// fuzzConn is an in-memory client connection that sends data, then EOF,
// and swallows what the server writes.
type fuzzConn struct {
	mu     sync.Mutex
	data   []byte
	closed chan struct{}
	once   sync.Once
}

func newFuzzConn(data []byte) *fuzzConn {
	return &fuzzConn{data: data, closed: make(chan struct{})}
}

func (c *fuzzConn) Read(p []byte) (int, error) {
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.data)
	c.data = c.data[n:]
	return n, nil
}

func (c *fuzzConn) Write(p []byte) (int, error) {
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
		return len(p), nil
	}
}

func (c *fuzzConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

func (c *fuzzConn) LocalAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 443} }
func (c *fuzzConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 50000}
}
func (c *fuzzConn) SetDeadline(time.Time) error      { return nil }
func (c *fuzzConn) SetReadDeadline(time.Time) error  { return nil }
func (c *fuzzConn) SetWriteDeadline(time.Time) error { return nil }

// fuzzUnwrap finds the *fuzzConn under a connection the server reports.
func fuzzUnwrap(c net.Conn) *fuzzConn {
	for range 4 {
		if fc, ok := c.(*fuzzConn); ok {
			return fc
		}
		nc, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return nil
		}
		c = nc.NetConn()
	}
	return nil
}

// FuzzServeConn feeds arbitrary bytes, as a client's, to a server with
// every hook a ClientHello can reach ('OCSPRequest' for status_request,
// SNI contexts, 'keylog', 'newSession'/'resumeSession'). For every input the
// server neither panics nor hangs: the connection is closed, and
// 'tlsClientError' is emitted exactly once for it (the bytes end, with EOF,
// before any handshake could complete), after which the server tracks no
// connection. After one input in 32 (chosen by its hash), and the empty
// one, a real client completes a handshake with its staple: the server
// still serves. Nothing
// waits for a timeout: an input takes what its handshake takes. Each input
// runs the same way every time (cryptographic randomness is seeded, the
// real client follows from the input), so that the coverage the fuzzer
// sees is the input's own and what it finds minimizes.
func FuzzServeConn(f *testing.F) {
	ca := testpki.NewCA(f, "fuzz root")
	def := ca.Issue(f, testpki.LeafOptions{DNSNames: []string{"localhost"}})
	other := ca.Issue(f, testpki.LeafOptions{DNSNames: []string{"other.fuzz.test"}})
	wild := ca.Issue(f, testpki.LeafOptions{DNSNames: []string{"*.wild.fuzz.test"}})
	staple := ca.OCSPResponse(f, def.Cert, testpki.ResponseOptions{Status: ocsp.Good})
	srv, err := tlsserver.New(tlsserver.Options{
		Certificates:     []tls.Certificate{def.TLSCertificate(true)},
		HandshakeTimeout: 5 * time.Second,
		// Classical key exchanges only: ML-KEM's rejection sampling loops
		// on the client's key share, so every mutation of it would be new
		// coverage of crypto/internal/fips140/mlkem, code tlsemit never
		// sees, that the fuzzer would spend its time minimizing.
		Config: &tls.Config{NextProtos: []string{"h2", "http/1.1"}, CurvePreferences: []tls.CurveID{tls.X25519, tls.CurveP256}},
	})
	if err != nil {
		f.Fatal(err)
	}
	for name, l := range map[string]*testpki.Leaf{"other.fuzz.test": other, "*.wild.fuzz.test": wild} {
		c := l.TLSCertificate(true)
		if err := srv.AddContext(name, tlsserver.SecureContext{Certificates: []tls.Certificate{c}}); err != nil {
			f.Fatal(err)
		}
	}
	srv.OnOCSPRequest(func(cert, issuer []byte, cb tlsserver.OCSPCallback) {
		if bytes.Equal(cert, def.DER) {
			cb(nil, staple)
			return
		}
		cb(nil, nil)
	})
	srv.OnKeylog(func([]byte, net.Conn) {})
	srv.OnNewSession(func(id, data []byte, done func()) { done() })
	srv.OnResumeSession(func(id []byte, cb func(error, []byte)) { cb(nil, nil) })

	var mu sync.Mutex
	reports := map[*fuzzConn]int{}
	var twice atomic.Int32
	reported := make(chan *fuzzConn, 16)
	srv.OnTLSClientError(func(err error, conn net.Conn) {
		fc := fuzzUnwrap(conn)
		if fc == nil {
			return // the real client's connection
		}
		mu.Lock()
		reports[fc]++
		n := reports[fc]
		mu.Unlock()
		if n > 1 {
			twice.Add(1)
		}
		reported <- fc
	})
	// The real client's connection is closed as soon as it is established,
	// without a close_notify (which would wait for the client to read it).
	served := make(chan struct{}, 1)
	srv.OnSecureConnection(func(c *tls.Conn) {
		c.NetConn().Close()
		served <- struct{}{}
	})
	f.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})

	f.Fuzz(func(t *testing.T, data []byte) {
		cryptotest.SetGlobalRandom(t, 1)
		c := newFuzzConn(data)
		srv.ServeConn(c)
		select {
		case <-c.closed:
		case <-time.After(10 * time.Second):
			t.Fatal("the server never closed the connection")
		}
		deadline := time.After(10 * time.Second)
		for got := false; !got; {
			select {
			case fc := <-reported:
				got = fc == c
			case <-deadline:
				t.Fatal("no 'tlsClientError' for a connection that ended before its handshake")
			}
		}
		mu.Lock()
		n := reports[c]
		delete(reports, c)
		mu.Unlock()
		if n != 1 || twice.Load() != 0 {
			t.Fatalf("'tlsClientError' emitted %d times for this connection (%d repeats so far)", n, twice.Load())
		}
		untracked(t, srv, "the connection ended")
		if len(data) > 0 && crc32.ChecksumIEEE(data)%32 != 0 {
			return
		}
		cli, sc := net.Pipe()
		defer cli.Close()
		srv.ServeConn(sc)
		cli.SetDeadline(time.Now().Add(10 * time.Second))
		// The client checks the staple, not the chain, with one key
		// exchange: it costs a fraction of a verified, hybrid handshake.
		tc := tls.Client(cli, &tls.Config{InsecureSkipVerify: true, ServerName: "localhost", CurvePreferences: []tls.CurveID{tls.X25519}})
		if err := tc.Handshake(); err != nil {
			t.Fatalf("a normal client after this input: %v", err)
		}
		if !bytes.Equal(tc.ConnectionState().OCSPResponse, staple) {
			t.Fatal("a normal client after this input got no staple")
		}
		select {
		case <-served:
		case <-time.After(10 * time.Second):
			t.Fatal("no 'secureConnection' for the normal client")
		}
		untracked(t, srv, "the normal client's ended")
	})
}

// untracked waits for the server to forget its one connection. A
// connection counts until its last event's listeners have returned, so it
// is forgotten at once, but after the listener that told the test.
func untracked(t *testing.T, srv *tlsserver.Server, after string) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); srv.Connections() != 0; runtime.Gosched() {
		if time.Now().After(end) {
			t.Fatalf("%d connections still tracked after %s", srv.Connections(), after)
		}
	}
}
