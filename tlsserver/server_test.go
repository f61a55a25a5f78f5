package tlsserver_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlsemit/tlsemit/internal/testpki"
	"github.com/tlsemit/tlsemit/tlsserver"
)

func TestEventOrder(t *testing.T) {
	p := newTSPKI(t)
	for _, v := range versions {
		t.Run(v.name, func(t *testing.T) {
			srv := tsServer(t, p, nil)
			var r recorder
			done := make(chan struct{})
			srv.OnConnection(func(net.Conn) { r.add("connection") })
			srv.OnOCSPRequest(func(_, _ []byte, cb tlsserver.OCSPCallback) { r.add("OCSPRequest"); cb(nil, nil) })
			srv.OnSecureConnection(func(c *tls.Conn) { r.add("secureConnection"); c.Close(); close(done) })
			tsMustDial(t, srv, tsClientConfig(p, v.v))
			<-done
			if got := strings.Join(r.get(), ","); got != "connection,OCSPRequest,secureConnection" {
				t.Fatal(got)
			}
		})
	}
}

func TestListenCloseEvents(t *testing.T) {
	p := newTSPKI(t)
	srv, err := tlsserver.New(tlsserver.Options{Certificates: []tls.Certificate{p.leaf.TLSCertificate(true)}})
	if err != nil {
		t.Fatal(err)
	}
	var r recorder
	srv.OnListening(func() { r.add("listening") })
	closed := make(chan struct{})
	srv.OnClose(func() { r.add("close"); close(closed) })
	if err := srv.Listen(context.Background(), "tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	addr := srv.Addr().String()
	// A bind error is returned, not emitted (no 'error' listener: no panic).
	other, _ := tlsserver.New(tlsserver.Options{})
	if err := other.Listen(context.Background(), "tcp", addr); err == nil {
		t.Fatal("second bind succeeded")
	}
	other.Close()
	held := make(chan *tls.Conn, 1)
	srv.OnSecureConnection(func(c *tls.Conn) { held <- c })
	c := tsMustDial(t, srv, tsClientConfig(p, 0))
	sc := <-held
	srv.Close()
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Fatal("still accepting after Close")
	}
	select {
	case <-closed:
		t.Fatal("'close' before the last connection ended")
	default:
	}
	if srv.Connections() != 1 {
		t.Fatalf("Connections() = %d", srv.Connections())
	}
	c.Close()
	sc.Close()
	<-closed
	if got := strings.Join(r.get(), ","); got != "listening,close" {
		t.Fatal(got)
	}
	if err := srv.Serve(nil); !errors.Is(err, tlsserver.ErrClosed) {
		t.Fatalf("Serve after Close: %v", err)
	}
}

func TestShutdownWaitsForConnections(t *testing.T) {
	p := newTSPKI(t)
	srv := tsServer(t, p, nil)
	held := make(chan *tls.Conn, 1)
	srv.OnSecureConnection(func(c *tls.Conn) { held <- c })
	tsMustDial(t, srv, tsClientConfig(p, 0))
	sc := <-held
	res := make(chan error, 1)
	go func() { res <- srv.Shutdown(context.Background()) }()
	waitFor(t, func() bool { return srv.Addr() == nil }) // Shutdown has begun
	if n := srv.Connections(); n != 1 {
		t.Fatalf("Connections() = %d", n)
	}
	select {
	case err := <-res:
		t.Fatalf("Shutdown returned %v with a connection open", err)
	default:
	}
	sc.Close()
	if err := <-res; err != nil {
		t.Fatal(err)
	}
	// With a deadline, Shutdown closes what is left.
	srv2 := tsServer(t, p, nil)
	srv2.OnSecureConnection(func(c *tls.Conn) { held <- c })
	tsMustDial(t, srv2, tsClientConfig(p, 0))
	<-held
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := srv2.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v", err)
	}
	if srv2.Connections() != 0 {
		t.Fatal("connections left after Shutdown's deadline")
	}
}

func TestErrorEmittedOnlyWithListener(t *testing.T) {
	p := newTSPKI(t)
	srv, _ := tlsserver.New(tlsserver.Options{Certificates: []tls.Certificate{p.leaf.TLSCertificate(true)}})
	defer srv.Close()
	l := &failingListener{err: errors.New("accept exploded")}
	// No 'error' listener: the failure is returned, nothing panics.
	if err := srv.Serve(l); err == nil || !strings.Contains(err.Error(), "exploded") {
		t.Fatalf("Serve: %v", err)
	}
}

type failingListener struct{ err error }

func (l *failingListener) Accept() (net.Conn, error) { return nil, l.err }
func (l *failingListener) Close() error              { return nil }
func (l *failingListener) Addr() net.Addr            { return &net.TCPAddr{} }

func TestJunkAndSilentClients(t *testing.T) {
	p := newTSPKI(t)
	srv := tsServer(t, p, func(o *tlsserver.Options) { o.HandshakeTimeout = 200 * time.Millisecond })
	ce := tsClientErrors(srv)
	// Junk bytes.
	c, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	if err := ce.next(t); err == nil || errors.Is(err, tlsserver.ErrHandshakeTimeout) {
		t.Fatalf("junk: %v", err)
	}
	c.Close()
	// A silent client: the handshake timeout destroys it.
	silent, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	if err := ce.next(t); !errors.Is(err, tlsserver.ErrHandshakeTimeout) {
		t.Fatalf("silent: %v", err)
	}
	silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := silent.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("silent client's connection not closed: %v", err)
	}
	// A client that connects and leaves.
	bye, _ := net.Dial("tcp", srv.Addr().String())
	bye.Close()
	if err := ce.next(t); !errors.Is(err, tlsserver.ErrSocketClosed) {
		t.Fatalf("hang-up: %v", err)
	}
	// Still serving.
	tsMustDial(t, srv, tsClientConfig(p, 0))
	ce.none(t)
}

func TestConnectionListenerPanic(t *testing.T) {
	p := newTSPKI(t)
	srv := tsServer(t, p, nil)
	ce := tsClientErrors(srv)
	var n atomic.Int32
	srv.OnConnection(func(net.Conn) {
		if n.Add(1) == 1 {
			panic("connection listener bug")
		}
	})
	if _, err := tsDial(srv, tsClientConfig(p, 0)); err == nil {
		t.Fatal("handshake succeeded")
	}
	if err := ce.next(t); !errors.Is(err, tlsserver.ErrListenerPanic) {
		t.Fatal(err)
	}
	tsMustDial(t, srv, tsClientConfig(p, 0))
}

func TestMaxConnectionsDrop(t *testing.T) {
	p := newTSPKI(t)
	srv := tsServer(t, p, func(o *tlsserver.Options) { o.MaxConnections = 1 })
	drops := make(chan tlsserver.DropInfo, 1)
	srv.On(tlsserver.EventDrop, func(args ...any) { drops <- args[0].(tlsserver.DropInfo) })
	held := make(chan *tls.Conn, 1)
	srv.OnSecureConnection(func(c *tls.Conn) { held <- c })
	c1 := tsMustDial(t, srv, tsClientConfig(p, 0))
	sc := <-held
	if _, err := tsDial(srv, tsClientConfig(p, 0)); err == nil {
		t.Fatal("second connection over MaxConnections was served")
	}
	d := <-drops
	if d.RemoteAddr == nil || d.LocalAddr.String() != srv.Addr().String() {
		t.Fatalf("drop info %+v", d)
	}
	c1.Close()
	sc.Close()
	waitFor(t, func() bool { return srv.Connections() == 0 })
	tsMustDial(t, srv, tsClientConfig(p, 0))
}

func TestSNI(t *testing.T) {
	ca := testpki.NewCA(t, "sni root")
	def := ca.Issue(t, testpki.LeafOptions{DNSNames: []string{"default.test"}})
	wild := ca.Issue(t, testpki.LeafOptions{DNSNames: []string{"*.example.test"}})
	newer := ca.Issue(t, testpki.LeafOptions{DNSNames: []string{"a.example.test"}})
	p := &tsPKI{ca: ca, leaf: def}
	srv := tsServer(t, p, func(o *tlsserver.Options) { o.CA = []*x509.Certificate{ca.Cert} })
	wc, nc := wild.TLSCertificate(false), newer.TLSCertificate(false)
	if err := srv.AddContext("*.EXAMPLE.test", tlsserver.SecureContext{Certificates: []tls.Certificate{wc}}); err != nil {
		t.Fatal(err)
	}
	got := make(chan ocspArgs, 1)
	srv.OnOCSPRequest(func(cert, issuer []byte, cb tlsserver.OCSPCallback) {
		got <- ocspArgs{cert: cert, issuer: issuer}
		cb(nil, nil)
	})
	dial := func(name string) (*x509.Certificate, ocspArgs, error) {
		cfg := &tls.Config{RootCAs: ca.Pool(), ServerName: name, InsecureSkipVerify: true}
		c, err := tsDial(srv, cfg)
		if err != nil {
			return nil, ocspArgs{}, err
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0], <-got, nil
	}
	check := func(name string, want *testpki.Leaf, wantIssuer bool) {
		t.Helper()
		cert, a, err := dial(name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(cert.Raw, want.DER) || !bytes.Equal(a.cert, want.DER) {
			t.Fatalf("%s: served %v, reported another", name, cert.DNSNames)
		}
		if (a.issuer != nil) != wantIssuer {
			t.Fatalf("%s: issuer %d bytes", name, len(a.issuer))
		}
	}
	check("a.example.test", wild, false) // AddContext: no CA of its own
	check("b.a.example.test", def, true) // '*' is one label
	check("example.test", def, true)
	if err := srv.AddContext("a.example.test", tlsserver.SecureContext{Certificates: []tls.Certificate{nc}, CA: []*x509.Certificate{ca.Cert}}); err != nil {
		t.Fatal(err)
	}
	check("a.example.test", newer, true) // newest match wins
	check("z.example.test", wild, false)
}

func TestSNICallback(t *testing.T) {
	ca := testpki.NewCA(t, "sni root")
	def := ca.Issue(t, testpki.LeafOptions{DNSNames: []string{"default.test"}})
	other := ca.Issue(t, testpki.LeafOptions{DNSNames: []string{"other.test"}})
	p := &tsPKI{ca: ca, leaf: def}
	bad := errors.New("unknown name")
	srv := tsServer(t, p, func(o *tlsserver.Options) {
		o.SNICallback = func(ctx context.Context, name string) (*tls.Certificate, error) {
			switch name {
			case "other.test":
				c := other.TLSCertificate(true)
				return &c, nil
			case "panic.test":
				panic("sni bug")
			case "default.test":
				return nil, nil
			}
			return nil, bad
		}
	})
	ce := tsClientErrors(srv)
	got := make(chan []byte, 1)
	srv.OnOCSPRequest(func(cert, _ []byte, cb tlsserver.OCSPCallback) { got <- cert; cb(nil, nil) })
	for name, want := range map[string]*testpki.Leaf{"other.test": other, "default.test": def} {
		c := tsMustDial(t, srv, &tls.Config{RootCAs: ca.Pool(), ServerName: name})
		if !bytes.Equal(c.ConnectionState().PeerCertificates[0].Raw, want.DER) || !bytes.Equal(<-got, want.DER) {
			t.Fatalf("%s: wrong certificate", name)
		}
	}
	if _, err := tsDial(srv, &tls.Config{RootCAs: ca.Pool(), ServerName: "nope.test"}); err == nil {
		t.Fatal("handshake succeeded")
	}
	if err := ce.next(t); !errors.Is(err, bad) {
		t.Fatal(err)
	}
	if _, err := tsDial(srv, &tls.Config{RootCAs: ca.Pool(), ServerName: "panic.test"}); err == nil {
		t.Fatal("handshake succeeded")
	}
	if err := ce.next(t); !errors.Is(err, tlsserver.ErrListenerPanic) {
		t.Fatal(err)
	}
}

// SetSecureContext applies to new connections only, and the event never
// reports a certificate other than the one served.
func TestSetSecureContext(t *testing.T) {
	p := newTSPKI(t)
	next := p.ca.Issue(t, testpki.LeafOptions{})
	srv := tsServer(t, p, nil)
	got := make(chan []byte, 2)
	srv.OnOCSPRequest(func(cert, _ []byte, cb tlsserver.OCSPCallback) { got <- cert; cb(nil, nil) })
	entered, release := make(chan struct{}), make(chan struct{})
	var first atomic.Bool
	srv.OnConnection(func(net.Conn) {
		if first.CompareAndSwap(false, true) {
			close(entered)
			<-release
		}
	})
	res := make(chan *tls.Conn, 1)
	go func() { c, _ := tsDial(srv, tsClientConfig(p, 0)); res <- c }()
	<-entered // the first connection's handshake has begun
	if err := srv.SetSecureContext(tlsserver.SecureContext{Certificates: []tls.Certificate{next.TLSCertificate(true)}}); err != nil {
		t.Fatal(err)
	}
	close(release)
	c := <-res
	if c == nil {
		t.Fatal("handshake failed")
	}
	defer c.Close()
	if reported := <-got; !bytes.Equal(c.ConnectionState().PeerCertificates[0].Raw, p.leaf.DER) || !bytes.Equal(reported, p.leaf.DER) {
		t.Fatal("the connection begun before SetSecureContext did not get, and report, the old certificate")
	}
	c2 := tsMustDial(t, srv, tsClientConfig(p, 0))
	if reported := <-got; !bytes.Equal(c2.ConnectionState().PeerCertificates[0].Raw, next.DER) || !bytes.Equal(reported, next.DER) {
		t.Fatal("a new connection did not get the new certificate")
	}
}

func TestTicketKeys(t *testing.T) {
	p := newTSPKI(t)
	a := tsServer(t, p, nil)
	b := tsServer(t, p, nil)
	if len(a.TicketKeys()) != 48 || bytes.Equal(a.TicketKeys(), b.TicketKeys()) {
		t.Fatal("ticket keys are not 48 random bytes")
	}
	if err := a.SetTicketKeys(make([]byte, 32)); !errors.Is(err, tlsserver.ErrTicketKeys) {
		t.Fatalf("32 bytes: %v", err)
	}
	if err := b.SetTicketKeys(a.TicketKeys()); err != nil {
		t.Fatal(err)
	}
	for _, v := range versions {
		cfg := tsClientConfig(p, v.v)
		cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
		c := tsMustDial(t, a, cfg)
		c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		c.Read(make([]byte, 1)) // TLS 1.3 tickets come after the handshake
		c2 := tsMustDial(t, b, cfg)
		if !c2.ConnectionState().DidResume {
			t.Fatalf("%s: servers with the same ticket keys do not share tickets", v.name)
		}
	}
}

func TestKeylog(t *testing.T) {
	p := newTSPKI(t)
	for _, v := range versions {
		t.Run(v.name, func(t *testing.T) {
			srv := tsServer(t, p, nil)
			var mu sync.Mutex
			var lines []string
			var conns []net.Conn
			srv.OnKeylog(func(line []byte, conn net.Conn) {
				mu.Lock()
				lines = append(lines, string(line))
				conns = append(conns, conn)
				mu.Unlock()
			})
			var clientLog bytes.Buffer
			cfg := tsClientConfig(p, v.v)
			cfg.KeyLogWriter = &clientLog
			secure := make(chan *tls.Conn, 1)
			srv.OnSecureConnection(func(c *tls.Conn) { secure <- c })
			tsMustDial(t, srv, cfg)
			sc := <-secure
			mu.Lock()
			defer mu.Unlock()
			if strings.Join(lines, "") != clientLog.String() || len(lines) == 0 {
				t.Fatalf("server lines %q, client %q", lines, clientLog.String())
			}
			for _, c := range conns {
				if c != net.Conn(sc) {
					t.Fatal("keylog conn is not the connection's *tls.Conn")
				}
			}
		})
	}
	// Only when a listener existed at handshake start.
	srv := tsServer(t, p, nil)
	var n atomic.Int32
	srv.OnConnection(func(net.Conn) {
		srv.OnKeylog(func([]byte, net.Conn) { n.Add(1) })
	})
	tsMustDial(t, srv, tsClientConfig(p, 0))
	if n.Load() != 0 {
		t.Fatal("keylog emitted for a connection begun without a listener")
	}
}

func TestSessionStore(t *testing.T) {
	p := newTSPKI(t)
	for _, v := range versions {
		t.Run(v.name, func(t *testing.T) {
			srv := tsServer(t, p, nil)
			var mu sync.Mutex
			store := map[string][]byte{}
			var news, resumes, ocsps atomic.Int32
			var forget atomic.Bool
			srv.OnNewSession(func(id, data []byte, done func()) {
				news.Add(1)
				mu.Lock()
				store[string(id)] = data
				mu.Unlock()
				go done()
			})
			srv.OnResumeSession(func(id []byte, cb func(error, []byte)) {
				resumes.Add(1)
				mu.Lock()
				data := store[string(id)]
				mu.Unlock()
				if forget.Load() {
					data = nil
				}
				go cb(nil, data)
			})
			srv.OnOCSPRequest(func(_, _ []byte, cb tlsserver.OCSPCallback) { ocsps.Add(1); cb(nil, []byte("s")) })
			cfg := tsClientConfig(p, v.v)
			cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
			c := tsMustDial(t, srv, cfg)
			c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			c.Read(make([]byte, 1))
			if news.Load() == 0 {
				t.Fatal("no newSession")
			}
			c2 := tsMustDial(t, srv, cfg)
			if !c2.ConnectionState().DidResume || resumes.Load() != 1 || ocsps.Load() != 1 {
				t.Fatalf("resumed %v, resumeSession %d, OCSPRequest %d", c2.ConnectionState().DidResume, resumes.Load(), ocsps.Load())
			}
			c2.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			c2.Read(make([]byte, 1))
			forget.Store(true) // cb(nil, nil): a full handshake
			c3 := tsMustDial(t, srv, cfg)
			if c3.ConnectionState().DidResume || ocsps.Load() != 2 || string(c3.ConnectionState().OCSPResponse) != "s" {
				t.Fatal("cb(nil, nil) did not give a full handshake with OCSPRequest")
			}
		})
	}
}

func TestListenerWithNetHTTP(t *testing.T) {
	p := newTSPKI(t)
	srv := tsServer(t, p, func(o *tlsserver.Options) {
		o.Config = &tls.Config{NextProtos: []string{"h2", "http/1.1"}}
	})
	staples := make(chan struct{}, 8)
	srv.OnOCSPRequest(func(_, _ []byte, cb tlsserver.OCSPCallback) { staples <- struct{}{}; cb(nil, []byte("staple")) })
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Proto)
	})}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(srv.Listener()) }()
	// A failed handshake does not stop http.Server.
	junk, _ := net.Dial("tcp", srv.Addr().String())
	junk.Write([]byte("junk junk junk junk"))
	junk.Close()
	for _, h2 := range []bool{false, true} {
		tr := &http.Transport{TLSClientConfig: tsClientConfig(p, 0), ForceAttemptHTTP2: h2}
		if !h2 {
			tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		}
		cl := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		resp, err := cl.Get("https://" + srv.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := "HTTP/1.1"
		if h2 {
			want = "HTTP/2.0"
		}
		if string(body) != want || string(resp.TLS.OCSPResponse) != "staple" {
			t.Fatalf("got %q (staple %q), want %s", body, resp.TLS.OCSPResponse, want)
		}
		tr.CloseIdleConnections()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Fatal(err)
	}
}
