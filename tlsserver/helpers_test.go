package tlsserver_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tlsemit/tlsemit/internal/testpki"
	"github.com/tlsemit/tlsemit/tlsserver"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// tsPKI is a root CA and a leaf for localhost issued by it.
type tsPKI struct {
	ca   *testpki.CA
	leaf *testpki.Leaf
}

func newTSPKI(t testing.TB) *tsPKI {
	ca := testpki.NewCA(t, "tlsserver test root")
	return &tsPKI{ca: ca, leaf: ca.Issue(t, testpki.LeafOptions{})}
}

// tsServer starts a server listening on loopback with the leaf (and its
// issuer) as its certificate, applying mod to the options; it is shut down
// when the test ends.
func tsServer(t testing.TB, p *tsPKI, mod func(*tlsserver.Options)) *tlsserver.Server {
	t.Helper()
	o := tlsserver.Options{
		Certificates:     []tls.Certificate{p.leaf.TLSCertificate(true)},
		HandshakeTimeout: 5 * time.Second,
	}
	if mod != nil {
		mod(&o)
	}
	srv, err := tlsserver.New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(context.Background(), "tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return srv
}

// tsClientConfig trusts p's root and speaks only version v (0: any).
func tsClientConfig(p *tsPKI, v uint16) *tls.Config {
	return &tls.Config{RootCAs: p.ca.Pool(), ServerName: "localhost", MinVersion: v, MaxVersion: v}
}

// tsDial handshakes with srv and returns the connection or the error.
func tsDial(srv *tlsserver.Server, cfg *tls.Config) (*tls.Conn, error) {
	addr := srv.Addr()
	if addr == nil {
		return nil, errors.New("the server is not listening")
	}
	return dialAddr(addr.String(), cfg)
}

// dialAddr handshakes with the server at addr, within a deadlock guard.
func dialAddr(addr string, cfg *tls.Config) (*tls.Conn, error) {
	raw, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	raw.SetDeadline(time.Now().Add(10 * time.Second))
	c := tls.Client(raw, cfg)
	if err := c.Handshake(); err != nil {
		raw.Close()
		return nil, err
	}
	raw.SetDeadline(time.Time{})
	return c, nil
}

// parkOne starts a client handshake whose 'OCSPRequest' callback the test
// holds: it returns the client's raw connection and that callback.
func parkOne(t *testing.T, srv *tlsserver.Server, p *tsPKI) (net.Conn, tlsserver.OCSPCallback) {
	t.Helper()
	cbs := make(chan tlsserver.OCSPCallback, 1)
	srv.OnOCSPRequest(func(_, _ []byte, cb tlsserver.OCSPCallback) { cbs <- cb })
	raw, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	go tls.Client(raw, tsClientConfig(p, 0)).Handshake()
	return raw, <-cbs
}

// tsMustDial is tsDial that fails the test on error; the connection is
// closed when the test ends.
func tsMustDial(t testing.TB, srv *tlsserver.Server, cfg *tls.Config) *tls.Conn {
	t.Helper()
	c, err := tsDial(srv, cfg)
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// clientErrors collects 'tlsClientError' emissions.
type clientErrors struct {
	ch chan error
}

func tsClientErrors(srv *tlsserver.Server) *clientErrors {
	ce := &clientErrors{ch: make(chan error, 64)}
	srv.OnTLSClientError(func(err error, conn net.Conn) {
		if conn == nil {
			err = errors.Join(err, errors.New("nil conn"))
		}
		ce.ch <- err
	})
	return ce
}

func (ce *clientErrors) next(t testing.TB) error {
	t.Helper()
	select {
	case err := <-ce.ch:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("no tlsClientError")
		return nil
	}
}

func (ce *clientErrors) none(t testing.TB) {
	t.Helper()
	select {
	case err := <-ce.ch:
		t.Fatalf("unexpected tlsClientError: %v", err)
	default:
	}
}

// recorder records event names in order.
type recorder struct {
	mu  sync.Mutex
	evs []string
}

func (r *recorder) add(ev string) {
	r.mu.Lock()
	r.evs = append(r.evs, ev)
	r.mu.Unlock()
}

func (r *recorder) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.evs...)
}

// ocspArgs is what an 'OCSPRequest' listener got.
type ocspArgs struct {
	cert, issuer []byte
	cb           tlsserver.OCSPCallback
}

// stripStatusRequest wraps a client connection so that its ClientHello's
// status_request extension is renamed to an unassigned type: the server
// sees no status request. (Go's client always asks; the transcript no
// longer matches, so such a handshake fails at Finished, after the point
// this is about.)
type stripStatusRequest struct {
	net.Conn
	done bool
}

func (s *stripStatusRequest) Write(p []byte) (int, error) {
	if !s.done && len(p) > 5 && p[0] == 22 {
		s.done = true
		b := append([]byte(nil), p...)
		renameExt(b, 5, 0xff05)
		return s.Conn.Write(b)
	}
	return s.Conn.Write(p)
}

// renameExt renames extension from to to in the ClientHello record b.
func renameExt(b []byte, from, to uint16) {
	i := 5 + 4 + 2 + 32                   // record header, handshake header, version, random
	i += 1 + int(b[i])                    // session id
	i += 2 + (int(b[i])<<8 | int(b[i+1])) // cipher suites
	i += 1 + int(b[i])                    // compression
	end := i + 2 + (int(b[i])<<8 | int(b[i+1]))
	for i += 2; i+4 <= end; {
		typ := uint16(b[i])<<8 | uint16(b[i+1])
		n := int(b[i+2])<<8 | int(b[i+3])
		if typ == from {
			b[i], b[i+1] = byte(to>>8), byte(to)
		}
		i += 4 + n
	}
}
