package tlsserver_test

// The rows of the misuse matrix (docs/reliability.md) that the other test
// files do not already cover, and the key-log security check. Every test
// here asserts its outcome, that other clients are unaffected, and (through
// goleak in TestMain) that nothing is left running.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlsemit/tlsemit/events"
	"github.com/tlsemit/tlsemit/internal/testpki"
	"github.com/tlsemit/tlsemit/tlsserver"
)

// misuseStaple is the staple a test server gives cert: a digest, so that a
// client can tell which certificate the listener was told about.
func misuseStaple(cert []byte) []byte {
	h := sha256.Sum256(cert)
	return append([]byte("staple:"), h[:]...)
}

// misuseStapler staples misuseStaple(cert) for every certificate.
func misuseStapler(cert, _ []byte, cb tlsserver.OCSPCallback) { cb(nil, misuseStaple(cert)) }

// misuseCheck handshakes a fresh client and checks that its staple is the
// one for the certificate it was served.
func misuseCheck(srv *tlsserver.Server, cfg *tls.Config) error {
	c, err := tsDial(srv, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	cs := c.ConnectionState()
	if !bytes.Equal(cs.OCSPResponse, misuseStaple(cs.PeerCertificates[0].Raw)) {
		return errors.New("staple is not the served certificate's")
	}
	return nil
}

// Row "listener blocks": a synchronous 'OCSPRequest' listener that does not
// return. Its connection is closed at HandshakeTimeout; other clients
// handshake meanwhile; Close returns at once although the listener still
// runs. The listener holds the handshake goroutine, so 'tlsClientError'
// (ErrHandshakeTimeout) comes when it returns; its callback is then a no-op
// and the goroutine ends.
func TestMisuseListenerBlocks(t *testing.T) {
	p := newTSPKI(t)
	srv := tsServer(t, p, func(o *tlsserver.Options) { o.HandshakeTimeout = 300 * time.Millisecond })
	ce := tsClientErrors(srv)
	release := make(chan struct{})
	blocked := make(chan struct{})
	var first atomic.Bool
	returned := make(chan struct{})
	srv.OnOCSPRequest(func(cert, issuer []byte, cb tlsserver.OCSPCallback) {
		if first.CompareAndSwap(false, true) {
			close(blocked)
			<-release
			cb(nil, []byte("late")) // a no-op
			close(returned)
			return
		}
		misuseStapler(cert, issuer, cb)
	})
	errc := make(chan error, 1)
	go func() { _, err := tsDial(srv, tsClientConfig(p, 0)); errc <- err }()
	<-blocked
	for range 3 {
		if err := misuseCheck(srv, tsClientConfig(p, 0)); err != nil {
			t.Fatalf("another client while a listener blocks: %v", err)
		}
	}
	// The timeout destroys the connection: the client sees it end
	// although the listener still blocks.
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("the blocked handshake completed")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the connection outlived HandshakeTimeout while its listener blocked")
	}
	ce.none(t) // reported by the handshake goroutine, which the listener holds
	done := make(chan struct{})
	go func() { srv.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close waited for a blocked listener")
	}
	close(release)
	<-returned
	if err := ce.next(t); !errors.Is(err, tlsserver.ErrHandshakeTimeout) {
		t.Fatalf("tlsClientError %v, want ErrHandshakeTimeout once the listener returned", err)
	}
	ce.none(t)
	waitFor(t, func() bool { return srv.Connections() == 0 })
}

// Row "listener panics", for every event a connection emits (the
// 'OCSPRequest' and 'connection' rows are in ocsp_test.go and
// server_test.go): the connection is destroyed and reported once with
// ErrListenerPanic naming the event; the next client is served.
func TestMisuseListenerPanicsInEveryEvent(t *testing.T) {
	p := newTSPKI(t)
	for _, tc := range []struct {
		event string
		add   func(srv *tlsserver.Server, boom func())
	}{
		{tlsserver.EventKeylog, func(s *tlsserver.Server, boom func()) {
			s.OnKeylog(func([]byte, net.Conn) { boom() })
		}},
		{tlsserver.EventNewSession, func(s *tlsserver.Server, boom func()) {
			s.OnNewSession(func(_, _ []byte, done func()) { boom(); done() })
		}},
		{tlsserver.EventSecureConnection, func(s *tlsserver.Server, boom func()) {
			s.OnSecureConnection(func(c *tls.Conn) { boom(); c.Close() })
		}},
	} {
		t.Run(tc.event, func(t *testing.T) {
			srv := tsServer(t, p, nil)
			ce := tsClientErrors(srv)
			var armed atomic.Bool
			armed.Store(true)
			tc.add(srv, func() {
				if armed.CompareAndSwap(true, false) {
					panic("boom in " + tc.event)
				}
			})
			cfg := tsClientConfig(p, 0)
			// Go's client asks for tickets only with a session cache.
			cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
			c, err := tsDial(srv, cfg)
			if err == nil {
				// 'secureConnection' runs after the handshake: the client
				// sees the connection closed.
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				if _, rerr := c.Read(make([]byte, 1)); rerr == nil {
					t.Fatal("connection still open after its listener panicked")
				}
				c.Close()
			}
			err = ce.next(t)
			var pe *tlsserver.PanicError
			if !errors.Is(err, tlsserver.ErrListenerPanic) || !errors.As(err, &pe) || pe.Event != tc.event {
				t.Fatalf("tlsClientError %v, want ErrListenerPanic for %q", err, tc.event)
			}
			waitFor(t, func() bool { return srv.Connections() == 0 })
			ce.none(t)
			tsMustDial(t, srv, tsClientConfig(p, 0)).Close()
			ce.none(t)
		})
	}
	t.Run("SNICallback", func(t *testing.T) {
		var armed atomic.Bool
		armed.Store(true)
		srv := tsServer(t, p, func(o *tlsserver.Options) {
			o.SNICallback = func(context.Context, string) (*tls.Certificate, error) {
				if armed.CompareAndSwap(true, false) {
					panic("boom in SNICallback")
				}
				return nil, nil
			}
		})
		ce := tsClientErrors(srv)
		if _, err := tsDial(srv, tsClientConfig(p, 0)); err == nil {
			t.Fatal("handshake succeeded through a panicking SNICallback")
		}
		if err := ce.next(t); !errors.Is(err, tlsserver.ErrListenerPanic) {
			t.Fatalf("tlsClientError %v", err)
		}
		tsMustDial(t, srv, tsClientConfig(p, 0)).Close()
	})
	t.Run("tlsClientError", func(t *testing.T) {
		// A panicking 'tlsClientError' listener is logged, not re-reported
		// and not fatal.
		srv := tsServer(t, p, nil)
		var calls atomic.Int32
		srv.OnTLSClientError(func(error, net.Conn) { calls.Add(1); panic("boom in tlsClientError") })
		raw, err := net.Dial("tcp", srv.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		raw.Write([]byte("not TLS at all\r\n\r\n"))
		raw.Close()
		waitFor(t, func() bool { return calls.Load() == 1 && srv.Connections() == 0 })
		tsMustDial(t, srv, tsClientConfig(p, 0)).Close()
		if n := calls.Load(); n != 1 {
			t.Fatalf("'tlsClientError' listener called %d times", n)
		}
	})
}

// Row "listener removed mid-handshake", during the emission itself: as
// Node's emit works on a copy, a listener removed by an earlier listener of
// the same 'OCSPRequest' emission still runs in it, and not for the next
// connection.
func TestMisuseListenerRemovedDuringEmission(t *testing.T) {
	p := newTSPKI(t)
	srv := tsServer(t, p, nil)
	var second atomic.Int32
	var secondID events.ID
	srv.OnOCSPRequest(func(_, _ []byte, cb tlsserver.OCSPCallback) {
		srv.Off(tlsserver.EventOCSPRequest, secondID)
		cb(nil, []byte("first"))
	})
	secondID = srv.OnOCSPRequest(func(_, _ []byte, cb tlsserver.OCSPCallback) { second.Add(1) })
	c := tsMustDial(t, srv, tsClientConfig(p, 0))
	if !bytes.Equal(c.ConnectionState().OCSPResponse, []byte("first")) {
		t.Fatal("first listener's staple missing")
	}
	if n := second.Load(); n != 1 {
		t.Errorf("listener removed during the emission ran %d times in it; Node's emit runs it (copy semantics)", n)
	}
	tsMustDial(t, srv, tsClientConfig(p, 0))
	if n := second.Load(); n > 1 {
		t.Errorf("removed listener ran again on the next connection")
	}
}

// Row "callback twice, concurrently": two goroutines race to call the same
// callback. The first call decides; there is no crash and at most one
// 'tlsClientError' per connection (the second call fails the connection
// with ErrMultipleCallback before or after the handshake completes).
func TestMisuseCallbackRacedFromTwoGoroutines(t *testing.T) {
	p := newTSPKI(t)
	srv := tsServer(t, p, nil)
	var mu sync.Mutex
	reports := map[net.Conn]int{}
	var unexpected []error
	srv.OnTLSClientError(func(err error, c net.Conn) {
		mu.Lock()
		defer mu.Unlock()
		reports[c]++
		if !errors.Is(err, tlsserver.ErrMultipleCallback) && !errors.Is(err, tlsserver.ErrSocketClosed) {
			unexpected = append(unexpected, err)
		}
	})
	srv.OnOCSPRequest(func(_, _ []byte, cb tlsserver.OCSPCallback) {
		start := make(chan struct{})
		for _, resp := range [][]byte{[]byte("a"), []byte("b")} {
			go func() { <-start; cb(nil, resp) }()
		}
		close(start)
	})
	const n = 40
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			c, err := tsDial(srv, tsClientConfig(p, 0))
			if err != nil {
				return // failed by the second call: allowed
			}
			defer c.Close()
			if st := c.ConnectionState().OCSPResponse; !bytes.Equal(st, []byte("a")) && !bytes.Equal(st, []byte("b")) {
				t.Errorf("staple %q", st)
			}
			c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			c.Read(make([]byte, 1))
		})
	}
	wg.Wait()
	// A connection counts until its report has been made.
	waitFor(t, func() bool { return srv.Connections() == 0 })
	mu.Lock()
	for _, err := range unexpected {
		t.Errorf("tlsClientError %v", err)
	}
	for c, k := range reports {
		if k != 1 {
			t.Errorf("'tlsClientError' emitted %d times for %v", k, c.RemoteAddr())
		}
	}
	mu.Unlock()
	srv.RemoveAllListeners(tlsserver.EventOCSPRequest)
	srv.OnOCSPRequest(misuseStapler)
	if err := misuseCheck(srv, tsClientConfig(p, 0)); err != nil {
		t.Fatalf("a client after the races: %v", err)
	}
}

// misuseLoad runs clients handshaking in a loop until stop, counting
// successes and collecting errors other than those allowed by ok.
func misuseLoad(srv *tlsserver.Server, cfgs []*tls.Config, workers int, stop <-chan struct{}, ok func(error) bool) (wait func() (int64, []error)) {
	var wg sync.WaitGroup
	var done atomic.Int64
	var mu sync.Mutex
	var errs []error
	for i := range workers {
		wg.Go(func() {
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				err := misuseCheck(srv, cfgs[(i+k)%len(cfgs)])
				switch {
				case err == nil:
					done.Add(1)
				case !ok(err):
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	return func() (int64, []error) {
		wg.Wait()
		return done.Load(), errs
	}
}

// Row "SetSecureContext and AddContext during load": while clients
// handshake continuously, the default context flips between two
// certificates and an SNI context is added again and again with new
// certificates. No handshake fails, and every staple is the one for the
// certificate that connection was served (the event never reports a
// certificate other than the served one).
func TestMisuseContextsChangedUnderLoad(t *testing.T) {
	p := newTSPKI(t)
	alt := p.ca.Issue(t, testpki.LeafOptions{DNSNames: []string{"localhost"}})
	snis := []*testpki.Leaf{
		p.ca.Issue(t, testpki.LeafOptions{DNSNames: []string{"sni.test"}}),
		p.ca.Issue(t, testpki.LeafOptions{DNSNames: []string{"sni.test"}}),
	}
	srv := tsServer(t, p, nil)
	srv.OnOCSPRequest(misuseStapler)
	first := snis[0].TLSCertificate(true)
	if err := srv.AddContext("sni.test", tlsserver.SecureContext{Certificates: []tls.Certificate{first}}); err != nil {
		t.Fatal(err)
	}
	sniCfg := tsClientConfig(p, 0)
	sniCfg.ServerName = "sni.test"
	cfgs := []*tls.Config{tsClientConfig(p, 0), tsClientConfig(p, tls.VersionTLS12), sniCfg}
	stop := make(chan struct{})
	wait := misuseLoad(srv, cfgs, 8, stop, func(error) bool { return false })
	defaults := []tls.Certificate{alt.TLSCertificate(true), p.leaf.TLSCertificate(true)}
	changes := 0
	deadline := time.Now().Add(1500 * time.Millisecond)
	for i := 0; time.Now().Before(deadline); i++ {
		if err := srv.SetSecureContext(tlsserver.SecureContext{Certificates: defaults[i%2 : i%2+1]}); err != nil {
			t.Fatal(err)
		}
		c := snis[i%2].TLSCertificate(true)
		if err := srv.AddContext("sni.test", tlsserver.SecureContext{Certificates: []tls.Certificate{c}}); err != nil {
			t.Fatal(err)
		}
		changes += 2
		time.Sleep(2 * time.Millisecond)
	}
	close(stop)
	n, errs := wait()
	for _, err := range errs {
		t.Error(err)
	}
	if n < 20 {
		t.Fatalf("only %d handshakes under %d context changes", n, changes)
	}
	t.Logf("%d handshakes, %d context changes, %d errors", n, changes, len(errs))
}

// Row "server Close and Shutdown during handshakes": under continuous
// load (handshakes in every phase), Close or Shutdown returns, every
// client either completed its handshake with the right staple or failed
// cleanly, the server accepts nothing more, and no goroutine is left
// (goleak).
func TestMisuseCloseAndShutdownUnderLoad(t *testing.T) {
	p := newTSPKI(t)
	for _, how := range []string{"Close", "Shutdown"} {
		t.Run(how, func(t *testing.T) {
			srv := tsServer(t, p, nil)
			srv.OnOCSPRequest(func(cert, issuer []byte, cb tlsserver.OCSPCallback) {
				// Some callbacks come later, from another goroutine, so
				// that some handshakes are parked when the server closes.
				if cert[len(cert)-1]%2 == 0 || time.Now().UnixNano()%2 == 0 {
					go func() { time.Sleep(time.Millisecond); misuseStapler(cert, issuer, cb) }()
					return
				}
				misuseStapler(cert, issuer, cb)
			})
			var reports sync.Map
			var repeats atomic.Int32
			srv.OnTLSClientError(func(err error, c net.Conn) {
				if _, loaded := reports.LoadOrStore(c, true); loaded {
					repeats.Add(1)
				}
			})
			stop := make(chan struct{})
			allowed := func(err error) bool {
				// Refused, reset or cut short by the closing server: a
				// clean failure. A wrong staple is not allowed.
				return err != nil && err.Error() != "staple is not the served certificate's"
			}
			wait := misuseLoad(srv, []*tls.Config{tsClientConfig(p, 0), tsClientConfig(p, tls.VersionTLS12)}, 8, stop, allowed)
			waitFor(t, func() bool {
				st := srv.Stats()
				return st.FullHandshakes+st.ResumedHandshakes >= 20 && st.Handshaking > 0
			})
			before := srv.Connections()
			closed := make(chan error, 1)
			go func() {
				if how == "Close" {
					closed <- srv.Close()
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				closed <- srv.Shutdown(ctx)
			}()
			select {
			case err := <-closed:
				if err != nil {
					t.Fatalf("%s: %v", how, err)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("%s did not return under load", how)
			}
			close(stop)
			n, errs := wait()
			for _, err := range errs {
				t.Error(err)
			}
			if n == 0 {
				t.Fatal("no handshake completed before the server closed")
			}
			waitFor(t, func() bool { return srv.Connections() == 0 })
			if repeats.Load() != 0 {
				t.Fatalf("'tlsClientError' emitted more than once for %d connections", repeats.Load())
			}
			if _, err := tsDial(srv, tsClientConfig(p, 0)); err == nil {
				t.Fatal("handshake succeeded after the server closed")
			}
			t.Logf("%d handshakes before %s (%d connections open at the call)", n, how, before)
		})
	}
}

// Security: key-log lines exist only while a 'keylog' listener does. A
// channel subscription to "keylog" is the probe: ListenerCount counts it
// (as Node counts events.on), but it only observes and does not make the
// server produce lines, so it sees them only when a listener did. With a
// listener, the lines are the client's own key log; after the listener is
// removed, a new connection produces none.
func TestMisuseKeylogOnlyWithListener(t *testing.T) {
	p := newTSPKI(t)
	srv := tsServer(t, p, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub := events.On(ctx, &srv.Emitter, tlsserver.EventKeylog, events.Buffer(256))
	drain := func() (lines []byte) {
		for {
			select {
			case ev := <-sub.C:
				lines = append(lines, ev.Args[0].([]byte)...)
			case <-time.After(100 * time.Millisecond):
				return lines
			}
		}
	}
	if srv.ListenerCount(tlsserver.EventKeylog) != 1 {
		t.Fatal("the subscription is not counted as Node counts events.on")
	}
	for _, v := range versions {
		var clientLog bytes.Buffer
		cfg := tsClientConfig(p, v.v)
		cfg.KeyLogWriter = &clientLog
		tsMustDial(t, srv, cfg).Close()
		if got := drain(); len(got) != 0 {
			t.Fatalf("%s: %d bytes of key log produced without a 'keylog' listener", v.name, len(got))
		}

		id := srv.OnKeylog(func([]byte, net.Conn) {})
		clientLog.Reset()
		tsMustDial(t, srv, cfg).Close()
		if got := drain(); len(got) == 0 || !bytes.Equal(got, clientLog.Bytes()) {
			t.Fatalf("%s: with a listener the server logged %q, the client %q", v.name, got, clientLog.Bytes())
		}

		srv.Off(tlsserver.EventKeylog, id)
		clientLog.Reset()
		tsMustDial(t, srv, cfg).Close()
		if got := drain(); len(got) != 0 {
			t.Fatalf("%s: %d bytes of key log produced after the listener was removed", v.name, len(got))
		}
	}
}
