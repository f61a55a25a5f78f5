package tlsserver_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlsemit/tlsemit/internal/testpki"
	"github.com/tlsemit/tlsemit/tlsserver"
)

var versions = []struct {
	name string
	v    uint16
}{{"TLS1.2", tls.VersionTLS12}, {"TLS1.3", tls.VersionTLS13}}

// Items 3 and 4: the arguments, and the staple byte for byte.
func TestOCSPArgumentsAndStaple(t *testing.T) {
	p := newTSPKI(t)
	self := selfSignedLeaf(t)
	cases := []struct {
		name       string
		opts       func(*tlsserver.Options)
		wantCert   []byte
		wantIssuer []byte
		roots      *x509.CertPool
	}{
		{"chain", nil, p.leaf.DER, p.ca.DER, p.ca.Pool()},
		{"ca-option", func(o *tlsserver.Options) {
			o.Certificates = []tls.Certificate{p.leaf.TLSCertificate(false)}
			o.CA = []*x509.Certificate{p.ca.Cert}
		}, p.leaf.DER, p.ca.DER, p.ca.Pool()},
		{"leaf-alone", func(o *tlsserver.Options) {
			o.Certificates = []tls.Certificate{p.leaf.TLSCertificate(false)}
		}, p.leaf.DER, nil, p.ca.Pool()},
		{"self-signed", func(o *tlsserver.Options) {
			o.Certificates = []tls.Certificate{self}
		}, self.Certificate[0], nil, nil},
	}
	for _, tc := range cases {
		for _, v := range versions {
			t.Run(tc.name+"/"+v.name, func(t *testing.T) {
				srv := tsServer(t, p, tc.opts)
				staple := []byte("any bytes at all: not validated here")
				got := make(chan ocspArgs, 1)
				srv.OnOCSPRequest(func(cert, issuer []byte, cb tlsserver.OCSPCallback) {
					got <- ocspArgs{cert, issuer, cb}
					cb(nil, staple)
				})
				cfg := tsClientConfig(p, v.v)
				cfg.RootCAs = tc.roots
				cfg.InsecureSkipVerify = tc.roots == nil // self-signed, no SAN
				c := tsMustDial(t, srv, cfg)
				a := <-got
				if !bytes.Equal(a.cert, tc.wantCert) {
					t.Error("cert is not the served certificate")
				}
				if !bytes.Equal(a.issuer, tc.wantIssuer) {
					t.Errorf("issuer = %d bytes, want %d", len(a.issuer), len(tc.wantIssuer))
				}
				if tc.wantIssuer == nil && a.issuer != nil {
					t.Error("issuer should be nil")
				}
				if st := c.ConnectionState(); !bytes.Equal(st.OCSPResponse, staple) {
					t.Errorf("client got staple %q", st.OCSPResponse)
				}
				if !bytes.Equal(c.ConnectionState().PeerCertificates[0].Raw, a.cert) {
					t.Error("client was served another certificate")
				}
			})
		}
	}
}

func selfSignedLeaf(t testing.TB) tls.Certificate {
	ca := testpki.NewCA(t, "localhost")
	// A self-signed CA certificate named localhost, without SANs: the
	// client skips verification for it.
	return tls.Certificate{Certificate: [][]byte{ca.DER}, PrivateKey: ca.Key, Leaf: ca.Cert}
}

// Item 4: nil or empty staples nothing; the shared certificate is never
// modified (a static staple on it is not served when the listener says nil).
func TestOCSPNilAndEmptyStapleNothing(t *testing.T) {
	p := newTSPKI(t)
	for _, resp := range [][]byte{nil, {}} {
		for _, v := range versions {
			t.Run(fmt.Sprintf("%v/%s", resp == nil, v.name), func(t *testing.T) {
				cert := p.leaf.TLSCertificate(true)
				srv := tsServer(t, p, func(o *tlsserver.Options) { o.Certificates = []tls.Certificate{cert} })
				srv.OnOCSPRequest(func(_, _ []byte, cb tlsserver.OCSPCallback) { cb(nil, resp) })
				c := tsMustDial(t, srv, tsClientConfig(p, v.v))
				if got := c.ConnectionState().OCSPResponse; got != nil {
					t.Errorf("stapled %q", got)
				}
			})
		}
	}
}

// Item 4: a staple goes on its own connection only.
func TestOCSPStaplePerConnection(t *testing.T) {
	p := newTSPKI(t)
	srv := tsServer(t, p, nil)
	var n atomic.Int32
	srv.OnOCSPRequest(func(_, _ []byte, cb tlsserver.OCSPCallback) {
		if n.Add(1)%2 == 1 {
			cb(nil, []byte("odd"))
		} else {
			cb(nil, nil)
		}
	})
	for i := range 4 {
		c := tsMustDial(t, srv, tsClientConfig(p, tls.VersionTLS13))
		want := []byte("odd")
		if i%2 == 1 {
			want = nil
		}
		if got := c.ConnectionState().OCSPResponse; !bytes.Equal(got, want) {
			t.Fatalf("conn %d: staple %q, want %q", i, got, want)
		}
	}
}

// Item 1: no status_request, no event.
func TestOCSPNotEmittedWithoutStatusRequest(t *testing.T) {
	p := newTSPKI(t)
	for _, v := range versions {
		t.Run(v.name, func(t *testing.T) {
			srv := tsServer(t, p, nil)
			var calls atomic.Int32
			srv.OnOCSPRequest(func(_, _ []byte, cb tlsserver.OCSPCallback) { calls.Add(1); cb(nil, nil) })
			ce := tsClientErrors(srv)
			raw, err := net.Dial("tcp", srv.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			raw.SetDeadline(time.Now().Add(5 * time.Second))
			c := tls.Client(&stripStatusRequest{Conn: raw}, tsClientConfig(p, v.v))
			c.Handshake() // fails at Finished: the transcript was altered
			ce.next(t)    // the server has finished with the ClientHello
			if calls.Load() != 0 {
				t.Fatal("OCSPRequest emitted without status_request")
			}
		})
	}
}

// Item 1: no eligible listener, no event, and the handshake completes.
func TestOCSPNoListenerServesPlainly(t *testing.T) {
	p := newTSPKI(t)
	srv := tsServer(t, p, nil)
	c := tsMustDial(t, srv, tsClientConfig(p, 0))
	if c.ConnectionState().OCSPResponse != nil {
		t.Fatal("stapled without a listener")
	}
}

// Item 1: resumed handshakes emit nothing, in TLS 1.2 and 1.3.
func TestOCSPNotEmittedOnResumption(t *testing.T) {
	p := newTSPKI(t)
	for _, v := range versions {
		t.Run(v.name, func(t *testing.T) {
			srv := tsServer(t, p, nil)
			var calls atomic.Int32
			srv.OnOCSPRequest(func(_, _ []byte, cb tlsserver.OCSPCallback) { calls.Add(1); cb(nil, []byte("staple")) })
			cfg := tsClientConfig(p, v.v)
			cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
			first := tsMustDial(t, srv, cfg)
			if v.v == tls.VersionTLS13 {
				// TLS 1.3 tickets arrive after the handshake: read for them.
				first.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
				first.Read(make([]byte, 1))
			}
			first.Close()
			second := tsMustDial(t, srv, cfg)
			if !second.ConnectionState().DidResume {
				t.Fatal("second connection did not resume")
			}
			if n := calls.Load(); n != 1 {
				t.Fatalf("OCSPRequest emitted %d times, want 1 (not on the resumption)", n)
			}
			// A ticket the server cannot use means a full handshake: emitted.
			if err := srv.SetTicketKeys(bytes.Repeat([]byte{7}, 48)); err != nil {
				t.Fatal(err)
			}
			third := tsMustDial(t, srv, cfg)
			if third.ConnectionState().DidResume {
				t.Fatal("resumed with a ticket under replaced keys")
			}
			if n := calls.Load(); n != 2 {
				t.Fatalf("OCSPRequest emitted %d times, want 2", n)
			}
			if !bytes.Equal(third.ConnectionState().OCSPResponse, []byte("staple")) {
				t.Fatal("no staple on the full handshake after a refused ticket")
			}
		})
	}
}

// Item 2: eligibility is fixed when the handshake begins, before the
// 'connection' listeners run.
func TestOCSPEligibilityAtHandshakeStart(t *testing.T) {
	p := newTSPKI(t)
	t.Run("added in connection misses it", func(t *testing.T) {
		srv := tsServer(t, p, nil)
		var late atomic.Int32
		added := false
		srv.OnConnection(func(net.Conn) {
			if !added {
				added = true
				srv.OnOCSPRequest(func(_, _ []byte, cb tlsserver.OCSPCallback) { late.Add(1); cb(nil, []byte("late")) })
			}
		})
		c := tsMustDial(t, srv, tsClientConfig(p, 0))
		if late.Load() != 0 || c.ConnectionState().OCSPResponse != nil {
			t.Fatal("a listener added in 'connection' ran for that connection")
		}
		c2 := tsMustDial(t, srv, tsClientConfig(p, 0))
		if late.Load() != 1 || !bytes.Equal(c2.ConnectionState().OCSPResponse, []byte("late")) {
			t.Fatal("the listener did not apply to the next connection")
		}
	})
	t.Run("removed in connection is not called", func(t *testing.T) {
		srv := tsServer(t, p, nil)
		var calls atomic.Int32
		id := srv.OnOCSPRequest(func(_, _ []byte, cb tlsserver.OCSPCallback) { calls.Add(1); cb(nil, []byte("x")) })
		srv.OnConnection(func(net.Conn) { srv.Off(tlsserver.EventOCSPRequest, id) })
		c := tsMustDial(t, srv, tsClientConfig(p, 0))
		if calls.Load() != 0 || c.ConnectionState().OCSPResponse != nil {
			t.Fatal("a listener removed in 'connection' was called")
		}
	})
	t.Run("added mid-handshake applies from the next connection", func(t *testing.T) {
		srv := tsServer(t, p, nil)
		var second atomic.Int32
		var addOnce sync.Once
		srv.OnOCSPRequest(func(_, _ []byte, cb tlsserver.OCSPCallback) {
			addOnce.Do(func() {
				srv.OnOCSPRequest(func(_, _ []byte, cb tlsserver.OCSPCallback) { second.Add(1) })
			})
			cb(nil, nil)
		})
		tsMustDial(t, srv, tsClientConfig(p, 0))
		if second.Load() != 0 {
			t.Fatal("listener added during the emission was called by it")
		}
		tsMustDial(t, srv, tsClientConfig(p, 0))
		if second.Load() != 1 {
			t.Fatalf("second listener called %d times on the next connection", second.Load())
		}
	})
	t.Run("plain On and Once", func(t *testing.T) {
		srv := tsServer(t, p, nil)
		var onceCalls atomic.Int32
		srv.Once(tlsserver.EventOCSPRequest, func(args ...any) {
			onceCalls.Add(1)
			args[2].(tlsserver.OCSPCallback)(nil, args[0].([]byte)[:4])
		})
		c := tsMustDial(t, srv, tsClientConfig(p, 0))
		if len(c.ConnectionState().OCSPResponse) != 4 {
			t.Fatal("plain listener's staple missing")
		}
		c2 := tsMustDial(t, srv, tsClientConfig(p, 0))
		if onceCalls.Load() != 1 || c2.ConnectionState().OCSPResponse != nil {
			t.Fatal("Once listener ran twice")
		}
	})
}

// Item 5: cb(err) destroys the connection; tlsClientError matches err.
func TestOCSPCallbackError(t *testing.T) {
	p := newTSPKI(t)
	boom := errors.New("no staple for you")
	for _, v := range versions {
		t.Run(v.name, func(t *testing.T) {
			srv := tsServer(t, p, nil)
			ce := tsClientErrors(srv)
			var secure atomic.Int32
			srv.OnSecureConnection(func(*tls.Conn) { secure.Add(1) })
			srv.OnOCSPRequest(func(_, _ []byte, cb tlsserver.OCSPCallback) { cb(boom, nil) })
			if _, err := tsDial(srv, tsClientConfig(p, v.v)); err == nil {
				t.Fatal("handshake succeeded")
			}
			if err := ce.next(t); !errors.Is(err, boom) {
				t.Fatalf("tlsClientError %v, want %v", err, boom)
			}
			if secure.Load() != 0 {
				t.Fatal("secureConnection emitted")
			}
			// The server keeps serving.
			srv.RemoveAllListeners(tlsserver.EventOCSPRequest)
			tsMustDial(t, srv, tsClientConfig(p, v.v))
		})
	}
}

// Item 6: a later callback from another goroutine; all listeners in order,
// sharing one callback; the first call decides.
func TestOCSPAsyncCallbackSharedByListeners(t *testing.T) {
	p := newTSPKI(t)
	srv := tsServer(t, p, nil)
	var order []string
	var mu sync.Mutex
	cbs := make(chan tlsserver.OCSPCallback, 2)
	for _, name := range []string{"first", "second"} {
		srv.OnOCSPRequest(func(_, _ []byte, cb tlsserver.OCSPCallback) {
			mu.Lock()
			order = append(order, name)
			mu.Unlock()
			cbs <- cb
		})
	}
	done := make(chan *tls.Conn)
	go func() {
		c, _ := tsDial(srv, tsClientConfig(p, 0))
		done <- c
	}()
	cb1, cb2 := <-cbs, <-cbs
	if fmt.Sprintf("%p", cb1) != fmt.Sprintf("%p", cb2) {
		t.Error("listeners got different callbacks")
	}
	go cb1(nil, []byte("later"))
	c := <-done
	if c == nil {
		t.Fatal("handshake failed")
	}
	defer c.Close()
	if got := c.ConnectionState().OCSPResponse; string(got) != "later" {
		t.Fatalf("staple %q", got)
	}
	if fmt.Sprint(order) != "[first second]" {
		t.Fatalf("order %v", order)
	}
}

// Item 6: a second call before the handshake completes fails it; after,
// destroys the connection, reported through 'tlsClientError' (a *tls.Conn
// has no 'error' event: Node emits it on the socket).
func TestOCSPMultipleCallback(t *testing.T) {
	p := newTSPKI(t)
	t.Run("before the handshake completes", func(t *testing.T) {
		srv := tsServer(t, p, nil)
		ce := tsClientErrors(srv)
		srv.OnOCSPRequest(func(_, _ []byte, cb tlsserver.OCSPCallback) { cb(nil, []byte("a")); cb(nil, []byte("b")) })
		if _, err := tsDial(srv, tsClientConfig(p, 0)); err == nil {
			t.Fatal("handshake succeeded")
		}
		if err := ce.next(t); !errors.Is(err, tlsserver.ErrMultipleCallback) {
			t.Fatalf("tlsClientError %v", err)
		}
	})
	t.Run("two listeners both calling", func(t *testing.T) {
		srv := tsServer(t, p, nil)
		ce := tsClientErrors(srv)
		for range 2 {
			srv.OnOCSPRequest(func(_, _ []byte, cb tlsserver.OCSPCallback) { cb(nil, nil) })
		}
		if _, err := tsDial(srv, tsClientConfig(p, 0)); err == nil {
			t.Fatal("handshake succeeded")
		}
		if err := ce.next(t); !errors.Is(err, tlsserver.ErrMultipleCallback) {
			t.Fatalf("tlsClientError %v", err)
		}
	})
	t.Run("after the handshake completes", func(t *testing.T) {
		srv := tsServer(t, p, nil)
		ce := tsClientErrors(srv)
		cbs := make(chan tlsserver.OCSPCallback, 1)
		srv.OnOCSPRequest(func(_, _ []byte, cb tlsserver.OCSPCallback) { cb(nil, []byte("ok")); cbs <- cb })
		secure := make(chan *tls.Conn, 1)
		srv.OnSecureConnection(func(c *tls.Conn) { secure <- c })
		c := tsMustDial(t, srv, tsClientConfig(p, 0))
		<-secure
		ce.none(t)
		(<-cbs)(nil, []byte("again"))
		if err := ce.next(t); !errors.Is(err, tlsserver.ErrMultipleCallback) {
			t.Fatalf("tlsClientError %v", err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("connection still open")
		}
		waitFor(t, func() bool { return srv.Connections() == 0 })
	})
}

// Item 7: a callback never called: timeout, destroyed, reported.
func TestOCSPCallbackNeverCalled(t *testing.T) {
	p := newTSPKI(t)
	srv := tsServer(t, p, func(o *tlsserver.Options) { o.HandshakeTimeout = 150 * time.Millisecond })
	ce := tsClientErrors(srv)
	cbs := make(chan tlsserver.OCSPCallback, 1)
	srv.OnOCSPRequest(func(_, _ []byte, cb tlsserver.OCSPCallback) { cbs <- cb })
	if _, err := tsDial(srv, tsClientConfig(p, 0)); err == nil {
		t.Fatal("handshake succeeded")
	}
	if err := ce.next(t); !errors.Is(err, tlsserver.ErrHandshakeTimeout) {
		t.Fatalf("tlsClientError %v", err)
	}
	(<-cbs)(nil, []byte("too late")) // a no-op
	ce.none(t)
	waitFor(t, func() bool { return srv.Connections() == 0 })
}

// Item 7: a client hanging up while its callback is pending.
func TestOCSPClientHangsUpMidCallback(t *testing.T) {
	p := newTSPKI(t)
	srv := tsServer(t, p, nil)
	ce := tsClientErrors(srv)
	raw, cb := parkOne(t, srv, p)
	raw.Close()
	if err := ce.next(t); !errors.Is(err, tlsserver.ErrSocketClosed) {
		t.Fatalf("tlsClientError %v", err)
	}
	cb(nil, []byte("late")) // a no-op
	cb(nil, nil)            // still a no-op: not a second report
	ce.none(t)
	waitFor(t, func() bool { return srv.Connections() == 0 })
	srv.RemoveAllListeners(tlsserver.EventOCSPRequest)
	tsMustDial(t, srv, tsClientConfig(p, 0))
}

// Item 7: Close, and Shutdown giving up (Node's closeAllConnections: a
// context already ended), abort pending waits. (Shutdown lets them finish
// while its context lasts: TestShutdownLetsParkedHandshakesFinish.)
func TestOCSPCloseAbortsPendingCallbacks(t *testing.T) {
	p := newTSPKI(t)
	for _, how := range []string{"Close", "Shutdown with an ended context"} {
		t.Run(how, func(t *testing.T) {
			srv := tsServer(t, p, nil)
			ce := tsClientErrors(srv)
			cbs := make(chan tlsserver.OCSPCallback, 3)
			srv.OnOCSPRequest(func(_, _ []byte, cb tlsserver.OCSPCallback) { cbs <- cb })
			closed := make(chan struct{})
			srv.Once(tlsserver.EventClose, func(...any) { close(closed) })
			errs := make(chan error, 3)
			for range 3 {
				go func() { _, err := tsDial(srv, tsClientConfig(p, 0)); errs <- err }()
			}
			var pending []tlsserver.OCSPCallback
			for range 3 {
				pending = append(pending, <-cbs)
			}
			if how == "Close" {
				srv.Close()
			} else {
				ctx, cancel := context.WithCancel(t.Context())
				cancel()
				if err := srv.Shutdown(ctx); !errors.Is(err, context.Canceled) {
					t.Fatalf("Shutdown: %v", err)
				}
			}
			for range 3 {
				if err := ce.next(t); !errors.Is(err, tlsserver.ErrClosed) {
					t.Fatalf("tlsClientError %v", err)
				}
				if err := <-errs; err == nil {
					t.Fatal("a handshake completed after Close")
				}
			}
			for _, cb := range pending {
				cb(nil, nil)
			}
			<-closed
			if srv.Connections() != 0 {
				t.Fatal("connections left")
			}
		})
	}
}

// Item 8: a panicking listener costs its connection only.
func TestOCSPListenerPanic(t *testing.T) {
	p := newTSPKI(t)
	srv := tsServer(t, p, nil)
	ce := tsClientErrors(srv)
	var n atomic.Int32
	srv.OnOCSPRequest(func(_, _ []byte, cb tlsserver.OCSPCallback) {
		if n.Add(1) == 2 {
			panic("listener bug")
		}
		cb(nil, []byte("fine"))
	})
	tsMustDial(t, srv, tsClientConfig(p, 0))
	if _, err := tsDial(srv, tsClientConfig(p, 0)); err == nil {
		t.Fatal("handshake with a panicking listener succeeded")
	}
	err := ce.next(t)
	var pe *tlsserver.PanicError
	if !errors.Is(err, tlsserver.ErrListenerPanic) || !errors.As(err, &pe) || pe.Value != "listener bug" {
		t.Fatalf("tlsClientError %v", err)
	}
	c := tsMustDial(t, srv, tsClientConfig(p, 0))
	if string(c.ConnectionState().OCSPResponse) != "fine" {
		t.Fatal("next connection unaffected? no staple")
	}
}

// Item 8, with other clients in flight: one parked client is unaffected by
// another's panic.
func TestOCSPPanicIsolatedFromParkedClient(t *testing.T) {
	p := newTSPKI(t)
	srv := tsServer(t, p, nil)
	ce := tsClientErrors(srv)
	parked := make(chan tlsserver.OCSPCallback, 1)
	var n atomic.Int32
	srv.OnOCSPRequest(func(_, _ []byte, cb tlsserver.OCSPCallback) {
		if n.Add(1) == 1 {
			parked <- cb
			return
		}
		panic(errors.New("boom"))
	})
	res := make(chan error, 1)
	go func() {
		c, err := tsDial(srv, tsClientConfig(p, 0))
		if err == nil {
			if string(c.ConnectionState().OCSPResponse) != "parked" {
				err = errors.New("wrong staple")
			}
			c.Close()
		}
		res <- err
	}()
	cb := <-parked
	if _, err := tsDial(srv, tsClientConfig(p, 0)); err == nil {
		t.Fatal("panicking handshake succeeded")
	}
	if err := ce.next(t); !errors.Is(err, tlsserver.ErrListenerPanic) {
		t.Fatalf("tlsClientError %v", err)
	}
	cb(nil, []byte("parked"))
	if err := <-res; err != nil {
		t.Fatal(err)
	}
}

// Item 9: parked handshakes cost goroutines only.
func TestOCSPManyParkedHandshakes(t *testing.T) {
	n := 1000 // in-process, both ends cost a descriptor; 1000 keeps -race well under a minute
	if testing.Short() {
		n = 300
	}
	p := newTSPKI(t)
	srv := tsServer(t, p, func(o *tlsserver.Options) { o.HandshakeTimeout = 30 * time.Second })
	srv.OnSecureConnection(func(c *tls.Conn) { c.Close() })
	var mu sync.Mutex
	var cbs []tlsserver.OCSPCallback
	all := make(chan struct{})
	srv.OnOCSPRequest(func(_, _ []byte, cb tlsserver.OCSPCallback) {
		mu.Lock()
		cbs = append(cbs, cb)
		if len(cbs) == n {
			close(all)
		}
		mu.Unlock()
	})
	before := runtime.NumGoroutine()
	errs := make(chan error, n)
	for range n {
		go func() {
			raw, err := net.Dial("tcp", srv.Addr().String())
			if err != nil {
				errs <- err
				return
			}
			raw.SetDeadline(time.Now().Add(time.Minute))
			c := tls.Client(raw, tsClientConfig(p, tls.VersionTLS13))
			if err = c.Handshake(); err == nil {
				if string(c.ConnectionState().OCSPResponse) != "s" {
					err = errors.New("wrong staple")
				}
			}
			raw.Close()
			errs <- err
		}()
	}
	select {
	case <-all:
	case <-time.After(40 * time.Second):
		t.Fatal("not all handshakes parked")
	}
	// Server side: the connection's goroutine and its client watcher.
	t.Logf("%d parked handshakes; goroutines %d -> %d (clients included)", n, before, runtime.NumGoroutine())
	for _, cb := range cbs {
		go cb(nil, []byte("s"))
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool { return srv.Connections() == 0 })
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(time.Millisecond)
	}
}
